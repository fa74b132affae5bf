/// The box conventions of py-faster-rcnn (Girshick et al.), which predate torchvision's: pixel boxes
/// `(x1, y1, x2, y2)` include both end pixels, so a box's width is `x2 - x1 + 1` and its centre `x1 + 0.5 w`.
///
/// Arithmetic follows the original NumPy code's order of operations in the element type (NumPy keeps float32
/// arrays float32 against Python scalars). Buffers are row-major; `(n, 4k)` arrays hold k boxes per row.
public enum Legacy {
    /// The classic anchor table into `out` (ratios.count * scales.count, 4), ratio-major then scale.
    ///
    /// Starting from the box `[0, 0, baseSize - 1, baseSize - 1]` (width `baseSize`, centre `(baseSize - 1) / 2`):
    /// for each ratio r, width round(sqrt(baseSize² / r)) and height round(width r) (ties to even, as `np.round`),
    /// then for each scale s, that width and height times s; every box keeps the base centre.
    @inlinable
    public static func generateAnchors(
        baseSize: Double, ratios: UnsafePointer<Double>, count numRatios: Int, scales: UnsafePointer<Double>,
        count numScales: Int, into out: UnsafeMutablePointer<Double>
    ) {
        // The base box [0, 0, baseSize - 1, baseSize - 1] as width, height and centre.
        let x2 = baseSize - 1
        let w = x2 - 0 + 1
        let area = w * w
        let centre = 0 + 0.5 * (w - 1)
        for r in 0..<numRatios {
            let rw = (area / ratios[r]).squareRoot().rounded(.toNearestOrEven)
            let rh = (rw * ratios[r]).rounded(.toNearestOrEven)
            // The ratio anchor's corners, then its own width and height (what the scale step measures).
            let (ax1, ay1) = (centre - 0.5 * (rw - 1), centre - 0.5 * (rh - 1))
            let (ax2, ay2) = (centre + 0.5 * (rw - 1), centre + 0.5 * (rh - 1))
            let aw = ax2 - ax1 + 1, ah = ay2 - ay1 + 1
            let cx = ax1 + 0.5 * (aw - 1), cy = ay1 + 0.5 * (ah - 1)
            for s in 0..<numScales {
                let sw = aw * scales[s], sh = ah * scales[s]
                let o = out + 4 * (r * numScales + s)
                o[0] = cx - 0.5 * (sw - 1)
                o[1] = cy - 0.5 * (sh - 1)
                o[2] = cx + 0.5 * (sw - 1)
                o[3] = cy + 0.5 * (sh - 1)
            }
        }
    }

    /// Regression targets of `gt` (n, 4) relative to `ex` (n, 4) into `targets` (n, 4):
    /// dx = (gt_cx - ex_cx) / ex_w, dy likewise, dw = log(gt_w / ex_w), dh likewise.
    @inlinable
    public static func bboxTransform<T: KernelFloat>(
        ex: UnsafePointer<T>, gt: UnsafePointer<T>, count n: Int, into targets: UnsafeMutablePointer<T>
    ) {
        for i in 0..<n {
            let e = ex + 4 * i, g = gt + 4 * i
            let exW = e[2] - e[0] + 1, exH = e[3] - e[1] + 1
            let exCx = e[0] + T(0.5) * exW, exCy = e[1] + T(0.5) * exH
            let gtW = g[2] - g[0] + 1, gtH = g[3] - g[1] + 1
            let gtCx = g[0] + T(0.5) * gtW, gtCy = g[1] + T(0.5) * gtH
            let o = targets + 4 * i
            o[0] = (gtCx - exCx) / exW
            o[1] = (gtCy - exCy) / exH
            o[2] = T.log(gtW / exW)
            o[3] = T.log(gtH / exH)
        }
    }

    /// Applies `deltas` (n, 4k) to `boxes` (n, 4) into `pred` (n, 4k): centre = (dx w + cx, dy h + cy),
    /// size = (exp(dw) w, exp(dh) h) (no clamp), x1 = cx' - 0.5 w', x2 = cx' + 0.5 w' - 1, y likewise.
    @inlinable
    public static func bboxTransformInv<T: KernelFloat>(
        boxes: UnsafePointer<T>, deltas: UnsafePointer<T>, count n: Int, groups k: Int,
        into pred: UnsafeMutablePointer<T>
    ) {
        for i in 0..<n {
            let b = boxes + 4 * i
            let w = b[2] - b[0] + 1, h = b[3] - b[1] + 1
            let cx = b[0] + T(0.5) * w, cy = b[1] + T(0.5) * h
            for j in 0..<k {
                let d = deltas + 4 * (i * k + j)
                let pcx = d[0] * w + cx, pcy = d[1] * h + cy
                let pw = T.exp(d[2]) * w, ph = T.exp(d[3]) * h
                let o = pred + 4 * (i * k + j)
                o[0] = pcx - T(0.5) * pw
                o[1] = pcy - T(0.5) * ph
                o[2] = pcx + T(0.5) * pw - 1
                o[3] = pcy + T(0.5) * ph - 1
            }
        }
    }

    /// Clips `boxes` (count values, rows of 4k) into `out`: x to [0, maxX], y to [0, maxY] (min first, then max;
    /// NaN stays NaN). `out` may alias `boxes`.
    @inlinable
    public static func clipBoxes<T: KernelFloat>(
        _ boxes: UnsafePointer<T>, values count: Int, maxY: T, maxX: T, into out: UnsafeMutablePointer<T>
    ) {
        for i in 0..<count {
            let limit = i & 1 == 0 ? maxX : maxY
            out[i] = maximum(minimum(boxes[i], limit), 0)
        }
    }

    /// Greedy NMS on `dets` (n, 5) rows `(x1, y1, x2, y2, score)`: visit boxes by decreasing score, ties by
    /// increasing index; a box is kept only if its overlap with every box kept before it is <= `threshold`
    /// (an overlap that is NaN, from infinite coordinates, suppresses). Overlaps use "+1" areas:
    /// inter = max(0, min(x2) - max(x1) + 1) max(0, min(y2) - max(y1) + 1), ovr = inter / (area_a + area_b - inter).
    /// Writes kept indices in visiting order into `keep`; returns how many. Callers guarantee no NaN in `dets`.
    @inlinable
    public static func nms<T: KernelFloat>(
        dets: UnsafePointer<T>, count n: Int, threshold: T, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        if n == 0 { return 0 }
        var order = Array(0..<n)
        order.sort { a, b in
            let sa = dets[5 * a + 4], sb = dets[5 * b + 4]
            return sa > sb || (sa == sb && a < b)
        }
        var kept = 0
        for idx in order {
            let d = dets + 5 * idx
            let (x1, y1, x2, y2) = (d[0], d[1], d[2], d[3])
            let area = (x2 - x1 + 1) * (y2 - y1 + 1)
            var suppressed = false
            for k in 0..<kept {
                let e = dets + 5 * Int(keep[k])
                let w = maximum(0, minimum(x2, e[2]) - maximum(x1, e[0]) + 1)
                let h = maximum(0, minimum(y2, e[3]) - maximum(y1, e[1]) + 1)
                let inter = w * h
                let ovr = inter / ((e[2] - e[0] + 1) * (e[3] - e[1] + 1) + area - inter)
                if !(ovr <= threshold) {
                    suppressed = true
                    break
                }
            }
            if !suppressed {
                keep[kept] = Int64(idx)
                kept += 1
            }
        }
        return kept
    }
}
