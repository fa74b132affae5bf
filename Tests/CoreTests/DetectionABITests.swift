import CSwiftRCNN
import XCTest

/// The matching, sampling and mask-pasting exports, called through swiftrcnn.h.
final class DetectionABITests: XCTestCase {
    func testMatcher() {
        let err = ErrBuf()
        // Column maxima: 0.9 (gt 0) >= high, 0.4 (gt 1) between, 0.25 (gt 1) below low.
        let q = Buf<Float>(
            [
                0.9, 0.1, 0.2,
                0.3, 0.4, 0.25,
            ], [2, 3])
        let matches = Buf<Int64>(zeros: [3], 99)
        var st = q.with { a in matches.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.3, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(matches.values, [0, -2, -1])
        // gt 1's best prediction (column 1, 0.4) keeps its match.
        st = q.with { a in matches.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.5, 1, o, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(matches.values, [0, 1, -1])
    }

    func testMatcherErrors() {
        let err = ErrBuf()
        let empty = Buf<Double>([], [0, 3])
        let out = Buf<Int64>(zeros: [3], 0)
        var st = empty.with { a in out.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.3, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "No ground-truth boxes")
        let noProposals = Buf<Double>([], [2, 0])
        let none = Buf<Int64>([], [0])
        st = noProposals.with { a in none.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.3, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "No proposal boxes")
        let nan = Buf<Double>([0.5, .nan, 0.1], [1, 3])
        st = nan.with { a in out.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.3, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "match_quality_matrix")
        let ok = Buf<Double>([0.5, 0.2, 0.1], [1, 3])
        st = ok.with { a in out.with { o in CSwiftRCNN.srcnn_matcher(a, 0.3, 0.7, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "low_threshold")
        let wrongOut = Buf<Int64>(zeros: [2], 0)
        st = ok.with { a in wrongOut.with { o in CSwiftRCNN.srcnn_matcher(a, 0.7, 0.3, 0, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "matches")
    }

    func testBalancedSampler() {
        let err = ErrBuf()
        let idx = Buf<Int64>([1, 0, 0, -1, 2, 0, 0, 3], [8])
        let pos = Buf<UInt8>(zeros: [8], 9), neg = Buf<UInt8>(zeros: [8], 9)
        var st = idx.with { i in
            pos.with { p in
                neg.with { n in
                    CSwiftRCNN.srcnn_balanced_sampler(i, 4, 0.5, 77, p, n, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(pos.values.reduce(0) { $0 + Int($1) }, 2)
        XCTAssertEqual(neg.values.reduce(0) { $0 + Int($1) }, 2)
        XCTAssertEqual(pos.values[3], 0)
        XCTAssertEqual(neg.values[3], 0)
        st = idx.with { i in
            pos.with { p in
                neg.with { n in
                    CSwiftRCNN.srcnn_balanced_sampler(i, 4, 1.5, 77, p, n, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "positive_fraction")
        st = idx.with { i in
            pos.with { p in
                neg.with { n in
                    CSwiftRCNN.srcnn_balanced_sampler(i, -4, 0.5, 77, p, n, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "batch_size_per_image")
        let floats = Buf<Double>([1, 0], [2])
        st = floats.with { i in
            pos.with { p in
                neg.with { n in
                    CSwiftRCNN.srcnn_balanced_sampler(i, 4, 0.5, 77, p, n, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "matched_idxs")
    }

    func testPasteMasks() {
        let err = ErrBuf()
        let masks = Buf<Float>([1, 2, 3, 4], [1, 1, 2, 2])
        let boxes = Buf<Float>([1, 1, 2, 2], [1, 4])
        let out = Buf<Float>(zeros: [1, 1, 3, 4], -1)
        var st = masks.with { m in
            boxes.with { b in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 3, 4, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(
            out.values,
            [
                0, 0, 0, 0,
                0, 1, 2, 0,
                0, 3, 4, 0,
            ])
        let nanBox = Buf<Float>([1, .nan, 2, 2], [1, 4])
        st = masks.with { m in
            nanBox.with { b in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 3, 4, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
        st = masks.with { m in
            boxes.with { b in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 3, 4, -1, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "padding")
        st = masks.with { m in
            boxes.with { b in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 0, 4, 1, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "img_shape")
        let noMasks = Buf<Float>([], [0, 1, 2, 2]), noBoxes = Buf<Float>([], [0, 4])
        let noOut = Buf<Float>([], [0, 1, 1 << 40, 1 << 40])
        st = noMasks.with { m in
            noBoxes.with { b in
                noOut.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 1 << 40, 1 << 40, 1, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_MEMORY_ERROR, err, mentions: "img_shape")
        let doubles = Buf<Double>([1, 1, 2, 2], [1, 4])
        st = masks.with { m in
            doubles.with { b in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(m, b, 3, 4, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "boxes")
    }
}
