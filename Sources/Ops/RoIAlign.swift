/// RoIAlign (He et al., "Mask R-CNN", 2017) with torchvision's CPU semantics, forward and backward.
///
/// Layout: feature maps are row-major `(N, C, H, W)`; RoIs are `(K, 5)` rows `[batch_index, x1, y1, x2, y2]`; the
/// pooled output and its gradient are `(K, C, PH, PW)`.
///
/// Semantics (positions and weights computed in the element type `T` in torchvision's order of operations):
/// - a RoI starts at `coord * spatial_scale - offset` (offset 0.5 when `aligned`, else 0); without `aligned` its
///   width and height are raised to at least 1; a bin is `roi size / pooled size`;
/// - each bin averages a `grid_h x grid_w` grid of bilinear samples, where the grid is `sampling_ratio` per axis
///   when that is > 0, else `ceil(roi size / pooled size)` (adaptive); the divisor is `max(grid_h * grid_w, 1)`;
/// - sample `iy` of bin row `ph` sits at `y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h` (same for x);
/// - a sample with `y` outside `[-1, H]` (or `x` outside `[-1, W]`) contributes 0; otherwise `y <= 0` becomes 0,
///   `y_low = Int(y)`, and when `y_low >= H - 1` both neighbours are row `H - 1` (and `y = H - 1`).
///   NaN positions count as outside. A map with no rows or columns takes no samples. Samples outside contribute
///   exactly 0 (torchvision multiplies 0 by some input value, which differs only for non-finite inputs).
///
/// Speed: bilinear interpolation is separable, so for each RoI the row offsets and weights of its `PH * grid_h`
/// sample rows and the column indices and weights of its `PW * grid_w` sample columns are tabulated once
/// (`RoIPlan`) and reused for every channel. Each sample row is first interpolated vertically over the RoI's
/// column span (a contiguous, vectorisable loop), then each sample needs two reads of that row instead of four
/// reads of the map; the backward pass mirrors this (scatter into one row, then spread it over the two map rows).
/// Results therefore match torchvision's to rounding, not bit for bit. RoIs are grouped by the feature planes they read (level, image), and
/// the work is a list of (run of RoIs of one group, channel) items: an item visits one `H x W` plane for all RoIs
/// of its run, so the plane stays in cache instead of being fetched once per RoI. Items are spread over
/// `Parallel` threads; in the forward pass each item writes its own output planes, and in the backward pass runs
/// are whole groups, so each thread owns its gradient planes across all RoIs and needs no atomics.
///
/// Callers validate inputs first (the C ABI does): batch indices integral and in `[0, N)`, the `Geometry` of every
/// RoI finite with grids no larger than the limits below.
public enum RoIAlign {
    /// Largest number of sample rows (`PH * grid_h`) or sample columns (`PW * grid_w`) of one RoI: 2^16. With
    /// adaptive sampling this is about the RoI's extent in feature-map pixels, and 65536 pixels exceeds any real
    /// feature map's side; one RoI's tables always fit `tableBudget`.
    public static let maxSamplesPerAxis = 1 << 16
    /// Largest number of bilinear samples of one RoI (`PH * grid_h * PW * grid_w`): 2^26, the pixel count of an
    /// 8192 x 8192 map. More means a box far larger than any feature map (coordinates in the wrong units).
    public static let maxSamplesPerRoI = 1 << 26
    /// Largest total work of one call, samples summed over RoIs times channels: 2^38 (~2.7e11 bilinear reads of
    /// four values). The heaviest realistic call (2000 RoIs covering a whole 200 x 272 map, 256 channels) is ~2^35;
    /// at the limit a call still finishes in minutes rather than never.
    public static let maxTotalWork: Int = 1 << 38
    /// Sample rows (and sample columns) tabulated at once: 2^20, at most 48 MB of tables for `Double`. Calls whose
    /// RoIs need more are done in several passes over the feature maps.
    @usableFromInline static let tableBudget = 1 << 20
    /// Work items (run, channel) wanted per thread, so that uneven runs still balance over the threads.
    @usableFromInline static let itemsPerThread = 8

    /// Where one RoI samples its feature map. `gridH`/`gridW` are the samples per bin along each axis as the
    /// element type computes them (integral, possibly <= 0 for an inverted box with `aligned`, which then takes no
    /// samples, or beyond `Int` range for an absurd box: callers check `samples` before running a kernel).
    public struct Geometry<T: KernelFloat> {
        public var startY: T, startX: T, binH: T, binW: T
        public var gridH: T, gridW: T

        @inlinable
        public init(startY: T, startX: T, binH: T, binW: T, gridH: T, gridW: T) {
            self.startY = startY
            self.startX = startX
            self.binH = binH
            self.binW = binW
            self.gridH = gridH
            self.gridW = gridW
        }

        /// All positions and sizes are finite.
        @inlinable public var isFinite: Bool {
            startY.isFinite && startX.isFinite && binH.isFinite && binW.isFinite && gridH.isFinite && gridW.isFinite
        }

        /// Sample rows and columns of the whole RoI (`PH * grid_h`, `PW * grid_w`), as `Double`, 0 when the grid
        /// is empty.
        @inlinable public func sampleRowsAndColumns(pooledH: Int, pooledW: Int) -> (rows: Double, columns: Double) {
            (Double(pooledH) * Swift.max(Double(gridH), 0), Double(pooledW) * Swift.max(Double(gridW), 0))
        }
    }

    /// The geometry of `roi` (5 values) at `spatialScale`, exactly as torchvision's kernel computes it.
    @inlinable
    public static func geometry<T: KernelFloat>(
        _ roi: UnsafePointer<T>, spatialScale: T, pooledH: Int, pooledW: Int, samplingRatio: Int, aligned: Bool
    ) -> Geometry<T> {
        let offset: T = aligned ? 0.5 : 0
        let startX = roi[1] * spatialScale - offset
        let startY = roi[2] * spatialScale - offset
        let endX = roi[3] * spatialScale - offset
        let endY = roi[4] * spatialScale - offset
        var width = endX - startX
        var height = endY - startY
        if !aligned {
            width = Swift.max(width, 1)
            height = Swift.max(height, 1)
        }
        let binH = height / T(pooledH)
        let binW = width / T(pooledW)
        let gridH = samplingRatio > 0 ? T(samplingRatio) : binH.rounded(.up)
        let gridW = samplingRatio > 0 ? T(samplingRatio) : binW.rounded(.up)
        return Geometry(startY: startY, startX: startX, binH: binH, binW: binW, gridH: gridH, gridW: gridW)
    }

    /// One feature map of a (possibly multi-level) RoIAlign: `(N, C, height, width)` at `data`, and the factor
    /// mapping box coordinates onto it.
    public struct Level<T: KernelFloat> {
        public let data: UnsafePointer<T>
        public let height: Int
        public let width: Int
        public let spatialScale: T

        public init(data: UnsafePointer<T>, height: Int, width: Int, spatialScale: T) {
            self.data = data
            self.height = height
            self.width = width
            self.spatialScale = spatialScale
        }
    }

    /// Forward RoIAlign of `rois` (k, 5) on `input` (n, channels, height, width) into `output`
    /// (k, channels, pooledH, pooledW).
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, batch n: Int, channels: Int, height: Int, width: Int,
        rois: UnsafePointer<T>, count k: Int, spatialScale: T, pooledH: Int, pooledW: Int, samplingRatio: Int,
        aligned: Bool, output: UnsafeMutablePointer<T>
    ) {
        var level = Level(data: input, height: height, width: width, spatialScale: spatialScale)
        withUnsafePointer(to: &level) { levels in
            forward(levels: levels, count: 1, levelOfRoI: nil, batch: n, channels: channels, rois: rois, count: k,
                    pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned,
                    output: output)
        }
    }

    /// Forward RoIAlign where RoI `i` is pooled from `levels[levelOfRoI[i]]`, or from `levels[0]` when
    /// `levelOfRoI` is nil. A RoI whose level is negative gets a zero output; levels must otherwise be in
    /// `0..<levelCount`. Every level is `(n, channels, height_l, width_l)`.
    @inlinable
    public static func forward<T: KernelFloat>(
        levels: UnsafePointer<Level<T>>, count levelCount: Int, levelOfRoI: UnsafePointer<Int>?, batch n: Int,
        channels: Int, rois: UnsafePointer<T>, count k: Int, pooledH: Int, pooledW: Int, samplingRatio: Int,
        aligned: Bool, output: UnsafeMutablePointer<T>
    ) {
        let bins = pooledH * pooledW
        var groupOfRoI = [Int](repeating: -1, count: k)
        for r in 0..<k {
            let l = levelOfRoI?[r] ?? 0
            if l < 0 {
                (output + r * channels * bins).update(repeating: 0, count: channels * bins)
            } else {
                groupOfRoI[r] = l * n + Int(rois[5 * r])
            }
        }
        var plan = RoIPlan<T>(groupOfRoI: groupOfRoI, groups: levelCount * n)
        defer { plan.deallocate() }
        // Runs may split a group: forward items write disjoint outputs whatever the split.
        let wantedRuns = (Parallel.numThreads * itemsPerThread + channels - 1) / Swift.max(channels, 1)
        let runLength = Swift.max(1, plan.count / Swift.max(wantedRuns, 1))
        plan.forEachItem(
            rois: rois, level: { levels[$0 / n] }, pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio,
            aligned: aligned, channels: channels, runLength: runLength
        ) { t, positions, group, c in
            let level = levels[group / n]
            let plane = level.data + ((group % n) * channels + c) * (level.height * level.width)
            // One sample row interpolated between its two map rows, over the RoI's column span.
            let line = UnsafeMutablePointer<T>.allocate(capacity: level.width)
            defer { line.deallocate() }
            for s in positions {
                let o = output + (t.order[s] * channels + c) * bins
                let gridH = t.gridH[s], gridW = t.gridW[s]
                if gridH == 0 {
                    o.update(repeating: 0, count: bins)
                    continue
                }
                let count = T(gridH * gridW)
                let rows = t.rowStart[s], columns = t.columnStart[s]
                let span = t.spanLow[s]...t.spanHigh[s]
                // Each bin sums its samples row by row; the bins of an output row accumulate side by side in the
                // output, so their sums are independent chains the CPU can overlap.
                for ph in 0..<pooledH {
                    let sums = o + ph * pooledW
                    sums.update(repeating: 0, count: pooledW)
                    for yi in (rows + ph * gridH)..<(rows + ph * gridH + gridH) where t.hy[yi] > 0 {
                        let row0 = plane + t.rowLow[yi], row1 = plane + t.rowHigh[yi]
                        let hy = t.hy[yi], ly = t.ly[yi]
                        for x in span { line[x] = hy * row0[x] + ly * row1[x] }
                        var xi = columns
                        for pw in 0..<pooledW {
                            var sum = sums[pw]
                            for _ in 0..<gridW {
                                sum += t.hx[xi] * line[t.columnLow[xi]] + t.lx[xi] * line[t.columnHigh[xi]]
                                xi += 1
                            }
                            sums[pw] = sum
                        }
                    }
                    for pw in 0..<pooledW { sums[pw] /= count }
                }
            }
        }
    }

    /// Backward RoIAlign: the gradient of `forward` with respect to its input. `gradOutput` (k, channels, pooledH,
    /// pooledW) -> `gradInput` (n, channels, height, width), overwritten.
    @inlinable
    public static func backward<T: KernelFloat>(
        gradOutput: UnsafePointer<T>, rois: UnsafePointer<T>, count k: Int, spatialScale: T, pooledH: Int,
        pooledW: Int, samplingRatio: Int, aligned: Bool, gradInput: UnsafeMutablePointer<T>, batch n: Int,
        channels: Int, height: Int, width: Int
    ) {
        let planeSize = height * width, bins = pooledH * pooledW
        Parallel.forEachChunk(n * channels) { planes in
            (gradInput + planes.lowerBound * planeSize).update(repeating: 0, count: planes.count * planeSize)
        }
        var plan = RoIPlan<T>(groupOfRoI: (0..<k).map { Int(rois[5 * $0]) }, groups: n)
        defer { plan.deallocate() }
        let level = Level(data: UnsafePointer(gradInput), height: height, width: width, spatialScale: spatialScale)
        // Runs are whole images, so each gradient plane belongs to one item.
        plan.forEachItem(
            rois: rois, level: { _ in level }, pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio,
            aligned: aligned, channels: channels, runLength: Int.max
        ) { t, positions, image, c in
            let plane = gradInput + (image * channels + c) * planeSize
            // The gradient of one sample row, over the RoI's column span, before it is split between map rows.
            let line = UnsafeMutablePointer<T>.allocate(capacity: width)
            defer { line.deallocate() }
            for s in positions {
                let gridH = t.gridH[s], gridW = t.gridW[s]
                if gridH == 0 { continue }
                let go = gradOutput + (t.order[s] * channels + c) * bins
                let count = T(gridH * gridW)
                let rows = t.rowStart[s], columns = t.columnStart[s]
                let span = t.spanLow[s]...t.spanHigh[s]
                for ph in 0..<pooledH {
                    for yi in (rows + ph * gridH)..<(rows + ph * gridH + gridH) where t.hy[yi] > 0 {
                        for x in span { line[x] = 0 }
                        var xi = columns
                        for pw in 0..<pooledW {
                            let grad = go[ph * pooledW + pw] / count
                            for _ in 0..<gridW {
                                // Columns outside the map have weight 0 and receive nothing.
                                if t.hx[xi] > 0 {
                                    line[t.columnLow[xi]] += grad * t.hx[xi]
                                    line[t.columnHigh[xi]] += grad * t.lx[xi]
                                }
                                xi += 1
                            }
                        }
                        let row0 = plane + t.rowLow[yi], row1 = plane + t.rowHigh[yi]
                        let hy = t.hy[yi], ly = t.ly[yi]
                        for x in span { row0[x] += hy * line[x] }
                        for x in span { row1[x] += ly * line[x] }
                    }
                }
            }
        }
    }
}

/// The sampling plan of one RoIAlign call: RoIs sorted by group (the feature planes they read: level and image),
/// each RoI's geometry and grid, and the separable bilinear tables of a batch of RoIs (`tableBudget` rows and
/// columns at most). Tables are indexed through `rowStart`/`columnStart` of a RoI's sorted position: its sample
/// row `i = ph * grid_h + iy` has the offsets of its two neighbouring map rows (premultiplied by the width) in
/// `rowLow`/`rowHigh` and their weights in `hy` (lower, 1 - frac) and `ly` (upper, frac); columns likewise. A sample
/// row or column outside the map has weights 0 (a sample inside always has a positive lower weight) and points at a
/// column inside the RoI's span `spanLow...spanHigh` (the map columns its samples read). A RoI whose samples all
/// fall outside has `gridH == gridW == 0`.
@usableFromInline
struct RoIPlan<T: KernelFloat> {
    /// RoIs planned (those with a group).
    @usableFromInline let count: Int
    @usableFromInline let groups: Int
    /// Sorted position -> RoI index; group g owns positions `groupStart[g]..<groupStart[g + 1]`.
    @usableFromInline let order: UnsafeMutablePointer<Int>
    @usableFromInline let groupStart: UnsafeMutablePointer<Int>
    /// Per sorted position.
    @usableFromInline let gridH: UnsafeMutablePointer<Int>, gridW: UnsafeMutablePointer<Int>
    @usableFromInline let rowStart: UnsafeMutablePointer<Int>, columnStart: UnsafeMutablePointer<Int>
    @usableFromInline let spanLow: UnsafeMutablePointer<Int>, spanHigh: UnsafeMutablePointer<Int>
    @usableFromInline let geometry: UnsafeMutablePointer<RoIAlign.Geometry<T>>
    /// Tables of the current batch.
    @usableFromInline var rowCapacity = 0, columnCapacity = 0
    @usableFromInline var rowLow: UnsafeMutablePointer<Int>, rowHigh: UnsafeMutablePointer<Int>
    @usableFromInline var hy: UnsafeMutablePointer<T>, ly: UnsafeMutablePointer<T>
    @usableFromInline var columnLow: UnsafeMutablePointer<Int>, columnHigh: UnsafeMutablePointer<Int>
    @usableFromInline var hx: UnsafeMutablePointer<T>, lx: UnsafeMutablePointer<T>

    /// Sorts RoIs by `groupOfRoI` (stable; -1 leaves a RoI out) into `groups` groups.
    @inlinable
    init(groupOfRoI: [Int], groups: Int) {
        self.groups = groups
        groupStart = .allocate(capacity: groups + 1)
        groupStart.initialize(repeating: 0, count: groups + 1)
        for g in groupOfRoI where g >= 0 { groupStart[g + 1] += 1 }
        for g in 0..<groups { groupStart[g + 1] += groupStart[g] }
        count = groupStart[groups]
        order = .allocate(capacity: count)
        var next = [Int](UnsafeBufferPointer(start: groupStart, count: groups))
        for (r, g) in groupOfRoI.enumerated() where g >= 0 {
            order[next[g]] = r
            next[g] += 1
        }
        gridH = .allocate(capacity: count); gridW = .allocate(capacity: count)
        rowStart = .allocate(capacity: count); columnStart = .allocate(capacity: count)
        spanLow = .allocate(capacity: count); spanHigh = .allocate(capacity: count)
        geometry = .allocate(capacity: count)
        rowLow = .allocate(capacity: 0); rowHigh = .allocate(capacity: 0); hy = .allocate(capacity: 0)
        ly = .allocate(capacity: 0); columnLow = .allocate(capacity: 0); columnHigh = .allocate(capacity: 0)
        hx = .allocate(capacity: 0); lx = .allocate(capacity: 0)
    }

    @inlinable
    func deallocate() {
        for p in [order, groupStart, gridH, gridW, rowStart, columnStart, spanLow, spanHigh, rowLow, rowHigh,
                  columnLow, columnHigh] {
            p.deallocate()
        }
        for p in [hy, ly, hx, lx] { p.deallocate() }
        geometry.deallocate()
    }

    /// Calls `body(tables, positions, group, channel)` for every (run, channel) item, in parallel. Runs are the
    /// sorted positions of one group within one table batch, cut into pieces of at most `runLength` RoIs.
    /// `level(g)` is the feature map group `g` reads.
    @inlinable
    mutating func forEachItem(
        rois: UnsafePointer<T>, level: (Int) -> RoIAlign.Level<T>, pooledH: Int, pooledW: Int, samplingRatio: Int,
        aligned: Bool, channels: Int, runLength: Int,
        _ body: (_ tables: RoIPlan<T>, _ positions: Range<Int>, _ group: Int, _ channel: Int) -> Void
    ) {
        if count == 0 || channels == 0 { return }
        // Geometry and grid of every RoI.
        var g = 0
        for s in 0..<count {
            while groupStart[g + 1] <= s { g += 1 }
            let geo = RoIAlign.geometry(rois + 5 * order[s], spatialScale: level(g).spatialScale, pooledH: pooledH,
                                        pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned)
            geometry[s] = geo
            let h = Int(Swift.max(geo.gridH, 0)), w = Int(Swift.max(geo.gridW, 0))
            (gridH[s], gridW[s]) = h == 0 || w == 0 ? (0, 0) : (h, w)
        }
        var batchStart = 0
        while batchStart < count {
            // The longest run of positions whose tables fit the budget (always at least one RoI).
            var batchEnd = batchStart, rows = 0, columns = 0
            while batchEnd < count {
                let h = pooledH * gridH[batchEnd], w = pooledW * gridW[batchEnd]
                if batchEnd > batchStart && (rows + h > RoIAlign.tableBudget || columns + w > RoIAlign.tableBudget) {
                    break
                }
                rowStart[batchEnd] = rows
                columnStart[batchEnd] = columns
                rows += h
                columns += w
                batchEnd += 1
            }
            reserve(rows: rows, columns: columns)
            fillTables(batchStart..<batchEnd, level: level, pooledH: pooledH, pooledW: pooledW)
            var runs = [(positions: Range<Int>, group: Int)]()
            for g in 0..<groups {
                var lo = Swift.max(groupStart[g], batchStart)
                let hi = Swift.min(groupStart[g + 1], batchEnd)
                while lo < hi {
                    let end = hi - lo > runLength ? lo + runLength : hi
                    runs.append((lo..<end, g))
                    lo = end
                }
            }
            let plan = self
            runs.withUnsafeBufferPointer { runs in
                Parallel.forEachChunk(runs.count * channels) { items in
                    for item in items {
                        let run = runs[item / channels]
                        body(plan, run.positions, run.group, item % channels)
                    }
                }
            }
            batchStart = batchEnd
        }
    }

    @inlinable
    mutating func reserve(rows: Int, columns: Int) {
        if rows > rowCapacity {
            for p in [rowLow, rowHigh] { p.deallocate() }
            for p in [hy, ly] { p.deallocate() }
            rowCapacity = rows
            rowLow = .allocate(capacity: rows); rowHigh = .allocate(capacity: rows)
            hy = .allocate(capacity: rows); ly = .allocate(capacity: rows)
        }
        if columns > columnCapacity {
            for p in [columnLow, columnHigh] { p.deallocate() }
            for p in [hx, lx] { p.deallocate() }
            columnCapacity = columns
            columnLow = .allocate(capacity: columns); columnHigh = .allocate(capacity: columns)
            hx = .allocate(capacity: columns); lx = .allocate(capacity: columns)
        }
    }

    /// Tabulates the sample rows and columns of the RoIs at `positions`, in parallel, and finds their column spans.
    @inlinable
    func fillTables(_ positions: Range<Int>, level: (Int) -> RoIAlign.Level<T>, pooledH: Int, pooledW: Int) {
        Parallel.forEachChunk(positions.count, minItemsPerChunk: 256) { chunk in
            var g = 0
            for s in (positions.lowerBound + chunk.lowerBound)..<(positions.lowerBound + chunk.upperBound) {
                if gridH[s] == 0 { continue }
                while groupStart[g + 1] <= s { g += 1 }
                let map = level(g), geo = geometry[s]
                let rows = RoIPlan.fillAxis(
                    start: geo.startY, bin: geo.binH, grid: gridH[s], pooled: pooledH, size: map.height,
                    stride: map.width, low: rowLow + rowStart[s], high: rowHigh + rowStart[s],
                    lowWeight: hy + rowStart[s], highWeight: ly + rowStart[s])
                let columns = RoIPlan.fillAxis(
                    start: geo.startX, bin: geo.binW, grid: gridW[s], pooled: pooledW, size: map.width, stride: 1,
                    low: columnLow + columnStart[s], high: columnHigh + columnStart[s],
                    lowWeight: hx + columnStart[s], highWeight: lx + columnStart[s])
                if let columns, rows != nil {
                    (spanLow[s], spanHigh[s]) = columns
                } else {
                    (gridH[s], gridW[s]) = (0, 0)
                }
            }
        }
    }

    /// One axis: sample `i = p * grid + j` lies at `start + p * bin + (j + 0.5) * bin / grid`. Returns the range
    /// of neighbour indices (times `stride`) the samples inside read, or nil when none is inside; samples outside
    /// are given weights 0 and the lowest of those indices.
    @inlinable
    static func fillAxis(
        start: T, bin: T, grid: Int, pooled: Int, size: Int, stride: Int, low: UnsafeMutablePointer<Int>,
        high: UnsafeMutablePointer<Int>, lowWeight: UnsafeMutablePointer<T>, highWeight: UnsafeMutablePointer<T>
    ) -> (Int, Int)? {
        let gridT = T(grid), sizeT = T(size)
        var first = Int.max, last = Int.min
        var i = 0
        for p in 0..<pooled {
            let binStart = start + T(p) * bin
            for j in 0..<grid {
                var v = binStart + (T(j) + 0.5) * bin / gridT
                // Written so that NaN falls outside.
                if size > 0 && v >= -1 && v <= sizeT {
                    if v <= 0 { v = 0 }
                    var lo = Int(v)
                    let hi: Int
                    if lo >= size - 1 {
                        lo = size - 1
                        hi = lo
                        v = T(lo)
                    } else {
                        hi = lo + 1
                    }
                    let frac = v - T(lo)
                    low[i] = lo * stride
                    high[i] = hi * stride
                    lowWeight[i] = 1 - frac
                    highWeight[i] = frac
                    first = Swift.min(first, lo * stride)
                    last = Swift.max(last, hi * stride)
                } else {
                    low[i] = -1
                    lowWeight[i] = 0
                    highWeight[i] = 0
                }
                i += 1
            }
        }
        if first > last { return nil }
        for i in 0..<(pooled * grid) where low[i] < 0 {
            low[i] = first
            high[i] = first
        }
        return (first, last)
    }
}
