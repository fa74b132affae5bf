/// 2-D max pooling of (planes, H, W) row-major data, as torch.nn.functional.max_pool2d (floor mode, padding
/// treated as -inf, NaN propagating as in torch). Planes are split over `Parallel` threads.
public enum MaxPool2d {
    @inlinable
    public static func forward<T: KernelFloat>(
        _ input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int, kernel k: Int, stride s: Int,
        padding p: Int, into output: UnsafeMutablePointer<T>
    ) {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 16384 / max(1, ho * wo * k * k))) { range in
            for plane in range {
                let src = input + plane * h * w
                let dst = output + plane * ho * wo
                for oy in 0..<ho {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    for ox in 0..<wo {
                        let x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w)
                        var m = -T.infinity
                        for y in y0..<y1 {
                            for x in x0..<x1 {
                                let v = src[y * w + x]
                                if v > m || v.isNaN { m = v }
                            }
                        }
                        dst[oy * wo + ox] = m
                    }
                }
            }
        }
    }
}
