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

    /// Elements of input planes a thread copies to its own buffer at once (`forEachStagedGroup`): 2^18, 1 MB of
    /// `Float`, about a core's L2 cache. Larger planes are read in place.
    @usableFromInline static let stageBudget = 1 << 18

    /// How many input planes of `plane` cells `forEachStagedGroup` stages at once: 0 when one plane is larger than
    /// `stageBudget` (such planes are read in place).
    @inlinable
    static func stagedPlanes(plane: Int, outChannels: Int) -> Int {
        plane <= stageBudget ? min(outChannels, stageBudget / max(plane, 1)) : 0
    }

    /// The loop of the position-sensitive forward passes over the work items `items` of one thread.
    ///
    /// Memory: every input plane feeds one bin of one output channel, so each is read once per image, at scattered
    /// points. Read in place, nearly every read would wait on main memory; instead the planes are copied (staged) a
    /// few at a time into `stage` (room for `staged` planes, see `stagedPlanes`) with sequential reads, and pooled
    /// there from cache. With `staged` 0 they are read in place.
    ///
    /// Calls `body(o, img, group, planes, step)` for each bin run `o` (see `forEachBinRun`), each image `img` that
    /// has RoIs (`imageStart` as from `RoIPool.groupByImage`) and each group of the run's output channels, with the
    /// plane output channel `group.lowerBound + q` reads at `planes + q * step`. Groups split a run evenly.
    @inlinable
    static func forEachStagedGroup<T: KernelFloat>(
        _ items: Range<Int>, input: UnsafePointer<T>, batch n: Int, channels c: Int, plane: Int, outChannels: Int,
        imageStart: UnsafePointer<Int>, stage: UnsafeMutablePointer<T>, staged: Int,
        _ body: (_ bin: Int, _ image: Int, _ group: Range<Int>, _ planes: UnsafePointer<T>, _ step: Int) -> Void
    ) {
        let bins = c / outChannels
        forEachBinRun(items, outChannels: outChannels) { o, outs in
            let groups = staged > 0 ? (outs.count + staged - 1) / staged : 1
            let size = (outs.count + groups - 1) / groups
            for img in 0..<n where imageStart[img] < imageStart[img + 1] {
                let first = input + (img * c + o) * plane
                var lo = outs.lowerBound
                while lo < outs.upperBound {
                    let group = lo..<min(lo + size, outs.upperBound)
                    lo = group.upperBound
                    if staged == 0 {
                        body(o, img, group, first + group.lowerBound * bins * plane, bins * plane)
                        continue
                    }
                    for (q, co) in group.enumerated() {
                        (stage + q * plane).update(from: first + co * bins * plane, count: plane)
                    }
                    body(o, img, group, stage, plane)
                }
            }
        }
    }

    /// Forward pass: fills `output` (k, c / (pooledHeight * pooledWidth), pooledHeight, pooledWidth).
    ///
    /// Threading: the (bin, output channel) pairs are split over `Parallel` threads (see `forEachBinRun`); each
    /// thread pools every RoI for its pairs, so it writes only its own outputs, reading the input planes through
    /// `forEachStagedGroup`. Bin edges are computed once per call and laid out per bin in image order, so a thread
    /// reads those of its bin contiguously.
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
        let edges = RoIPool.allBins(
            rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
            spatialScale: spatialScale, inclusiveEnd: false, limitH: h - 1, limitW: w - 1)
        defer { edges.deallocate() }
        let (order, imageStart) = RoIPool.groupByImage(rois: rois, roiCount: k, batch: n)
        defer { order.deallocate(); imageStart.deallocate() }
        // `[y0, y1, x0, x1]` of bin o of RoI order[s] at boxes[4 * (o * k + s)].
        let boxes = UnsafeMutablePointer<Int>.allocate(capacity: 4 * bins * k)
        defer { boxes.deallocate() }
        for s in 0..<k {
            let e = edges + order[s] * stride
            for i in 0..<ph {
                for j in 0..<pw {
                    let b = boxes + 4 * ((i * pw + j) * k + s)
                    b[0] = e[i]; b[1] = e[ph + i]; b[2] = e[2 * ph + j]; b[3] = e[2 * ph + pw + j]
                }
            }
        }
        let staged = stagedPlanes(plane: plane, outChannels: outChannels)
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 1024 / k)) { items in
            let stage = UnsafeMutablePointer<T>.allocate(capacity: staged * plane)
            defer { stage.deallocate() }
            forEachStagedGroup(
                items, input: input, batch: n, channels: c, plane: plane, outChannels: outChannels,
                imageStart: imageStart, stage: stage, staged: staged
            ) { o, img, group, planes, step in
                for s in imageStart[img]..<imageStart[img + 1] {
                    let b = boxes + 4 * (o * k + s)
                    let (y0, y1, x0, x1) = (b[0], b[1], b[2], b[3])
                    let dst = output + (order[s] * outChannels + group.lowerBound) * bins + o
                    if y1 <= y0 || x1 <= x0 {
                        for q in 0..<group.count { dst[q * bins] = 0 }
                        continue
                    }
                    let area = T((y1 - y0) * (x1 - x0))
                    var q = 0
                    while q < group.count {
                        let lanes = min(4, group.count - q)
                        let sums = binSums(
                            planes + q * step + y0 * w + x0, step: step, lanes: lanes,
                            rows: y1 - y0, columns: x1 - x0, width: w)
                        dst[q * bins] = sums.0 / area
                        if lanes > 1 { dst[(q + 1) * bins] = sums.1 / area }
                        if lanes > 2 { dst[(q + 2) * bins] = sums.2 / area }
                        if lanes > 3 { dst[(q + 3) * bins] = sums.3 / area }
                        q += 4
                    }
                }
            }
        }
    }

    /// Sums of a `rows x columns` box (row stride `width`) in up to four planes `step` apart, starting at `first`;
    /// lanes from `lanes` on repeat the last plane. Each sum runs in row-major order, as torchvision's; the four
    /// run side by side, so the additions overlap instead of waiting on one another.
    @inlinable @inline(__always)
    static func binSums<T: KernelFloat>(
        _ first: UnsafePointer<T>, step: Int, lanes: Int, rows: Int, columns: Int, width w: Int
    ) -> (T, T, T, T) {
        let p0 = first, p1 = first + min(1, lanes - 1) * step
        let p2 = first + min(2, lanes - 1) * step, p3 = first + min(3, lanes - 1) * step
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
        for y in 0..<rows {
            let row = y * w
            for x in row..<(row + columns) {
                s0 += p0[x]; s1 += p1[x]; s2 += p2[x]; s3 += p3[x]
            }
        }
        return (s0, s1, s2, s3)
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
        let edges = RoIPool.allBins(
            rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
            spatialScale: spatialScale, inclusiveEnd: false, limitH: h, limitW: w)
        defer { edges.deallocate() }
        Parallel.forEachChunk(c, minItemsPerChunk: max(1, 16384 / max(1, k + n * plane))) { items in
            forEachBinRun(items, outChannels: outChannels) { o, outs in
                for img in 0..<n {
                    for co in outs {
                        (gradInput + (img * c + co * bins + o) * plane).initialize(
                            repeating: 0,
                            count: plane)
                    }
                }
                let i = o / pw, j = o % pw
                for r in 0..<k {
                    let e = edges + r * stride
                    let (y0, y1, x0, x1) = (e[i], e[ph + i], e[2 * ph + j], e[2 * ph + pw + j])
                    if y1 <= y0 || x1 <= x0 { continue }
                    let area = T((y1 - y0) * (x1 - x0))
                    let image = gradInput + T.clampedInt(rois[5 * r], 0, n - 1) * c * plane
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
