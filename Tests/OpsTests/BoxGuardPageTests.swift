import SwiftRCNNOps
import XCTest

/// The box, coding, suppression, anchor, matching and sampling kernels read and write only inside their buffers
/// (see `GuardedBuffer`), on counts around vector widths and NMS's grid threshold: run on guarded copies of every
/// buffer, they must give what they give on ordinary arrays (and not fault).
final class BoxGuardPageTests: XCTestCase {
    let counts = [0, 1, 15, 16, 17, 33, 65]

    /// `n` boxes `(x1, y1, x2, y2)` scattered over a 50 x 50 square, up to 28 wide and high, a few of them empty
    /// or inverted.
    func boxes<T: KernelFloat>(_ n: Int, seed: Int = 0) -> [T] {
        let v: [T] = guardValues(4 * n, seed: seed)
        return (0..<n).flatMap { i -> [T] in
            let x1 = 25 * (v[4 * i] + 1), y1 = 25 * (v[4 * i + 1] + 1)
            return [x1, y1, x1 + 15 * (v[4 * i + 2] + 1) - 2, y1 + 15 * (v[4 * i + 3] + 1) - 2]
        }
    }

    // MARK: Boxes

    func checkBoxes<T: KernelFloat>(_: T.Type) {
        for n in counts {
            let b: [T] = boxes(n)
            var area = [T](repeating: -7, count: n), clipped = [T](repeating: -7, count: 4 * n)
            var keep = [Int64](repeating: -7, count: n)
            Boxes.area(b, count: n, into: &area)
            Boxes.clipToImage(b, count: n, height: 30, width: 40, into: &clipped)
            let kept = Boxes.removeSmall(b, count: n, minSize: 5, keep: &keep)
            for guardAfter in [true, false] {
                let gb = GuardedBuffer(b, guardAfter: guardAfter)
                let ga = GuardedBuffer([T](repeating: -7, count: n), guardAfter: guardAfter)
                Boxes.area(gb.pointer, count: n, into: ga.pointer)
                XCTAssertEqual(ga.array, area, "\(n)")
                let gc = GuardedBuffer([T](repeating: -7, count: 4 * n), guardAfter: guardAfter)
                Boxes.clipToImage(gb.pointer, count: n, height: 30, width: 40, into: gc.pointer)
                XCTAssertEqual(gc.array, clipped, "\(n)")
                let gk = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
                XCTAssertEqual(Boxes.removeSmall(gb.pointer, count: n, minSize: 5, keep: gk.pointer), kept)
                XCTAssertEqual(gk.array, keep, "\(n)")
            }
            let formats: [Boxes.Format] = [.xyxy, .xywh, .cxcywh]
            for from in formats {
                for to in formats {
                    var want = [T](repeating: -7, count: 4 * n)
                    Boxes.convert(b, count: n, from: from, to: to, into: &want)
                    for guardAfter in [true, false] {
                        let gb = GuardedBuffer(b, guardAfter: guardAfter)
                        let out = GuardedBuffer([T](repeating: -7, count: 4 * n), guardAfter: guardAfter)
                        Boxes.convert(gb.pointer, count: n, from: from, to: to, into: out.pointer)
                        XCTAssertEqual(out.array, want, "\((n, from, to))")
                        Boxes.convert(gb.pointer, count: n, from: from, to: to, into: gb.pointer)
                        XCTAssertEqual(gb.array, want, "in place \((n, from, to))")
                    }
                }
            }
        }
    }

    func testBoxes() {
        checkBoxes(Float.self)
        checkBoxes(Double.self)
    }

    func checkPairwiseIoU<T: KernelFloat>(_: T.Type) {
        for (n, m) in [(1, 1), (1, 33), (15, 16), (17, 31), (33, 17), (2, 65)] {
            for withNaN in [false, true] {
                var b1: [T] = boxes(n), b2: [T] = boxes(m, seed: 5)
                if withNaN {
                    b1[4 * n - 2] = .nan
                    b2[1] = .nan
                }
                for kind in [Boxes.IoUKind.iou, .generalized, .distance, .complete] {
                    var want = [T](repeating: -7, count: n * m)
                    Boxes.pairwiseIoU(kind, b1, count: n, b2, count: m, eps: 1e-7, into: &want)
                    for guardAfter in [true, false] {
                        let g1 = GuardedBuffer(b1, guardAfter: guardAfter)
                        let g2 = GuardedBuffer(b2, guardAfter: guardAfter)
                        let out = GuardedBuffer([T](repeating: -7, count: n * m), guardAfter: guardAfter)
                        Boxes.pairwiseIoU(
                            kind, g1.pointer, count: n, g2.pointer, count: m, eps: 1e-7,
                            into: out.pointer)
                        XCTAssertTrue(sameValues(out.array, want), "\((T.self, n, m, kind, withNaN))")
                    }
                }
            }
        }
    }

    func testPairwiseIoU() {
        checkPairwiseIoU(Float.self)
        checkPairwiseIoU(Double.self)
    }

    // MARK: BoxCoding

    func checkBoxCoding<T: KernelFloat>(_: T.Type) {
        let weights: (T, T, T, T) = (10, 10, 5, 5)
        for n in counts + [1025] {
            let reference: [T] = boxes(n), proposals: [T] = boxes(n, seed: 3)
            var want = [T](repeating: -7, count: 4 * n)
            BoxCoding.encode(reference: reference, proposals: proposals, count: n, weights: weights, into: &want)
            for guardAfter in [true, false] {
                let gr = GuardedBuffer(reference, guardAfter: guardAfter)
                let gp = GuardedBuffer(proposals, guardAfter: guardAfter)
                let out = GuardedBuffer([T](repeating: -7, count: 4 * n), guardAfter: guardAfter)
                BoxCoding.encode(
                    reference: gr.pointer, proposals: gp.pointer, count: n, weights: weights,
                    into: out.pointer)
                XCTAssertTrue(sameValues(out.array, want), "encode \(n)")
            }
        }
        // Blocks of 1024 / k rows: one partial block, several, and a last row alone; codes with NaN, infinities
        // and sizes past the clip.
        for (n, k) in [(1, 1), (15, 3), (16, 1), (17, 91), (33, 2), (1025, 1), (13, 80), (0, 4)] {
            let b: [T] = boxes(n)
            var codes: [T] = guardValues(4 * n * k, seed: 7).map { 6 * $0 }
            for (i, v) in [T.nan, .infinity, -.infinity, 100].enumerated() where 4 * i + 2 < codes.count {
                codes[4 * i + 2] = v
            }
            var want = [T](repeating: -7, count: 4 * n * k)
            BoxCoding.decode(
                codes: codes, boxes: b, count: n, groups: k, weights: weights, xformClip: 4.135,
                into: &want)
            for guardAfter in [true, false] {
                let gc = GuardedBuffer(codes, guardAfter: guardAfter), gb = GuardedBuffer(b, guardAfter: guardAfter)
                let out = GuardedBuffer([T](repeating: -7, count: 4 * n * k), guardAfter: guardAfter)
                BoxCoding.decode(
                    codes: gc.pointer, boxes: gb.pointer, count: n, groups: k, weights: weights,
                    xformClip: 4.135, into: out.pointer)
                XCTAssertTrue(sameValues(out.array, want), "decode \((n, k))")
            }
        }
    }

    func testBoxCoding() {
        checkBoxCoding(Float.self)
        checkBoxCoding(Double.self)
    }

    // MARK: NMS

    func checkNMS<T: KernelFloat>(_: T.Type) {
        // Below and above `NMS.gridMinimumBoxes` (64), so both the direct and the grid path run.
        for n in [0, 1, 17, 63, 64, 65, 200] {
            let b: [T] = boxes(n), scores: [T] = guardValues(n, seed: 11)
            let idxs = (0..<n).map { Int64($0 % 3) }
            for threshold in [0.5, 0.0, 0.9, -0.1] {
                var keep = [Int64](repeating: -7, count: n), keepBatched = keep
                let kept = NMS.nms(boxes: b, scores: scores, count: n, iouThreshold: threshold, keep: &keep)
                let keptBatched = NMS.batchedNMS(
                    boxes: b, scores: scores, idxs: idxs, count: n,
                    iouThreshold: threshold, keep: &keepBatched)
                for guardAfter in [true, false] {
                    let gb = GuardedBuffer(b, guardAfter: guardAfter)
                    let gs = GuardedBuffer(scores, guardAfter: guardAfter)
                    let gi = GuardedBuffer(idxs, guardAfter: guardAfter)
                    let gk = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
                    XCTAssertEqual(
                        NMS.nms(
                            boxes: gb.pointer, scores: gs.pointer, count: n, iouThreshold: threshold,
                            keep: gk.pointer), kept)
                    XCTAssertEqual(gk.array, keep, "nms \((n, threshold))")
                    let gkb = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
                    XCTAssertEqual(
                        NMS.batchedNMS(
                            boxes: gb.pointer, scores: gs.pointer, idxs: gi.pointer, count: n,
                            iouThreshold: threshold, keep: gkb.pointer), keptBatched)
                    XCTAssertEqual(gkb.array, keepBatched, "batched \((n, threshold))")
                }
            }
            for method in [SoftNMS.Method.linear, .gaussian] {
                var keep = [Int64](repeating: -7, count: n), keptScores = [T](repeating: -7, count: n)
                let kept = SoftNMS.run(
                    boxes: b, scores: scores, count: n, method: method, iouThreshold: 0.3,
                    sigma: 0.5, scoreThreshold: 0.001, keep: &keep, keptScores: &keptScores)
                for guardAfter in [true, false] {
                    let gb = GuardedBuffer(b, guardAfter: guardAfter)
                    let gs = GuardedBuffer(scores, guardAfter: guardAfter)
                    let gk = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
                    let gks = GuardedBuffer([T](repeating: -7, count: n), guardAfter: guardAfter)
                    XCTAssertEqual(
                        SoftNMS.run(
                            boxes: gb.pointer, scores: gs.pointer, count: n, method: method,
                            iouThreshold: 0.3, sigma: 0.5, scoreThreshold: 0.001,
                            keep: gk.pointer, keptScores: gks.pointer), kept)
                    XCTAssertEqual(gk.array, keep, "soft \((n, method))")
                    XCTAssertEqual(gks.array, keptScores, "soft \((n, method))")
                }
            }
        }
    }

    func testNMS() {
        checkNMS(Float.self)
        checkNMS(Double.self)
    }

    // MARK: Anchors, Matching, BalancedSampler

    func testAnchors() {
        let allSizes: [Float] = [32, 64, 128, 256, 512], allRatios: [Float] = [0.5, 1, 2]
        for s in 1...5 {
            for r in 1...3 {
                let sizes = Array(allSizes.prefix(s)), ratios = Array(allRatios.prefix(r))
                var want = [Float](repeating: -7, count: 4 * s * r)
                Anchors.cellAnchors(sizes: sizes, count: s, ratios: ratios, count: r, into: &want)
                for guardAfter in [true, false] {
                    let gs = GuardedBuffer(sizes, guardAfter: guardAfter)
                    let gr = GuardedBuffer(ratios, guardAfter: guardAfter)
                    let out = GuardedBuffer([Float](repeating: -7, count: want.count), guardAfter: guardAfter)
                    Anchors.cellAnchors(sizes: gs.pointer, count: s, ratios: gr.pointer, count: r, into: out.pointer)
                    XCTAssertEqual(out.array, want, "\((s, r))")
                }
            }
        }
        for (h, w) in [(1, 1), (15, 17), (16, 33), (0, 4)] {
            for a in [1, 3, 15] {
                let cell: [Float] = guardValues(4 * a).map { 100 * $0 }
                checkAnchorGrid(Float.self, cell: cell, count: a, height: h, width: w)
                checkAnchorGrid(Double.self, cell: cell, count: a, height: h, width: w)
            }
        }
    }

    func checkAnchorGrid<T: KernelFloat>(_: T.Type, cell: [Float], count a: Int, height h: Int, width w: Int) {
        var want = [T](repeating: -7, count: 4 * h * w * a)
        Anchors.grid(cell: cell, count: a, height: h, width: w, strideY: 8, strideX: 16, into: &want)
        for guardAfter in [true, false] {
            let gc = GuardedBuffer(cell, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
            Anchors.grid(cell: gc.pointer, count: a, height: h, width: w, strideY: 8, strideX: 16, into: out.pointer)
            XCTAssertEqual(out.array, want, "\((T.self, h, w, a))")
        }
    }

    func testMatching() {
        for (m, n) in [(1, 1), (3, 17), (16, 33), (5, 100), (17, 16)] {
            // Qualities in [0, 1) with repeats (the generator's period), so ties occur.
            let quality: [Float] = guardValues(m * n).map { ($0 + 1) / 2 }
            for allowLow in [false, true] {
                var want = [Int64](repeating: -7, count: n)
                Matching.match(
                    quality: quality, groundTruths: m, predictions: n, highThreshold: 0.7,
                    lowThreshold: 0.3, allowLowQualityMatches: allowLow, matches: &want)
                for guardAfter in [true, false] {
                    let gq = GuardedBuffer(quality, guardAfter: guardAfter)
                    let out = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
                    Matching.match(
                        quality: gq.pointer, groundTruths: m, predictions: n, highThreshold: 0.7,
                        lowThreshold: 0.3, allowLowQualityMatches: allowLow, matches: out.pointer)
                    XCTAssertEqual(out.array, want, "\((m, n, allowLow))")
                }
            }
        }
    }

    func testBalancedSampler() {
        for n in [0, 1, 17, 33, 100] {
            let matched = (0..<n).map { Int64($0 * 7 % 5) - 2 }
            for (batch, fraction) in [(0, 0.5), (1, 0.25), (16, 0.25), (512, 1.0), (8, 0.0)] {
                var positive = [UInt8](repeating: 7, count: n), negative = positive
                BalancedSampler.sample(
                    matchedIdxs: matched, count: n, batchSizePerImage: batch,
                    positiveFraction: fraction, seed: 42, positive: &positive, negative: &negative)
                for guardAfter in [true, false] {
                    let gm = GuardedBuffer(matched, guardAfter: guardAfter)
                    let gp = GuardedBuffer([UInt8](repeating: 7, count: n), guardAfter: guardAfter)
                    let gn = GuardedBuffer([UInt8](repeating: 7, count: n), guardAfter: guardAfter)
                    BalancedSampler.sample(
                        matchedIdxs: gm.pointer, count: n, batchSizePerImage: batch,
                        positiveFraction: fraction, seed: 42, positive: gp.pointer,
                        negative: gn.pointer)
                    XCTAssertEqual(gp.array, positive, "\((n, batch, fraction))")
                    XCTAssertEqual(gn.array, negative, "\((n, batch, fraction))")
                }
            }
        }
    }

    // MARK: Legacy

    func testLegacy() {
        let ratios = [0.5, 1, 2], scales = [8.0, 16, 32]
        var anchors = [Double](repeating: -7, count: 36)
        Legacy.generateAnchors(baseSize: 16, ratios: ratios, count: 3, scales: scales, count: 3, into: &anchors)
        for guardAfter in [true, false] {
            let gr = GuardedBuffer(ratios, guardAfter: guardAfter), gs = GuardedBuffer(scales, guardAfter: guardAfter)
            let out = GuardedBuffer([Double](repeating: -7, count: 36), guardAfter: guardAfter)
            Legacy.generateAnchors(
                baseSize: 16, ratios: gr.pointer, count: 3, scales: gs.pointer, count: 3,
                into: out.pointer)
            XCTAssertEqual(out.array, anchors)
        }
        for n in counts {
            checkLegacy(Float.self, count: n)
            checkLegacy(Double.self, count: n)
        }
    }

    func checkLegacy<T: KernelFloat>(_: T.Type, count n: Int) {
        let ex: [T] = boxes(n), gt: [T] = boxes(n, seed: 3), k = 3
        let deltas: [T] = guardValues(4 * n * k, seed: 5)
        var dets = [T]()
        for i in 0..<n { dets += ex[(4 * i)..<(4 * i + 4)] + [T((i * 37) % 11)] }
        var targets = [T](repeating: -7, count: 4 * n), pred = [T](repeating: -7, count: 4 * n * k)
        var clipped = pred, keep = [Int64](repeating: -7, count: n)
        Legacy.bboxTransform(ex: ex, gt: gt, count: n, into: &targets)
        Legacy.bboxTransformInv(boxes: ex, deltas: deltas, count: n, groups: k, into: &pred)
        Legacy.clipBoxes(pred, values: 4 * n * k, maxY: 29, maxX: 39, into: &clipped)
        let kept = Legacy.nms(dets: dets, count: n, threshold: 0.5, keep: &keep)
        for guardAfter in [true, false] {
            let label = "\((T.self, n, guardAfter))"
            let ge = GuardedBuffer(ex, guardAfter: guardAfter), gg = GuardedBuffer(gt, guardAfter: guardAfter)
            let gtargets = GuardedBuffer([T](repeating: -7, count: 4 * n), guardAfter: guardAfter)
            Legacy.bboxTransform(ex: ge.pointer, gt: gg.pointer, count: n, into: gtargets.pointer)
            XCTAssertTrue(sameValues(gtargets.array, targets), label)
            let gd = GuardedBuffer(deltas, guardAfter: guardAfter)
            let gp = GuardedBuffer([T](repeating: -7, count: 4 * n * k), guardAfter: guardAfter)
            Legacy.bboxTransformInv(boxes: ge.pointer, deltas: gd.pointer, count: n, groups: k, into: gp.pointer)
            XCTAssertTrue(sameValues(gp.array, pred), label)
            let gc = GuardedBuffer([T](repeating: -7, count: 4 * n * k), guardAfter: guardAfter)
            Legacy.clipBoxes(gp.pointer, values: 4 * n * k, maxY: 29, maxX: 39, into: gc.pointer)
            XCTAssertTrue(sameValues(gc.array, clipped), label)
            Legacy.clipBoxes(gp.pointer, values: 4 * n * k, maxY: 29, maxX: 39, into: gp.pointer)
            XCTAssertTrue(sameValues(gp.array, clipped), "in place \(label)")
            let gdets = GuardedBuffer(dets, guardAfter: guardAfter)
            let gk = GuardedBuffer([Int64](repeating: -7, count: n), guardAfter: guardAfter)
            XCTAssertEqual(Legacy.nms(dets: gdets.pointer, count: n, threshold: 0.5, keep: gk.pointer), kept)
            XCTAssertEqual(gk.array, keep, label)
        }
    }
}
