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
/// Speed: a bin's average is separable, `sum_y sum_x u(y) w(x) map(y, x) / count`, where the row weight `u(y)`
/// gathers the vertical bilinear weights of all the bin's sample rows that touch map row `y`, and `w(x)` likewise
/// for columns. Per RoI these sparse weight lists are tabulated once (`RoIPlan`) and reused for every channel.
/// Per bin row the kernel sums the weighted map rows over the RoI's column span (contiguous, vectorisable), then
/// each bin is a short dot product of that line with its column weights; the backward pass is the transpose. Work
/// is thus about (distinct rows x span) instead of 4 reads per sample, which matters most for adaptive sampling
/// (about one sample per pixel). Results match torchvision's to rounding, not bit for bit.
///
/// Threading: RoIs are grouped by the feature maps they read (level, image), and the work is a list of items spread
/// over `Parallel` threads. Forward items are (group, block of 16 channels): the block is copied into a channels-last
/// `ChannelTile`, and every RoI of the group is pooled from it with the arithmetic above on 16 channels at once
/// (maps too large for a tile are pooled one plane at a time, with items (run of RoIs of one group, channel)); each
/// item writes its own outputs. Backward items are (group, channel), so each thread owns its gradient planes across
/// all RoIs and needs no atomics.
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
    /// Largest total work of one call, `Geometry.cost` summed over RoIs times channels: 2^38 map reads. The
    /// heaviest realistic call (2000 RoIs covering a whole 200 x 272 map with adaptive sampling, 256 channels) is
    /// ~2^35; at the limit a call still finishes in minutes rather than never.
    public static let maxTotalWork: Int = 1 << 38
    /// Table entries (row or column weights, plus bin boundaries) built at once per axis: 2^21, at most 64 MB of
    /// tables for `Double`. Calls whose RoIs need more are done in several passes over the feature maps.
    @usableFromInline static let tableBudget = 1 << 21
    /// Work items (run, channel) wanted per thread, so that uneven runs still balance over the threads.
    @usableFromInline static let itemsPerThread = 8

    /// Where one RoI samples its feature map. `gridH`/`gridW` are the samples per bin along each axis as the
    /// element type computes them (integral, possibly <= 0 for an inverted box with `aligned`, which then takes no
    /// samples, or beyond `Int` range for an absurd box: callers check `sampleRowsAndColumns` before running a
    /// kernel).
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

        /// Map reads of one channel of this RoI, bounding the kernels' work: each sample row is read over the
        /// RoI's column span (at most the map's `width`), and each bin row reads its line once per sample column.
        @inlinable public func cost(pooledH: Int, pooledW: Int, width: Int) -> Double {
            let (rows, columns) = sampleRowsAndColumns(pooledH: pooledH, pooledW: pooledW)
            let span = Swift.min(Double(width), Double(binW.magnitude) * Double(pooledW) + 2)
            return rows * span + Double(pooledH) * columns
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

        @inlinable
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
            forward(
                levels: levels, count: 1, levelOfRoI: nil, batch: n, channels: channels, rois: rois, count: k,
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
                groupOfRoI[r] = l * n + T.clampedInt(rois[5 * r], 0, n - 1)
            }
        }
        var plan = RoIPlan<T>(groupOfRoI: groupOfRoI, groups: levelCount * n)
        defer { plan.deallocate() }
        let tiled = (0..<levelCount).allSatisfy { levels[$0].height * levels[$0].width <= ChannelTile.maxPlane }
        if tiled {
            forwardTiled(
                plan: &plan, levels: levels, batch: n, channels: channels, rois: rois, pooledH: pooledH,
                pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned, output: output)
        } else {
            forwardPlanes(
                plan: &plan, levels: levels, batch: n, channels: channels, rois: rois, pooledH: pooledH,
                pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned, output: output)
        }
    }

    /// The pooling of `forward(levels:...)` through `ChannelTile`s; every level must have at most
    /// `ChannelTile.maxPlane` cells.
    ///
    /// Work items are (group, block of `ChannelTile.width` channels): an item copies its block of the group's
    /// feature map into a tile and pools every RoI of the group from it, computing exactly what `forwardPlanes`
    /// computes per channel, on 16 channels at once.
    @inlinable
    static func forwardTiled<T: KernelFloat>(
        plan: inout RoIPlan<T>, levels: UnsafePointer<Level<T>>, batch n: Int, channels: Int, rois: UnsafePointer<T>,
        pooledH: Int, pooledW: Int, samplingRatio: Int, aligned: Bool, output: UnsafeMutablePointer<T>
    ) {
        let bins = pooledH * pooledW
        let blocks = (channels + ChannelTile.width - 1) / ChannelTile.width
        plan.forEachItem(
            rois: rois, level: { levels[$0 / n] }, pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio,
            aligned: aligned, channels: blocks, runLength: Int.max
        ) { t, positions, group, block in
            let level = levels[group / n]
            let planeSize = level.height * level.width
            let c0 = block * ChannelTile.width, gc = Swift.min(ChannelTile.width, channels - c0)
            let tile = UnsafeMutablePointer<SIMD16<T>>.allocate(capacity: planeSize)
            // The weighted sum of one bin row's map rows over the RoI's column span, and the bin averages.
            let line = UnsafeMutablePointer<SIMD16<T>>.allocate(capacity: level.width)
            let averages = UnsafeMutablePointer<SIMD16<T>>.allocate(capacity: bins)
            defer { tile.deallocate(); line.deallocate(); averages.deallocate() }
            ChannelTile.fill(
                tile, from: level.data + ((group % n) * channels + c0) * planeSize, channels: gc,
                plane: planeSize)
            let (rowBounds, rowIndex, rowWeight) = (t.rowBounds, t.rowIndex, t.rowWeight)
            let (columnBounds, columnIndex, columnWeight) = (t.columnBounds, t.columnIndex, t.columnWeight)
            let kernels = T.kernels
            for s in positions {
                let o = output + (t.order[s] * channels + c0) * bins
                if t.gridH[s] == 0 {
                    for g in 0..<gc { (o + g * bins).update(repeating: 0, count: bins) }
                    continue
                }
                kernels.roiAlignTile(
                    tile, line, rowBounds + t.rowBoundStart[s], rowIndex, rowWeight,
                    columnBounds + t.columnBoundStart[s], columnIndex, columnWeight, t.spanLow[s], t.spanHigh[s],
                    pooledH, pooledW, T(t.gridH[s] * t.gridW[s]), averages)
                ChannelTile.store(averages, count: bins, channels: gc, to: o)
            }
        }
    }

    /// The pooling of `forward(levels:...)` one channel plane at a time, for maps too large for `forwardTiled`.
    ///
    /// Work items are (run of RoIs of one group, channel); each visits one plane for all RoIs of its run.
    @inlinable
    static func forwardPlanes<T: KernelFloat>(
        plan: inout RoIPlan<T>, levels: UnsafePointer<Level<T>>, batch n: Int, channels: Int, rois: UnsafePointer<T>,
        pooledH: Int, pooledW: Int, samplingRatio: Int, aligned: Bool, output: UnsafeMutablePointer<T>
    ) {
        let bins = pooledH * pooledW
        // Runs may split a group: forward items write disjoint outputs whatever the split.
        let wantedRuns = (Parallel.numThreads * itemsPerThread + channels - 1) / Swift.max(channels, 1)
        let runLength = Swift.max(1, plan.count / Swift.max(wantedRuns, 1))
        plan.forEachItem(
            rois: rois, level: { levels[$0 / n] }, pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio,
            aligned: aligned, channels: channels, runLength: runLength
        ) { t, positions, group, c in
            let level = levels[group / n]
            let plane = level.data + ((group % n) * channels + c) * (level.height * level.width)
            // The weighted sum of one bin row's map rows, over the RoI's column span.
            let line = UnsafeMutablePointer<T>.allocate(capacity: level.width)
            defer { line.deallocate() }
            let (rowBounds, rowIndex, rowWeight) = (t.rowBounds, t.rowIndex, t.rowWeight)
            let (columnBounds, columnIndex, columnWeight) = (t.columnBounds, t.columnIndex, t.columnWeight)
            for s in positions {
                let o = output + (t.order[s] * channels + c) * bins
                if t.gridH[s] == 0 {
                    o.update(repeating: 0, count: bins)
                    continue
                }
                let count = T(t.gridH[s] * t.gridW[s])
                let rb = rowBounds + t.rowBoundStart[s], cb = columnBounds + t.columnBoundStart[s]
                let span = t.spanLow[s]...t.spanHigh[s]
                for ph in 0..<pooledH {
                    // Map rows are added two at a time, the first pair (or single row) overwriting the line.
                    var e = rb[ph]
                    let end = rb[ph + 1]
                    if end - e >= 2 {
                        let row0 = plane + rowIndex[e], row1 = plane + rowIndex[e + 1]
                        let w0 = rowWeight[e], w1 = rowWeight[e + 1]
                        for x in span { line[x] = w0 * row0[x] + w1 * row1[x] }
                        e += 2
                    } else if end - e == 1 {
                        let row = plane + rowIndex[e], w = rowWeight[e]
                        for x in span { line[x] = w * row[x] }
                        e += 1
                    } else {
                        for x in span { line[x] = 0 }
                    }
                    while end - e >= 2 {
                        let row0 = plane + rowIndex[e], row1 = plane + rowIndex[e + 1]
                        let w0 = rowWeight[e], w1 = rowWeight[e + 1]
                        for x in span { line[x] += w0 * row0[x] + w1 * row1[x] }
                        e += 2
                    }
                    if e < end {
                        let row = plane + rowIndex[e], w = rowWeight[e]
                        for x in span { line[x] += w * row[x] }
                    }
                    for pw in 0..<pooledW {
                        var sum: T = 0
                        for e in cb[pw]..<cb[pw + 1] { sum += columnWeight[e] * line[columnIndex[e]] }
                        o[ph * pooledW + pw] = sum / count
                    }
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
        var plan = RoIPlan<T>(groupOfRoI: (0..<k).map { T.clampedInt(rois[5 * $0], 0, n - 1) }, groups: n)
        defer { plan.deallocate() }
        // The plan reads only a level's size and scale.
        let level = Level(data: UnsafePointer(gradInput), height: height, width: width, spatialScale: spatialScale)
        // Runs are whole images, so each gradient plane belongs to one item.
        plan.forEachItem(
            rois: rois, level: { _ in level }, pooledH: pooledH, pooledW: pooledW, samplingRatio: samplingRatio,
            aligned: aligned, channels: channels, runLength: Int.max
        ) { t, positions, image, c in
            let plane = gradInput + (image * channels + c) * planeSize
            // The gradient of one bin row's line, spread back over its map rows.
            let line = UnsafeMutablePointer<T>.allocate(capacity: width)
            defer { line.deallocate() }
            let (rowBounds, rowIndex, rowWeight) = (t.rowBounds, t.rowIndex, t.rowWeight)
            let (columnBounds, columnIndex, columnWeight) = (t.columnBounds, t.columnIndex, t.columnWeight)
            for s in positions {
                if t.gridH[s] == 0 { continue }
                let go = gradOutput + (t.order[s] * channels + c) * bins
                let count = T(t.gridH[s] * t.gridW[s])
                let rb = rowBounds + t.rowBoundStart[s], cb = columnBounds + t.columnBoundStart[s]
                let span = t.spanLow[s]...t.spanHigh[s]
                for ph in 0..<pooledH {
                    for x in span { line[x] = 0 }
                    for pw in 0..<pooledW {
                        let grad = go[ph * pooledW + pw] / count
                        for e in cb[pw]..<cb[pw + 1] { line[columnIndex[e]] += grad * columnWeight[e] }
                    }
                    for e in rb[ph]..<rb[ph + 1] {
                        let row = plane + rowIndex[e], w = rowWeight[e]
                        for x in span { row[x] += w * line[x] }
                    }
                }
            }
        }
    }
}

/// The sampling plan of one RoIAlign call: RoIs sorted by group (the feature planes they read: level and image),
/// each RoI's geometry and grid, and the weight tables of a batch of RoIs (`tableBudget` entries per axis at most).
///
/// For a RoI at sorted position `s`, bin row `ph` reads the map rows `rowIndex[e]` (offsets premultiplied by the
/// width) with weights `rowWeight[e]` for `e` in `rb[ph]..<rb[ph + 1]`, `rb = rowBounds + rowBoundStart[s]`: the
/// bilinear weights of all its sample rows inside the map, summed per map row. Bin columns likewise with column
/// indices. Samples outside the map are left out (they contribute exactly 0). All columns read lie in
/// `spanLow[s]...spanHigh[s]`. A RoI with no sample inside the map has `gridH == gridW == 0`.
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
    @usableFromInline let rowBoundStart: UnsafeMutablePointer<Int>, columnBoundStart: UnsafeMutablePointer<Int>
    @usableFromInline let rowEntryStart: UnsafeMutablePointer<Int>, columnEntryStart: UnsafeMutablePointer<Int>
    @usableFromInline let spanLow: UnsafeMutablePointer<Int>, spanHigh: UnsafeMutablePointer<Int>
    @usableFromInline let geometry: UnsafeMutablePointer<RoIAlign.Geometry<T>>
    /// Tables of the current batch.
    @usableFromInline var rowCapacity = 0, columnCapacity = 0
    @usableFromInline var rowBounds: UnsafeMutablePointer<Int>, rowIndex: UnsafeMutablePointer<Int>
    @usableFromInline var rowWeight: UnsafeMutablePointer<T>
    @usableFromInline var columnBounds: UnsafeMutablePointer<Int>, columnIndex: UnsafeMutablePointer<Int>
    @usableFromInline var columnWeight: UnsafeMutablePointer<T>

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
        rowBoundStart = .allocate(capacity: count); columnBoundStart = .allocate(capacity: count)
        rowEntryStart = .allocate(capacity: count); columnEntryStart = .allocate(capacity: count)
        spanLow = .allocate(capacity: count); spanHigh = .allocate(capacity: count)
        geometry = .allocate(capacity: count)
        rowBounds = .allocate(capacity: 0); rowIndex = .allocate(capacity: 0); rowWeight = .allocate(capacity: 0)
        columnBounds = .allocate(capacity: 0); columnIndex = .allocate(capacity: 0)
        columnWeight = .allocate(capacity: 0)
    }

    @inlinable
    func deallocate() {
        for p in [
            order, groupStart, gridH, gridW, rowBoundStart, columnBoundStart, rowEntryStart, columnEntryStart,
            spanLow, spanHigh, rowBounds, rowIndex, columnBounds, columnIndex,
        ] {
            p.deallocate()
        }
        rowWeight.deallocate()
        columnWeight.deallocate()
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
            let geo = RoIAlign.geometry(
                rois + 5 * order[s], spatialScale: level(g).spatialScale, pooledH: pooledH,
                pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned)
            geometry[s] = geo
            let h = T.clampedInt(geo.gridH, 0, RoIAlign.maxSamplesPerAxis)
            let w = T.clampedInt(geo.gridW, 0, RoIAlign.maxSamplesPerAxis)
            (gridH[s], gridW[s]) = h == 0 || w == 0 ? (0, 0) : (h, w)
        }
        var batchStart = 0
        while batchStart < count {
            // The longest run of positions whose tables fit the budget (always at least one RoI). A RoI needs
            // per axis its bin boundaries and at most two entries per sample row (column).
            var batchEnd = batchStart, rows = 0, columns = 0
            while batchEnd < count {
                let h = gridH[batchEnd] == 0 ? 0 : pooledH + 1 + 2 * pooledH * gridH[batchEnd]
                let w = gridW[batchEnd] == 0 ? 0 : pooledW + 1 + 2 * pooledW * gridW[batchEnd]
                if batchEnd > batchStart && (rows + h > RoIAlign.tableBudget || columns + w > RoIAlign.tableBudget) {
                    break
                }
                rowBoundStart[batchEnd] = rows
                rowEntryStart[batchEnd] = rows + pooledH + 1
                columnBoundStart[batchEnd] = columns
                columnEntryStart[batchEnd] = columns + pooledW + 1
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

    /// Makes room for `rows` and `columns` table slots (bounds and entries share one index space per axis).
    @inlinable
    mutating func reserve(rows: Int, columns: Int) {
        if rows > rowCapacity {
            rowBounds.deallocate(); rowIndex.deallocate(); rowWeight.deallocate()
            rowCapacity = rows
            rowBounds = .allocate(capacity: rows); rowIndex = .allocate(capacity: rows)
            rowWeight = .allocate(capacity: rows)
        }
        if columns > columnCapacity {
            columnBounds.deallocate(); columnIndex.deallocate(); columnWeight.deallocate()
            columnCapacity = columns
            columnBounds = .allocate(capacity: columns); columnIndex = .allocate(capacity: columns)
            columnWeight = .allocate(capacity: columns)
        }
    }

    /// Tabulates the row and column weights of the RoIs at `positions`, in parallel, and finds their column spans.
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
                    stride: map.width, bounds: rowBounds + rowBoundStart[s], firstEntry: rowEntryStart[s],
                    index: rowIndex, weight: rowWeight)
                let columns = RoIPlan.fillAxis(
                    start: geo.startX, bin: geo.binW, grid: gridW[s], pooled: pooledW, size: map.width, stride: 1,
                    bounds: columnBounds + columnBoundStart[s], firstEntry: columnEntryStart[s],
                    index: columnIndex, weight: columnWeight)
                if let columns, rows != nil {
                    (spanLow[s], spanHigh[s]) = columns
                } else {
                    (gridH[s], gridW[s]) = (0, 0)
                }
            }
        }
    }

    /// One axis of one RoI. Sample `j` of bin `p` lies at `start + p * bin + (j + 0.5) * bin / grid`; each sample
    /// inside `[-1, size]` adds `1 - frac` to its lower neighbour and `frac` to its upper one. Entries of bin `p`
    /// go to `index/weight[bounds[p]..<bounds[p + 1]]`, starting at `firstEntry`, one per distinct neighbour
    /// (times `stride`). Returns the lowest and highest neighbour read, or nil when no sample is inside.
    @inlinable
    static func fillAxis(
        start: T, bin: T, grid: Int, pooled: Int, size: Int, stride: Int, bounds: UnsafeMutablePointer<Int>,
        firstEntry: Int, index: UnsafeMutablePointer<Int>, weight: UnsafeMutablePointer<T>
    ) -> (Int, Int)? {
        let gridT = T(grid)
        var first = Int.max, last = Int.min
        var n = firstEntry
        for p in 0..<pooled {
            bounds[p] = n
            let binStart = n
            // Adds `w` to neighbour `i`. Samples are visited in increasing position, so a neighbour seen before is
            // one of the last two entries.
            func add(_ i: Int, _ w: T) {
                if n > binStart && index[n - 1] == i {
                    weight[n - 1] += w
                } else if n - 1 > binStart && index[n - 2] == i {
                    weight[n - 2] += w
                } else {
                    index[n] = i
                    weight[n] = w
                    n += 1
                }
            }
            let origin = start + T(p) * bin
            for step in 0..<grid {
                let j = bin < 0 ? grid - 1 - step : step
                let v = origin + (T(j) + 0.5) * bin / gridT
                guard let (lo, hi, frac) = bilinearTap(v, size: size) else { continue }
                add(lo * stride, 1 - frac)
                add(hi * stride, frac)
                first = Swift.min(first, lo * stride)
                last = Swift.max(last, hi * stride)
            }
        }
        bounds[pooled] = n
        return first <= last ? (first, last) : nil
    }
}
