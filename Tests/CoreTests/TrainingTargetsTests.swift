import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// The RPN's and the box heads' training targets and samplers on cases worked out by hand, their edge cases, and
/// their independence from the thread count.
final class TrainingTargetsTests: XCTestCase {
    /// Boxes (n, 4) with corners in [0, 200) and sides in [1, 60), from `rng`.
    func randomBoxes(_ n: Int, _ rng: inout Xoshiro256StarStar) -> [Float] {
        func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * Float(rng.next() >> 40) / Float(1 << 24) }
        var out = [Float]()
        for _ in 0..<n {
            let x = uniform(0, 200), y = uniform(0, 200)
            out += [x, y, x + uniform(1, 60), y + uniform(1, 60)]
        }
        return out
    }

    func testRPNAssignByHand() {
        let gt: [Float] = [0, 0, 10, 10]
        // IoU with the box: 1, 0.5 (between the thresholds), 1/7 and 0 (background).
        let anchors: [Float] = [0, 0, 10, 10, 0, 0, 10, 5, 5, 5, 15, 15, 100, 100, 110, 110]
        let (labels, targets) = RPNTargets.assign(anchors: anchors, gtBoxes: gt, config: RPNTrainingConfig())
        XCTAssertEqual(labels, [1, -1, 0, 0])
        XCTAssertEqual(Array(targets[0..<4]), [0, 0, 0, 0])
        // Anchor (0, 0, 10, 5) to the box: centre y 2.5 -> 5 over height 5, height ratio 2.
        XCTAssertEqual(Array(targets[4..<8]), [0, 0.5, 0, Float.log(2)])
        // Background anchors still carry their best box's code: (5, 5, 15, 15) -> centre offset -5 / 10.
        XCTAssertEqual(Array(targets[8..<12]), [-0.5, -0.5, 0, 0])
    }

    func testRPNLowQualityMatchesKeepEveryTie() {
        // Both anchors reach the box's best IoU, 0.5, below fgIoUThresh: both become foreground.
        let anchors: [Float] = [0, 0, 10, 20, 0, 0, 20, 10, 0, 0, 30, 30]
        let (labels, _) = RPNTargets.assign(
            anchors: anchors, gtBoxes: [0, 0, 10, 10], config: RPNTrainingConfig())
        XCTAssertEqual(labels, [1, 1, 0])
    }

    func testRPNZeroAreaBoxMakesEveryAnchorForeground() {
        // torchvision's quirk: the zero-width box's best IoU is 0, reached by every anchor, so every anchor is
        // restored to its highest-IoU box, even anchor 2 (IoU 1/3 with box 1, between the thresholds); for anchors
        // overlapping nothing that is box 0 (the first of the ties).
        let gt: [Float] = [5, 5, 5, 10, 0, 0, 10, 10]
        let anchors: [Float] = [0, 0, 10, 10, 50, 50, 60, 60, 0, 0, 10, 30]
        let (labels, targets) = RPNTargets.assign(anchors: anchors, gtBoxes: gt, config: RPNTrainingConfig())
        XCTAssertEqual(labels, [1, 1, 1])
        // Anchor 1's target encodes the zero-width box 0: log(0 / 10) = -inf.
        XCTAssertEqual(targets[6], -.infinity)
    }

    func testRPNImageWithoutBoxes() {
        let anchors: [Float] = [0, 0, 10, 10, 5, 5, 25, 15]
        let (labels, targets) = RPNTargets.assign(anchors: anchors, gtBoxes: [], config: RPNTrainingConfig())
        XCTAssertEqual(labels, [0, 0])
        // torchvision encodes a zero box: centre offsets from (0, 0), log-sizes -inf.
        XCTAssertEqual(Array(targets[0..<4]), [-0.5, -0.5, -.infinity, -.infinity])
        XCTAssertEqual(Array(targets[4..<6]), [-0.75, -1])
        let none = RPNTargets.assign(anchors: [], gtBoxes: [], config: RPNTrainingConfig())
        XCTAssertEqual(none.labels, [])
        XCTAssertEqual(none.regressionTargets, [])
    }

    func testRPNSampleCountsAndSeed() {
        // 10 foreground, 1000 background, 50 ignored.
        let labels =
            [Float](repeating: 1, count: 10) + [Float](repeating: 0, count: 1000)
            + [Float](repeating: -1, count: 50)
        let config = RPNTrainingConfig()
        let a = RPNTargets.sample(labels: labels, config: config, seed: 7)
        XCTAssertEqual(a.positive.reduce(0) { $0 + Int($1) }, 10)
        XCTAssertEqual(a.negative.reduce(0) { $0 + Int($1) }, 246)
        for i in labels.indices {
            if a.positive[i] != 0 { XCTAssertEqual(labels[i], 1) }
            if a.negative[i] != 0 { XCTAssertEqual(labels[i], 0) }
        }
        let b = RPNTargets.sample(labels: labels, config: config, seed: 7)
        XCTAssertEqual(a.positive, b.positive)
        XCTAssertEqual(a.negative, b.negative)
        XCTAssertNotEqual(a.negative, RPNTargets.sample(labels: labels, config: config, seed: 8).negative)
        // Many foreground anchors: capped at batch * fraction = 128.
        let many = [Float](repeating: 1, count: 500) + [Float](repeating: 0, count: 500)
        let c = RPNTargets.sample(labels: many, config: config, seed: 1)
        XCTAssertEqual(c.positive.reduce(0) { $0 + Int($1) }, 128)
        XCTAssertEqual(c.negative.reduce(0) { $0 + Int($1) }, 128)
        // Everything ignored: nothing sampled.
        let ignored = RPNTargets.sample(labels: [-1, -1, -1], config: config, seed: 1)
        XCTAssertEqual(ignored.positive + ignored.negative, [0, 0, 0, 0, 0, 0])
    }

    func testRoISelectByHand() {
        // Proposals: IoU 1 with box 0, 0.5 with box 1 (>= 0.5: foreground), 0.25 with box 0 (background).
        let proposals: [Float] = [0, 0, 10, 10, 20, 0, 30, 5, 0, 0, 5, 5]
        let gt: [Float] = [0, 0, 10, 10, 20, 0, 30, 10]
        let samples = RoIHeadsTargets.select(
            proposals: proposals, gtBoxes: gt, gtLabels: [3, 7], config: RoIHeadsTrainingConfig(), seed: 0)
        // Batch 512 takes every one of the 5 boxes (3 proposals + 2 appended ground truths), in index order.
        XCTAssertEqual(samples.sampledIndices, [0, 1, 2, 3, 4])
        XCTAssertEqual(samples.labels, [3, 7, 0, 3, 7])
        XCTAssertEqual(samples.matchedGT, [0, 1, 0, 0, 1])
        XCTAssertEqual(samples.proposals, proposals + gt)
        // Proposal 1 (height 5) to box 1 (height 10): dy = 10 * 2.5 / 5, dh = 5 log 2.
        XCTAssertEqual(Array(samples.regressionTargets[4..<8]), [0, 5, 0, 5 * Float.log(2)])
        // Proposal 2 (0, 0, 5, 5) to box 0: dx = 10 * 2.5 / 5, dw = 5 log 2.
        XCTAssertEqual(Array(samples.regressionTargets[8..<12]), [5, 5, 5 * Float.log(2), 5 * Float.log(2)])
        XCTAssertEqual(Array(samples.regressionTargets[12..<20]), [0, 0, 0, 0, 0, 0, 0, 0])
    }

    func testRoISelectIgnoresBetweenThresholdsAndSamplesCounts() {
        var rng = Xoshiro256StarStar(seed: 5)
        let proposals = randomBoxes(3000, &rng), gt = randomBoxes(6, &rng)
        let config = RoIHeadsTrainingConfig(fgIoUThresh: 0.5, bgIoUThresh: 0.2, batchSizePerImage: 64)
        let samples = RoIHeadsTargets.select(
            proposals: proposals, gtBoxes: gt, gtLabels: [1, 2, 3, 4, 5, 6], config: config, seed: 9)
        let positives = samples.labels.filter { $0 > 0 }.count
        XCTAssertEqual(samples.count, 64)
        XCTAssertGreaterThanOrEqual(positives, 6)  // at least the appended boxes
        XCTAssertLessThanOrEqual(positives, 16)  // Int(64 * 0.25)
        XCTAssertFalse(samples.labels.contains(-1))
        XCTAssertEqual(samples.sampledIndices, samples.sampledIndices.sorted())
        let again = RoIHeadsTargets.select(
            proposals: proposals, gtBoxes: gt, gtLabels: [1, 2, 3, 4, 5, 6], config: config, seed: 9)
        XCTAssertEqual(again.sampledIndices, samples.sampledIndices)
    }

    func testRoISelectWithoutBoxes() {
        let proposals: [Float] = [0, 0, 10, 10, 5, 5, 25, 15]
        let samples = RoIHeadsTargets.select(
            proposals: proposals, gtBoxes: [], gtLabels: [], config: RoIHeadsTrainingConfig(), seed: 0)
        XCTAssertEqual(samples.labels, [0, 0])
        XCTAssertEqual(samples.matchedGT, [0, 0])
        XCTAssertEqual(samples.sampledIndices, [0, 1])
        // Against torchvision's (1, 4) zero stand-in: dx = 10 (0 - 5) / 10, dw = 5 log 0.
        XCTAssertEqual(Array(samples.regressionTargets[0..<4]), [-5, -5, -.infinity, -.infinity])
        let empty = RoIHeadsTargets.select(
            proposals: [], gtBoxes: [], gtLabels: [], config: RoIHeadsTrainingConfig(), seed: 0)
        XCTAssertEqual(empty.count, 0)
    }

    func testTargetsDoNotDependOnThreadCount() {
        var rng = Xoshiro256StarStar(seed: 11)
        let anchors = randomBoxes(50_000, &rng), gt = randomBoxes(7, &rng)
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        var results = [([Float], [Float], [Int64])]()
        for threads in [1, 3, 8] {
            Parallel.numThreads = threads
            let (labels, targets) = RPNTargets.assign(anchors: anchors, gtBoxes: gt, config: RPNTrainingConfig())
            let samples = RoIHeadsTargets.select(
                proposals: Array(anchors[0..<8000]), gtBoxes: gt, gtLabels: [1, 1, 2, 2, 3, 3, 4],
                config: RoIHeadsTrainingConfig(), seed: 3)
            results.append((labels, targets, samples.sampledIndices))
        }
        for r in results.dropFirst() {
            XCTAssertEqual(r.0, results[0].0)
            XCTAssertEqual(r.1.map(\.bitPattern), results[0].1.map(\.bitPattern))
            XCTAssertEqual(r.2, results[0].2)
        }
        XCTAssertTrue(results[0].0.contains(1) && results[0].0.contains(-1) && results[0].0.contains(0))
    }

    func testProjectMasksByHand() {
        // A 4 x 4 mask whose left half is set; the box covering the whole mask, pooled to 2 x 2 with adaptive
        // sampling (2 x 2 samples per bin, at x = 0.5, 1.5 | 2.5, 3.5): the left bins average 1 and the half-way
        // sample at x = 1.5, 0.75; the right ones 0.
        let mask: [UInt8] = [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
        let other = [UInt8](repeating: 1, count: 16)
        let out = RoIHeadsTargets.projectMasks(
            other + mask, height: 4, width: 4, boxes: [0, 0, 4, 4, 0, 0, 2, 4], matchedGT: [1, 0], maskSize: 2)
        XCTAssertEqual(Array(out[0..<4]), [0.75, 0, 0.75, 0])
        XCTAssertEqual(Array(out[4..<8]), [1, 1, 1, 1])
    }
}
