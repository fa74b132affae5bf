/// Position-sensitive RoI average pooling (R-FCN), as `torchvision.ops.ps_roi_pool`.
///
/// Layout: `input` (n, c, h, w) row-major with c = outChannels * pooledHeight * pooledWidth; `rois` (k, 5) rows
/// `[batch_index, x1, y1, x2, y2]`; `output` (k, outChannels, pooledHeight, pooledWidth). Output channel `co` at bin
/// `(i, j)` averages input channel `(co * pooledHeight + i) * pooledWidth + j` over the bin.
///
/// Bins have integer edges as in roi_pool, except that (as in torchvision) the RoI size is `end - start` without
/// the end cell and edges are clamped to `[0, h - 1]` and `[0, w - 1]`, so the last row and column of the map are
/// never pooled. An empty bin gives 0. The backward pass clamps differently (see `backward`).
///
/// Callers guarantee (the C ABI validates): shapes as documented, batch indices integral and in [0, n), finite
/// coordinates, pooled sizes > 0.
public enum PSRoIPool {
    /// The input channel that output channel `co` reads at bin `(i, j)`.
    @inlinable @inline(__always)
    public static func inputChannel(_ co: Int, _ i: Int, _ j: Int, pooledHeight ph: Int, pooledWidth pw: Int) -> Int {
        (co * ph + i) * pw + j
    }

    /// Forward pass: fills `output` (k, c / (pooledHeight * pooledWidth), pooledHeight, pooledWidth).
    ///
    /// Threading: RoIs are split over `Parallel` threads; each writes its own RoIs' outputs. Bin edges are computed
    /// once per RoI and reused for every channel.
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels c: Int, height h: Int, width w: Int,
        rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int, pooledWidth pw: Int, spatialScale: T,
        output: UnsafeMutablePointer<T>
    ) {
        let bins = ph * pw
        let outChannels = c / bins
        if k == 0 || outChannels == 0 { return }
        let plane = h * w
        Parallel.forEachChunk(k, minItemsPerChunk: max(1, 4096 / c)) { range in
            let edges = UnsafeMutablePointer<Int>.allocate(capacity: 2 * (ph + pw))
            defer { edges.deallocate() }
            let hs = edges, he = edges + ph, ws = edges + 2 * ph, we = edges + 2 * ph + pw
            for r in range {
                let roi = rois + 5 * r
                let image = input + Int(roi[0]) * c * plane
                RoIPool.quantizedBins(from: roi[2], to: roi[4], scale: spatialScale, pooled: ph, inclusiveEnd: false,
                                      limit: h - 1, starts: hs, ends: he)
                RoIPool.quantizedBins(from: roi[1], to: roi[3], scale: spatialScale, pooled: pw, inclusiveEnd: false,
                                      limit: w - 1, starts: ws, ends: we)
                let out = output + r * outChannels * bins
                for co in 0..<outChannels {
                    for i in 0..<ph {
                        for j in 0..<pw {
                            let o = (co * ph + i) * pw + j
                            if he[i] <= hs[i] || we[j] <= ws[j] {
                                out[o] = 0
                                continue
                            }
                            let src = image + inputChannel(co, i, j, pooledHeight: ph, pooledWidth: pw) * plane
                            var sum: T = 0
                            for y in hs[i]..<he[i] {
                                let row = src + y * w
                                for x in ws[j]..<we[j] { sum += row[x] }
                            }
                            out[o] = sum / T((he[i] - hs[i]) * (we[j] - ws[j]))
                        }
                    }
                }
            }
        }
    }

    /// Backward pass: `gradInput` (n, c, h, w) is overwritten with the sum over RoIs of each non-empty bin's
    /// gradient divided by the bin's area, spread over the bin's cells of the bin's input channel.
    ///
    /// As in torchvision's backward kernel (which autograd uses), bin edges here are clamped to `[0, h]` and
    /// `[0, w]`, not to `h - 1` and `w - 1` as in the forward pass: bins touching the last row or column get
    /// gradient there, including bins that were empty (output 0) in the forward pass.
    ///
    /// Threading: input channels are split over `Parallel` threads; each thread zeroes and accumulates into its own
    /// channels of every image (every input channel belongs to exactly one output channel and bin), so no two
    /// threads write the same memory and no atomics are needed.
    @inlinable
    public static func backward<T: KernelFloat>(
        gradOutput: UnsafePointer<T>, rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int,
        pooledWidth pw: Int, spatialScale: T, batch n: Int, channels c: Int, height h: Int, width w: Int,
        gradInput: UnsafeMutablePointer<T>
    ) {
        if n == 0 || c == 0 { return }
        let plane = h * w
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 16384 / max(1, k + n * plane))) { channels in
            for img in 0..<n {
                (gradInput + (img * c + channels.lowerBound) * plane).initialize(repeating: 0,
                                                                                 count: channels.count * plane)
            }
            let edges = UnsafeMutablePointer<Int>.allocate(capacity: 2 * (ph + pw))
            defer { edges.deallocate() }
            let hs = edges, he = edges + ph, ws = edges + 2 * ph, we = edges + 2 * ph + pw
            for r in 0..<k {
                let roi = rois + 5 * r
                let image = gradInput + Int(roi[0]) * c * plane
                RoIPool.quantizedBins(from: roi[2], to: roi[4], scale: spatialScale, pooled: ph, inclusiveEnd: false,
                                      limit: h, starts: hs, ends: he)
                RoIPool.quantizedBins(from: roi[1], to: roi[3], scale: spatialScale, pooled: pw, inclusiveEnd: false,
                                      limit: w, starts: ws, ends: we)
                let g = gradOutput + r * c
                for ci in channels {
                    // ci = (co * ph + i) * pw + j, and the gradient of that bin sits at the same flat offset.
                    let i = (ci / pw) % ph, j = ci % pw
                    if he[i] <= hs[i] || we[j] <= ws[j] { continue }
                    let diff = g[ci] / T((he[i] - hs[i]) * (we[j] - ws[j]))
                    let dst = image + ci * plane
                    for y in hs[i]..<he[i] {
                        let row = dst + y * w
                        for x in ws[j]..<we[j] { row[x] += diff }
                    }
                }
            }
        }
    }
}
