/// Position-sensitive RoI Align (Light-Head R-CNN), as `torchvision.ops.ps_roi_align`.
///
/// Layout: `input` (n, c, h, w) row-major with c = outChannels * pooledHeight * pooledWidth; `rois` (k, 5) rows
/// `[batch_index, x1, y1, x2, y2]`; `output` (k, outChannels, pooledHeight, pooledWidth). Output channel `co` at bin
/// `(i, j)` reads input channel `(co * pooledHeight + i) * pooledWidth + j`.
///
/// Geometry, in `T`, as torchvision computes it: the RoI runs from `x1 * scale - 0.5` to `x2 * scale - 0.5` (and
/// likewise in y) with no minimum size; each bin holds a `gridH x gridW` grid of sample points at the centres of
/// equal sub-cells (grid = `samplingRatio` when > 0, else `ceil(roiSize / pooled)`), and the output is the sum of
/// the bilinearly interpolated samples divided by `gridH * gridW`. A sample outside `[-1, h] x [-1, w]` counts as 0;
/// one inside is clamped into the map first. So a zero-size RoI with adaptive sampling has a 0 x 0 grid and gives
/// 0 / 0 = NaN, and an inverted one gives (-)0, exactly as torchvision.
///
/// Callers guarantee (the C ABI validates): shapes as documented, batch indices integral and in [0, n), scaled
/// coordinates finite, and per-bin grids within `maxSamplesPerBin` when both grid sides are positive.
public enum PSRoIAlign {
    /// The most sampling points one bin may use: 2^20, a 1024 x 1024 grid. Adaptive sampling puts about one point
    /// per feature cell, so this admits every RoI whose bins fit in a 1024 x 1024 feature map; larger grids come only
    /// from boxes far outside any real feature map (or an absurd `sampling_ratio`) and would make a bin take
    /// unbounded time, so the C ABI rejects them.
    public static let maxSamplesPerBin = 1 << 20

    /// Start, bin size and (unconverted) grid size along one axis of a RoI.
    @inlinable @inline(__always)
    public static func axis<T: KernelFloat>(
        from lo: T, to hi: T, scale: T, pooled: Int, samplingRatio: Int
    ) -> (start: T, binSize: T, grid: T) {
        let start = lo * scale - T(0.5)
        let size = (hi * scale - T(0.5)) - start
        let binSize = size / T(pooled)
        let grid = samplingRatio > 0 ? T(samplingRatio) : (size / T(pooled)).rounded(.up)
        return (start, binSize, grid)
    }

    /// One axis of a bilinear sample: the two cells it reads (as element offsets) and their weights.
    @usableFromInline
    struct Tap<T: KernelFloat> {
        @usableFromInline var low: Int
        @usableFromInline var high: Int
        @usableFromInline var lowWeight: T
        @usableFromInline var highWeight: T

        @inlinable
        init(low: Int, high: Int, lowWeight: T, highWeight: T) {
            self.low = low
            self.high = high
            self.lowWeight = lowWeight
            self.highWeight = highWeight
        }
    }

    /// Writes the taps of bin `bin`'s samples that fall inside `[-1, extent]` on one axis into `taps` and returns
    /// how many. Offsets are cell index times `stride`. Samples outside contribute nothing (their value is 0), so
    /// they are left out; a NaN position counts as outside.
    @inlinable
    static func taps<T: KernelFloat>(
        bin: Int, start: T, binSize: T, grid: Int, extent: Int, stride: Int, into taps: UnsafeMutablePointer<Tap<T>>
    ) -> Int {
        let origin = start + T(bin) * binSize
        var count = 0
        for s in 0..<grid {
            let p = origin + (T(s) + T(0.5)) * binSize / T(grid)
            guard let (low, high, l) = bilinearTap(p, size: extent) else { continue }
            taps[count] = Tap(low: low * stride, high: high * stride, lowWeight: 1 - l, highWeight: l)
            count += 1
        }
        return count
    }

    /// Per-thread storage for one bin's y and x taps, grown as RoIs need.
    @usableFromInline
    struct TapBuffers<T: KernelFloat> {
        @usableFromInline var ys: UnsafeMutablePointer<Tap<T>>
        @usableFromInline var xs: UnsafeMutablePointer<Tap<T>>
        @usableFromInline var capacity: Int

        @inlinable
        init() {
            capacity = 16
            ys = .allocate(capacity: capacity)
            xs = .allocate(capacity: capacity)
        }

        @inlinable
        mutating func reserve(_ n: Int) {
            if n <= capacity { return }
            ys.deallocate()
            xs.deallocate()
            capacity = n
            ys = .allocate(capacity: n)
            xs = .allocate(capacity: n)
        }

        @inlinable
        func deallocate() {
            ys.deallocate()
            xs.deallocate()
        }
    }

    /// The validated geometry of one RoI: starts, bin sizes, grids (0 when that side has no samples) and the
    /// divisor `gridH * gridW` as torchvision forms it (0 or negative for zero-size or inverted RoIs).
    @usableFromInline
    struct Geometry<T: KernelFloat> {
        @usableFromInline var y0: T, x0: T, binH: T, binW: T
        @usableFromInline var gridH: Int, gridW: Int
        @usableFromInline var count: T

        @inlinable
        init(_ roi: UnsafePointer<T>, scale: T, pooledHeight ph: Int, pooledWidth pw: Int, samplingRatio: Int) {
            let ay = axis(from: roi[2], to: roi[4], scale: scale, pooled: ph, samplingRatio: samplingRatio)
            let ax = axis(from: roi[1], to: roi[3], scale: scale, pooled: pw, samplingRatio: samplingRatio)
            y0 = ay.start; x0 = ax.start; binH = ay.binSize; binW = ax.binSize
            count = ay.grid * ax.grid
            // Only grids with both sides positive have samples; those are bounded by the caller's validation.
            let sampled = ay.grid > 0 && ax.grid > 0
            gridH = sampled ? T.clampedInt(ay.grid, 0, PSRoIAlign.maxSamplesPerBin) : 0
            gridW = sampled ? T.clampedInt(ax.grid, 0, PSRoIAlign.maxSamplesPerBin) : 0
        }
    }

    /// Forward pass: fills `output` (k, c / (pooledHeight * pooledWidth), pooledHeight, pooledWidth).
    ///
    /// Threading: the (bin, output channel) pairs are split over `Parallel` threads (see
    /// `PSRoIPool.forEachBinRun`); each thread pools every RoI for its pairs, so it writes only its own outputs,
    /// reading the input planes through `PSRoIPool.forEachStagedGroup`. A RoI's geometry is computed once, and its
    /// sample taps (cells, weights) for a bin once per group of staged planes.
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        samplingRatio: Int, output: UnsafeMutablePointer<T>
    ) {
        let bins = ph * pw
        let outChannels = c / bins
        if k == 0 || outChannels == 0 { return }
        let plane = h * w
        let geometries = UnsafeMutablePointer<Geometry<T>>.allocate(capacity: k)
        defer { geometries.deallocate() }
        for r in 0..<k {
            geometries[r] = Geometry(
                rois + 5 * r, scale: spatialScale, pooledHeight: ph, pooledWidth: pw,
                samplingRatio: samplingRatio)
        }
        let (order, imageStart) = RoIPool.groupByImage(rois: rois, roiCount: k, batch: n)
        defer { order.deallocate(); imageStart.deallocate() }
        let staged = PSRoIPool.stagedPlanes(plane: plane, outChannels: outChannels)
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 1024 / k)) { items in
            var buffers = TapBuffers<T>()
            let stage = UnsafeMutablePointer<T>.allocate(capacity: staged * plane)
            defer { buffers.deallocate(); stage.deallocate() }
            PSRoIPool.forEachStagedGroup(
                items, input: input, batch: n, channels: c, plane: plane,
                outChannels: outChannels, imageStart: imageStart, stage: stage,
                staged: staged
            ) { o, img, group, planes, step in
                let i = o / pw, j = o % pw
                for s in imageStart[img]..<imageStart[img + 1] {
                    let r = order[s]
                    let g = geometries[r]
                    buffers.reserve(max(g.gridH, g.gridW))
                    let ny = taps(
                        bin: i, start: g.y0, binSize: g.binH, grid: g.gridH, extent: h, stride: w,
                        into: buffers.ys)
                    let nx = taps(
                        bin: j, start: g.x0, binSize: g.binW, grid: g.gridW, extent: w, stride: 1,
                        into: buffers.xs)
                    let dst = output + (r * outChannels + group.lowerBound) * bins + o
                    for q in 0..<group.count {
                        dst[q * bins] = binSum(planes + q * step, ys: buffers.ys, ny, xs: buffers.xs, nx) / g.count
                    }
                }
            }
        }
    }

    /// Sum of the bilinear samples of one bin, in torchvision's order and arithmetic.
    @inlinable @inline(__always)
    static func binSum<T: KernelFloat>(
        _ src: UnsafePointer<T>, ys: UnsafePointer<Tap<T>>, _ ny: Int, xs: UnsafePointer<Tap<T>>, _ nx: Int
    ) -> T {
        var sum: T = 0
        for a in 0..<ny {
            let ty = ys[a]
            let rowLow = src + ty.low, rowHigh = src + ty.high
            for b in 0..<nx {
                let tx = xs[b]
                let w1 = ty.lowWeight * tx.lowWeight, w2 = ty.lowWeight * tx.highWeight
                let w3 = ty.highWeight * tx.lowWeight, w4 = ty.highWeight * tx.highWeight
                sum += w1 * rowLow[tx.low] + w2 * rowLow[tx.high] + w3 * rowHigh[tx.low] + w4 * rowHigh[tx.high]
            }
        }
        return sum
    }

    /// Backward pass: `gradInput` (n, c, h, w) is overwritten with the sum over RoIs of each bin's gradient
    /// distributed to the cells its samples read, with the bilinear weights divided by `gridH * gridW`.
    ///
    /// The gradient is divided by the sample count once per bin rather than once per weight as torchvision does, so
    /// results may differ from it in the last bit.
    ///
    /// Threading: as the forward pass, split by (bin, output channel), i.e. by input channel: each thread zeroes and
    /// accumulates into its own input channels of every image, so no two threads write the same memory and no
    /// atomics are needed. RoIs are visited in order, so each cell accumulates in torchvision's order.
    @inlinable
    public static func backward<T: KernelFloat>(
        gradOutput: UnsafePointer<T>, rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int,
        pooledWidth pw: Int, spatialScale: T, samplingRatio: Int, batch n: Int, channels c: Int, height h: Int,
        width w: Int, gradInput: UnsafeMutablePointer<T>
    ) {
        if n == 0 || c == 0 { return }
        let bins = ph * pw
        let outChannels = c / bins
        let plane = h * w
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 16384 / max(1, k + n * plane))) { items in
            var buffers = TapBuffers<T>()
            defer { buffers.deallocate() }
            PSRoIPool.forEachBinRun(items, outChannels: outChannels) { o, outs in
                for img in 0..<n {
                    for co in outs {
                        (gradInput + (img * c + co * bins + o) * plane).initialize(
                            repeating: 0,
                            count: plane)
                    }
                }
                let i = o / pw, j = o % pw
                for r in 0..<k {
                    let roi = rois + 5 * r
                    let g = Geometry(
                        roi, scale: spatialScale, pooledHeight: ph, pooledWidth: pw,
                        samplingRatio: samplingRatio)
                    if g.gridH == 0 { continue }
                    buffers.reserve(max(g.gridH, g.gridW))
                    let ny = taps(
                        bin: i, start: g.y0, binSize: g.binH, grid: g.gridH, extent: h, stride: w,
                        into: buffers.ys)
                    let nx = taps(
                        bin: j, start: g.x0, binSize: g.binW, grid: g.gridW, extent: w, stride: 1,
                        into: buffers.xs)
                    let image = gradInput + T.clampedInt(roi[0], 0, n - 1) * c * plane
                    for co in outs {
                        let grad = gradOutput[(r * outChannels + co) * bins + o] / g.count
                        scatter(grad, into: image + (co * bins + o) * plane, ys: buffers.ys, ny, xs: buffers.xs, nx)
                    }
                }
            }
        }
    }

    /// Adds `g` times each sample's bilinear weights to the cells the samples read.
    @inlinable @inline(__always)
    static func scatter<T: KernelFloat>(
        _ g: T, into dst: UnsafeMutablePointer<T>, ys: UnsafePointer<Tap<T>>, _ ny: Int, xs: UnsafePointer<Tap<T>>,
        _ nx: Int
    ) {
        for a in 0..<ny {
            let ty = ys[a]
            let rowLow = dst + ty.low, rowHigh = dst + ty.high
            let gLow = g * ty.lowWeight, gHigh = g * ty.highWeight
            for b in 0..<nx {
                let tx = xs[b]
                rowLow[tx.low] += gLow * tx.lowWeight
                rowLow[tx.high] += gLow * tx.highWeight
                rowHigh[tx.low] += gHigh * tx.lowWeight
                rowHigh[tx.high] += gHigh * tx.highWeight
            }
        }
    }
}
