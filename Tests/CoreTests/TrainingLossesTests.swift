import Foundation
import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// The training losses against references written from their definitions in `Double`: the losses agree to float32
/// rounding, and the gradients with central finite differences of the references.
final class TrainingLossesTests: XCTestCase {
    var rng = Xoshiro256StarStar(seed: 2024)

    func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * Float(rng.next() >> 40) / Float(1 << 24) }
    func randoms(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] { (0..<n).map { _ in uniform(lo, hi) } }

    // MARK: - References in Double

    static let beta = 1.0 / 9.0
    static func smoothL1(_ d: Double) -> Double { abs(d) < beta ? 0.5 * d * d / beta : abs(d) - 0.5 * beta }
    /// -[y log σ(x) + (1 - y) log(1 - σ(x))], written the naive way (fine for the moderate logits used here).
    static func bce(_ x: Double, _ y: Double) -> Double {
        let s = 1 / (1 + exp(-x))
        return -(y * log(s) + (1 - y) * log(1 - s))
    }

    /// RPN loss of `compute`, summed (objectness + box), with the sampled set given by index lists.
    static func rpnReference(
        _ objectness: [Double], _ deltas: [Double], labels: [Float], targets: [Float], positive: [Int],
        negative: [Int]
    ) -> (objectness: Double, box: Double) {
        let n = Double(positive.count + negative.count)
        let o = (positive + negative).reduce(0.0) { $0 + bce(objectness[$1], Double(labels[$1])) } / n
        var box = 0.0
        for i in positive { for c in 0..<4 { box += smoothL1(deltas[4 * i + c] - Double(targets[4 * i + c])) } }
        return (o, box / n)
    }

    /// Central differences of `f` at `x` for the listed coordinates (others 0), step `h`.
    func finiteDifferences(
        _ x: [Double], at coordinates: [Int], h: Double = 1e-6, _ f: ([Double]) -> Double
    ) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for i in coordinates {
            var up = x, down = x
            up[i] += h
            down[i] -= h
            out[i] = (f(up) - f(down)) / (2 * h)
        }
        return out
    }

    func assertClose(
        _ ours: [Float], _ reference: [Double], relativeToMax tolerance: Double, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(ours.count, reference.count, file: file, line: line)
        let scale = max(reference.map(abs).max() ?? 0, 1e-12)
        let worst = zip(ours, reference).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, file: file, line: line)
    }

    // MARK: - RPN

    func testRPNLossMatchesReferenceAndFiniteDifferences() {
        let a = 300
        let objectness = randoms(a, -6, 6), deltas = randoms(4 * a, -1, 1), targets = randoms(4 * a, -1, 1)
        var labels = [Float](repeating: 0, count: a)
        for i in 0..<a { labels[i] = [1, 0, -1][Int(rng.next(below: 3))] }
        let sampled = RPNTargets.sample(labels: labels, config: RPNTrainingConfig(batchSizePerImage: 64), seed: 4)
        let r = RPNLoss.compute(
            objectness: objectness, deltas: deltas, labels: labels, regressionTargets: targets,
            positive: sampled.positive, negative: sampled.negative)
        let positive = (0..<a).filter { sampled.positive[$0] != 0 },
            negative = (0..<a).filter { sampled.negative[$0] != 0 }
        XCTAssertEqual(positive.count, 32)
        XCTAssertEqual(negative.count, 32)
        let o = objectness.map(Double.init), d = deltas.map(Double.init)
        let reference = Self.rpnReference(
            o, d, labels: labels, targets: targets, positive: positive, negative: negative)
        XCTAssertEqual(Double(r.objectness), reference.objectness, accuracy: 1e-6 * reference.objectness)
        XCTAssertEqual(Double(r.boxReg), reference.box, accuracy: 1e-6 * reference.box)
        let total = { (o: [Double], d: [Double]) -> Double in
            let l = Self.rpnReference(o, d, labels: labels, targets: targets, positive: positive, negative: negative)
            return l.objectness + l.box
        }
        assertClose(
            r.objectnessGradient, finiteDifferences(o, at: positive + negative) { total($0, d) }, relativeToMax: 1e-5)
        let deltaCoordinates = positive.flatMap { i in (0..<4).map { 4 * i + $0 } }
        assertClose(
            r.deltasGradient, finiteDifferences(d, at: deltaCoordinates) { total(o, $0) }, relativeToMax: 1e-5)
    }

    func testRPNLossByHand() {
        // One positive with logit 0 (BCE log 2) and delta off by 1 (smooth-L1 1 - 1/18); one negative with logit 0.
        let r = RPNLoss.compute(
            objectness: [0, 0, 5], deltas: [1, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9], labels: [1, 0, -1],
            regressionTargets: [Float](repeating: 0, count: 12), positive: [1, 0, 0], negative: [0, 1, 0])
        XCTAssertEqual(r.objectness, Float.log(2), accuracy: 1e-7)
        XCTAssertEqual(r.boxReg, (1 - 1 / 18) / 2, accuracy: 1e-7)
        XCTAssertEqual(r.objectnessGradient, [-0.25, 0.25, 0])
        XCTAssertEqual(r.deltasGradient, [0.5, 0, 0, 0] + [Float](repeating: 0, count: 8))
    }

    func testRPNLossWithoutSamples() {
        // Every anchor ignored: torchvision divides 0 by 0; here both losses and all gradients are 0.
        let r = RPNLoss.compute(
            objectness: [1, 2], deltas: [Float](repeating: 1, count: 8), labels: [-1, -1],
            regressionTargets: [Float](repeating: 0, count: 8), positive: [0, 0], negative: [0, 0])
        XCTAssertEqual(r.objectness, 0)
        XCTAssertEqual(r.boxReg, 0)
        XCTAssertEqual(r.objectnessGradient, [0, 0])
        XCTAssertEqual(r.deltasGradient, [Float](repeating: 0, count: 8))
    }

    func testBCEIsStableForLargeLogits() {
        let r = RPNLoss.compute(
            objectness: [200, -200], deltas: [Float](repeating: 0, count: 8), labels: [0, 1],
            regressionTargets: [Float](repeating: 0, count: 8), positive: [0, 1], negative: [1, 0])
        // Each element costs 200 (a confident wrong answer); the gradients are ±1 / 2.
        XCTAssertEqual(r.objectness, 200)
        XCTAssertEqual(r.objectnessGradient, [0.5, -0.5])
    }

    // MARK: - Fast R-CNN

    func fastRCNNReference(_ logits: [Double], _ codes: [Double], k: Int, labels: [Int64], targets: [Float]) -> Double {
        let s = labels.count
        var classLoss = 0.0, boxLoss = 0.0
        for i in 0..<s {
            let row = logits[(i * k)..<(i * k + k)]
            let logSum = log(row.reduce(0.0) { $0 + exp($1) })
            classLoss += logSum - row[i * k + Int(labels[i])]
            if labels[i] > 0 {
                for c in 0..<4 {
                    boxLoss += Self.smoothL1(codes[4 * (i * k + Int(labels[i])) + c] - Double(targets[4 * i + c]))
                }
            }
        }
        return (classLoss + boxLoss) / Double(s)
    }

    func testFastRCNNLossMatchesReferenceAndFiniteDifferences() {
        let s = 40, k = 5
        let logits = randoms(s * k, -4, 4), codes = randoms(4 * s * k, -1, 1), targets = randoms(4 * s, -1, 1)
        let labels = (0..<s).map { _ in Int64(rng.next(below: UInt64(k))) }
        let r = RoIHeadsLoss.fastRCNN(
            classLogits: logits, boxRegression: codes, numClasses: k, labels: labels, regressionTargets: targets)
        let l = logits.map(Double.init), c = codes.map(Double.init)
        let reference = fastRCNNReference(l, c, k: k, labels: labels, targets: targets)
        XCTAssertEqual(Double(r.classifier + r.boxReg), reference, accuracy: 1e-6 * reference)
        // The box loss alone: the class loss of zero logits is log K per sample.
        let zeroLogits = [Double](repeating: 0, count: s * k)
        let box = fastRCNNReference(zeroLogits, c, k: k, labels: labels, targets: targets) - log(Double(k))
        XCTAssertEqual(Double(r.boxReg), box, accuracy: 1e-6 * box)
        assertClose(
            r.classLogitsGradient,
            finiteDifferences(l, at: Array(0..<(s * k))) {
                fastRCNNReference($0, c, k: k, labels: labels, targets: targets)
            }, relativeToMax: 1e-5)
        assertClose(
            r.boxRegressionGradient,
            finiteDifferences(c, at: Array(0..<(4 * s * k))) {
                fastRCNNReference(l, $0, k: k, labels: labels, targets: targets)
            }, relativeToMax: 1e-5)
        // Only the foreground samples' own class columns have a box gradient.
        for i in 0..<s {
            for j in 0..<k where Int64(j) != labels[i] || labels[i] == 0 {
                XCTAssertEqual(Array(r.boxRegressionGradient[(4 * (i * k + j))..<(4 * (i * k + j) + 4)]), [0, 0, 0, 0])
            }
        }
    }

    func testFastRCNNLossEdgeCases() {
        // Only background: no box loss; uniform logits cost log K.
        let r = RoIHeadsLoss.fastRCNN(
            classLogits: [0, 0, 0, 0, 0, 0], boxRegression: [Float](repeating: 3, count: 24), numClasses: 3,
            labels: [0, 0], regressionTargets: [Float](repeating: 0, count: 8))
        XCTAssertEqual(r.classifier, Float.log(3), accuracy: 1e-7)
        XCTAssertEqual(r.boxReg, 0)
        XCTAssertEqual(r.boxRegressionGradient, [Float](repeating: 0, count: 24))
        // Large logits do not overflow.
        let big = RoIHeadsLoss.fastRCNN(
            classLogits: [1000, 0], boxRegression: [Float](repeating: 0, count: 8), numClasses: 2, labels: [1],
            regressionTargets: [0, 0, 0, 0])
        XCTAssertEqual(big.classifier, 1000)
        XCTAssertEqual(big.classLogitsGradient, [1, -1])
        // No samples: zero, not torchvision's NaN.
        let none = RoIHeadsLoss.fastRCNN(
            classLogits: [], boxRegression: [], numClasses: 3, labels: [], regressionTargets: [])
        XCTAssertEqual(none.classifier, 0)
        XCTAssertEqual(none.boxReg, 0)
    }

    // MARK: - Mask R-CNN

    func testMaskRCNNLossMatchesReferenceAndFiniteDifferences() {
        let (k, m) = (3, 4)
        // Image 0: two 8 x 10 masks and three positives; image 1: no positives; image 2: one 6 x 6 mask, one positive.
        let masks0 = (0..<160).map { _ in UInt8(rng.next(below: 2)) }
        let masks2 = (0..<36).map { _ in UInt8(rng.next(below: 2)) }
        let proposals: [[Float]] = [[0, 0, 10, 8, 1.5, 2, 6, 7.5, 3, 1, 9, 4], [], [0.5, 0.5, 5, 5]]
        let labels: [[Int64]] = [[1, 2, 2], [], [1]]
        let matched: [[Int64]] = [[0, 1, 0], [], [0]]
        let p = 4
        let logits = randoms(p * k * m * m, -3, 3)
        let r = RoIHeadsLoss.maskRCNN(
            maskLogits: logits, numClasses: k, maskSize: m, proposals: proposals, labels: labels, matchedGT: matched,
            gtMasks: [masks0, [], masks2], maskHeights: [8, 5, 6], maskWidths: [10, 5, 6])
        var targets = [Float]()
        targets += RoIHeadsTargets.projectMasks(
            masks0, height: 8, width: 10, boxes: proposals[0], matchedGT: matched[0], maskSize: m)
        targets += RoIHeadsTargets.projectMasks(
            masks2, height: 6, width: 6, boxes: proposals[2], matchedGT: matched[2], maskSize: m)
        XCTAssertTrue(targets.contains { $0 > 0 && $0 < 1 })
        let flatLabels = labels.flatMap { $0 }
        let reference = { (x: [Double]) -> Double in
            var sum = 0.0
            for s in 0..<p {
                for j in 0..<(m * m) {
                    sum += Self.bce(x[(s * k + Int(flatLabels[s])) * m * m + j], Double(targets[s * m * m + j]))
                }
            }
            return sum / Double(p * m * m)
        }
        let x = logits.map(Double.init)
        XCTAssertEqual(Double(r.loss), reference(x), accuracy: 1e-6 * reference(x))
        assertClose(r.gradient, finiteDifferences(x, at: Array(x.indices), reference), relativeToMax: 1e-5)
    }

    func testMaskRCNNLossWithoutPositives() {
        let r = RoIHeadsLoss.maskRCNN(
            maskLogits: [], numClasses: 3, maskSize: 28, proposals: [[], []], labels: [[], []], matchedGT: [[], []],
            gtMasks: [[1, 0, 0, 1], []], maskHeights: [2, 3], maskWidths: [2, 3])
        XCTAssertEqual(r.loss, 0)
        XCTAssertEqual(r.gradient, [])
    }

    func testMaskLossDoesNotDependOnThreadCount() {
        let (k, m, p) = (2, 28, 60)
        let masks = (0..<(5 * 64 * 80)).map { _ in UInt8(rng.next(below: 2)) }
        var boxes = [Float](), labels = [Int64](), matched = [Int64]()
        for _ in 0..<p {
            let x = uniform(0, 60), y = uniform(0, 50)
            boxes += [x, y, x + uniform(1, 20), y + uniform(1, 14)]
            labels.append(1)
            matched.append(Int64(rng.next(below: 5)))
        }
        let logits = randoms(p * k * m * m, -3, 3)
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        var results = [(Float, [Float])]()
        for threads in [1, 4, 7] {
            Parallel.numThreads = threads
            results.append(
                RoIHeadsLoss.maskRCNN(
                    maskLogits: logits, numClasses: k, maskSize: m, proposals: [boxes], labels: [labels],
                    matchedGT: [matched], gtMasks: [masks], maskHeights: [64], maskWidths: [80]))
        }
        for r in results.dropFirst() {
            XCTAssertEqual(r.0.bitPattern, results[0].0.bitPattern)
            XCTAssertEqual(r.1.map(\.bitPattern), results[0].1.map(\.bitPattern))
        }
    }
}
