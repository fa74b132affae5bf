import CSwiftRCNN
import SwiftRCNN
import XCTest

/// The training-step exports, called through swiftrcnn.h: each gives what the Swift API gives, and rejects
/// inconsistent arguments with a message naming them.
final class TrainingABITests: XCTestCase {
    let anchors = Buf<Float>([0, 0, 10, 10, 0, 0, 10, 5, 5, 5, 15, 15, 100, 100, 110, 110], [4, 4])
    let gt = Buf<Float>([0, 0, 10, 10], [1, 4])

    func testRPNAssignSampleAndLoss() {
        let err = ErrBuf()
        let labels = Buf<Float>(zeros: [4], 9), targets = Buf<Float>(zeros: [4, 4], 9)
        let status = anchors.with { a in
            gt.with { g in
                labels.with { l in
                    targets.with { CSwiftRCNN.srcnn_rpn_assign_targets(a, g, 0.7, 0.3, l, $0, &err.bytes) }
                }
            }
        }
        assertStatus(status, SRCNN_OK, err)
        let want = RPNTargets.assign(anchors: anchors.values, gtBoxes: gt.values, config: RPNTrainingConfig())
        XCTAssertEqual(labels.values, want.labels)
        XCTAssertEqual(targets.values, want.regressionTargets)

        let pos = Buf<UInt8>(zeros: [4], 9), neg = Buf<UInt8>(zeros: [4], 9)
        assertStatus(
            labels.with { l in
                pos.with { p in neg.with { CSwiftRCNN.srcnn_rpn_sample(l, 2, 0.5, 5, p, $0, &err.bytes) } }
            }, SRCNN_OK, err)
        XCTAssertEqual(pos.values, [1, 0, 0, 0])
        XCTAssertEqual(neg.values.reduce(0, +), 1)

        let objectness = Buf<Float>([0, 1, 2, 3], [4]), deltas = Buf<Float>(zeros: [4, 4], 0.5)
        let losses = Buf<Float>(zeros: [2], 9), og = Buf<Float>(zeros: [4], 9), dg = Buf<Float>(zeros: [4, 4], 9)
        let lossStatus = objectness.with { o in
            deltas.with { d in
                labels.with { l in
                    targets.with { t in
                        pos.with { p in
                            neg.with { n in
                                losses.with { out in
                                    og.with { ogp in
                                        dg.with {
                                            CSwiftRCNN.srcnn_rpn_loss(o, d, l, t, p, n, out, ogp, $0, &err.bytes)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertStatus(lossStatus, SRCNN_OK, err)
        let r = RPNLoss.compute(
            objectness: objectness.values, deltas: deltas.values, labels: labels.values,
            regressionTargets: targets.values, positive: pos.values, negative: neg.values)
        XCTAssertEqual(losses.values, [r.objectness, r.boxReg])
        XCTAssertEqual(og.values, r.objectnessGradient)
        XCTAssertEqual(dg.values, r.deltasGradient)
    }

    func testRPNArgumentsChecked() {
        let err = ErrBuf()
        let labels = Buf<Float>(zeros: [4], 0), targets = Buf<Float>(zeros: [4, 4], 0)
        // Thresholds in the wrong order (torchvision's Matcher asserts low <= high).
        let status = anchors.with { a in
            gt.with { g in
                labels.with { l in
                    targets.with { CSwiftRCNN.srcnn_rpn_assign_targets(a, g, 0.3, 0.7, l, $0, &err.bytes) }
                }
            }
        }
        assertStatus(status, SRCNN_VALUE_ERROR, err, mentions: "low_threshold should be <= high_threshold")
        let short = Buf<UInt8>(zeros: [3], 0), fine = Buf<UInt8>(zeros: [4], 0)
        assertStatus(
            labels.with { l in
                short.with { p in fine.with { CSwiftRCNN.srcnn_rpn_sample(l, 2, 0.5, 5, p, $0, &err.bytes) } }
            }, SRCNN_VALUE_ERROR, err, mentions: "positive")
    }

    func testRoISelectAndFastRCNNLoss() {
        let err = ErrBuf()
        let proposals = Buf<Float>([0, 0, 10, 10, 20, 0, 30, 5, 0, 0, 5, 5], [3, 4])
        let boxes = Buf<Float>([0, 0, 10, 10, 20, 0, 30, 10], [2, 4]), gtLabels = Buf<Int64>([3, 7], [2])
        let sp = Buf<Float>(zeros: [5, 4], 9), l = Buf<Int64>(zeros: [5], 9), t = Buf<Float>(zeros: [5, 4], 9)
        let m = Buf<Int64>(zeros: [5], 9), s = Buf<Int64>(zeros: [5], 9)
        var count: Int64 = -1
        let status = proposals.with { p in
            boxes.with { g in
                gtLabels.with { gl in
                    sp.with { spp in
                        l.with { lp in
                            t.with { tp in
                                m.with { mp in
                                    s.with {
                                        CSwiftRCNN.srcnn_roi_heads_select_training_samples(
                                            p, g, gl, 0.5, 0.5, 4, 0.5, 10, 10, 5, 5, 3, spp, lp, tp, mp, $0, &count,
                                            &err.bytes)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertStatus(status, SRCNN_OK, err)
        let config = RoIHeadsTrainingConfig(batchSizePerImage: 4, positiveFraction: 0.5)
        let want = RoIHeadsTargets.select(
            proposals: proposals.values, gtBoxes: boxes.values, gtLabels: gtLabels.values, config: config, seed: 3)
        // 4 foreground rows, 1 background: 2 of the former (batch 4 x 0.5) and the latter.
        XCTAssertEqual(count, 3)
        XCTAssertEqual(want.count, 3)
        XCTAssertEqual(Array(s.values.prefix(3)), want.sampledIndices)
        XCTAssertEqual(Array(l.values.prefix(3)), want.labels)
        XCTAssertEqual(Array(m.values.prefix(3)), want.matchedGT)
        XCTAssertEqual(Array(sp.values.prefix(12)), want.proposals)
        XCTAssertEqual(Array(t.values.prefix(12)), want.regressionTargets)
        XCTAssertEqual(Array(l.values.suffix(2)), [0, 0])  // unused rows are zero

        // fastrcnn_loss on the 3 samples with 8 classes.
        let k = 8
        let logits = Buf<Float>((0..<(3 * k)).map { Float($0 % 5) - 2 }, [3, k])
        let codes = Buf<Float>((0..<(12 * k)).map { Float($0 % 7) / 7 }, [3, 4 * k])
        let labels = Buf<Int64>(want.labels, [3]), targets = Buf<Float>(want.regressionTargets, [3, 4])
        let losses = Buf<Float>(zeros: [2], 9), cg = Buf<Float>(zeros: [3, k], 9)
        let bg = Buf<Float>(zeros: [3, 4 * k], 9)
        func run(_ labels: Buf<Int64>) -> Int32 {
            logits.with { c in
                codes.with { b in
                    labels.with { lp in
                        targets.with { tp in
                            losses.with { o in
                                cg.with { cgp in
                                    bg.with { CSwiftRCNN.srcnn_fastrcnn_loss(c, b, lp, tp, o, cgp, $0, &err.bytes) }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertStatus(run(labels), SRCNN_OK, err)
        let r = RoIHeadsLoss.fastRCNN(
            classLogits: logits.values, boxRegression: codes.values, numClasses: k, labels: labels.values,
            regressionTargets: targets.values)
        XCTAssertEqual(losses.values, [r.classifier, r.boxReg])
        XCTAssertEqual(cg.values, r.classLogitsGradient)
        XCTAssertEqual(bg.values, r.boxRegressionGradient)
        assertStatus(run(Buf<Int64>([0, 1, 8], [3])), SRCNN_VALUE_ERROR, err, mentions: "got 8 at index 2")
    }

    func testMaskRCNNLoss() {
        let err = ErrBuf()
        let (k, m) = (2, 4)
        // Image 0: one 6 x 8 mask, two positives; image 1: no mask, no positive.
        let mask0 = Buf<UInt8>((0..<48).map { UInt8(($0 / 3) % 2) }, [1, 6, 8])
        let mask1 = Buf<UInt8>([], [0, 5, 5])
        let logits = Buf<Float>((0..<(2 * k * m * m)).map { Float($0 % 9) / 3 - 1 }, [2, k, m, m])
        let counts = Buf<Int64>([2, 0], [2]), boxes = Buf<Float>([0, 0, 8, 6, 1, 1, 5, 4], [2, 4])
        let labels = Buf<Int64>([1, 0], [2])
        let loss = Buf<Float>(zeros: [1], 9), grad = Buf<Float>(zeros: [2, k, m, m], 9)
        func run(_ matched: Buf<Int64>) -> Int32 {
            mask0.with { g0 in
                mask1.with { g1 in
                    let masks = [g0.pointee, g1.pointee]
                    return masks.withUnsafeBufferPointer { gm in
                        logits.with { ml in
                            counts.with { c in
                                boxes.with { b in
                                    labels.with { l in
                                        matched.with { mi in
                                            loss.with { o in
                                                grad.with {
                                                    CSwiftRCNN.srcnn_maskrcnn_loss(
                                                        ml, c, b, l, mi, gm.baseAddress, 2, o, $0, &err.bytes)
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
        assertStatus(run(Buf<Int64>([0, 0], [2])), SRCNN_OK, err)
        let r = RoIHeadsLoss.maskRCNN(
            maskLogits: logits.values, numClasses: k, maskSize: m, proposals: [boxes.values, []],
            labels: [[1, 0], []], matchedGT: [[0, 0], []], gtMasks: [mask0.values, []], maskHeights: [6, 5],
            maskWidths: [8, 5])
        XCTAssertEqual(loss.values, [r.loss])
        XCTAssertEqual(grad.values, r.gradient)
        assertStatus(run(Buf<Int64>([0, 1], [2])), SRCNN_VALUE_ERROR, err, mentions: "not a mask of gt_masks[0]")
    }
}
