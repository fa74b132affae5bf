/// Depthwise 2-D convolution (`groups == channels`, one k × k filter per channel), as MobileNet's inverted
/// residual blocks use it.
///
/// Layout: input (N, C, H, W), weight (C, 1, k, k), bias (C) or nil, output (N, C, Ho, Wo) with
/// Ho = (H + 2p - k) / s + 1, all row-major. Zero padding `p`; stride `s`; dilation 1.
///
/// Threading: the N · C planes are split over `Parallel` threads; each computes its planes alone. Per output row,
/// the interior columns (whose window lies inside the input) run without bounds checks, k² multiply-adds in
/// the filter's order; the border columns check each tap. The sum starts from the bias and adds the taps row by
/// row, so the result does not depend on the thread count.
public enum Depthwise {
    @inlinable
    public static func forward<T: KernelFloat>(
        _ input: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>?, batch n: Int, channels c: Int,
        height h: Int, width w: Int, kernel k: Int, stride s: Int, padding p: Int, into output: UnsafeMutablePointer<T>
    ) {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        guard ho > 0 && wo > 0 && n * c > 0 else { return }
        // Output columns whose window lies inside the input: x0 = ox·s - p >= 0 and x0 + k <= w.
        let firstInner = min(wo, (p + s - 1) / s)
        let lastInner = max(firstInner, min(wo, w + p - k >= 0 ? (w + p - k) / s + 1 : 0))
        Parallel.forEachChunk(n * c, minItemsPerChunk: max(1, 32768 / max(1, ho * wo * k * k))) { planes in
            for plane in planes {
                let ch = plane % c
                let src = input + plane * h * w, dst = output + plane * ho * wo
                let filter = weight + ch * k * k
                let b = bias?[ch] ?? 0
                for oy in 0..<ho {
                    let y0 = oy * s - p
                    let row = dst + oy * wo
                    // Border columns (and every column of rows whose window leaves the input vertically).
                    func border(_ ox: Int) {
                        let x0 = ox * s - p
                        var sum = b
                        for ky in 0..<k {
                            let y = y0 + ky
                            if y < 0 || y >= h { continue }
                            for kx in 0..<k {
                                let x = x0 + kx
                                if x < 0 || x >= w { continue }
                                sum += filter[ky * k + kx] * src[y * w + x]
                            }
                        }
                        row[ox] = sum
                    }
                    if y0 < 0 || y0 + k > h {
                        for ox in 0..<wo { border(ox) }
                        continue
                    }
                    for ox in 0..<firstInner { border(ox) }
                    for ox in firstInner..<lastInner { row[ox] = b }
                    for ky in 0..<k {
                        let line = src + (y0 + ky) * w - p
                        for kx in 0..<k {
                            let f = filter[ky * k + kx]
                            let tap = line + kx
                            for ox in firstInner..<lastInner { row[ox] += f * tap[ox * s] }
                        }
                    }
                    for ox in lastInner..<wo { border(ox) }
                }
            }
        }
    }
}
