import CSwiftRCNN
import SwiftRCNN
import XCTest

/// srcnn_initial_state, called through swiftrcnn.h.
final class InitABITests: XCTestCase {
    /// The (name, shape, values) of every array of a result, which must all be float32.
    func readFloat32(_ result: OpaquePointer?) -> [(String, [Int], [Float])] {
        let err = ErrBuf()
        return (0..<CSwiftRCNN.srcnn_arrays_count(result)).map { i in
            var name: UnsafePointer<CChar>? = nil
            var info = srcnn_array()
            assertStatus(CSwiftRCNN.srcnn_arrays_info(result, i, &name, &info, &err.bytes), SRCNN_OK, err)
            XCTAssertEqual(info.dtype, Int32(SRCNN_FLOAT32.rawValue))
            let shape = withUnsafeBytes(of: info.shape) { raw in
                (0..<Int(info.ndim)).map { Int(raw.load(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
            let out = Buf<Float>(zeros: shape, .nan)
            out.with { assertStatus(CSwiftRCNN.srcnn_arrays_read(result, i, $0, &err.bytes), SRCNN_OK, err) }
            return (String(cString: name!), shape, out.values)
        }
    }

    func testPredictorsOnly() throws {
        let err = ErrBuf()
        var result: OpaquePointer? = nil
        let kind = Int32(SRCNN_MASK_RCNN.rawValue)
        assertStatus(CSwiftRCNN.srcnn_initial_state(kind, 5, 11, 1, nil, &result, &err.bytes), SRCNN_OK, err)
        let arrays = readFloat32(result)
        CSwiftRCNN.srcnn_arrays_free(result)
        XCTAssertEqual(
            arrays.map(\.0),
            [
                "roi_heads.box_predictor.bbox_pred.bias", "roi_heads.box_predictor.bbox_pred.weight",
                "roi_heads.box_predictor.cls_score.bias", "roi_heads.box_predictor.cls_score.weight",
                "roi_heads.mask_predictor.mask_fcn_logits.bias", "roi_heads.mask_predictor.mask_fcn_logits.weight",
            ])
        XCTAssertEqual(arrays.map(\.1), [[20], [20, 1024], [5], [5, 1024], [5], [5, 256, 1, 1]])
        // The Swift API's values for the same seed.
        let state = try TorchvisionInit.state(kind: .maskRCNN, numClasses: 5, seed: 11) { $0.contains("predictor") }
        for (name, _, values) in arrays { XCTAssertEqual(values, state[name]!.values, name) }
    }

    func testArgumentsChecked() {
        let err = ErrBuf()
        var result: OpaquePointer? = nil
        assertStatus(
            CSwiftRCNN.srcnn_initial_state(2, 91, 0, 1, nil, &result, &err.bytes), SRCNN_VALUE_ERROR, err,
            mentions: "kind")
        for k: Int64 in [0, -5, (1 << 20) + 1, .max] {
            assertStatus(
                CSwiftRCNN.srcnn_initial_state(0, k, 0, 1, nil, &result, &err.bytes), SRCNN_VALUE_ERROR, err,
                mentions: "num_classes")
        }
        assertStatus(
            CSwiftRCNN.srcnn_initial_state(0, 91, 0, 1, nil, nil, &err.bytes), SRCNN_VALUE_ERROR, err, mentions: "out")
        XCTAssertEqual(
            CSwiftRCNN.srcnn_initial_state(2, 91, 0, 1, nil, &result, nil), Int32(SRCNN_VALUE_ERROR.rawValue))
    }
}
