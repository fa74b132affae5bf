/// Resizing of (planes, H, W) row-major data as torch.nn.functional.interpolate on CPU.
///
/// Both use the scale in/out of torch's `area_pixel_compute_scale` without align_corners, computed in the element
/// type. Planes are split over `Parallel` threads. An empty input (H or W = 0, which torch refuses) has nothing to
/// sample: the output is zeros (left as it is with `accumulate`).
public enum Interpolation {
    /// mode="nearest": output (y, x) reads input (floor(y·H/Ho), floor(x·W/Wo)), clamped to the last pixel.
    /// With `accumulate` the resampled values are added to `output` instead (the FPN's top-down "upsample + add"
    /// in one pass, with the same sum as torch's `lateral + interpolate(top)`).
    @inlinable
    public static func nearest<T: KernelFloat>(
        _ input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int, outHeight ho: Int, outWidth wo: Int,
        into output: UnsafeMutablePointer<T>, accumulate: Bool = false
    ) {
        if h == 0 || w == 0 {
            if !accumulate { output.update(repeating: 0, count: planes * ho * wo) }
            return
        }
        let xs = nearestSources(in: w, out: wo), ys = nearestSources(in: h, out: ho)
        Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 65536 / max(1, ho * wo))) { range in
            for plane in range {
                let src = input + plane * h * w, dst = output + plane * ho * wo
                for oy in 0..<ho {
                    let row = src + ys[oy] * w, out = dst + oy * wo
                    if accumulate {
                        for ox in 0..<wo { out[ox] += row[xs[ox]] }
                    } else {
                        for ox in 0..<wo { out[ox] = row[xs[ox]] }
                    }
                }
            }
        }
    }

    /// The backward pass of `nearest` (its adjoint): each input pixel's gradient is the sum of the gradients of the
    /// output pixels `nearest` copies it to, (planes, Ho, Wo) -> (planes, H, W); pixels no output reads get 0.
    /// `gradInput` is overwritten, or added to with `accumulate` (the FPN's lateral map, whose gradient also flows
    /// on through its own output).
    ///
    /// Each input pixel's sum runs in output order from 0, as torch's CPU upsample_nearest2d_backward adds into its
    /// zeroed gradient, so the sums are torch's (before `accumulate` adds them). Output rows reading one input row
    /// are consecutive (the source index grows with the output index), so one input row's sums are gathered in a
    /// row of scratch and written once. Threading: planes are split over `Parallel` threads.
    @inlinable
    public static func nearestBackward<T: KernelFloat>(
        _ gradOutput: UnsafePointer<T>, planes: Int, outHeight ho: Int, outWidth wo: Int, height h: Int,
        width w: Int, into gradInput: UnsafeMutablePointer<T>, accumulate: Bool
    ) {
        if h == 0 || w == 0 { return }
        let xs = nearestSources(in: w, out: wo), ys = nearestSources(in: h, out: ho)
        Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 65536 / max(1, ho * wo))) { range in
            let sums = UnsafeMutablePointer<T>.allocate(capacity: w)
            defer { sums.deallocate() }
            for plane in range {
                let src = gradOutput + plane * ho * wo, dst = gradInput + plane * h * w
                var oy = 0
                for iy in 0..<h {
                    sums.update(repeating: 0, count: w)
                    while oy < ho && ys[oy] == iy {
                        let row = src + oy * wo
                        for ox in 0..<wo { sums[xs[ox]] += row[ox] }
                        oy += 1
                    }
                    let out = dst + iy * w
                    if accumulate {
                        for ix in 0..<w { out[ix] += sums[ix] }
                    } else {
                        out.update(from: sums, count: w)
                    }
                }
            }
        }
    }

    /// The input index torch's nearest mode reads for each of `out` output indices along an axis of `size`
    /// samples: floor(dst · scale) with scale = size / out computed in float32 (`compute_scales_value` for a
    /// given output size), clamped to the last sample (`nearest_idx`).
    @inlinable
    static func nearestSources(in size: Int, out: Int) -> [Int] {
        let scale = Float(size) / Float(out)
        return (0..<out).map { min(Int((Float($0) * scale).rounded(.down)), size - 1) }
    }

    /// Source taps of output index `dst` when resizing `inSize` samples to `outSize` with align_corners=False: the
    /// source position (dst + 0.5)·scale - 0.5, scale = inSize / outSize, clamped at 0; its lower neighbour `i0`,
    /// capped at the last sample as torch caps it (in `Float` the position of the last outputs can round up to
    /// `inSize` once that reaches 2^23); `i1` the next sample or `i0` itself at the end; weights 1 - λ, λ <= 1.
    @inlinable
    public static func bilinearTap<T: KernelFloat>(
        _ dst: Int, inSize: Int, outSize: Int
    )
        -> (i0: Int, i1: Int, w0: T, w1: T)
    {
        var src = T(inSize) / T(outSize) * (T(dst) + T(0.5)) - T(0.5)
        if src < 0 { src = 0 }
        let i0 = min(Int(src), inSize - 1)
        let i1 = i0 < inSize - 1 ? i0 + 1 : i0
        let l1 = min(src - T(i0), 1)
        return (i0, i1, 1 - l1, l1)
    }

    /// The taps of every output index along one axis.
    @inlinable
    static func bilinearAxis<T: KernelFloat>(in size: Int, out: Int) -> [(Int, Int, T, T)] {
        (0..<out).map { bilinearTap($0, inSize: size, outSize: out) }
    }

    /// mode="bilinear", align_corners=False, to (ho, wo).
    ///
    /// The arithmetic is torch's CPU kernel for NCHW inputs whose output has Ho + Wo > 128 (its generic path): each
    /// of the two source rows is blended along x as fma(v0, λx0, v1·λx1), then the rows as fma(r0, λy0, r1·λy1),
    /// which reproduces torch's float32 results bit for bit (found by comparing candidate orders against torch
    /// 2.x). Torch's other path (outputs with Ho + Wo <= 128, or one thread and 3 channels) computes the source
    /// positions with a fused multiply-add and sums the four taps in another order; its results differ from these
    /// by up to ~3e-5 on [0, 1] images of 640 px.
    @inlinable
    public static func bilinear<T: KernelFloat>(
        _ input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int, outHeight ho: Int, outWidth wo: Int,
        into output: UnsafeMutablePointer<T>
    ) {
        if h == 0 || w == 0 {
            output.update(repeating: 0, count: planes * ho * wo)
            return
        }
        if h == ho && w == wo {
            // torch copies at the same size (a blend would turn a non-finite neighbour's zero weight into NaN).
            output.update(from: input, count: planes * h * w)
            return
        }
        let ys: [(Int, Int, T, T)] = bilinearAxis(in: h, out: ho)
        let xs: [(Int, Int, T, T)] = bilinearAxis(in: w, out: wo)
        Parallel.forEachChunk(planes * ho, minItemsPerChunk: max(1, 16384 / max(1, wo))) { range in
            for row in range {
                let plane = row / ho, oy = row % ho
                let (y0, y1, ly0, ly1) = ys[oy]
                let r0 = input + plane * h * w + y0 * w, r1 = input + plane * h * w + y1 * w
                let out = output + plane * ho * wo + oy * wo
                for ox in 0..<wo {
                    let (x0, x1, lx0, lx1) = xs[ox]
                    let top = (lx1 * r0[x1]).addingProduct(r0[x0], lx0)
                    let bottom = (lx1 * r1[x1]).addingProduct(r1[x0], lx0)
                    out[ox] = (ly1 * bottom).addingProduct(top, ly0)
                }
            }
        }
    }

    /// torch's cubic convolution coefficient A (`upsample_bicubic2d`).
    @usableFromInline static let cubicA = -0.75

    /// The 4 weights of a cubic tap at fraction `t` (torch's `get_cubic_upsample_coefficients`, A = -0.75).
    @inlinable
    static func cubicWeights<T: KernelFloat>(_ t: T) -> (T, T, T, T) {
        let a = T(cubicA)
        func near(_ x: T) -> T { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: T) -> T { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return (far(t + 1), near(t), near(1 - t), far(2 - t))
    }

    /// mode="bicubic", align_corners=False, to (ho, wo), as torch's CPU kernel: source position
    /// (dst + 0.5)·(in / out) - 0.5 (not clamped), its floor and fraction, taps at floor - 1 ... floor + 2 clamped
    /// to the edges, blended along x per source row and then along y (sums in tap order). Same size: a copy.
    @inlinable
    public static func bicubic<T: KernelFloat>(
        _ input: UnsafePointer<T>, planes: Int, height h: Int, width w: Int, outHeight ho: Int, outWidth wo: Int,
        into output: UnsafeMutablePointer<T>
    ) {
        if h == 0 || w == 0 {
            output.update(repeating: 0, count: planes * ho * wo)
            return
        }
        if h == ho && w == wo {
            output.update(from: input, count: planes * h * w)
            return
        }
        func taps(_ inSize: Int, _ outSize: Int) -> [(Int, (T, T, T, T))] {
            let scale = T(inSize) / T(outSize)
            return (0..<outSize).map { dst in
                let src = scale * (T(dst) + T(0.5)) - T(0.5)
                let f = src.rounded(.down)
                return (Int(f), cubicWeights(src - f))
            }
        }
        let ys = taps(h, ho), xs = taps(w, wo)
        Parallel.forEachChunk(planes * ho, minItemsPerChunk: max(1, 4096 / max(1, wo))) { range in
            for row in range {
                let plane = row / ho, oy = row % ho
                let (y, wy) = ys[oy]
                let base = input + plane * h * w
                let out = output + plane * ho * wo + oy * wo
                for ox in 0..<wo {
                    let (x, wx) = xs[ox]
                    func at(_ yy: Int, _ xx: Int) -> T { base[min(max(yy, 0), h - 1) * w + min(max(xx, 0), w - 1)] }
                    func rowValue(_ yy: Int) -> T {
                        at(yy, x - 1) * wx.0 + at(yy, x) * wx.1 + at(yy, x + 1) * wx.2 + at(yy, x + 2) * wx.3
                    }
                    out[ox] =
                        rowValue(y - 1) * wy.0 + rowValue(y) * wy.1 + rowValue(y + 1) * wy.2 + rowValue(y + 2) * wy.3
                }
            }
        }
    }
}
