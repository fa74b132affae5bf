import CSwiftRCNN
import XCTest

/// The anchor, box coding and py-faster-rcnn exports, called through swiftrcnn.h.
final class AnchorsABITests: XCTestCase {
    func testAnchorGenerator() {
        let err = ErrBuf()
        // Level 0: size 32, ratio 1 on a 2 x 2 grid over an 8 x 8 image (stride 4). Level 1: sizes (16, 64), ratio 1,
        // on a 1 x 1 grid.
        let sizes = Buf<Double>([32, 16, 64], [3]), numSizes = Buf<Int64>([1, 2], [2])
        let ratios = Buf<Double>([1, 1], [2]), numRatios = Buf<Int64>([1, 1], [2])
        let featureHW = Buf<Int64>([2, 2, 1, 1], [2, 2])
        let anchors = Buf<Float>(zeros: [6, 4], .nan)
        func generate(_ out: Buf<Float>, sizes: UnsafeMutablePointer<srcnn_array>?) -> Int32 {
            numSizes.with { ns in
                ratios.with { r in
                    numRatios.with { nr in
                        featureHW.with { f in
                            out.with { a in
                                CSwiftRCNN.srcnn_anchor_generator(sizes, ns, r, nr, 8, 8, f, a, &err.bytes)
                            }
                        }
                    }
                }
            }
        }
        func generate(_ out: Buf<Float>) -> Int32 { sizes.with { s in generate(out, sizes: s) } }
        var st = generate(anchors)
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(
            anchors.values,
            [
                -16, -16, 16, 16, -12, -16, 20, 16, -16, -12, 16, 20, -12, -12, 20, 20,
                -8, -8, 8, 8, -32, -32, 32, 32,
            ])
        // A negative size, a zero-sized feature map and a wrong output shape name their arguments.
        sizes.values[0] = -32
        st = generate(anchors)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "sizes")
        sizes.values[0] = 32
        featureHW.values[3] = 0
        st = generate(anchors)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "feature_hw")
        featureHW.values[3] = 1 << 40
        st = generate(anchors)
        assertStatus(st, SRCNN_MEMORY_ERROR, err, mentions: "anchors")
        featureHW.values[3] = 2
        st = generate(anchors)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "(8, 4)")
        st = generate(anchors, sizes: nil)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "sizes")
    }

    func testLegacyGenerateAnchors() {
        let err = ErrBuf()
        let ratios = Buf<Double>([0.5, 1, 2], [3]), scales = Buf<Double>([8, 16, 32], [3])
        let anchors = Buf<Double>(zeros: [9, 4], .nan)
        func generate<T>(_ base: Double, _ out: Buf<T>) -> Int32 {
            ratios.with { r in
                scales.with { s in
                    out.with { a in
                        CSwiftRCNN.srcnn_legacy_generate_anchors(base, r, s, a, &err.bytes)
                    }
                }
            }
        }
        var st = generate(16, anchors)
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(Array(anchors.values[0..<4]), [-84, -40, 99, 55])
        XCTAssertEqual(Array(anchors.values[32..<36]), [-168, -344, 183, 359])
        st = generate(0, anchors)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "base_size")
        let wrong = Buf<Float>(zeros: [9, 4], 0)
        st = generate(16, wrong)
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "anchors")
    }

    func testLegacyTransforms() {
        let err = ErrBuf()
        let ex = Buf<Double>([0, 0, 9, 9], [1, 4])
        let gt = Buf<Double>([0, 0, 19, 9], [1, 4])
        let targets = Buf<Double>(zeros: [1, 4], .nan)
        var st = ex.with { e in
            gt.with { g in
                targets.with { t in
                    CSwiftRCNN.srcnn_legacy_bbox_transform(e, g, t, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(targets.values, [0.5, 0, log(2.0), 0])

        let pred = Buf<Double>(zeros: [1, 4], .nan)
        st = ex.with { e in
            targets.with { t in
                pred.with { p in
                    CSwiftRCNN.srcnn_legacy_bbox_transform_inv(e, t, p, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(pred.values, gt.values)
        let odd = Buf<Double>(zeros: [1, 6], 0), oddOut = Buf<Double>(zeros: [1, 6], 0)
        st = ex.with { e in
            odd.with { t in
                oddOut.with { p in
                    CSwiftRCNN.srcnn_legacy_bbox_transform_inv(e, t, p, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "deltas")
    }

    func testLegacyClipBoxes() {
        let err = ErrBuf()
        let boxes = Buf<Float>([-5, 3, 200, 50, 1, 2, 3, 4], [1, 8])
        let out = Buf<Float>(zeros: [1, 8], .nan)
        var st = boxes.with { b in out.with { o in CSwiftRCNN.srcnn_legacy_clip_boxes(b, 40, 100, o, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [0, 3, 99, 39, 1, 2, 3, 4])
        st = boxes.with { b in out.with { o in CSwiftRCNN.srcnn_legacy_clip_boxes(b, .nan, 100, o, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "im_shape")
    }

    func testLegacyNMS() {
        let err = ErrBuf()
        let dets = Buf<Float>([0, 0, 9, 9, 0.9, 5, 0, 14, 9, 0.8, 9, 0, 18, 9, 0.7], [3, 5])
        let keep = Buf<Int64>(zeros: [3], -1)
        var count: Int64 = -1
        var st = dets.with { d in keep.with { k in CSwiftRCNN.srcnn_legacy_nms(d, 0.3, k, &count, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(Array(keep.values.prefix(Int(count))), [0, 2])
        dets.values[6] = .nan
        st = dets.with { d in keep.with { k in CSwiftRCNN.srcnn_legacy_nms(d, 0.3, k, &count, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "dets")
    }

    func testBoxEncodeDecode() {
        let err = ErrBuf()
        let reference = Buf<Double>([2, 4, 22, 14], [1, 4])
        let proposals = Buf<Double>([0, 0, 10, 10], [1, 4])
        let weights = Buf<Double>([10, 10, 5, 5], [4])
        let targets = Buf<Double>(zeros: [1, 4], .nan)
        var st = reference.with { r in
            proposals.with { p in
                targets.with { t in
                    weights.with { w in CSwiftRCNN.srcnn_box_encode(r, p, w, t, &err.bytes) }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(targets.values[0], 7, accuracy: 1e-14)
        XCTAssertEqual(targets.values[2], 5 * log(2.0), accuracy: 1e-14)

        let pred = Buf<Double>(zeros: [1, 4], .nan)
        st = targets.with { c in
            proposals.with { b in
                pred.with { p in
                    weights.with { w in CSwiftRCNN.srcnn_box_decode(c, b, w, log(1000.0 / 16), p, &err.bytes) }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        for (p, r) in zip(pred.values, reference.values) { XCTAssertEqual(p, r, accuracy: 1e-12) }

        st = targets.with { c in
            proposals.with { b in
                pred.with { p in
                    weights.with { w in CSwiftRCNN.srcnn_box_decode(c, b, w, .infinity, p, &err.bytes) }
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "bbox_xform_clip")
        weights.values[1] = 0
        st = reference.with { r in
            proposals.with { p in
                targets.with { t in
                    weights.with { w in CSwiftRCNN.srcnn_box_encode(r, p, w, t, &err.bytes) }
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "weights")
        st = reference.with { r in
            proposals.with { p in
                targets.with { t in
                    CSwiftRCNN.srcnn_box_encode(r, p, nil, t, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "weights")
    }
}
