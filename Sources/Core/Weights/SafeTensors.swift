#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension WeightStore {
    /// Reads a `.safetensors` file (what `swiftrcnn convert model.pth model.safetensors` writes) into a store.
    ///
    /// Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to its `dtype`,
    /// `shape` and `data_offsets` (begin, end; relative to the data section that follows the header) plus an optional
    /// `__metadata__` entry (ignored), then the little-endian data. F32, F64, F16 and BF16 tensors become `Float`;
    /// I64 and I32 are accepted for scalars only (BatchNorm's `num_batches_tracked`, which the model ignores).
    ///
    /// The file is untrusted: every length, shape and offset is checked before anything is read or allocated beyond
    /// the file's own size, and any problem throws `SwiftRCNNError.invalidValue("weights: <path>: ...")` naming it.
    /// The header is read first and validated whole, then each tensor's bytes are read and converted in turn, so
    /// at most one tensor's raw bytes are held beside the converted values. Nothing is shared between calls. Foundation
    /// is not used, to keep it out of the shared library (which links the Swift runtime statically).
    public init(safetensorsAt path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensors.systemError("weights: cannot open \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SafeTensors.systemError("weights: cannot read \(path)") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SwiftRCNNError.invalidValue("weights: \(path): not a regular file")
        }
        self.init(
            try SafeTensors.load(
                SafeTensors.FileSource(fd: fd, size: Int(info.st_size), path: path),
                prefix: "weights: \(path): "))
    }

    /// Reads the bytes of a `.safetensors` file; see `init(safetensorsAt:)`. Errors read "weights: ...".
    public init(safetensors bytes: [UInt8]) throws {
        self.init(try SafeTensors.load(SafeTensors.MemorySource(bytes: bytes), prefix: "weights: "))
    }
}

/// The `.safetensors` reader behind `WeightStore.init(safetensorsAt:)`: a validating parser of the header's JSON
/// (only the grammar, no generic JSON tree: tensors are decoded straight into their descriptions) and the dtype
/// conversions.
enum SafeTensors {
    /// The header length safetensors itself accepts at most.
    static let maxHeaderBytes = 100_000_000
    /// Most dimensions a tensor may have (NumPy's limit); it bounds what one shape can make the parser allocate.
    static let maxRank = 32
    /// How deeply `__metadata__` (or an ignored key's value) may nest, so that skipping it cannot exhaust the stack.
    static let maxDepth = 64

    enum DType: String {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64", i32 = "I32"

        var size: Int {
            switch self {
            case .f64, .i64: return 8
            case .f32, .i32: return 4
            case .f16, .bf16: return 2
            }
        }

        var isInteger: Bool { self == .i64 || self == .i32 }
    }

    /// One validated header entry: `count` elements of `dtype` in `begin ..< end` of the data section.
    struct Tensor {
        let name: String
        let dtype: DType
        let shape: [Int]
        let count: Int
        let begin: Int, end: Int
    }

    /// Where the bytes come from. Callers only ask for ranges within `0 ..< size`.
    protocol Source {
        var size: Int { get }
        func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    }

    struct MemorySource: Source {
        let bytes: [UInt8]
        var size: Int { bytes.count }
        func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
            try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
        }
    }

    /// An open file, read with `pread` into a temporary buffer per request.
    struct FileSource: Source {
        let fd: Int32
        let size: Int
        let path: String

        func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(count, 1), alignment: 16)
            defer { buffer.deallocate() }
            var done = 0
            while done < count {
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafeTensors.systemError("weights: cannot read \(path)")
                }
                guard n > 0 else {
                    throw SwiftRCNNError.invalidValue("weights: \(path): the file ended early (it changed while read)")
                }
                done += n
            }
            return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// `message` and the reason `errno` gives (read before `message` is built, which may allocate).
    static func systemError(_ message: @autoclosure () -> String) -> SwiftRCNNError {
        let code = errno
        return .invalidValue(message() + ": " + String(cString: strerror(code)))
    }

    /// `name` quoted, cut to 100 bytes: names and dtypes come from the file and may be of any length.
    static func quoted(_ name: String) -> String {
        name.utf8.count <= 100 ? "'\(name)'" : "'\(String(decoding: name.utf8.prefix(100), as: UTF8.self))...'"
    }

    /// The tensors of `source` by name; errors start with `prefix`.
    static func load(_ source: some Source, prefix: String) throws -> [String: WeightStore.Entry] {
        guard source.size >= 8 else {
            throw SwiftRCNNError.invalidValue(prefix + "\(source.size) bytes, too short for the 8-byte header length")
        }
        let length = try source.withBytes(at: 0, count: 8) { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= maxHeaderBytes else {
            throw SwiftRCNNError.invalidValue(
                prefix + "header length \(length) exceeds the limit of "
                    + "\(maxHeaderBytes) bytes")
        }
        guard length <= source.size - 8 else {
            throw SwiftRCNNError.invalidValue(
                prefix + "header length \(length) runs past the end "
                    + "(\(source.size) bytes in all)")
        }
        let dataStart = 8 + Int(length), dataSize = source.size - dataStart
        let tensors = try source.withBytes(at: 8, count: Int(length)) { header in
            var parser = HeaderParser(bytes: header, dataSize: dataSize, prefix: prefix)
            return try parser.parse()
        }
        var entries = [String: WeightStore.Entry](minimumCapacity: tensors.count)
        for t in tensors {
            let values = try source.withBytes(at: dataStart + t.begin, count: t.end - t.begin) {
                convert($0, t.dtype, count: t.count)
            }
            entries[t.name] = WeightStore.Entry(shape: t.shape, values: values)
        }
        return entries
    }

    /// `count` little-endian values of `dtype` in `raw` (exactly `count * dtype.size` bytes) as `Float`s.
    static func convert(_ raw: UnsafeRawBufferPointer, _ dtype: DType, count: Int) -> [Float] {
        func map<T: FixedWidthInteger>(_: T.Type, _ transform: (T) -> Float) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { out, initialised in
                for k in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: k * MemoryLayout<T>.size, as: T.self)
                    out[k] = transform(T(littleEndian: bits))
                }
                initialised = count
            }
        }
        switch dtype {
        case .f32:
            #if _endian(little)
                return [Float](unsafeUninitializedCapacity: count) { out, initialised in
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                    initialised = count
                }
            #else
                return map(UInt32.self) { Float(bitPattern: $0) }
            #endif
        case .f64: return map(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .f16: return map(UInt16.self, float(half:))
        case .bf16: return map(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .i64: return map(Int64.self) { Float($0) }
        case .i32: return map(Int32.self) { Float($0) }
        }
    }

    /// IEEE binary16 bits as a Float (exact: every half is a float).
    static func float(half h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1f, mantissa = UInt32(h & 0x3ff)
        if exponent == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13) }
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }

    /// Parses the header: a JSON object of tensor entries and `__metadata__`, checked against `dataSize`.
    /// Positions in messages count from the header's first byte.
    struct HeaderParser {
        let bytes: UnsafeRawBufferPointer
        let dataSize: Int
        let prefix: String
        var i = 0

        func fail(_ message: String) -> SwiftRCNNError { .invalidValue(prefix + message) }

        func syntax(_ expected: String) -> SwiftRCNNError {
            fail("the header is not valid JSON: expected \(expected) at byte \(i)")
        }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let c = peek, c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            guard peek == c else { throw syntax("'\(Character(Unicode.Scalar(c)))'") }
            i += 1
        }

        mutating func parse() throws -> [Tensor] {
            skipSpace()
            guard peek == UInt8(ascii: "{") else { throw fail("the header is not a JSON object") }
            var tensors = [Tensor](), names = Set<String>()
            try parseObject { p, name in
                guard names.insert(name).inserted else { throw p.fail("tensor \(quoted(name)) appears twice") }
                if name == "__metadata__" {
                    try p.skipValue(depth: 1)
                } else {
                    tensors.append(try p.parseTensor(name))
                }
            }
            skipSpace()
            guard i == bytes.count else { throw syntax("the end of the header after its object") }
            return tensors
        }

        /// `{ "key": value, ... }` with `body` parsing each value (at its first byte).
        mutating func parseObject(_ body: (inout HeaderParser, String) throws -> Void) throws {
            try expect(UInt8(ascii: "{"))
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw syntax("a string key") }
                let key = try parseString()
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                try body(&self, key)
                skipSpace()
                if peek == UInt8(ascii: "}") { i += 1; return }
                guard peek == UInt8(ascii: ",") else { throw syntax("',' or '}'") }
                i += 1
            }
        }

        mutating func parseTensor(_ name: String) throws -> Tensor {
            let q = quoted(name)
            guard peek == UInt8(ascii: "{") else {
                throw fail("tensor \(q): expected an object with dtype, shape and data_offsets")
            }
            var dtype: String?, shape: [Int]?, offsets: [Int]?
            try parseObject { p, key in
                switch key {
                case "dtype":
                    guard dtype == nil else { throw p.fail("tensor \(q): dtype appears twice") }
                    guard p.peek == UInt8(ascii: "\"") else { throw p.fail("tensor \(q): dtype must be a string") }
                    dtype = try p.parseString()
                case "shape":
                    guard shape == nil else { throw p.fail("tensor \(q): shape appears twice") }
                    shape = try p.parseIntegers("tensor \(q): shape", atMost: maxRank)
                case "data_offsets":
                    guard offsets == nil else { throw p.fail("tensor \(q): data_offsets appears twice") }
                    offsets = try p.parseIntegers("tensor \(q): data_offsets", atMost: 2)
                default:
                    try p.skipValue(depth: 2)
                }
            }
            let absent = [("dtype", dtype == nil), ("shape", shape == nil), ("data_offsets", offsets == nil)]
                .filter(\.1).map(\.0)
            guard let dtype, let shape, let offsets else {
                throw fail("tensor \(q): missing " + absent.joined(separator: ", "))
            }
            guard let type = DType(rawValue: dtype) else {
                throw fail(
                    "tensor \(q): unsupported dtype \(quoted(dtype)) (expected F32, F64, F16 or BF16, "
                        + "or I64/I32 for a scalar)")
            }
            guard !type.isInteger || shape.isEmpty else {
                throw fail(
                    "tensor \(q): dtype \(dtype) is accepted for scalars only (like num_batches_tracked), "
                        + "got shape \(shape)")
            }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow && product <= maxElements else {
                    throw fail("tensor \(q): shape \(shape) has too many elements")
                }
                count = product
            }
            guard offsets.count == 2 else {
                throw fail("tensor \(q): data_offsets must be two integers, got \(offsets.count)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end else { throw fail("tensor \(q): data_offsets [\(begin), \(end)] begin after they end") }
            guard end <= dataSize else {
                throw fail(
                    "tensor \(q): data_offsets [\(begin), \(end)] reach beyond the data section "
                        + "(\(dataSize) bytes)")
            }
            let bytes = count * type.size  // count <= maxElements (2^40), so no overflow
            guard end - begin == bytes else {
                throw fail(
                    "tensor \(q): data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but shape "
                        + "\(shape) of \(dtype) needs \(bytes)")
            }
            return Tensor(name: name, dtype: type, shape: shape, count: count, begin: begin, end: end)
        }

        /// An array of at most `limit` non-negative integers (`what` names it in errors).
        mutating func parseIntegers(_ what: String, atMost limit: Int) throws -> [Int] {
            let kind = limit == 2 ? "two integers" : "an array of integers"
            guard peek == UInt8(ascii: "[") else { throw fail("\(what) must be \(kind)") }
            i += 1
            skipSpace()
            var values = [Int]()
            if peek == UInt8(ascii: "]") { i += 1; return values }
            while true {
                skipSpace()
                guard let c = peek, c == UInt8(ascii: "-") || (0x30...0x39).contains(c) else {
                    throw fail("\(what) must be \(kind)")
                }
                guard values.count < limit else {
                    throw fail(
                        limit == 2
                            ? "\(what) must be two integers, got more"
                            : "\(what) has more than \(limit) dimensions")
                }
                let start = i
                let (value, integral) = try parseNumber()
                let literal = String(decoding: bytes[start..<Swift.min(i, start + 40)], as: UTF8.self)
                guard integral else { throw fail("\(what)[\(values.count)] is not an integer (\(literal))") }
                guard bytes[start] != UInt8(ascii: "-") else {
                    throw fail("\(what)[\(values.count)] is negative (\(literal))")
                }
                guard let value else { throw fail("\(what)[\(values.count)] is too large (\(literal))") }
                values.append(value)
                skipSpace()
                if peek == UInt8(ascii: "]") { i += 1; return values }
                guard peek == UInt8(ascii: ",") else { throw syntax("',' or ']'") }
                i += 1
            }
        }

        /// A JSON number: the magnitude of its integer part when it fits an Int, and whether it has no fraction or
        /// exponent.
        mutating func parseNumber() throws -> (magnitude: Int?, integral: Bool) {
            if peek == UInt8(ascii: "-") { i += 1 }
            func digit(_ c: UInt8?) -> Int? { c.flatMap { (0x30...0x39).contains($0) ? Int($0 - 0x30) : nil } }
            guard let first = digit(peek) else { throw syntax("a digit") }
            i += 1
            var magnitude: Int? = first
            if first != 0 {
                while let d = digit(peek) {
                    i += 1
                    if let m = magnitude {
                        let (p, o1) = m.multipliedReportingOverflow(by: 10)
                        let (s, o2) = p.addingReportingOverflow(d)
                        magnitude = o1 || o2 ? nil : s
                    }
                }
            }
            var integral = true
            if peek == UInt8(ascii: ".") {
                i += 1
                integral = false
                guard digit(peek) != nil else { throw syntax("a digit") }
                while digit(peek) != nil { i += 1 }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                integral = false
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard digit(peek) != nil else { throw syntax("a digit") }
                while digit(peek) != nil { i += 1 }
            }
            return (magnitude, integral)
        }

        /// A JSON string (at its opening quote), unescaped; it must be valid UTF-8.
        mutating func parseString() throws -> String {
            let start = i
            try expect(UInt8(ascii: "\""))
            var utf8 = [UInt8]()
            while true {
                guard let c = peek else { throw syntax("'\"' (the string at byte \(start) is not closed)") }
                i += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: utf8, as: UTF8.self) else {
                        throw fail("the header is not valid UTF-8 (in the string at byte \(start))")
                    }
                    return s
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw syntax("an escape") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0c)
                    case UInt8(ascii: "n"): utf8.append(0x0a)
                    case UInt8(ascii: "r"): utf8.append(0x0d)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xd800..<0xdc00).contains(scalar) {
                            guard peek == UInt8(ascii: "\\") else { throw syntax("a low surrogate escape") }
                            i += 1
                            try expect(UInt8(ascii: "u"))
                            let low = try parseHex4()
                            guard (0xdc00..<0xe000).contains(low) else { throw syntax("a low surrogate") }
                            scalar = 0x10000 + (scalar - 0xd800) << 10 + (low - 0xdc00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw syntax("a high surrogate before it") }
                        UTF8.encode(u) { utf8.append($0) }
                    default:
                        i -= 1
                        throw syntax("an escape (one of \" \\ / b f n r t u)")
                    }
                default:
                    guard c >= 0x20 else {
                        i -= 1
                        throw syntax("an escape instead of a control character")
                    }
                    utf8.append(c)
                }
            }
        }

        mutating func parseHex4() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let c = peek else { throw syntax("4 hex digits") }
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw syntax("4 hex digits")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        /// Checks and passes over any JSON value; `depth` counts the containers around it.
        mutating func skipValue(depth: Int) throws {
            guard depth <= maxDepth else { throw fail("the header nests deeper than \(maxDepth) levels") }
            guard let c = peek else { throw syntax("a value") }
            switch c {
            case UInt8(ascii: "{"):
                try parseObject { p, _ in try p.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["):
                i += 1
                skipSpace()
                if peek == UInt8(ascii: "]") { i += 1; return }
                while true {
                    skipSpace()
                    try skipValue(depth: depth + 1)
                    skipSpace()
                    if peek == UInt8(ascii: "]") { i += 1; return }
                    guard peek == UInt8(ascii: ",") else { throw syntax("',' or ']'") }
                    i += 1
                }
            case UInt8(ascii: "\""):
                _ = try parseString()
            case UInt8(ascii: "-"), 0x30...0x39:
                _ = try parseNumber()
            default:
                for word in ["true", "false", "null"] where word.utf8.first == c {
                    let end = i + word.utf8.count
                    guard end <= bytes.count && bytes[i..<end].elementsEqual(word.utf8) else { throw syntax(word) }
                    i += word.utf8.count
                    return
                }
                throw syntax("a value")
            }
        }
    }
}
