/// Box encoding of torchvision's `BoxCoder` (`torchvision.models.detection._utils`): a box relative to a reference
/// box as `(dx, dy, dw, dh)` = weighted (centre offset / reference size, log of the size ratio).
///
/// Boxes are `(x1, y1, x2, y2)` with widths `x2 - x1` (no "+1"). Arithmetic follows torchvision's order of
/// operations in the element type; non-finite inputs propagate (a NaN code gives a NaN box). Rows are split over
/// `Parallel` threads; each thread writes its own rows of the output.
public enum BoxCoding {
    /// Rows per chunk below which a parallel split does not pay off.
    @usableFromInline static let minRowsPerChunk = 8192

    /// Encodes `proposals` (n, 4) relative to `reference` (n, 4) into `targets` (n, 4):
    /// dx = wx (cx_ref - cx_prop) / w_prop, dy likewise, dw = ww log(w_ref / w_prop), dh likewise.
    ///
    /// (torchvision's naming: the `reference_boxes` are the matched ground truth, the `proposals` the anchors.)
    @inlinable
    public static func encode<T: KernelFloat>(
        reference: UnsafePointer<T>, proposals: UnsafePointer<T>, count n: Int, weights: (T, T, T, T),
        into targets: UnsafeMutablePointer<T>
    ) {
        let (wx, wy, ww, wh) = weights
        Parallel.forEachChunk(n, minItemsPerChunk: minRowsPerChunk) { rows in
            for i in rows {
                let p = proposals + 4 * i, g = reference + 4 * i
                let exW = p[2] - p[0], exH = p[3] - p[1]
                let exCx = p[0] + T(0.5) * exW, exCy = p[1] + T(0.5) * exH
                let gtW = g[2] - g[0], gtH = g[3] - g[1]
                let gtCx = g[0] + T(0.5) * gtW, gtCy = g[1] + T(0.5) * gtH
                let o = targets + 4 * i
                o[0] = wx * (gtCx - exCx) / exW
                o[1] = wy * (gtCy - exCy) / exH
                o[2] = ww * T.log(gtW / exW)
                o[3] = wh * T.log(gtH / exH)
            }
        }
    }

    /// Decodes `codes` (n, 4k) relative to `boxes` (n, 4) into `pred` (n, 4k): for each of the k groups
    /// `(dx, dy, dw, dh)` divided by the weights, with dw and dh clamped above at `xformClip` (NaN stays NaN),
    /// centre = (dx w + cx, dy h + cy), size = (exp(dw) w, exp(dh) h), corners = centre -/+ size / 2.
    @inlinable
    public static func decode<T: KernelFloat>(
        codes: UnsafePointer<T>, boxes: UnsafePointer<T>, count n: Int, groups k: Int, weights: (T, T, T, T),
        xformClip: T, into pred: UnsafeMutablePointer<T>
    ) {
        let (wx, wy, ww, wh) = weights
        Parallel.forEachChunk(n, minItemsPerChunk: Swift.max(1, minRowsPerChunk / Swift.max(1, k))) { rows in
            // Blocks of rows: the clamped dw, dh of a block are exponentiated in one vectorised pass.
            let blockRows = Swift.max(1, 1024 / Swift.max(1, k))
            let scale = UnsafeMutablePointer<T>.allocate(capacity: 2 * blockRows * k)
            defer { scale.deallocate() }
            var first = rows.lowerBound
            while first < rows.upperBound {
                let last = Swift.min(first + blockRows, rows.upperBound)
                let codeBase = codes + 4 * first * k
                let m = (last - first) * k
                for q in 0..<m {
                    let dw = codeBase[4 * q + 2] / ww, dh = codeBase[4 * q + 3] / wh
                    scale[2 * q] = dw > xformClip ? xformClip : dw
                    scale[2 * q + 1] = dh > xformClip ? xformClip : dh
                }
                T.expInPlace(scale, count: 2 * m)
                var q = 0
                for i in first..<last {
                    let b = boxes + 4 * i
                    let w = b[2] - b[0], h = b[3] - b[1]
                    let cx = b[0] + T(0.5) * w, cy = b[1] + T(0.5) * h
                    for _ in 0..<k {
                        let c = codeBase + 4 * q
                        let pcx = c[0] / wx * w + cx, pcy = c[1] / wy * h + cy
                        let halfW = T(0.5) * (scale[2 * q] * w)
                        let halfH = T(0.5) * (scale[2 * q + 1] * h)
                        let o = pred + 4 * (first * k + q)
                        o[0] = pcx - halfW
                        o[1] = pcy - halfH
                        o[2] = pcx + halfW
                        o[3] = pcy + halfH
                        q += 1
                    }
                }
                first = last
            }
        }
    }
}
