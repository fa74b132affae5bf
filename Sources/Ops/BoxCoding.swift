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
        Parallel.forEachChunk(n, minItemsPerChunk: max(1, minRowsPerChunk / max(1, k))) { rows in
            for i in rows {
                let b = boxes + 4 * i
                let w = b[2] - b[0], h = b[3] - b[1]
                let cx = b[0] + T(0.5) * w, cy = b[1] + T(0.5) * h
                for j in 0..<k {
                    let c = codes + 4 * (i * k + j)
                    let dx = c[0] / wx, dy = c[1] / wy
                    var dw = c[2] / ww, dh = c[3] / wh
                    if dw > xformClip { dw = xformClip }
                    if dh > xformClip { dh = xformClip }
                    let pcx = dx * w + cx, pcy = dy * h + cy
                    let halfW = T(0.5) * (T.exp(dw) * w), halfH = T(0.5) * (T.exp(dh) * h)
                    let o = pred + 4 * (i * k + j)
                    o[0] = pcx - halfW
                    o[1] = pcy - halfH
                    o[2] = pcx + halfW
                    o[3] = pcy + halfH
                }
            }
        }
    }
}
