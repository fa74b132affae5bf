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

    /// Forward pass: fills `output` and `argmax` (k, c, pooledHeight, pooledWidth).
    ///
    /// An empty bin gives 0 and argmax -1. The maximum is taken with `>` starting from -FLT_MAX in row-major order,
    /// as torchvision does: ties keep the first maximum, NaN never wins, and a bin holding only values <= -FLT_MAX
    /// gives -FLT_MAX with argmax -1.
    ///
    /// Threading: RoIs are split over `Parallel` threads; each writes its own RoIs' outputs. Bin edges are computed
    /// once per RoI and reused for every channel.
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int64>
    ) {
        if k == 0 || c == 0 { return }
        let bins = ph * pw
        let plane = h * w
        let lowest = T(-Float.greatestFiniteMagnitude)
        Parallel.forEachChunk(k, minItemsPerChunk: max(1, 4096 / (c * bins))) { range in
            let edges = UnsafeMutablePointer<Int>.allocate(capacity: 2 * (ph + pw))
            defer { edges.deallocate() }
            let hs = edges, he = edges + ph, ws = edges + 2 * ph, we = edges + 2 * ph + pw
            for r in range {
                let roi = rois + 5 * r
                let b = Int(roi[0])
                quantizedBins(from: roi[2], to: roi[4], scale: spatialScale, pooled: ph, inclusiveEnd: true,
                              limit: h, starts: hs, ends: he)
                quantizedBins(from: roi[1], to: roi[3], scale: spatialScale, pooled: pw, inclusiveEnd: true,
                              limit: w, starts: ws, ends: we)
                for ch in 0..<c {
                    let src = input + (b * c + ch) * plane
                    let out = output + (r * c + ch) * bins
                    let idx = argmax + (r * c + ch) * bins
                    for i in 0..<ph {
                        for j in 0..<pw {
                            let o = i * pw + j
                            if he[i] <= hs[i] || we[j] <= ws[j] {
                                out[o] = 0
                                idx[o] = -1
                                continue
                            }
                            var best = lowest
                            var bestIndex = -1
                            for y in hs[i]..<he[i] {
                                let row = src + y * w
                                for x in ws[j]..<we[j] where row[x] > best {
                                    best = row[x]
                                    bestIndex = y * w + x
                                }
                            }
                            out[o] = best
                            idx[o] = Int64(bestIndex)
                        }
                    }
                }
            }
        }
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
                (gradInput + (img * c + channels.lowerBound) * plane).initialize(repeating: 0,
                                                                                 count: channels.count * plane)
            }
            for r in 0..<k {
                let b = rois.map { Int($0[5 * r]) } ?? 0
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
