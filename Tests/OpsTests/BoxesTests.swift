import SwiftRCNNOps
import XCTest

/// Box kernels on small cases worked out by hand.
final class BoxesTests: XCTestCase {
    func testAreaAndPairwiseKinds() {
        // a = [0,0,2,2], b = [1,1,3,3]: intersection 1, union 7, enclosing box [0,0,3,3] with area 9.
        let a: [Double] = [0, 0, 2, 2]
        let b: [Double] = [1, 1, 3, 3]
        var out = [Double](repeating: 0, count: 1)
        func pair(_ kind: Boxes.IoUKind, eps: Double = 0) -> Double {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer {
                        Boxes.pairwiseIoU(
                            kind, pa.baseAddress!, count: 1, pb.baseAddress!, count: 1, eps: eps,
                            into: $0.baseAddress!)
                    }
                }
            }
            return out[0]
        }
        XCTAssertEqual(pair(.iou), 1.0 / 7)
        XCTAssertEqual(pair(.generalized), 1.0 / 7 - (9.0 - 7.0) / 9.0, accuracy: 1e-15)
        // Centres (1,1) and (2,2): d² = 2; enclosing diagonal² = 18.
        XCTAssertEqual(pair(.distance), 1.0 / 7 - 2.0 / 18.0, accuracy: 1e-15)
        // Same aspect ratio: v = 0, complete == distance.
        XCTAssertEqual(pair(.complete), pair(.distance), accuracy: 1e-15)
    }

    func testConvertRoundTrip() {
        let boxes: [Float] = [1, 2, 5, 10]
        var cxcywh = [Float](repeating: 0, count: 4)
        var back = [Float](repeating: 0, count: 4)
        Boxes.convert(boxes, count: 1, from: .xyxy, to: .cxcywh, into: &cxcywh)
        XCTAssertEqual(cxcywh, [3, 6, 4, 8])
        Boxes.convert(cxcywh, count: 1, from: .cxcywh, to: .xywh, into: &back)
        XCTAssertEqual(back, [1, 2, 4, 8])
    }

    func testNMSKeepsHighestOfOverlappingPair() {
        let boxes: [Float] = [0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60]
        let scores: [Float] = [0.5, 0.9, 0.7]
        var keep = [Int64](repeating: -1, count: 3)
        let n = NMS.nms(boxes: boxes, scores: scores, count: 3, iouThreshold: 0.5, keep: &keep)
        XCTAssertEqual(Array(keep.prefix(n)), [1, 2])
        // IoU of the pair is 81/119 ~ 0.68: a threshold above it keeps all three.
        let m = NMS.nms(boxes: boxes, scores: scores, count: 3, iouThreshold: 0.7, keep: &keep)
        XCTAssertEqual(Array(keep.prefix(m)), [1, 2, 0])
    }

    /// Issue #9: a threshold above 1 trapped in the grid path (64 boxes or more). An IoU never exceeds 1, so 1 or
    /// more (and NaN) suppresses nothing; below 0 every box whose IoU with a kept box is a number is suppressed.
    func testNMSAnyThreshold() {
        for n in [8, 64, 300] {
            var boxes = [Float]()
            for i in 0..<n { boxes += [Float(i), 0, Float(i + 10), 10] }
            boxes += [0, 0, 0, 0, 5, 5, 5, 5]  // zero area: 0 / 0 with each other
            let count = n + 2
            let scores = (0..<count).map { Float(count - $0) }
            var keep = [Int64](repeating: -1, count: count)
            for t in [1.5, 1.0, 1.0000001, .infinity, .nan, Double.greatestFiniteMagnitude] {
                let k = NMS.nms(boxes: boxes, scores: scores, count: count, iouThreshold: t, keep: &keep)
                XCTAssertEqual(Array(keep.prefix(k)), (0..<Int64(count)).map { $0 }, "n = \(n), t = \(t)")
                let idxs = [Int64](repeating: 0, count: count)
                let kb = NMS.batchedNMS(
                    boxes: boxes, scores: scores, idxs: idxs, count: count, iouThreshold: t,
                    keep: &keep)
                XCTAssertEqual(kb, count, "n = \(n), t = \(t)")
            }
            for t in [-0.5, -Double.infinity] {
                let k = NMS.nms(boxes: boxes, scores: scores, count: count, iouThreshold: t, keep: &keep)
                XCTAssertEqual(Array(keep.prefix(k)), [0], "n = \(n), t = \(t)")
            }
            // The grid path agrees with the direct one at thresholds just below 1.
            let k = NMS.nms(boxes: boxes, scores: scores, count: count, iouThreshold: 0.9, keep: &keep)
            XCTAssertEqual(k, count, "n = \(n): IoUs of neighbours are 9 / 11")
        }
    }

    /// Issue #9: one box far away (or far larger) squeezed every other box into one cell of the NMS grid, so NMS
    /// became quadratic. The outliers overlap nothing: the result is the rest's, with them kept.
    func testNMSOutliersKeepTheGridFine() {
        var generator = SystemRandomNumberGenerator()
        let n = 30000
        var bulk = [Float]()
        for _ in 0..<n {
            let (x, y) = (Float.random(in: 0..<1000, using: &generator), Float.random(in: 0..<1000, using: &generator))
            bulk += [x, y, x + .random(in: 5..<50, using: &generator), y + .random(in: 5..<50, using: &generator)]
        }
        let outliers: [[Float]] = [
            [1e37, 1e37, 1e38, 1e38], [1e38, 1e38, 1.000001e38, 1.000001e38],
            [1e20, 1e20, 2e20, 2e20],
        ]
        let scores = (0..<(n + outliers.count)).map { _ in Float.random(in: 0..<1, using: &generator) }
        for t in [0.0, 0.5] {
            var keepBulk = [Int64](repeating: -1, count: n)
            let k = NMS.nms(boxes: bulk, scores: scores, count: n, iouThreshold: t, keep: &keepBulk)
            let all = bulk + outliers.flatMap { $0 }
            var expected = Array(keepBulk.prefix(k)) + (n..<all.count / 4).map { Int64($0) }
            expected.sort { scores[Int($0)] > scores[Int($1)] || (scores[Int($0)] == scores[Int($1)] && $0 < $1) }
            var keep = [Int64](repeating: -1, count: all.count / 4)
            let start = ContinuousClock.now
            let kept = NMS.nms(boxes: all, scores: scores, count: all.count / 4, iouThreshold: t, keep: &keep)
            let elapsed = ContinuousClock.now - start
            XCTAssertEqual(Array(keep.prefix(kept)), expected, "t = \(t)")
            // Quadratic, it takes minutes in a debug build; linear, well under a second.
            XCTAssertLessThan(elapsed, .seconds(5), "t = \(t)")
        }
    }

    func testSoftNMSGaussianDecay() {
        let boxes: [Double] = [0, 0, 10, 10, 0, 0, 10, 5]
        let scores: [Double] = [0.9, 0.8]
        var keep = [Int64](repeating: -1, count: 2)
        var kept = [Double](repeating: 0, count: 2)
        let n = SoftNMS.run(
            boxes: boxes, scores: scores, count: 2, method: .gaussian, iouThreshold: 0.3, sigma: 0.5,
            scoreThreshold: 0.001, keep: &keep, keptScores: &kept)
        XCTAssertEqual(n, 2)
        XCTAssertEqual(keep, [0, 1])
        // IoU = 50 / 100 = 0.5: 0.8 * exp(-0.25 / 0.5).
        XCTAssertEqual(kept[1], 0.8 * exp(-0.5), accuracy: 1e-12)
    }
}
