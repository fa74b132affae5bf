/// 2-D max pooling of (planes, H, W) row-major data, as torch.nn.functional.max_pool2d (floor mode, padding
/// treated as -inf, NaN propagating as in torch), and its backward pass. Planes are split over `Parallel` threads.
///
/// ResNet's pooling (kernel 3, stride 2, padding 1) takes 16 outputs of a row at a time in SIMD lanes: the even
/// and odd input columns of a 32-column load are the windows' left/centre and right columns.
public enum MaxPool2d {
    @inlinable
    public static func forward<T: KernelFloat>(
        _ input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int, kernel k: Int, stride s: Int,
        padding p: Int, into output: UnsafeMutablePointer<T>
    ) {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        let lanes = 16
        let vectorized = k == 3 && s == 2 && p == 1
        Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 16384 / max(1, ho * wo * k * k))) { range in
            for plane in range {
                let src = input + plane * h * w
                let dst = output + plane * ho * wo
                for oy in 0..<ho {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    @inline(__always) func pool(_ ox: Int) {
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
                    if wo == 0 { continue }
                    pool(0)
                    var ox = 1
                    // Outputs ox ..< ox + 16 read input columns 2·ox - 1 ... 2·ox + 32 (two 32-column loads),
                    // all inside the row.
                    while vectorized && ox + lanes <= wo && 2 * ox + 32 < w {
                        var m = SIMD16<T>(repeating: -T.infinity)
                        for y in y0..<y1 {
                            let row = UnsafeRawPointer(src + y * w + 2 * ox - 1)
                            let a = row.loadUnaligned(as: SIMD32<T>.self)
                            let b = row.loadUnaligned(fromByteOffset: 2 * MemoryLayout<T>.stride, as: SIMD32<T>.self)
                            T.keepGreaterOrNaN(a.evenLanes, maximum: &m)
                            T.keepGreaterOrNaN(a.oddLanes, maximum: &m)
                            T.keepGreaterOrNaN(b.evenLanes, maximum: &m)
                        }
                        UnsafeMutableRawPointer(dst + oy * wo + ox).storeBytes(of: m, as: SIMD16<T>.self)
                        ox += lanes
                    }
                    while ox < wo {
                        pool(ox)
                        ox += 1
                    }
                }
            }
        }
    }

    /// The backward pass of `forward`: adds each output gradient (planes, Ho, Wo) to the input element torch's CPU
    /// max_pool2d picks for that output, its `indices`: the window's first maximum in row-major scan order, or its
    /// last NaN (a NaN replaces the maximum, and `v > NaN` is false, so later NaNs win), or the window's first
    /// element inside the input when every value is -inf. The gradients are added to `gradInput` (planes, H, W),
    /// which the caller zeroes or fills with the input's other gradients (the FPN's pool level reads P5, which also
    /// feeds the heads).
    ///
    /// Threading: planes are split over `Parallel` threads; each plane's gradients are added in output order, so
    /// the sums do not depend on the thread count (torch adds them in the same order). ResNet's pooling (3, 2, 1)
    /// finds 16 outputs' maxima at a time in SIMD lanes, as `forward` does, keeping each lane's position in its
    /// window (`KernelFloat.keepGreaterOrNaN(_:at:maximum:argmax:)`), then adds their gradients one by one.
    @inlinable
    public static func backward<T: KernelFloat>(
        _ gradOutput: UnsafePointer<T>, input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int,
        kernel k: Int, stride s: Int, padding p: Int, into gradInput: UnsafeMutablePointer<T>
    ) {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        let lanes = 16
        let vectorized = k == 3 && s == 2 && p == 1
        Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 16384 / max(1, ho * wo * k * k))) { range in
            for plane in range {
                let src = input + plane * h * w, gi = gradInput + plane * h * w
                let go = gradOutput + plane * ho * wo
                for oy in 0..<ho {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    @inline(__always) func route(_ ox: Int) {
                        let x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w)
                        var m = -T.infinity, index = y0 * w + x0
                        for y in y0..<y1 {
                            for x in x0..<x1 {
                                let v = src[y * w + x]
                                if v > m || v.isNaN {
                                    m = v
                                    index = y * w + x
                                }
                            }
                        }
                        gi[index] += go[oy * wo + ox]
                    }
                    if wo == 0 { continue }
                    route(0)
                    var ox = 1
                    // Outputs ox ..< ox + 16 read input columns 2·ox - 1 ... 2·ox + 32, all inside the row (as in
                    // `forward`); each lane keeps 3·(y - y0) + (x - x0) of its window's pick, starting at 0 (the
                    // first element, torch's pick when every value is -inf).
                    while vectorized && ox + lanes <= wo && 2 * ox + 32 < w {
                        var m = SIMD16<T>(repeating: -T.infinity)
                        var position = SIMD16<T.SIMDMaskScalar>()
                        for y in y0..<y1 {
                            let row = UnsafeRawPointer(src + y * w + 2 * ox - 1)
                            let a = row.loadUnaligned(as: SIMD32<T>.self)
                            let b = row.loadUnaligned(fromByteOffset: 2 * MemoryLayout<T>.stride, as: SIMD32<T>.self)
                            let first = T.SIMDMaskScalar(3 * (y - y0))
                            T.keepGreaterOrNaN(a.evenLanes, at: first, maximum: &m, argmax: &position)
                            T.keepGreaterOrNaN(a.oddLanes, at: first + 1, maximum: &m, argmax: &position)
                            T.keepGreaterOrNaN(b.evenLanes, at: first + 2, maximum: &m, argmax: &position)
                        }
                        for lane in 0..<lanes {
                            let picked = Int(position[lane])
                            let index = (y0 + picked / 3) * w + 2 * (ox + lane) - 1 + picked % 3
                            gi[index] += go[oy * wo + ox + lane]
                        }
                        ox += lanes
                    }
                    while ox < wo {
                        route(ox)
                        ox += 1
                    }
                }
            }
        }
    }
}
