import CSwiftRCNN
import XCTest

/// The box and suppression exports, called through swiftrcnn.h.
final class BoxesABITests: XCTestCase {
    func testMasksToBoxes() {
        // Mask 0: pixels (x 1...2, y 0) and (x 3, y 2); mask 1 empty.
        var pixels = [UInt8](repeating: 0, count: 2 * 3 * 4)
        pixels[1] = 1; pixels[2] = 1; pixels[2 * 4 + 3] = 7
        let masks = Buf<UInt8>(pixels, [2, 3, 4]), boxes = Buf<Float>(zeros: [2, 4], .nan)
        let err = ErrBuf()
        var st = masks.with { m in boxes.with { b in CSwiftRCNN.srcnn_masks_to_boxes(m, b, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(boxes.values, [1, 0, 3, 2, 0, 0, 0, 0])
        let wrong = Buf<Float>(zeros: [3, 4], 0)
        st = masks.with { m in wrong.with { b in CSwiftRCNN.srcnn_masks_to_boxes(m, b, &err.bytes) } }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
    }

    func testBoxAreaAndIoU() {
        let boxes = Buf<Double>([0, 0, 2, 2, 1, 1, 3, 3], [2, 4])
        let area = Buf<Double>(zeros: [2], 0)
        let err = ErrBuf()
        let st = boxes.with { b in area.with { o in CSwiftRCNN.srcnn_box_area(b, o, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(area.values, [4, 4])

        let iou = Buf<Double>(zeros: [2, 2], 0)
        let st2 = boxes.with { b in
            iou.with { o in
                CSwiftRCNN.srcnn_box_iou(
                    b, b, Int32(SRCNN_IOU.rawValue), 0, o,
                    &err.bytes)
            }
        }
        assertStatus(st2, SRCNN_OK, err)
        // Intersection 1, union 4 + 4 - 1.
        XCTAssertEqual(iou.values, [1, 1.0 / 7, 1.0 / 7, 1])
    }

    func testBoxConvertClipAndRemoveSmall() {
        let err = ErrBuf()
        let boxes = Buf<Float>([-1, 2, 5, 30], [1, 4])
        let out = Buf<Float>(zeros: [1, 4], 0)
        var st = boxes.with { b in
            out.with { o in
                CSwiftRCNN.srcnn_box_convert(b, Int32(SRCNN_XYXY.rawValue), Int32(SRCNN_CXCYWH.rawValue), o, &err.bytes)
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [2, 16, 6, 28])
        st = boxes.with { b in out.with { o in CSwiftRCNN.srcnn_clip_boxes_to_image(b, 20, 4, o, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [0, 2, 4, 20])
        let keep = Buf<Int64>(zeros: [1], -1)
        var count: Int64 = -1
        st = boxes.with { b in keep.with { k in CSwiftRCNN.srcnn_remove_small_boxes(b, 7, k, &count, &err.bytes) } }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(count, 0)  // width 6 < 7
    }

    func testNMSFamily() {
        let err = ErrBuf()
        let boxes = Buf<Float>([0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60], [3, 4])
        let scores = Buf<Float>([0.5, 0.9, 0.7], [3])
        let keep = Buf<Int64>(zeros: [3], -1)
        var count: Int64 = 0
        var st = boxes.with { b in
            scores.with { s in
                keep.with { k in
                    CSwiftRCNN.srcnn_nms(b, s, 0.5, k, &count, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(Array(keep.values.prefix(Int(count))), [1, 2])  // box 0 overlaps box 1 with IoU 81/119

        let idxs = Buf<Int64>([0, 1, 1], [3])
        st = boxes.with { b in
            scores.with { s in
                idxs.with { c in
                    keep.with { k in
                        CSwiftRCNN.srcnn_batched_nms(b, s, c, 0.5, k, &count, &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(Array(keep.values.prefix(Int(count))), [1, 2, 0])

        let kept = Buf<Float>(zeros: [3], 0)
        st = boxes.with { b in
            scores.with { s in
                keep.with { k in
                    kept.with { ks in
                        CSwiftRCNN.srcnn_soft_nms(
                            b, s, Int32(SRCNN_SOFT_NMS_LINEAR.rawValue), 0.5, 0.5, 0.001, k, ks, &count,
                            &err.bytes)
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(Array(keep.values.prefix(Int(count))), [1, 2, 0])
        XCTAssertEqual(kept.values[2], 0.5 * (1 - 81.0 / 119.0), accuracy: 1e-6)
    }

    func testErrorsNameTheArgument() {
        let err = ErrBuf()
        let boxes = Buf<Float>([0, 0, 1, 1, 0, 0, .nan, 1], [2, 4])
        let scores = Buf<Float>([1, 1], [2])
        let keep = Buf<Int64>(zeros: [2], 0)
        var count: Int64 = 0
        var st = boxes.with { b in
            scores.with { s in
                keep.with { k in
                    CSwiftRCNN.srcnn_nms(b, s, 0.5, k, &count, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
        let doubles = Buf<Double>([1, 1], [2])
        let finite = Buf<Float>(zeros: [2, 4], 0)
        st = finite.with { b in
            doubles.with { s in
                keep.with { k in
                    CSwiftRCNN.srcnn_nms(b, s, 0.5, k, &count, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "scores")
        st = finite.with { b in CSwiftRCNN.srcnn_nms(b, nil, 0.5, nil, &count, &err.bytes) }
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "scores")
        // A lying shape (rank beyond the maximum) is refused before any data is read.
        var bad = makeArray(nil, [1], SRCNN_FLOAT32)
        bad.ndim = 99
        var out = bad
        st = CSwiftRCNN.srcnn_box_area(&bad, &out, &err.bytes)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "rank")
        // err may be NULL.
        st = CSwiftRCNN.srcnn_box_area(nil, nil, nil)
        XCTAssertEqual(st, Int32(SRCNN_VALUE_ERROR.rawValue))
    }

    func testRuntime() {
        XCTAssertEqual(String(cString: CSwiftRCNN.srcnn_version()), "0.1.0")
        XCTAssertGreaterThanOrEqual(CSwiftRCNN.srcnn_num_threads(), 1)
        let err = ErrBuf()
        assertStatus(CSwiftRCNN.srcnn_set_num_threads(0, &err.bytes), SRCNN_VALUE_ERROR, err, mentions: "num_threads")
    }
}
