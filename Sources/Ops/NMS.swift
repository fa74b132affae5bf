/// Non-maximum suppression on row-major `(N, 4)` boxes `(x1, y1, x2, y2)` and `(N,)` scores.
///
/// Greedy NMS as torchvision defines it: visit boxes by decreasing score; a box is kept unless a box kept before it
/// overlaps it with IoU > threshold. Ties in score are visited in increasing index order. The IoU of a pair is
/// computed in the element type exactly as torchvision's CPU kernel does and compared to the threshold in `Double`.
///
/// Callers guarantee no NaN in boxes or scores (validated at the boundary).
public enum NMS {
    /// Indices `0..<n` ordered by decreasing score, ties by increasing index.
    @inlinable
    public static func order<T: KernelFloat>(_ scores: UnsafePointer<T>, count n: Int) -> [Int] {
        var order = Array(0..<n)
        order.sort { a, b in scores[a] > scores[b] || (scores[a] == scores[b] && a < b) }
        return order
    }

    /// Greedy NMS. Writes kept indices, in decreasing score order, into `keep`; returns how many.
    @inlinable
    public static func nms<T: KernelFloat>(
        boxes: UnsafePointer<T>, scores: UnsafePointer<T>, count n: Int, iouThreshold: Double,
        keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        if n == 0 { return 0 }
        let order = order(scores, count: n)
        return suppress(boxes: boxes, order: order, iouThreshold: iouThreshold, keep: keep)
    }

    /// Greedy NMS over the boxes listed in `order` (already in visiting order). Writes kept indices (values from
    /// `order`) into `keep` and returns how many.
    ///
    /// An IoU is at most 1 or NaN (see `iou`), so a threshold of 1 or more, or NaN, suppresses nothing, and a
    /// negative one every box whose IoU with a kept box is a number, as in torchvision.
    ///
    /// Large inputs use a uniform grid over the kept boxes (`GridIndex`), so each candidate is tested only against
    /// kept boxes that share a grid cell with it. That is exact for `iouThreshold >= 0`: IoU > threshold >= 0
    /// needs an intersection of positive area, and two boxes whose interiors meet share the cell of any common
    /// point. Negative thresholds, non-finite coordinates and small inputs take the direct path, which tests each
    /// candidate against every kept box. Both compute the IoU with the same expression.
    @inlinable
    public static func suppress<T: KernelFloat>(
        boxes: UnsafePointer<T>, order: [Int], iouThreshold: Double, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        if !(iouThreshold < 1) {
            for (k, idx) in order.enumerated() { keep[k] = Int64(idx) }
            return order.count
        }
        if order.count >= gridMinimumBoxes && iouThreshold >= 0,
            let grid = GridIndex(boxes: boxes, order: order)
        {
            return grid.suppress(boxes: boxes, order: order, iouThreshold: iouThreshold, keep: keep)
        }
        return suppressDirect(boxes: boxes, order: order, iouThreshold: iouThreshold, keep: keep)
    }

    /// Below this many boxes the grid costs more than it saves.
    @usableFromInline static let gridMinimumBoxes = 64

    /// IoU of a kept box (with precomputed area) and a candidate, in torchvision's order of operations.
    ///
    /// The result is at most 1 or NaN, rounding included: rounding is monotone, so the intersection's sides and
    /// area are at most those of either box, and the union, (karea + area) - inter >= 2·inter - inter, is at
    /// least the intersection. A box with a negative side meets nothing (its intersection is 0).
    @inlinable @inline(__always)
    static func iou<T: KernelFloat>(
        _ x1: T, _ y1: T, _ x2: T, _ y2: T, _ area: T, _ kx1: T, _ ky1: T, _ kx2: T, _ ky2: T, _ karea: T
    ) -> T {
        let w = clampMin0(minimum(x2, kx2) - maximum(x1, kx1))
        let h = clampMin0(minimum(y2, ky2) - maximum(y1, ky1))
        let inter = w * h
        return inter / (karea + area - inter)
    }

    /// Tests each candidate against every kept box, held in struct-of-arrays form for a tight inner loop.
    @inlinable
    static func suppressDirect<T: KernelFloat>(
        boxes: UnsafePointer<T>, order: [Int], iouThreshold: Double, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        let n = order.count
        var kx1 = [T](), ky1 = [T](), kx2 = [T](), ky2 = [T](), karea = [T]()
        kx1.reserveCapacity(n); ky1.reserveCapacity(n); kx2.reserveCapacity(n); ky2.reserveCapacity(n)
        karea.reserveCapacity(n)
        var kept = 0
        candidates: for idx in order {
            let b = boxes + 4 * idx
            let (x1, y1, x2, y2) = (b[0], b[1], b[2], b[3])
            let area = (x2 - x1) * (y2 - y1)
            for k in 0..<kept
            where Double(iou(x1, y1, x2, y2, area, kx1[k], ky1[k], kx2[k], ky2[k], karea[k])) > iouThreshold {
                continue candidates
            }
            keep[kept] = Int64(idx)
            kx1.append(x1); ky1.append(y1); kx2.append(x2); ky2.append(y2); karea.append(area)
            kept += 1
        }
        return kept
    }

    /// NMS independently per category `idxs[i]`. Writes kept indices in decreasing score order (ties by index)
    /// into `keep`; returns how many.
    @inlinable
    public static func batchedNMS<T: KernelFloat>(
        boxes: UnsafePointer<T>, scores: UnsafePointer<T>, idxs: UnsafePointer<Int64>, count n: Int,
        iouThreshold: Double, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        if n == 0 { return 0 }
        let order = order(scores, count: n)
        // Split the global visiting order by category; each category's list stays in score order.
        var groups = [Int64: [Int]]()
        for i in order { groups[idxs[i], default: []].append(i) }
        let lists = Array(groups.values)
        var keptPerGroup = [[Int64]](repeating: [], count: lists.count)
        keptPerGroup.withUnsafeMutableBufferPointer { results in
            let results = results
            Parallel.forEachChunk(lists.count) { range in
                for g in range {
                    let list = lists[g]
                    var local = [Int64](repeating: 0, count: list.count)
                    let k = local.withUnsafeMutableBufferPointer {
                        suppress(boxes: boxes, order: list, iouThreshold: iouThreshold, keep: $0.baseAddress!)
                    }
                    local.removeLast(list.count - k)
                    results[g] = local
                }
            }
        }
        // Merge back into one list in the global order.
        var isKept = [Bool](repeating: false, count: n)
        for list in keptPerGroup { for i in list { isKept[Int(i)] = true } }
        var k = 0
        for i in order where isKept[i] {
            keep[k] = Int64(i)
            k += 1
        }
        return k
    }
}

/// Soft-NMS (Bodla et al., "Soft-NMS — Improving Object Detection With One Line of Code", ICCV 2017).
///
/// Repeatedly select the remaining box with the highest (decayed) score, then decay the score of every other
/// remaining box b by a weight of its IoU with the selected box M:
/// - linear: s_b *= 1 - IoU(M, b) when IoU(M, b) > iouThreshold, else unchanged;
/// - Gaussian: s_b *= exp(-IoU(M, b)² / sigma).
/// A box whose score falls below `scoreThreshold` is dropped. Selection ties go to the lower index. O(N²).
public enum SoftNMS {
    public enum Method: Int32, Sendable { case linear = 0, gaussian = 1 }

    /// Writes the selected indices and their scores at selection into `keep`/`keptScores`; returns how many.
    @inlinable
    public static func run<T: KernelFloat>(
        boxes: UnsafePointer<T>, scores: UnsafePointer<T>, count n: Int, method: Method, iouThreshold: Double,
        sigma: Double, scoreThreshold: Double, keep: UnsafeMutablePointer<Int64>, keptScores: UnsafeMutablePointer<T>
    ) -> Int {
        // Remaining candidates, compacted as boxes are selected or dropped.
        var remaining = [Int]()
        var current = [T]()
        for i in 0..<n where Double(scores[i]) >= scoreThreshold {
            remaining.append(i)
            current.append(scores[i])
        }
        var kept = 0
        while !remaining.isEmpty {
            var best = 0
            for r in 1..<remaining.count where current[r] > current[best] { best = r }
            let m = remaining[best]
            keep[kept] = Int64(m)
            keptScores[kept] = current[best]
            kept += 1
            remaining.remove(at: best)
            current.remove(at: best)
            let a = boxes + 4 * m
            let areaM = (a[2] - a[0]) * (a[3] - a[1])
            var w = 0
            for r in 0..<remaining.count {
                let b = boxes + 4 * remaining[r]
                let iw = clampMin0(minimum(a[2], b[2]) - maximum(a[0], b[0]))
                let ih = clampMin0(minimum(a[3], b[3]) - maximum(a[1], b[1]))
                let inter = iw * ih
                let iou = inter / (areaM + (b[2] - b[0]) * (b[3] - b[1]) - inter)
                var s = current[r]
                switch method {
                case .linear: if Double(iou) > iouThreshold { s *= 1 - iou }
                case .gaussian: s *= T.exp(-(iou * iou) / T(sigma))
                }
                if Double(s) >= scoreThreshold {
                    remaining[w] = remaining[r]
                    current[w] = s
                    w += 1
                }
            }
            remaining.removeLast(remaining.count - w)
            current.removeLast(current.count - w)
        }
        return kept
    }
}
