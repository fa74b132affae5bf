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
                    // Border outputs (and every output of rows whose window leaves the input vertically): the taps
                    // inside the input, in the filter's order.
                    let kyLo = max(0, -y0), kyHi = min(k, h - y0)
                    if y0 < 0 || y0 + k > h {
                        for ox in 0..<wo { row[ox] = borderSum(src, filter, b, y0, ox * s - p, kyLo, kyHi, k, w) }
                        continue
                    }
                    for ox in 0..<firstInner { row[ox] = borderSum(src, filter, b, y0, ox * s - p, kyLo, kyHi, k, w) }
                    var ox = firstInner
                    if T.self == Float.self && (s == 1 || s == 2) {
                        // Eight outputs at a time in one vector: the same taps in the same order as below.
                        ox = interiorFloat(
                            src: UnsafeRawPointer(src + y0 * w - p), rowStride: w, filter: UnsafeRawPointer(filter),
                            kernel: k, stride: s, bias: b as! Float, from: firstInner, to: lastInner,
                            validColumns: w + p, into: UnsafeMutableRawPointer(row))
                    }
                    for ox in ox..<lastInner { row[ox] = b }
                    for ky in 0..<k {
                        let line = src + (y0 + ky) * w - p
                        for kx in 0..<k {
                            let f = filter[ky * k + kx]
                            let tap = line + kx
                            for ox in ox..<lastInner { row[ox] += f * tap[ox * s] }
                        }
                    }
                    for ox in lastInner..<wo {
                        row[ox] = borderSum(src, filter, b, y0, ox * s - p, kyLo, kyHi, k, w)
                    }
                }
            }
        }
    }

    /// One output whose window (rows y0 + kyLo ..< y0 + kyHi are inside the input) may leave the input: bias plus the
    /// taps inside, in the filter's order.
    @inlinable @inline(__always)
    static func borderSum<T: KernelFloat>(
        _ src: UnsafePointer<T>, _ filter: UnsafePointer<T>, _ b: T, _ y0: Int, _ x0: Int, _ kyLo: Int, _ kyHi: Int,
        _ k: Int, _ w: Int
    ) -> T {
        let kxLo = max(0, -x0), kxHi = min(k, w - x0)
        var sum = b
        if kxLo < kxHi {
            for ky in kyLo..<kyHi {
                let line = src + (y0 + ky) * w + x0, taps = filter + ky * k
                for kx in kxLo..<kxHi { sum += taps[kx] * line[kx] }
            }
        }
        return sum
    }

    /// Interior outputs `from ..< to` of one output row, eight at a time (stride 1 or 2), Float: bias, then the k²
    /// taps row by row. `src` points at input row y0, column -p (the window's origin for output 0); columns
    /// p ..< `validColumns` from it are the row's. Returns the first output column not written (the scalar loop
    /// finishes the row).
    @inlinable
    static func interiorFloat(
        src: UnsafeRawPointer, rowStride w: Int, filter: UnsafeRawPointer, kernel k: Int, stride s: Int, bias: Float,
        from: Int, to: Int, validColumns: Int, into row: UnsafeMutableRawPointer
    ) -> Int {
        let x = src.assumingMemoryBound(to: Float.self), f = filter.assumingMemoryBound(to: Float.self)
        let out = row.assumingMemoryBound(to: Float.self)
        var ox = from
        // Stride 2 loads 16 columns per tap, one past the last it uses: that one must be in the row too.
        while ox + 8 <= to && (s == 1 || ox * 2 + k + 14 < validColumns) {
            var acc = SIMD8<Float>(repeating: bias)
            for ky in 0..<k {
                let line = x + ky * w + ox * s
                for kx in 0..<k {
                    let tap: SIMD8<Float>
                    if s == 1 {
                        tap = UnsafeRawPointer(line + kx).loadUnaligned(as: SIMD8<Float>.self)
                    } else {
                        // Columns ox·2 + kx, (ox + 1)·2 + kx, ...: the even lanes of 16 consecutive values.
                        let pair = UnsafeRawPointer(line + kx).loadUnaligned(as: SIMD8<Float>.self)
                        let next = UnsafeRawPointer(line + kx + 8).loadUnaligned(as: SIMD8<Float>.self)
                        tap = SIMD16(lowHalf: pair, highHalf: next).evenHalf
                    }
                    acc += f[ky * k + kx] * tap
                }
            }
            UnsafeMutableRawPointer(out + ox).storeBytes(of: acc, as: SIMD8<Float>.self)
            ox += 8
        }
        return ox
    }
}
