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

    /// Runs `body(o, outputChannels)` over the work items `items` of a position-sensitive op, grouped into runs
    /// that share a bin. Item `t` is bin `o = t / outChannels` of output channel `co = t % outChannels`, which reads
    /// (forward) or writes (backward) input channel `co * bins + o` only; so items partition the input channels and
    /// the outputs, and a run of one bin lets a RoI's bin geometry be computed once for all its channels.
    @inlinable
    static func forEachBinRun(_ items: Range<Int>, outChannels: Int, _ body: (Int, Range<Int>) -> Void) {
        var t = items.lowerBound
        while t < items.upperBound {
            let o = t / outChannels
            let end = min(items.upperBound, (o + 1) * outChannels)
            body(o, (t - o * outChannels)..<(end - o * outChannels))
            t = end
        }
    }

    /// Forward pass: fills `output` (k, c / (pooledHeight * pooledWidth), pooledHeight, pooledWidth).
    ///
    /// Threading: bin edges are computed once per RoI, up front. The (bin, output channel) pairs are split over
    /// `Parallel` threads (see `forEachBinRun`); each thread pools every RoI for its pairs, so it writes only its own
    /// outputs and reads a few input planes at a time, which stay in cache across the RoIs.
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
        let stride = 2 * (ph + pw)
        let edges = RoIPool.allBins(rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
                                    spatialScale: spatialScale, inclusiveEnd: false, limitH: h - 1, limitW: w - 1)
        defer { edges.deallocate() }
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 4096 / k)) { items in
            forEachBinRun(items, outChannels: outChannels) { o, outs in
                let i = o / pw, j = o % pw
                for r in 0..<k {
                    let e = edges + r * stride
                    let (y0, y1, x0, x1) = (e[i], e[ph + i], e[2 * ph + j], e[2 * ph + pw + j])
                    let image = input + Int(rois[5 * r]) * c * plane
                    for co in outs {
                        let dst = output + (r * outChannels + co) * bins + o
                        if y1 <= y0 || x1 <= x0 {
                            dst.pointee = 0
                            continue
                        }
                        let src = image + (co * bins + o) * plane
                        var sum: T = 0
                        for y in y0..<y1 {
                            let row = src + y * w
                            for x in x0..<x1 { sum += row[x] }
                        }
                        dst.pointee = sum / T((y1 - y0) * (x1 - x0))
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
    /// Threading: as the forward pass, split by (bin, output channel), i.e. by input channel: each thread zeroes and
    /// accumulates into its own input channels of every image, so no two threads write the same memory and no
    /// atomics are needed. RoIs are visited in order, so each cell accumulates in torchvision's order.
    @inlinable
    public static func backward<T: KernelFloat>(
        gradOutput: UnsafePointer<T>, rois: UnsafePointer<T>, roiCount k: Int, pooledHeight ph: Int,
        pooledWidth pw: Int, spatialScale: T, batch n: Int, channels c: Int, height h: Int, width w: Int,
        gradInput: UnsafeMutablePointer<T>
    ) {
        if n == 0 || c == 0 { return }
        let bins = ph * pw
        let outChannels = c / bins
        let plane = h * w
        let stride = 2 * (ph + pw)
        let edges = RoIPool.allBins(rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
                                    spatialScale: spatialScale, inclusiveEnd: false, limitH: h, limitW: w)
        defer { edges.deallocate() }
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 16384 / max(1, k + n * plane))) { items in
            forEachBinRun(items, outChannels: outChannels) { o, outs in
                for img in 0..<n {
                    for co in outs { (gradInput + (img * c + co * bins + o) * plane).initialize(repeating: 0,
                                                                                                count: plane) }
                }
                let i = o / pw, j = o % pw
                for r in 0..<k {
                    let e = edges + r * stride
                    let (y0, y1, x0, x1) = (e[i], e[ph + i], e[2 * ph + j], e[2 * ph + pw + j])
                    if y1 <= y0 || x1 <= x0 { continue }
                    let area = T((y1 - y0) * (x1 - x0))
                    let image = gradInput + Int(rois[5 * r]) * c * plane
                    for co in outs {
                        let diff = gradOutput[(r * outChannels + co) * bins + o] / area
                        let dst = image + (co * bins + o) * plane
                        for y in y0..<y1 {
                            let row = dst + y * w
                            for x in x0..<x1 { row[x] += diff }
                        }
                    }
                }
            }
        }
    }
}
