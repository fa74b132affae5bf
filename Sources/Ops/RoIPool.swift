/// RoI max pooling (Fast R-CNN), as `torchvision.ops.roi_pool`.
///
/// Layout: `input` (n, c, h, w) row-major; `rois` (k, 5) rows `[batch_index, x1, y1, x2, y2]`; `output` and
/// `argmax` (k, c, pooledHeight, pooledWidth). Each RoI's corners are scaled by `spatialScale` and rounded to whole
/// cells; the RoI is split into pooledHeight x pooledWidth bins with integer edges (see `quantizedBins`), and each
/// output is the maximum of its bin, with `argmax` its index `y * w + x` in the image's h x w plane.
///
/// Callers guarantee (the C ABI validates): shapes as documented, batch indices integral and in [0, n), finite
/// coordinates, pooled sizes > 0.
public enum RoIPool {
    /// Rounded coordinates are saturated to ±2^31: torchvision keeps them in `int`, so within that range the
    /// results are identical, and beyond it (where its arithmetic overflows) ours stays defined.
    @usableFromInline static let coordinateLimit = 2_147_483_648.0

    /// `round(v)` (half away from zero) as an Int, saturated to ±`coordinateLimit`; NaN maps to the lower limit.
    @inlinable @inline(__always)
    static func roundedCoordinate<T: KernelFloat>(_ v: T) -> Int {
        let r = v.rounded(.toNearestOrAwayFromZero)
        let limit = T(coordinateLimit)
        guard r > -limit else { return -Int(coordinateLimit) }
        guard r < limit else { return Int(coordinateLimit) }
        return Int(r)
    }

    /// Integer bin edges along one axis of a RoI, shared by roi_pool and ps_roi_pool.
    ///
    /// With `start = round(lo * scale)`, `end = round(hi * scale)` and
    /// `size = max(end - start + (inclusiveEnd ? 1 : 0), 1)`, bin `i` covers
    /// `[floor(i * size / pooled), ceil((i + 1) * size / pooled))` shifted by `start` and clamped to `[0, limit]`
    /// (`size / pooled` is computed in `T`, as torchvision does). roi_pool counts the end cell (`inclusiveEnd`) and
    /// clamps to the map size; ps_roi_pool does neither and clamps to size - 1. A bin with `end <= start` is empty.
    @inlinable
    public static func quantizedBins<T: KernelFloat>(
        from lo: T, to hi: T, scale: T, pooled: Int, inclusiveEnd: Bool, limit: Int,
        starts: UnsafeMutablePointer<Int>, ends: UnsafeMutablePointer<Int>
    ) {
        let start = roundedCoordinate(lo * scale)
        let end = roundedCoordinate(hi * scale)
        let size = max(end - start + (inclusiveEnd ? 1 : 0), 1)
        let binSize = T(size) / T(pooled)
        for i in 0..<pooled {
            let s = Int((T(i) * binSize).rounded(.down)) + start
            let e = Int((T(i + 1) * binSize).rounded(.up)) + start
            starts[i] = min(max(s, 0), limit)
            ends[i] = min(max(e, 0), limit)
        }
    }

    /// Bin edges of every RoI, `[hs (ph), he (ph), ws (pw), we (pw)]` per RoI, computed once per call.
    @inlinable
    static func allBins<T: KernelFloat>(
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        inclusiveEnd: Bool, limitH: Int, limitW: Int
    ) -> UnsafeMutablePointer<Int> {
        let stride = 2 * (ph + pw)
        let edges = UnsafeMutablePointer<Int>.allocate(capacity: k * stride)
        for r in 0..<k {
            let roi = rois + 5 * r, e = edges + r * stride
            quantizedBins(
                from: roi[2], to: roi[4], scale: spatialScale, pooled: ph, inclusiveEnd: inclusiveEnd,
                limit: limitH, starts: e, ends: e + ph)
            quantizedBins(
                from: roi[1], to: roi[3], scale: spatialScale, pooled: pw, inclusiveEnd: inclusiveEnd,
                limit: limitW, starts: e + 2 * ph, ends: e + 2 * ph + pw)
        }
        return edges
    }

    /// Forward pass: fills `output` and, unless it is nil, `argmax` (k, c, pooledHeight, pooledWidth).
    ///
    /// An empty bin gives 0 and argmax -1. The maximum is taken with `>` starting from -FLT_MAX in row-major order,
    /// as torchvision does: ties keep the first maximum, NaN never wins, and a bin holding only values <= -FLT_MAX
    /// gives -FLT_MAX with argmax -1.
    ///
    /// Runs `forwardTiled` for maps of at most `ChannelTile.maxPlane` cells, else `forwardPlanes`; both give the
    /// same results.
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int64>?
    ) {
        if h * w <= ChannelTile.maxPlane {
            forwardTiled(
                input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                pooledHeight: ph, pooledWidth: pw, spatialScale: spatialScale, output: output,
                argmax: argmax)
        } else {
            forwardPlanes(
                input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                pooledHeight: ph, pooledWidth: pw, spatialScale: spatialScale, output: output,
                argmax: argmax)
        }
    }

    /// `forward` through channels-last tiles; the map must have at most `ChannelTile.maxPlane` cells.
    ///
    /// Threading: bin edges are computed once per RoI, and RoIs are grouped by image, up front. The work units,
    /// (image, block of `ChannelTile.width` channels), are split over `Parallel` threads. A unit copies its
    /// channels into a `ChannelTile` and pools every RoI of its image from it, so it writes only its own
    /// `(roi, channel)` outputs and reads each cell's channels as one vector.
    @inlinable
    public static func forwardTiled<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int64>?
    ) {
        if k == 0 || c == 0 { return }
        // Argmax lanes: the integers of T's comparison masks (32 bits for Float), which hold any tiled cell index.
        typealias Index = T.SIMDMaskScalar
        let bins = ph * pw
        let plane = h * w
        let stride = 2 * (ph + pw)
        let kernels = T.kernels
        let edges = allBins(
            rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: spatialScale,
            inclusiveEnd: true, limitH: h, limitW: w)
        defer { edges.deallocate() }
        let (order, imageStart) = groupByImage(rois: rois, roiCount: k, batch: n)
        defer { order.deallocate(); imageStart.deallocate() }
        let blocks = (c + ChannelTile.width - 1) / ChannelTile.width
        Parallel.forEachChunk(n * blocks) { units in
            let tile = UnsafeMutablePointer<SIMD16<T>>.allocate(capacity: plane)
            let maxima = UnsafeMutablePointer<SIMD16<T>>.allocate(capacity: bins)
            let winners = UnsafeMutablePointer<SIMD16<Index>>.allocate(capacity: bins)
            defer { tile.deallocate(); maxima.deallocate(); winners.deallocate() }
            for unit in units {
                let img = unit / blocks, c0 = (unit % blocks) * ChannelTile.width
                if imageStart[img] == imageStart[img + 1] { continue }
                let gc = min(ChannelTile.width, c - c0)
                ChannelTile.fill(tile, from: input + (img * c + c0) * plane, channels: gc, plane: plane)
                for s in imageStart[img]..<imageStart[img + 1] {
                    let r = order[s]
                    kernels.roiPoolTile(tile, w, edges + r * stride, ph, pw, maxima, winners)
                    ChannelTile.store(maxima, count: bins, channels: gc, to: output + (r * c + c0) * bins)
                    if let argmax {
                        let idx = argmax + (r * c + c0) * bins
                        for g in 0..<gc {
                            for o in 0..<bins { idx[g * bins + o] = Int64(winners[o][g]) }
                        }
                    }
                }
            }
        }
    }

    /// Channels one scan of a bin pools together in `forwardPlanes` (the kernel keeps one running maximum per
    /// channel in its own variable, so changing this means changing `forwardPlanes`). A single running maximum is a chain of dependent
    /// compare-and-selects; four independent ones (four channels, same cells) keep the CPU's pipelines busy, and
    /// the compiler turns them into vector instructions.
    @usableFromInline static let channelGroup = 4

    /// `forward` straight from the (n, c, h, w) planes, for maps too large for `forwardTiled`'s tiles.
    ///
    /// Threading: bin edges are computed once per RoI, up front. Groups of `channelGroup` channels are then split
    /// over `Parallel` threads: a thread pools every RoI from its channels, so it writes only its own
    /// `(roi, channel)` outputs and works on a few H x W planes at a time, which stay in cache across the RoIs.
    @inlinable
    public static func forwardPlanes<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int64>?
    ) {
        if k == 0 || c == 0 { return }
        let bins = ph * pw
        let plane = h * w
        let stride = 2 * (ph + pw)
        let lowest = T(-Float.greatestFiniteMagnitude)
        let edges = allBins(
            rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: spatialScale,
            inclusiveEnd: true, limitH: h, limitW: w)
        defer { edges.deallocate() }
        let groups = (c + channelGroup - 1) / channelGroup
        Parallel.forEachChunk(groups, minItemsPerChunk: max(1, 1024 / (k * bins))) { range in
            for group in range {
                // Channels c0 ..< c0 + gc; a short last group repeats its first channel in the unused lanes.
                let c0 = group * channelGroup, gc = min(channelGroup, c - c0)
                for r in 0..<k {
                    let e = edges + r * stride
                    let hs = e, he = e + ph, ws = e + 2 * ph, we = e + 2 * ph + pw
                    let image = input + T.clampedInt(rois[5 * r], 0, n - 1) * c * plane
                    let p0 = image + c0 * plane, p1 = image + (c0 + min(1, gc - 1)) * plane
                    let p2 = image + (c0 + min(2, gc - 1)) * plane, p3 = image + (c0 + min(3, gc - 1)) * plane
                    let out = output + (r * c + c0) * bins
                    let idx = argmax.map { $0 + (r * c + c0) * bins }
                    for i in 0..<ph {
                        for j in 0..<pw {
                            let o = i * pw + j
                            if he[i] <= hs[i] || we[j] <= ws[j] {
                                for g in 0..<gc {
                                    out[g * bins + o] = 0
                                    idx?[g * bins + o] = -1
                                }
                                continue
                            }
                            var m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest
                            var a0 = -1, a1 = -1, a2 = -1, a3 = -1
                            for y in hs[i]..<he[i] {
                                for cell in (y * w + ws[j])..<(y * w + we[j]) {
                                    let v0 = p0[cell], v1 = p1[cell], v2 = p2[cell], v3 = p3[cell]
                                    let t0 = v0 > m0, t1 = v1 > m1, t2 = v2 > m2, t3 = v3 > m3
                                    m0 = t0 ? v0 : m0; a0 = t0 ? cell : a0
                                    m1 = t1 ? v1 : m1; a1 = t1 ? cell : a1
                                    m2 = t2 ? v2 : m2; a2 = t2 ? cell : a2
                                    m3 = t3 ? v3 : m3; a3 = t3 ? cell : a3
                                }
                            }
                            out[o] = m0; idx?[o] = Int64(a0)
                            if gc > 1 { out[bins + o] = m1; idx?[bins + o] = Int64(a1) }
                            if gc > 2 { out[2 * bins + o] = m2; idx?[2 * bins + o] = Int64(a2) }
                            if gc > 3 { out[3 * bins + o] = m3; idx?[3 * bins + o] = Int64(a3) }
                        }
                    }
                }
            }
        }
    }

    /// RoI indices sorted by image (stable): image `b` owns `order[imageStart[b] ..< imageStart[b + 1]]`. The
    /// caller deallocates both.
    @inlinable
    public static func groupByImage<T: KernelFloat>(
        rois: UnsafePointer<T>, roiCount k: Int, batch n: Int
    ) -> (order: UnsafeMutablePointer<Int>, imageStart: UnsafeMutablePointer<Int>) {
        let imageStart = UnsafeMutablePointer<Int>.allocate(capacity: n + 1)
        imageStart.initialize(repeating: 0, count: n + 1)
        for r in 0..<k { imageStart[T.clampedInt(rois[5 * r], 0, n - 1) + 1] += 1 }
        for b in 0..<n { imageStart[b + 1] += imageStart[b] }
        let order = UnsafeMutablePointer<Int>.allocate(capacity: k)
        let next = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { next.deallocate() }
        next.initialize(from: imageStart, count: n)
        for r in 0..<k {
            let b = T.clampedInt(rois[5 * r], 0, n - 1)
            order[next[b]] = r
            next[b] += 1
        }
        return (order, imageStart)
    }

    /// Backward pass: `gradInput` (n, c, h, w) is overwritten with the sum, over RoIs and bins, of each bin's
    /// `gradOutput` routed to the cell its `argmax` names (bins with argmax -1 contribute nothing).
    ///
    /// `rois` supplies each RoI's image; nil means every RoI belongs to image 0. Callers guarantee argmax values in
    /// [-1, h * w).
    ///
    /// Threading: channels are split over `Parallel` threads; each thread zeroes and accumulates into its own
    /// channels of every image, so no two threads write the same memory and no atomics are needed.
    @inlinable
    public static func backward<T: KernelFloat>(
        gradOutput: UnsafePointer<T>, argmax: UnsafePointer<Int64>, rois: UnsafePointer<T>?, roiCount k: Int,
        pooledHeight ph: Int, pooledWidth pw: Int, batch n: Int, channels c: Int, height h: Int, width w: Int,
        gradInput: UnsafeMutablePointer<T>
    ) {
        if n == 0 || c == 0 { return }
        let bins = ph * pw
        let plane = h * w
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 16384 / max(1, k * bins + n * plane))) { channels in
            for img in 0..<n {
                (gradInput + (img * c + channels.lowerBound) * plane).initialize(
                    repeating: 0,
                    count: channels.count * plane)
            }
            for r in 0..<k {
                let b = rois.map { T.clampedInt($0[5 * r], 0, n - 1) } ?? 0
                for ch in channels {
                    let g = gradOutput + (r * c + ch) * bins
                    let idx = argmax + (r * c + ch) * bins
                    let dst = gradInput + (b * c + ch) * plane
                    for o in 0..<bins where idx[o] >= 0 {
                        dst[Int(idx[o])] += g[o]
                    }
                }
            }
        }
    }
}
