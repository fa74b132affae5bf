/// Anchor boxes of torchvision's `AnchorGenerator` (`torchvision.models.detection.anchor_utils`).
///
/// Layout: cell anchors of a level are `(numRatios * numSizes, 4)` rows `(x1, y1, x2, y2)`, ratio-major then size;
/// the anchors of a level are `(h * w * A, 4)`, location-major (row y, then column x), then cell anchor.
public enum Anchors {
    /// Zero-centred cell anchors of one level into `out` (numRatios * numSizes, 4), computed in `Float`.
    ///
    /// torchvision builds its cell anchors once, in float32, whatever dtype the feature maps have, and casts them
    /// afterwards; computing them in `Float` here reproduces the rare sizes where a float64 computation would round
    /// a half-integer the other way. For aspect ratio r (height / width) and size s: h = sqrt(r), w = 1 / h, and the
    /// anchor is round((-w s, -h s, w s, h s) / 2) with ties to even.
    @inlinable
    public static func cellAnchors(
        sizes: UnsafePointer<Float>, count numSizes: Int, ratios: UnsafePointer<Float>, count numRatios: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<numRatios {
            let hRatio = ratios[r].squareRoot()
            let wRatio = 1 / hRatio
            for s in 0..<numSizes {
                let ws = wRatio * sizes[s]
                let hs = hRatio * sizes[s]
                let o = out + 4 * (r * numSizes + s)
                o[0] = (-ws / 2).rounded(.toNearestOrEven)
                o[1] = (-hs / 2).rounded(.toNearestOrEven)
                o[2] = (ws / 2).rounded(.toNearestOrEven)
                o[3] = (hs / 2).rounded(.toNearestOrEven)
            }
        }
    }

    /// The anchors of one level: every cell anchor shifted to every location of a `height` x `width` grid into
    /// `out` (height * width * count, 4).
    ///
    /// The shift of location (y, x) is the integer (x * strideX, y * strideY); like torchvision, the shift is
    /// converted to `T` and added to the cell anchor converted to `T`. Rows of the grid are split over `Parallel`
    /// threads; each writes its own rows of `out`.
    @inlinable
    public static func grid<T: KernelFloat>(
        cell: UnsafePointer<Float>, count a: Int, height: Int, width: Int, strideY: Int, strideX: Int,
        into out: UnsafeMutablePointer<T>
    ) {
        if a == 0 { return }
        let perRow = width * a * 4
        Parallel.forEachChunk(height, minItemsPerChunk: max(1, 16384 / max(1, perRow))) { rows in
            for y in rows {
                let sy = T(y * strideY)
                var o = out + y * perRow
                for x in 0..<width {
                    let sx = T(x * strideX)
                    for k in 0..<a {
                        let c = cell + 4 * k
                        o[0] = sx + T(c[0])
                        o[1] = sy + T(c[1])
                        o[2] = sx + T(c[2])
                        o[3] = sy + T(c[3])
                        o += 4
                    }
                }
            }
        }
    }
}
