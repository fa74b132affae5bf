import CSwiftRCNN
import XCTest

/// The roi_pool exports (forward and backward), called through swiftrcnn.h (Sources/Core/ABI/RoIPoolABI.swift).
final class RoIPoolABITests: XCTestCase {
    /// 1 x 4 x 2 x 2 map; channel c holds 10 * c + cell index.
    let features = Buf<Double>((0..<16).map { (i: Int) -> Double in Double(10 * (i / 4) + i % 4) }, [1, 4, 2, 2])

    func testRoIPool() {
        let err = ErrBuf()
        let rois = Buf<Double>([0, 0, 0, 1, 1], [1, 5])
        let out = Buf<Double>(zeros: [1, 4, 1, 1], .nan), argmax = Buf<Int64>(zeros: [1, 4, 1, 1], 0)
        var st = features.with { x in
            rois.with { r in
                out.with { o in
                    argmax.with { a in
                        CSwiftRCNN.srcnn_roi_pool(x, r, 1, 1, 1.0, o, a, &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [3, 13, 23, 33])
        XCTAssertEqual(argmax.values, [3, 3, 3, 3])
        // argmax may be NULL.
        let maxima = Buf<Double>(zeros: [1, 4, 1, 1], .nan)
        st = features.with { x in
            rois.with { r in
                maxima.with { o in
                    CSwiftRCNN.srcnn_roi_pool(x, r, 1, 1, 1.0, o, nil, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(maxima.values, [3, 13, 23, 33])

        let badBatch = Buf<Double>([1, 0, 0, 1, 1], [1, 5])
        st = features.with { x in
            badBatch.with { r in
                out.with { o in
                    argmax.with { a in
                        CSwiftRCNN.srcnn_roi_pool(x, r, 1, 1, 1.0, o, a, &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
        st = features.with { x in
            rois.with { r in
                out.with { o in
                    argmax.with { a in
                        CSwiftRCNN.srcnn_roi_pool(x, r, 0, 1, 1.0, o, a, &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "output_size")
    }

    func testRoIPoolBackward() {
        let err = ErrBuf()
        let grad = Buf<Float>([1, 2], [2, 1, 1, 1]), argmax = Buf<Int64>([3, 3], [2, 1, 1, 1])
        let gradInput = Buf<Float>(zeros: [1, 1, 2, 2], .nan)
        // A single image: rois may be NULL.
        var st = grad.with { g in
            argmax.with { a in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_roi_pool_backward(g, nil, a, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(gradInput.values, [0, 0, 0, 3])

        let twoImages = Buf<Float>(zeros: [2, 1, 2, 2], 0)
        st = grad.with { g in
            argmax.with { a in
                twoImages.with { gi in
                    CSwiftRCNN.srcnn_roi_pool_backward(g, nil, a, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
        let rois = Buf<Float>([1, 0, 0, 1, 1, 0, 0, 0, 1, 1], [2, 5])
        st = grad.with { g in
            rois.with { r in
                argmax.with { a in
                    twoImages.with { gi in
                        CSwiftRCNN.srcnn_roi_pool_backward(g, r, a, gi, &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(twoImages.values, [0, 0, 0, 2, 0, 0, 0, 1])

        let outOfPlane = Buf<Int64>([4, 3], [2, 1, 1, 1])
        st = grad.with { g in
            outOfPlane.with { a in
                gradInput.with { gi in
                    CSwiftRCNN.srcnn_roi_pool_backward(g, nil, a, gi, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "argmax")
    }
}
