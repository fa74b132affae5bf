/// Depthwise 2-D convolution (`groups == channels`, one k × k filter per channel), as MobileNet's inverted
/// residual blocks use it.
///
/// Layout: input (N, C, H, W), weight (C, 1, k, k), bias (C) or nil, output (N, C, Ho, Wo) with
/// Ho = (H + 2p - k) / s + 1, all row-major. Zero padding `p`; stride `s`; dilation 1.
///
/// Threading: the N · C planes are split over `Parallel` threads; each plane runs in the current instruction-set
/// path's kernel (`KernelTable.depthwise`): the outputs whose window lies inside the input row in that path's
/// vectors, several at a time, the border columns one by one. Each output is the bias plus its taps inside the
/// input, row by row in the filter's order (the vector taps fused on paths with FMA), so the result does not depend
/// on the thread count; it does on the path.
public enum Depthwise {
    @inlinable
    public static func forward<T: KernelFloat>(
        _ input: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>?, batch n: Int, channels c: Int,
        height h: Int, width w: Int, kernel k: Int, stride s: Int, padding p: Int, into output: UnsafeMutablePointer<T>
    ) {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        guard ho > 0 && wo > 0 && n * c > 0 else { return }
        let kernel = T.kernels.depthwise
        Parallel.forEachChunk(n * c, minItemsPerChunk: max(1, 32768 / max(1, ho * wo * k * k))) { planes in
            for plane in planes {
                let ch = plane % c
                kernel(
                    input + plane * h * w, h, w, weight + ch * k * k, bias?[ch] ?? 0, k, s, p, ho, wo,
                    output + plane * ho * wo)
            }
        }
    }
}
