import CSwiftRCNN
import XCTest

/// The position-sensitive RoI exports, ps_roi_align and ps_roi_pool (forward and backward), called through
/// swiftrcnn.h (Sources/Core/ABI/PSRoIABI.swift).
final class PSRoIABITests: XCTestCase {
    /// 1 x 4 x 2 x 2 map; channel c holds 10 * c + cell index.
    let features = Buf<Double>((0..<16).map { (i: Int) -> Double in Double(10 * (i / 4) + i % 4) }, [1, 4, 2, 2])

    func testPSRoIAlign() {
        let err = ErrBuf()
        // Box 0...2 -> -0.5...1.5 in 2 x 2 bins of one sample each, at the cell centres (0, 0) ... (1, 1).
        let rois = Buf<Double>([0, 0, 0, 2, 2], [1, 5])
        let out = Buf<Double>(zeros: [1, 1, 2, 2], .nan)
        var st = features.with { x in
            rois.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_ps_roi_align(x, r, 2, 2, 1.0, 1, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [0, 11, 22, 33])

        let threeByOne = Buf<Double>(zeros: [1, 0, 3, 1], 0)
        st = features.with { x in
            rois.with { r in
                threeByOne.with { o in
                    CSwiftRCNN.srcnn_ps_roi_align(x, r, 3, 1, 1.0, 1, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "input")
        st = features.with { x in
            rois.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_ps_roi_align(x, r, 2, 2, 1.0, 100_000, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "sampling_ratio")
    }

    func testPSRoIAlignBackward() {
        let err = ErrBuf()
        let rois = Buf<Double>([0, 0, 0, 2, 2], [1, 5])
        let grad = Buf<Double>([1, 2, 3, 4], [1, 1, 2, 2])
        let gradInput = Buf<Double>(zeros: [1, 4, 2, 2], .nan)
        var st = grad.with { g in
            rois.with { r in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_ps_roi_align_backward(g, r, 1.0, 1, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        // Bin (i, j) samples cell (i, j) of channel 2i + j.
        XCTAssertEqual(gradInput.values, [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4])

        let huge = Buf<Double>([0, 0, 0, 1e12, 1e12], [1, 5])
        st = grad.with { g in
            huge.with { r in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_ps_roi_align_backward(g, r, 1.0, -1, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "sampling grid")
    }

    func testPSRoIPool() {
        let err = ErrBuf()
        // 1 x 4 x 3 x 3 map, channel c holding 10 * c + cell index + 1. Box 0...2: size 2 in 2 x 2 bins of one
        // cell; bin (i, j) reads cell (i, j) of channel 2i + j.
        let values: [Double] = (0..<36).map { (i: Int) -> Double in Double(10 * (i / 9) + i % 9 + 1) }
        let map = Buf<Double>(values, [1, 4, 3, 3])
        let rois = Buf<Double>([0, 0, 0, 2, 2], [1, 5])
        let out = Buf<Double>(zeros: [1, 1, 2, 2], .nan)
        var st = map.with { x in
            rois.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_ps_roi_pool(x, r, 2, 2, 1.0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [1, 12, 24, 35])
        // On the 2 x 2 map edges clamp to h - 1 = 1: only bin (0, 0) is non-empty, and it holds cell 0 = 0.
        st = features.with { x in
            rois.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_ps_roi_pool(x, r, 2, 2, 1.0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [0, 0, 0, 0])

        let floatRoIs = Buf<Float>([0, 0, 0, 2, 2], [1, 5])
        st = features.with { x in
            floatRoIs.with { r in
                out.with { o in
                    CSwiftRCNN.srcnn_ps_roi_pool(x, r, 2, 2, 1.0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "boxes")
    }

    func testPSRoIPoolBackward() {
        let err = ErrBuf()
        let rois = Buf<Double>([0, 0, 0, 2, 2], [1, 5])
        let grad = Buf<Double>([1, 2, 3, 4], [1, 1, 2, 2])
        let gradInput = Buf<Double>(zeros: [1, 4, 2, 2], .nan)
        var st = grad.with { g in
            rois.with { r in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_ps_roi_pool_backward(g, r, 1.0, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        // The backward pass clamps to h = 2: bin (i, j) is cell (i, j) of channel 2i + j.
        XCTAssertEqual(gradInput.values, [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4])

        let wrongChannels = Buf<Double>(zeros: [1, 3, 2, 2], 0)
        st = grad.with { g in
            rois.with { r in
                wrongChannels.with { gi in
                    CSwiftRCNN.srcnn_ps_roi_pool_backward(g, r, 1.0, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "input_shape")
    }
}
