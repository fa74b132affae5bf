import Foundation
import SwiftRCNN
import XCTest

// .safetensors files are written here byte by byte from the format's description (header length, JSON header,
// little-endian data), independently of the reader under test.

/// The 8-byte little-endian length of `header`, `header`, then `data`.
func safetensorsFile(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: (length ?? UInt64(json.count)).littleEndian, Array.init) + json + data
}

/// A tensor to write: its dtype name and its data, already encoded.
struct RawTensor {
    let dtype: String
    let shape: [Int]
    let bytes: [UInt8]

    static func f32(_ shape: [Int], _ values: [Float]) -> RawTensor {
        RawTensor(dtype: "F32", shape: shape, bytes: le(values.map { $0.bitPattern }))
    }
    static func f64(_ shape: [Int], _ values: [Double]) -> RawTensor {
        RawTensor(dtype: "F64", shape: shape, bytes: le(values.map { $0.bitPattern }))
    }
    static func f16(_ shape: [Int], bits: [UInt16]) -> RawTensor {
        RawTensor(dtype: "F16", shape: shape, bytes: le(bits))
    }
    /// `values` must be exact in bfloat16 (their low 16 bits zero).
    static func bf16(_ shape: [Int], _ values: [Float]) -> RawTensor {
        precondition(values.allSatisfy { $0.bitPattern & 0xffff == 0 })
        return RawTensor(dtype: "BF16", shape: shape, bytes: le(values.map { UInt16($0.bitPattern >> 16) }))
    }
    static func i64(_ value: Int64) -> RawTensor { RawTensor(dtype: "I64", shape: [], bytes: le([value])) }

    static func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        #if _endian(little)
            values.withUnsafeBytes(Array.init)
        #else
            values.map { $0.littleEndian }.withUnsafeBytes(Array.init)
        #endif
    }
}

/// `tensors` as a .safetensors file: data laid out in the given order, header padded with spaces to 8 bytes as the
/// safetensors package writes it.
func safetensorsFile(_ tensors: [(String, RawTensor)], metadata: [String: String]? = nil) -> [UInt8] {
    var entries = [String](), data = [UInt8]()
    if let metadata {
        let pairs = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \"\($0.value)\"" }
        entries.append("\"__metadata__\": {" + pairs.joined(separator: ", ") + "}")
    }
    for (name, t) in tensors {
        entries.append(
            "\"\(name)\": {\"dtype\": \"\(t.dtype)\", \"shape\": \(t.shape), "
                + "\"data_offsets\": [\(data.count), \(data.count + t.bytes.count)]}")
        data += t.bytes
    }
    var header = "{" + entries.joined(separator: ", ") + "}"
    header += String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
    return safetensorsFile(header: header, data: data)
}

final class SafeTensorsTests: XCTestCase {
    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftrcnn-\(UUID().uuidString).safetensors")
        try Data(bytes).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    let tensors: [(String, RawTensor)] = [
        ("conv.weight", .f32([2, 1, 1, 3], [1, -2, 3.5, 0, .greatestFiniteMagnitude, -.leastNonzeroMagnitude])),
        ("conv.bias", .f64([2], [0.1, -1e300])),
        // 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), -0, +inf, NaN.
        ("bn.weight", .f16([2, 4], bits: [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00])),
        ("bn.bias", .bf16([3], [1, -3.25, 0x1.fep127])),  // the largest bfloat16
        ("bn.num_batches_tracked", .i64(1234)),
        ("empty", .f32([0, 5], [])),
    ]

    func checkRoundTrip(_ store: WeightStore) throws {
        var store = store
        XCTAssertEqual(store.names.sorted(), tensors.map(\.0).sorted())
        XCTAssertEqual(
            store.take("conv.weight", shape: [2, 1, 1, 3]),
            [1, -2, 3.5, 0, .greatestFiniteMagnitude, -.leastNonzeroMagnitude])
        XCTAssertEqual(store.take("conv.bias", shape: [2]), [Float(0.1), -.infinity])
        let half = store.take("bn.weight", shape: [2, 4])
        XCTAssertEqual(Array(half[0..<7]), [1, -2, 0.5, 65504, 0x1p-24, 0, .infinity])
        XCTAssertEqual(half[5].sign, .minus)
        XCTAssertTrue(half[7].isNaN)
        XCTAssertEqual(store.take("bn.bias", shape: [3]), [1, -3.25, 0x1.fep127])
        XCTAssertEqual(store.take("bn.num_batches_tracked", shape: []), [1234])
        XCTAssertEqual(store.take("empty", shape: [0, 5]), [])
        XCTAssertNoThrow(try store.finish())
    }

    func testRoundTripInMemory() throws {
        let bytes = safetensorsFile(tensors, metadata: ["format": "pt", "note": "a \\\"quoted\\\" \\u00e9"])
        try checkRoundTrip(try WeightStore(safetensors: bytes))
    }

    func testRoundTripFromFile() throws {
        let path = try temporaryFile(safetensorsFile(tensors, metadata: ["format": "pt"]))
        try checkRoundTrip(try WeightStore(safetensorsAt: path))
    }

    func testFileErrors() throws {
        let missing = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftrcnn-no-such.safetensors").path
        XCTAssertThrowsError(try WeightStore(safetensorsAt: missing)) {
            XCTAssertEqual(
                $0 as? SwiftRCNNError,
                .invalidValue("weights: cannot open \(missing): No such file or directory"))
        }
        let directory = FileManager.default.temporaryDirectory.path
        XCTAssertThrowsError(try WeightStore(safetensorsAt: directory)) {
            XCTAssertEqual($0 as? SwiftRCNNError, .invalidValue("weights: \(directory): not a regular file"))
        }
        // Errors about the content name the file.
        let short = try temporaryFile([1, 2, 3])
        XCTAssertThrowsError(try WeightStore(safetensorsAt: short)) {
            XCTAssertEqual(
                $0 as? SwiftRCNNError,
                .invalidValue("weights: \(short): 3 bytes, too short for the 8-byte header length"))
        }
    }

    /// Headers the format allows that a strict reader might trip on.
    func testLenientWhereTheFormatIs() throws {
        // Escapes and non-ASCII names, an unknown key in an entry, any JSON in __metadata__, two tensors over the
        // same bytes, whitespace everywhere.
        let header = """
            { "__metadata__" : {"a": [1, -2.5e3, true, false, null, {"b": []}], "c": "\\ud83d\\ude00"},
              "caf\\u00e9\\t\\"x\\"" : { "shape" : [ 2 ] , "extra": {"k": [0.5]}, "dtype" : "F32",
                                           "data_offsets" : [ 0 , 8 ] },
              "wé😀": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]},
              "tail": {"dtype": "F32", "shape": [], "data_offsets": [4, 8]} }\t\r\n
            """
        let data = RawTensor.f32([2], [7, 8]).bytes
        var store = try WeightStore(safetensors: safetensorsFile(header: header, data: data))
        XCTAssertEqual(store.take("café\t\"x\"", shape: [2]), [7, 8])
        XCTAssertEqual(store.take("wé😀", shape: [1, 2]), [7, 8])
        XCTAssertEqual(store.take("tail", shape: []), [8])
        XCTAssertNoThrow(try store.finish())
        // No tensors at all; bytes after the last tensor.
        XCTAssertEqual(try WeightStore(safetensors: safetensorsFile(header: "{}      ", data: [1, 2, 3])).names, [])
    }

    func testMalformedInputs() {
        func entry(_ dtype: String = "\"F32\"", _ shape: String = "[1]", _ offsets: String = "[0, 4]") -> String {
            "{\"a\": {\"dtype\": \(dtype), \"shape\": \(shape), \"data_offsets\": \(offsets)}}"
        }
        let inner = "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}"
        let four: [UInt8] = [0, 0, 128, 63]
        let long = String(repeating: "n", count: 300)
        let cases: [(String, [UInt8], String)] = [
            ("empty input", [], "0 bytes, too short for the 8-byte header length"),
            ("short input", [1, 2, 3, 4, 5, 6, 7], "7 bytes, too short"),
            (
                "huge header", safetensorsFile(header: "{}", length: 100_000_001),
                "header length 100000001 exceeds the limit of 100000000 bytes"
            ),
            (
                "huge u64 header", safetensorsFile(header: "{}", length: .max),
                "header length 18446744073709551615 exceeds"
            ),
            (
                "header past the end", safetensorsFile(header: "{}", length: 3),
                "header length 3 runs past the end (10 bytes in all)"
            ),
            ("empty header", safetensorsFile(header: ""), "the header is not a JSON object"),
            ("array header", safetensorsFile(header: "[1]"), "the header is not a JSON object"),
            ("truncated JSON", safetensorsFile(header: "{\"a\""), "not valid JSON: expected ':' at byte 4"),
            (
                "truncated metadata", safetensorsFile(header: "{\"__metadata__\": {\"x\": 1"),
                "not valid JSON: expected ',' or '}' at byte 24"
            ),
            (
                "trailing comma", safetensorsFile(header: "{\"__metadata__\": {},}"),
                "not valid JSON: expected a string key at byte 20"
            ),
            ("unquoted key", safetensorsFile(header: "{a: 1}"), "not valid JSON: expected a string key at byte 1"),
            ("trailing bytes", safetensorsFile(header: "{} {}"), "not valid JSON: expected the end of the header"),
            ("unclosed string", safetensorsFile(header: "{\"abc"), "the string at byte 1 is not closed"),
            ("bad escape", safetensorsFile(header: "{\"a\\q\": 1}"), "expected an escape"),
            ("lone surrogate", safetensorsFile(header: "{\"\\udc00\": 1}"), "expected a high surrogate"),
            ("control character", safetensorsFile(header: "{\"a\nb\": 1}"), "instead of a control character"),
            (
                "invalid UTF-8", safetensorsFile(header: "{\"\u{1}\": 1}").map { $0 == 1 ? 0xff : $0 },
                "the header is not valid UTF-8 (in the string at byte 1)"
            ),
            (
                "deep metadata", safetensorsFile(header: "{\"__metadata__\": " + String(repeating: "[", count: 100)),
                "the header nests deeper than 64 levels"
            ),
            ("bad literal", safetensorsFile(header: "{\"__metadata__\": nul}"), "expected null"),
            (
                "entry not an object", safetensorsFile(header: "{\"a\": [1]}"),
                "tensor 'a': expected an object with dtype, shape and data_offsets"
            ),
            (
                "missing keys", safetensorsFile(header: "{\"a\": {\"shape\": [1]}}"),
                "tensor 'a': missing dtype, data_offsets"
            ),
            (
                "duplicate tensor", safetensorsFile(header: "{\"a\": \(inner), \"a\": \(inner)}", data: four),
                "tensor 'a' appears twice"
            ),
            (
                "duplicate key", safetensorsFile(header: "{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\"}}"),
                "tensor 'a': dtype appears twice"
            ),
            ("dtype not a string", safetensorsFile(header: entry("4")), "tensor 'a': dtype must be a string"),
            (
                "unsupported dtype", safetensorsFile(header: entry("\"U8\"")),
                "tensor 'a': unsupported dtype 'U8' (expected F32, F64, F16 or BF16, or I64/I32 for a scalar)"
            ),
            (
                "integer array", safetensorsFile(header: entry("\"I64\"", "[1]", "[0, 8]"), data: four + four),
                "tensor 'a': dtype I64 is accepted for scalars only (like num_batches_tracked), got shape [1]"
            ),
            (
                "shape not an array", safetensorsFile(header: entry("\"F32\"", "\"1\"")),
                "tensor 'a': shape must be an array of integers"
            ),
            (
                "shape of strings", safetensorsFile(header: entry("\"F32\"", "[\"1\"]")),
                "tensor 'a': shape must be an array of integers"
            ),
            (
                "negative dimension", safetensorsFile(header: entry("\"F32\"", "[1, -4]")),
                "tensor 'a': shape[1] is negative (-4)"
            ),
            (
                "fractional dimension", safetensorsFile(header: entry("\"F32\"", "[1.5]")),
                "tensor 'a': shape[0] is not an integer (1.5)"
            ),
            (
                "exponent dimension", safetensorsFile(header: entry("\"F32\"", "[1e0]")),
                "tensor 'a': shape[0] is not an integer (1e0)"
            ),
            (
                "huge dimension", safetensorsFile(header: entry("\"F32\"", "[99999999999999999999]")),
                "tensor 'a': shape[0] is too large (99999999999999999999)"
            ),
            (
                "overflowing shape", safetensorsFile(header: entry("\"F32\"", "[4294967296, 4294967296, 4294967296]")),
                "tensor 'a': shape [4294967296, 4294967296, 4294967296] has too many elements"
            ),
            (
                "huge shape", safetensorsFile(header: entry("\"F32\"", "[1048576, 1048576, 1048576]")),
                "has too many elements"
            ),
            (
                "too many dimensions",
                safetensorsFile(
                    header: entry(
                        "\"F32\"",
                        "["
                            + Array(repeating: "1", count: 33)
                            .joined(separator: ",") + "]")),
                "tensor 'a': shape has more than 32 dimensions"
            ),
            (
                "one offset", safetensorsFile(header: entry("\"F32\"", "[1]", "[4]"), data: four),
                "tensor 'a': data_offsets must be two integers, got 1"
            ),
            (
                "three offsets", safetensorsFile(header: entry("\"F32\"", "[1]", "[0, 4, 4]"), data: four),
                "tensor 'a': data_offsets must be two integers, got more"
            ),
            (
                "offsets not an array", safetensorsFile(header: entry("\"F32\"", "[1]", "{}"), data: four),
                "tensor 'a': data_offsets must be two integers"
            ),
            (
                "negative offset", safetensorsFile(header: entry("\"F32\"", "[1]", "[-4, 0]"), data: four),
                "tensor 'a': data_offsets[0] is negative (-4)"
            ),
            (
                "begin after end", safetensorsFile(header: entry("\"F32\"", "[1]", "[4, 0]"), data: four),
                "tensor 'a': data_offsets [4, 0] begin after they end"
            ),
            (
                "past the data", safetensorsFile(header: entry("\"F32\"", "[1]", "[4, 8]"), data: four),
                "tensor 'a': data_offsets [4, 8] reach beyond the data section (4 bytes)"
            ),
            (
                "huge offset",
                safetensorsFile(header: entry("\"F32\"", "[1]", "[0, 18446744073709551615]"), data: four),
                "tensor 'a': data_offsets[1] is too large"
            ),
            (
                "wrong byte count", safetensorsFile(header: entry("\"F32\"", "[2]", "[0, 4]"), data: four),
                "tensor 'a': data_offsets [0, 4] hold 4 bytes, but shape [2] of F32 needs 8"
            ),
            (
                "wrong byte count F16", safetensorsFile(header: entry("\"F16\"", "[1]", "[0, 4]"), data: four),
                "hold 4 bytes, but shape [1] of F16 needs 2"
            ),
            (
                "long name", safetensorsFile(header: "{\"\(long)\": 1}"),
                "tensor '\(String(repeating: "n", count: 100))...': expected an object"
            ),
        ]
        for (label, bytes, fragment) in cases {
            XCTAssertThrowsError(try WeightStore(safetensors: bytes), label) { error in
                guard case SwiftRCNNError.invalidValue(let message) = error else {
                    return XCTFail("\(label): \(error)")
                }
                XCTAssertTrue(message.hasPrefix("weights: "), "\(label): \(message)")
                XCTAssertTrue(message.contains(fragment), "\(label): \(message) lacks \(fragment)")
                XCTAssertLessThan(message.utf8.count, 300, label)
            }
        }
    }

    /// Every truncation of a file fails, and every single-byte change either still reads or fails with a message;
    /// none crashes.
    func testDamagedFiles() {
        let bytes = safetensorsFile(tensors, metadata: ["format": "pt"])
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try WeightStore(safetensors: Array(bytes[..<n])), "\(n) bytes")
        }
        var state: UInt64 = 1  // Knuth's MMIX LCG: reproducible damage
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        for _ in 0..<2000 {
            var damaged = bytes
            damaged[next() % bytes.count] = UInt8(truncatingIfNeeded: next())
            do {
                _ = try WeightStore(safetensors: damaged)
            } catch {
                guard case SwiftRCNNError.invalidValue(let message) = error, message.hasPrefix("weights: ") else {
                    return XCTFail("\(error)")
                }
            }
        }
    }

    /// The hand-checked ResNet-50-FPN weights of the backbone tests (whose features DetectionBackboneTests checks),
    /// written to a file in several dtypes with the num_batches_tracked counters torchvision saves, read back exactly
    /// and build a model.
    func testDetectionModelFromFile() throws {
        func half(_ v: Float) -> UInt16 {  // exact float -> half, for 0 and normal halves
            if v == 0 { return 0 }
            let b = v.bitPattern, exponent = Int(b >> 23 & 0xff) - 127 + 15
            precondition(b & 0x1fff == 0 && (1..<31).contains(exponent))
            return UInt16(b >> 16 & 0x8000) | UInt16(exponent) << 10 | UInt16(b >> 13 & 0x3ff)
        }
        let weights = handCheckedBackboneWeights()
        var tensors = [(String, RawTensor)]()
        for (name, e) in weights.sorted(by: { $0.key < $1.key }) {
            if name.hasPrefix("backbone.fpn.inner_blocks.") {
                tensors.append((name, .f16(e.shape, bits: e.values.map(half))))
            } else if name.hasPrefix("backbone.fpn.layer_blocks.") {
                tensors.append((name, .bf16(e.shape, e.values)))
            } else if name.hasPrefix("rpn.") {
                tensors.append((name, .f64(e.shape, e.values.map(Double.init))))
            } else {
                tensors.append((name, .f32(e.shape, e.values)))
            }
            if name.hasSuffix(".running_var") {
                tensors.append((name.replacingOccurrences(of: "running_var", with: "num_batches_tracked"), .i64(0)))
            }
        }
        let path = try temporaryFile(safetensorsFile(tensors, metadata: ["format": "pt"]))
        var store = try WeightStore(safetensorsAt: path)
        for (name, e) in weights {
            XCTAssertTrue(store.take(name, shape: e.shape) == e.values, name)
        }
        XCTAssertNoThrow(try store.finish())

        var config = DetectionModel.Config()
        config.minSize = 32
        config.maxSize = 64
        XCTAssertNoThrow(try DetectionModel(config: config, safetensorsAt: path))
        // The config is checked before the file is opened.
        config.numClasses = 0
        XCTAssertThrowsError(try DetectionModel(config: config, safetensorsAt: "/nonexistent.safetensors")) {
            XCTAssertTrue("\($0)".hasPrefix("num_classes"), "\($0)")
        }
    }
}
