import CSwiftRCNN
import XCTest

/// The RoIAlign exports, called through swiftrcnn.h.
final class RoIAlignABITests: XCTestCase {
    /// A 1 x 1 x 4 x 4 map with value 4y + x.
    let ramp = Buf<Float>((0..<16).map(Float.init), [1, 1, 4, 4])

    func testRoIAlignForward() {
        let err = ErrBuf()
        let rois = Buf<Float>([0, 0, 0, 2, 2, 0, 0, 1, 1, 2], [2, 5])
        let out = Buf<Float>(zeros: [2, 1, 1, 1], .nan)
        let st = ramp.with { x in
            rois.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_roi_align(x, r, 1, 1, 1.0, 1, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        // Samples at (1, 1) and (1.5, 0.5).
        XCTAssertEqual(out.values, [5, 6.5])
    }

    func testRoIAlignBackward() {
        let err = ErrBuf()
        let rois = Buf<Double>([0, 0, 1, 1, 2], [1, 5])
        let grad = Buf<Double>([4], [1, 1, 1, 1])
        let gradInput = Buf<Double>(zeros: [1, 1, 4, 4], .nan)
        let st = grad.with { g in
            rois.with { r in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_roi_align_backward(g, r, 1.0, 1, 0, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        var expected = [Double](repeating: 0, count: 16)
        for i in [4, 5, 8, 9] { expected[i] = 1 }
        XCTAssertEqual(gradInput.values, expected)
    }

    func testMultiScaleRoIAlign() {
        let err = ErrBuf()
        // Maps of scale 1/4 and 1/8 (levels 2 and 3) for 16 x 16 images, canonical_scale 16 at canonical_level 3.
        let fine = Buf<Double>((0..<16).map(Double.init), [1, 1, 4, 4])
        let coarse = Buf<Double>([100, 200, 300, 400], [1, 1, 2, 2])
        let rois = Buf<Double>([0, 0, 0, 8, 8, 0, 0, 0, 16, 16], [2, 5])
        let shapes = Buf<Int64>([16, 16], [1, 2])
        let out = Buf<Double>(zeros: [2, 1, 1, 1], .nan)
        let st = fine.with { f in
            coarse.with { c in
                rois.with { r in
                    shapes.with { s in
                        out.with { o in
                            let features = [f.pointee, c.pointee]
                            return CSwiftRCNN.srcnn_multiscale_roi_align(
                                features, 2, r, s, 1, 1, 1, 16, 3, o, &err.bytes)
                        }
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        // sqrt(64) = 8: level floor(3 + log2(8 / 16)) = 2 -> the fine map, box [0, 2]^2, sample (1, 1) = 5.
        // sqrt(256) = 16: level 3 -> the coarse map, box [0, 2]^2 there, sample (1, 1) = 400 (bottom-right corner).
        XCTAssertEqual(out.values, [5, 400])
    }

    func testRoIValidation() {
        let err = ErrBuf()
        let out = Buf<Float>(zeros: [1, 1, 1, 1], 0)
        func run(_ roi: [Float], samplingRatio: Int64 = 1, scale: Double = 1, pooled: Int64 = 1) -> Int32 {
            let rois = Buf<Float>(roi, [1, 5])
            return ramp.with { x in
                rois.with { r in
                    out.with { o in
                        CSwiftRCNN.srcnn_roi_align(x, r, pooled, pooled, scale, samplingRatio, 0, o, &err.bytes)
                    }
                }
            }
        }
        assertStatus(run([1, 0, 0, 1, 1]), SRCNN_VALUE_ERROR, err, mentions: "batch index")
        assertStatus(run([0.5, 0, 0, 1, 1]), SRCNN_VALUE_ERROR, err, mentions: "batch index")
        assertStatus(run([0, 0, .nan, 1, 1]), SRCNN_VALUE_ERROR, err, mentions: "non-finite")
        assertStatus(run([0, 0, 0, .infinity, 1]), SRCNN_VALUE_ERROR, err, mentions: "non-finite")
        assertStatus(run([0, 0, 0, 1e30, 1e30], samplingRatio: -1), SRCNN_VALUE_ERROR, err, mentions: "sampling_ratio")
        assertStatus(run([0, 0, 0, 1, 1], samplingRatio: 1 << 40), SRCNN_VALUE_ERROR, err, mentions: "sampling_ratio")
        assertStatus(run([0, 0, 0, 1, 1], scale: 0), SRCNN_VALUE_ERROR, err, mentions: "spatial_scale")
        assertStatus(run([0, 0, 0, 1, 1], pooled: 0), SRCNN_VALUE_ERROR, err, mentions: "output_size")
        // The output must have the shape (K, C, PH, PW).
        assertStatus(run([0, 0, 0, 1, 1], pooled: 2), SRCNN_VALUE_ERROR, err, mentions: "output")
        // Bins per plane beyond any allocation: refused as too large even with no RoI.
        let none = Buf<Float>([], [0, 5]), empty = Buf<Float>([], [0, 1, 1 << 31, 1 << 31])
        let st = ramp.with { x in
            none.with { r in
                empty.with { o in
                    CSwiftRCNN.srcnn_roi_align(x, r, 1 << 31, 1 << 31, 1, 1, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_MEMORY_ERROR, err, mentions: "output_size")
        // Boxes of another float type than the input.
        let doubles = Buf<Double>([0, 0, 0, 1, 1], [1, 5])
        let st2 = ramp.with { x in
            doubles.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_roi_align(x, r, 1, 1, 1, 1, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st2, SRCNN_TYPE_ERROR, err, mentions: "boxes")
    }

    func testMultiScaleValidation() {
        let err = ErrBuf()
        let map = Buf<Double>(zeros: [1, 1, 4, 4], 0)
        let rois = Buf<Double>([0, 0, 0, 2, 2], [1, 5])
        let out = Buf<Double>(zeros: [1, 1, 1, 1], 0)
        func run(levels: Int64, shapes: [Int64], canonicalScale: Int64 = 224) -> Int32 {
            let s = Buf<Int64>(shapes, [shapes.count / 2, 2])
            return map.with { f in
                rois.with { r in
                    s.with { sp in
                        out.with { o in
                            let features = [srcnn_array](repeating: f.pointee, count: max(Int(levels), 1))
                            return CSwiftRCNN.srcnn_multiscale_roi_align(
                                features, levels, r, sp, 1, 1, 2, canonicalScale, 4, o,
                                &err.bytes)
                        }
                    }
                }
            }
        }
        assertStatus(run(levels: 0, shapes: [16, 16]), SRCNN_VALUE_ERROR, err, mentions: "features")
        assertStatus(run(levels: 17, shapes: [16, 16]), SRCNN_VALUE_ERROR, err, mentions: "features")
        assertStatus(run(levels: 2, shapes: []), SRCNN_VALUE_ERROR, err, mentions: "image_shapes")
        assertStatus(run(levels: 2, shapes: [16, -1]), SRCNN_VALUE_ERROR, err, mentions: "image_shapes")
        assertStatus(
            run(levels: 2, shapes: [16, 16], canonicalScale: 0), SRCNN_VALUE_ERROR, err,
            mentions: "canonical_scale")
        assertStatus(run(levels: 2, shapes: [16, 16]), SRCNN_OK, err)
    }
}
