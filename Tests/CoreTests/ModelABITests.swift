import CSwiftRCNN
import SwiftRCNN
import XCTest

/// The detection-model exports, called through swiftrcnn.h.
final class ModelABITests: XCTestCase {
    func defaultConfig() -> srcnn_model_config {
        var c = srcnn_model_config()
        c.kind = Int32(SRCNN_FASTER_RCNN.rawValue)
        c.num_classes = 91
        c.min_size = 32
        c.max_size = 64
        c.image_mean = (0.485, 0.456, 0.406)
        c.image_std = (0.229, 0.224, 0.225)
        c.rpn_pre_nms_top_n_test = 1000
        c.rpn_post_nms_top_n_test = 1000
        c.rpn_nms_thresh = 0.7
        c.box_score_thresh = 0.05
        c.box_nms_thresh = 0.5
        c.box_detections_per_img = 100
        return c
    }

    /// Calls srcnn_model_create with `entries` as the state dict (float32 arrays, or float64 where listed).
    func create(
        _ config: srcnn_model_config, _ entries: [(String, WeightStore.Entry)], float64: Set<String> = [],
        _ model: inout OpaquePointer?, _ err: ErrBuf
    ) -> Int32 {
        var buffers = [UnsafeMutableRawPointer]()
        defer { buffers.forEach { $0.deallocate() } }
        var arrays = [srcnn_array]()
        for (name, e) in entries {
            let wide = float64.contains(name)
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, e.values.count * (wide ? 8 : 4)), alignment: 8)
            buffers.append(p)
            if wide {
                p.bindMemory(to: Double.self, capacity: e.values.count).initialize(
                    from: e.values.map(Double.init),
                    count: e.values.count)
            } else {
                p.bindMemory(to: Float.self, capacity: e.values.count).initialize(from: e.values, count: e.values.count)
            }
            arrays.append(makeArray(p, e.shape, wide ? SRCNN_FLOAT64 : SRCNN_FLOAT32))
        }
        let names = entries.map { strdup($0.0) }
        defer { names.forEach { free($0) } }
        let cNames = names.map { UnsafePointer($0) }
        var config = config
        return CSwiftRCNN.srcnn_model_create(&config, cNames, arrays, Int64(arrays.count), &model, &err.bytes)
    }

    var handChecked: [(String, WeightStore.Entry)] { handCheckedBackboneWeights().sorted { $0.key < $1.key } }

    /// Reads every array of a result as (name, dtype, shape, values as Double).
    func readAll(_ result: OpaquePointer?) -> [(String, Int32, [Int], [Double])] {
        let err = ErrBuf()
        return (0..<CSwiftRCNN.srcnn_arrays_count(result)).map { i in
            var name: UnsafePointer<CChar>? = nil
            var info = srcnn_array()
            assertStatus(CSwiftRCNN.srcnn_arrays_info(result, i, &name, &info, &err.bytes), SRCNN_OK, err)
            let shape = withUnsafeBytes(of: info.shape) { raw in
                (0..<Int(info.ndim)).map { Int(raw.load(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
            XCTAssertNil(info.data)
            let values: [Double]
            if info.dtype == Int32(SRCNN_FLOAT32.rawValue) {
                let out = Buf<Float>(zeros: shape, -1)
                out.with { assertStatus(CSwiftRCNN.srcnn_arrays_read(result, i, $0, &err.bytes), SRCNN_OK, err) }
                values = out.values.map(Double.init)
            } else {
                let out = Buf<Int64>(zeros: shape, -1)
                out.with { assertStatus(CSwiftRCNN.srcnn_arrays_read(result, i, $0, &err.bytes), SRCNN_OK, err) }
                values = out.values.map(Double.init)
            }
            return (String(cString: name!), info.dtype, shape, values)
        }
    }

    func testCreateTransformFeaturesAndFree() {
        let err = ErrBuf()
        var model: OpaquePointer? = nil
        // num_batches_tracked counters and float64 weights are refused: the Python layer drops and casts them.
        var st = create(defaultConfig(), handChecked, float64: ["backbone.body.bn1.bias"], &model, err)
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "weights['backbone.body.bn1.bias']: expected dtype float32")
        st = create(defaultConfig(), handChecked, &model, err)
        assertStatus(st, SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_model_free(model) }

        let pixels = Buf<Float>((0..<(3 * 16 * 40)).map { Float($0 % 5) / 5 }, [3, 16, 40])
        var result: OpaquePointer? = nil
        st = pixels.with { image in CSwiftRCNN.srcnn_model_transform(model, image, 1, &result, &err.bytes) }
        assertStatus(st, SRCNN_OK, err)
        var arrays = readAll(result)
        CSwiftRCNN.srcnn_arrays_free(result)
        // 16 x 40 -> scale min(32 / 16, 64 / 40) = 1.6 -> 25 x 64, padded to 32 x 64.
        XCTAssertEqual(arrays.map(\.0), ["images", "image_sizes"])
        XCTAssertEqual(arrays[0].2, [1, 3, 32, 64])
        XCTAssertEqual(arrays[1].1, Int32(SRCNN_INT64.rawValue))
        XCTAssertEqual(arrays[1].2, [1, 2])
        XCTAssertEqual(arrays[1].3, [25, 64])
        XCTAssertEqual(arrays[0].3[25 * 64], 0)  // padding row

        st = pixels.with { image in CSwiftRCNN.srcnn_model_features(model, image, 1, &result, &err.bytes) }
        assertStatus(st, SRCNN_OK, err)
        arrays = readAll(result)
        CSwiftRCNN.srcnn_arrays_free(result)
        XCTAssertEqual(arrays.map(\.0), ["0", "1", "2", "3", "pool", "image_sizes"])
        XCTAssertEqual(
            arrays.map(\.2),
            [
                [1, 256, 8, 16], [1, 256, 4, 8], [1, 256, 2, 4], [1, 256, 1, 2],
                [1, 256, 1, 1], [1, 2],
            ])
        for (level, offset) in zip(arrays, handCheckedLevelOffsets) {
            let plane = level.3.count / 256
            XCTAssertEqual(level.3, (0..<level.3.count).map { Double(offset) + Double($0 / plane) })
        }
    }

    func testCreateRejects() {
        let err = ErrBuf()
        var model: OpaquePointer? = nil
        var config = defaultConfig()
        config.kind = 7
        assertStatus(create(config, [], &model, err), SRCNN_VALUE_ERROR, err, mentions: "kind")
        config = defaultConfig()
        config.max_size = 0
        assertStatus(create(config, [], &model, err), SRCNN_VALUE_ERROR, err, mentions: "max_size")
        config = defaultConfig()
        config.rpn_score_thresh = .nan
        assertStatus(create(config, [], &model, err), SRCNN_VALUE_ERROR, err, mentions: "rpn_score_thresh")
        let e = WeightStore.Entry(shape: [1], values: [0])
        assertStatus(
            create(defaultConfig(), [("a", e), ("a", e)], &model, err), SRCNN_VALUE_ERROR, err,
            mentions: "'a' appears twice")
        // A whole model (backbone 281 keys, heads 14) missing: counted, and the first few named, within the error buffer.
        assertStatus(
            create(defaultConfig(), [("extra", e)], &model, err), SRCNN_VALUE_ERROR, err,
            mentions: "weights: 1 unexpected, 295 missing. unexpected keys: extra. missing keys: "
                + "backbone.body.bn1.bias (expected shape [64]), ")
        XCTAssertTrue(err.message.hasSuffix(", ... (295 in all)"), err.message)
        var c = defaultConfig()
        let st = CSwiftRCNN.srcnn_model_create(&c, nil, nil, 1, &model, &err.bytes)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "NULL")
        XCTAssertNil(model)
        CSwiftRCNN.srcnn_model_free(nil)
        CSwiftRCNN.srcnn_arrays_free(nil)
        XCTAssertEqual(CSwiftRCNN.srcnn_arrays_count(nil), 0)
    }

    func testRunRejects() {
        let err = ErrBuf()
        var model: OpaquePointer? = nil
        assertStatus(create(defaultConfig(), handChecked, &model, err), SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_model_free(model) }
        var result: OpaquePointer? = nil
        func run(_ image: Buf<Float>, count: Int64 = 1) -> Int32 {
            image.with { CSwiftRCNN.srcnn_model_features(model, $0, count, &result, &err.bytes) }
        }
        assertStatus(
            run(Buf<Float>(zeros: [2, 8, 8], 0)), SRCNN_VALUE_ERROR, err,
            mentions: "images[0]: expected shape (3, H, W), got (2, 8, 8)")
        var nan = Buf<Float>(zeros: [3, 8, 8], 0)
        nan.values[70] = .nan
        assertStatus(run(nan), SRCNN_VALUE_ERROR, err, mentions: "images[0]: contains NaN at flat index 70")
        nan = Buf<Float>(zeros: [3, 8, 8], 0)
        assertStatus(run(nan, count: 0), SRCNN_VALUE_ERROR, err, mentions: "images: expected 1...")
        assertStatus(
            CSwiftRCNN.srcnn_model_features(nil, nil, 1, &result, &err.bytes), SRCNN_VALUE_ERROR, err,
            mentions: "model")
        let doubles = Buf<Double>(zeros: [3, 8, 8], 0)
        let st = doubles.with { CSwiftRCNN.srcnn_model_transform(model, $0, 1, &result, &err.bytes) }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "images[0]: expected dtype float32")

        assertStatus(run(Buf<Float>(zeros: [3, 8, 8], 0)), SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_arrays_free(result) }
        var name: UnsafePointer<CChar>? = nil
        var info = srcnn_array()
        assertStatus(
            CSwiftRCNN.srcnn_arrays_info(result, 6, &name, &info, &err.bytes), SRCNN_VALUE_ERROR, err,
            mentions: "index: expected 0...5, got 6")
        let wrong = Buf<Float>(zeros: [1, 256, 8, 9], 0)
        let st2 = wrong.with { CSwiftRCNN.srcnn_arrays_read(result, 0, $0, &err.bytes) }
        assertStatus(st2, SRCNN_VALUE_ERROR, err, mentions: "out: expected shape (1, 256, 8, 8)")
    }

    func testTakeMovesArraysOut() {
        let err = ErrBuf()
        var model: OpaquePointer? = nil
        assertStatus(create(defaultConfig(), handChecked, &model, err), SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_model_free(model) }
        let pixels = Buf<Float>((0..<(3 * 16 * 40)).map { Float($0 % 5) / 5 }, [3, 16, 40])
        var result: OpaquePointer? = nil
        assertStatus(
            pixels.with { CSwiftRCNN.srcnn_model_features(model, $0, 1, &result, &err.bytes) }, SRCNN_OK, err)
        let expected = readAll(result)
        CSwiftRCNN.srcnn_arrays_free(result)
        assertStatus(
            pixels.with { CSwiftRCNN.srcnn_model_features(model, $0, 1, &result, &err.bytes) }, SRCNN_OK, err)

        var info = srcnn_array()
        var owner: OpaquePointer? = nil
        assertStatus(CSwiftRCNN.srcnn_arrays_take(result, 0, &info, &owner, &err.bytes), SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_buffer_free(owner) }
        var again: OpaquePointer? = nil
        assertStatus(
            CSwiftRCNN.srcnn_arrays_take(result, 0, &info, &again, &err.bytes), SRCNN_VALUE_ERROR, err,
            mentions: "index: array 0 was already taken")
        XCTAssertNil(again)
        let out = Buf<Float>(zeros: [1, 256, 8, 16], 0)
        assertStatus(
            out.with { CSwiftRCNN.srcnn_arrays_read(result, 0, $0, &err.bytes) }, SRCNN_VALUE_ERROR, err,
            mentions: "index: array 0 was taken out")
        assertStatus(
            CSwiftRCNN.srcnn_arrays_take(result, 6, &info, &again, &err.bytes), SRCNN_VALUE_ERROR, err,
            mentions: "index: expected 0...5, got 6")
        // srcnn_arrays_info still describes the taken array.
        var name: UnsafePointer<CChar>? = nil
        var described = srcnn_array()
        assertStatus(CSwiftRCNN.srcnn_arrays_info(result, 0, &name, &described, &err.bytes), SRCNN_OK, err)
        XCTAssertEqual(described.ndim, 4)
        XCTAssertEqual(described.dtype, Int32(SRCNN_FLOAT32.rawValue))
        XCTAssertEqual(withUnsafeBytes(of: described.shape) { $0.load(fromByteOffset: 24, as: Int64.self) }, 16)
        var taken2: OpaquePointer? = nil
        var sizes = srcnn_array()
        assertStatus(CSwiftRCNN.srcnn_arrays_take(result, 5, &sizes, &taken2, &err.bytes), SRCNN_OK, err)
        defer { CSwiftRCNN.srcnn_buffer_free(taken2) }
        // The taken data outlives the result and holds the values a read would have given.
        CSwiftRCNN.srcnn_arrays_free(result)
        XCTAssertEqual(info.ndim, 4)
        XCTAssertEqual(info.dtype, Int32(SRCNN_FLOAT32.rawValue))
        let count = expected[0].3.count
        let level = UnsafeMutablePointer(OpaquePointer(info.data!)) as UnsafeMutablePointer<Float>
        XCTAssertEqual((0..<count).map { Double(level[$0]) }, expected[0].3)
        level[0] = 42  // writable
        XCTAssertEqual(level[0], 42)
        XCTAssertEqual(sizes.dtype, Int32(SRCNN_INT64.rawValue))
        let pair = UnsafePointer(OpaquePointer(sizes.data!)) as UnsafePointer<Int64>
        XCTAssertEqual([Double(pair[0]), Double(pair[1])], expected[5].3)
    }
}
