import CSwiftRCNN
import XCTest

/// The test-only detector-stage exports (Sources/Core/ABI/Testing/StagesABI.swift), called through swiftrcnn.h with
/// tiny weights.
final class StagesABITests: XCTestCase {
    /// Runs `body` with C string pointers for `names` (valid during the call).
    func withNames<R>(_ names: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies = names.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer<CChar>($0) }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Runs `body` with srcnn_array descriptors of `bufs` (valid during the call).
    func withArrays<T>(_ bufs: [Buf<T>], _ body: (UnsafePointer<srcnn_array>) -> Int32) -> Int32 {
        func nest(_ i: Int, _ acc: [srcnn_array]) -> Int32 {
            if i == bufs.count { return acc.withUnsafeBufferPointer { body($0.baseAddress!) } }
            return bufs[i].with { nest(i + 1, acc + [$0.pointee]) }
        }
        return nest(0, [])
    }

    func zeros(_ shape: [Int]) -> Buf<Float> { Buf<Float>(zeros: shape, 0) }

    /// Zero RPN weights for C = 2 channels and 3 anchors, plus a key of another prefix.
    func rpnWeights() -> [(String, Buf<Float>)] {
        [
            ("rpn.head.conv.0.0.weight", zeros([2, 2, 3, 3])), ("rpn.head.conv.0.0.bias", zeros([2])),
            ("rpn.head.cls_logits.weight", zeros([3, 2, 1, 1])), ("rpn.head.cls_logits.bias", zeros([3])),
            ("rpn.head.bbox_pred.weight", zeros([12, 2, 1, 1])), ("rpn.head.bbox_pred.bias", zeros([12])),
            ("backbone.other", zeros([1])),
        ]
    }

    func runRPN(
        _ weights: [(String, Buf<Float>)], post: Int = 10, boxes: Buf<Float>, scores: Buf<Float>,
        counts: Buf<Int64>, err: ErrBuf
    ) -> Int32 {
        let features = [zeros([1, 2, 4, 4]), zeros([1, 2, 2, 2])]
        let sizes = Buf<Int64>([32, 32], [1, 2])
        let anchorSizes = Buf<Double>([32, 64], [2]), ratios = Buf<Double>([0.5, 1, 2, 0.5, 1, 2], [6])
        let numSizes = Buf<Int64>([1, 1], [2]), numRatios = Buf<Int64>([3, 3], [2])
        return withNames(weights.map(\.0)) { names in
            withArrays(weights.map(\.1)) { w in
                withArrays(features) { f in
                    anchorSizes.with { az in
                        numSizes.with { ns in
                            ratios.with { r in
                                numRatios.with { nr in
                                    sizes.with { s in
                                        boxes.with { b in
                                            scores.with { sc in
                                                counts.with { c in
                                                    CSwiftRCNN.srcnn_rpn_proposals(
                                                        names, w, Int64(weights.count), f, 2, s, 32, 32, az, ns,
                                                        r, nr, 1000, Int64(post), 0.7, 0, b, sc, c, &err.bytes)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testRPNProposals() {
        let err = ErrBuf()
        let boxes = zeros([1, 10, 4]), scores = zeros([1, 10]), counts = Buf<Int64>(zeros: [1], -1)
        let st = runRPN(rpnWeights(), boxes: boxes, scores: scores, counts: counts, err: err)
        assertStatus(st, SRCNN_OK, err)
        // Zero weights: every anchor has probability 0.5 and is its own (clipped) proposal.
        XCTAssertEqual(counts.values, [10])
        XCTAssertEqual(scores.values, [Float](repeating: 0.5, count: 10))
        XCTAssertTrue(boxes.values.allSatisfy { $0 >= 0 && $0 <= 32 })
    }

    func testRPNErrors() {
        let err = ErrBuf()
        let boxes = zeros([1, 10, 4]), scores = zeros([1, 10]), counts = Buf<Int64>(zeros: [1], 0)
        var weights = rpnWeights()
        weights.remove(at: 5)
        var st = runRPN(weights, boxes: boxes, scores: scores, counts: counts, err: err)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "missing keys: rpn.head.bbox_pred.bias")
        weights = rpnWeights()
        weights[0].1 = zeros([2, 3, 3, 3])
        st = runRPN(weights, boxes: boxes, scores: scores, counts: counts, err: err)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "rpn.head.conv.0.0.weight: expected shape (2, 2, 3, 3)")
        // Weights must be float32 (other prefixes are not read at all).
        let double = Buf<Double>(zeros: [3], 0)
        st = withNames(["rpn.head.cls_logits.bias"]) { names in
            double.with { w in
                let f = zeros([1, 2, 4, 4]), s = Buf<Int64>([32, 32], [1, 2])
                let one = Buf<Double>([1], [1]), count = Buf<Int64>([1], [1])
                return f.with { fp in
                    s.with { sp in
                        boxes.with { b in
                            scores.with { sc in
                                counts.with { c in
                                    one.with { o in
                                        count.with { n in
                                            CSwiftRCNN.srcnn_rpn_proposals(
                                                names, w, 1, fp, 1, sp, 32, 32, o, n, o, n, 10, 10, 0.7, 0, b,
                                                sc, c, &err.bytes)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "weights['rpn.head.cls_logits.bias']: expected dtype float32")
        st = runRPN(rpnWeights(), post: 11, boxes: boxes, scores: scores, counts: counts, err: err)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "boxes")
    }

    /// Zero RoI-head weights for C = 1 channel, R = 2, K = 3 classes, with a one-layer mask head of 2 channels.
    func roiWeights(masks: Bool) -> [(String, Buf<Float>)] {
        var w = [
            ("roi_heads.box_head.fc6.weight", zeros([2, 49])), ("roi_heads.box_head.fc6.bias", zeros([2])),
            ("roi_heads.box_head.fc7.weight", zeros([2, 2])), ("roi_heads.box_head.fc7.bias", zeros([2])),
            ("roi_heads.box_predictor.cls_score.weight", zeros([3, 2])),
            ("roi_heads.box_predictor.cls_score.bias", zeros([3])),
            ("roi_heads.box_predictor.bbox_pred.weight", zeros([12, 2])),
            ("roi_heads.box_predictor.bbox_pred.bias", zeros([12])),
        ]
        if masks {
            w += [
                ("roi_heads.mask_head.0.0.weight", zeros([2, 1, 3, 3])), ("roi_heads.mask_head.0.0.bias", zeros([2])),
                ("roi_heads.mask_predictor.conv5_mask.weight", zeros([2, 2, 2, 2])),
                ("roi_heads.mask_predictor.conv5_mask.bias", zeros([2])),
                ("roi_heads.mask_predictor.mask_fcn_logits.weight", zeros([3, 2, 1, 1])),
                ("roi_heads.mask_predictor.mask_fcn_logits.bias", zeros([3])),
            ]
        }
        return w
    }

    func testRoIHeadsDetect() {
        let err = ErrBuf()
        let weights = roiWeights(masks: true)
        let features = [zeros([1, 1, 8, 8])]
        let proposals = Buf<Float>([2, 2, 20, 20], [1, 4]), proposalCounts = Buf<Int64>([1], [1])
        let sizes = Buf<Int64>([32, 32], [1, 2])
        let boxes = zeros([1, 5, 4]), scores = zeros([1, 5]), labels = Buf<Int64>(zeros: [1, 5], -1)
        let masks = zeros([1, 5, 1, 28, 28]), counts = Buf<Int64>(zeros: [1], -1)
        let st = withNames(weights.map(\.0)) { names in
            withArrays(weights.map(\.1)) { w in
                withArrays(features) { f in
                    proposals.with { p in
                        proposalCounts.with { pc in
                            sizes.with { s in
                                boxes.with { b in
                                    scores.with { sc in
                                        labels.with { l in
                                            masks.with { m in
                                                counts.with { c in
                                                    CSwiftRCNN.srcnn_roi_heads_detect(
                                                        names, w, Int64(weights.count), 3, 1, f, 1, p, pc, s,
                                                        0.05, 0.5, 5, b, sc, l, m, c, &err.bytes)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        // Zero weights: classes 1 and 2 each have probability 1/3, the box is the proposal, masks are sigmoid(0).
        XCTAssertEqual(counts.values, [2])
        XCTAssertEqual(Array(labels.values[0..<2]).sorted(), [1, 2])
        XCTAssertEqual(Array(labels.values[2...]), [0, 0, 0])
        XCTAssertEqual(Array(boxes.values[0..<4]), [2, 2, 20, 20])
        XCTAssertEqual(scores.values[0], 1 / 3, accuracy: 1e-6)
        XCTAssertEqual(Array(masks.values[0..<(2 * 784)]), [Float](repeating: 0.5, count: 2 * 784))
        XCTAssertTrue(masks.values[(2 * 784)...].allSatisfy { $0 == 0 })
    }

    func testRoIHeadsErrors() {
        let err = ErrBuf()
        let features = [zeros([1, 1, 8, 8])]
        let sizes = Buf<Int64>([32, 32], [1, 2])
        let boxes = zeros([1, 5, 4]), scores = zeros([1, 5]), labels = Buf<Int64>(zeros: [1, 5], 0)
        let counts = Buf<Int64>(zeros: [1], 0)
        func run(
            _ weights: [(String, Buf<Float>)], _ proposals: Buf<Float>, _ proposalCounts: Buf<Int64>,
            numClasses: Int64 = 3
        ) -> Int32 {
            withNames(weights.map(\.0)) { names in
                withArrays(weights.map(\.1)) { w in
                    withArrays(features) { f in
                        proposals.with { p in
                            proposalCounts.with { pc in
                                sizes.with { s in
                                    boxes.with { b in
                                        scores.with { sc in
                                            labels.with { l in
                                                counts.with { c in
                                                    CSwiftRCNN.srcnn_roi_heads_detect(
                                                        names, w, Int64(weights.count), numClasses, 0, f, 1,
                                                        p, pc, s, 0.05, 0.5, 5, b, sc, l, nil, c,
                                                        &err.bytes)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let one = Buf<Float>([2, 2, 20, 20], [1, 4])
        var st = run(roiWeights(masks: false), one, Buf<Int64>([2], [1]))
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "proposals: the per-image counts do not add up")
        st = run(roiWeights(masks: false), Buf<Float>([2, 2, .nan, 20], [1, 4]), Buf<Int64>([1], [1]))
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "proposals: contains NaN")
        st = run(roiWeights(masks: false), one, Buf<Int64>([1], [1]), numClasses: 4)
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "num_classes = 4")
        st = run(roiWeights(masks: true), one, Buf<Int64>([1], [1]))
        assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "unexpected keys: roi_heads.mask_head.0.0.bias")
    }
}
