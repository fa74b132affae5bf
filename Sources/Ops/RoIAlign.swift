/// RoIAlign (He et al., "Mask R-CNN", 2017) with torchvision's CPU semantics, forward and backward.
///
/// Layout: feature maps are row-major `(N, C, H, W)`; RoIs are `(K, 5)` rows `[batch_index, x1, y1, x2, y2]`; the
/// pooled output and its gradient are `(K, C, PH, PW)`.
///
/// Semantics (all arithmetic in the element type `T`, in torchvision's order of operations):
/// - a RoI starts at `coord * spatial_scale - offset` (offset 0.5 when `aligned`, else 0); without `aligned` its
///   width and height are raised to at least 1; a bin is `roi size / pooled size`;
/// - each bin averages a `grid_h x grid_w` grid of bilinear samples, where the grid is `sampling_ratio` per axis
///   when that is > 0, else `ceil(roi size / pooled size)` (adaptive); the divisor is `max(grid_h * grid_w, 1)`;
/// - sample `iy` of bin row `ph` sits at `y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h` (same for x);
/// - a sample with `y` outside `[-1, H]` (or `x` outside `[-1, W]`) contributes 0; otherwise `y <= 0` becomes 0,
///   `y_low = Int(y)`, and when `y_low >= H - 1` both neighbours are row `H - 1` (and `y = H - 1`).
///   NaN positions count as outside. A map with no rows or columns takes no samples.
///
/// Speed: bilinear interpolation is separable, so for each RoI the row offsets and weights of its `PH * grid_h`
/// sample rows and the column indices and weights of its `PW * grid_w` sample columns are computed once and reused
/// for every channel. Work is split over `Parallel` threads in contiguous runs of (RoI, channel) pairs for the
/// forward pass (each thread writes its own output planes) and of (image, channel) planes for the backward pass
/// (each thread owns its planes of the gradient across all RoIs, so no atomics are needed).
///
/// Callers validate inputs first (the C ABI does): batch indices integral and in `[0, N)`, the `Geometry` of every
/// RoI finite with grids no larger than the limits below.
public enum RoIAlign {
    /// Largest number of sample rows (`PH * grid_h`) or sample columns (`PW * grid_w`) of one RoI: 2^16. With
    /// adaptive sampling this is about the RoI's extent in feature-map pixels, and 65536 pixels exceeds any real
    /// feature map's side; the per-thread sample tables stay below ~2 MB.
    public static let maxSamplesPerAxis = 1 << 16
    /// Largest number of bilinear samples of one RoI (`PH * grid_h * PW * grid_w`): 2^26, the pixel count of an
    /// 8192 x 8192 map. More means a box far larger than any feature map (coordinates in the wrong units).
    public static let maxSamplesPerRoI = 1 << 26
    /// Largest total work of one call, samples summed over RoIs times channels: 2^38 (~2.7e11 bilinear reads of
    /// four values). The heaviest realistic call (2000 RoIs covering a whole 200 x 272 map, 256 channels) is ~2^35;
    /// at the limit a call still finishes in minutes rather than never.
    public static let maxTotalWork: Int = 1 << 38
    /// Fewest (RoI, channel) pairs per thread worth a thread: one pair of a 7 x 7 output with 4 samples per bin is
    /// about a microsecond, so 64 pairs is ~50 µs.
    @usableFromInline static let minPairsPerChunk = 64

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

    /// Forward RoIAlign of `rois` (k, 5) on `input` (N, channels, height, width) into `output`
    /// (k, channels, pooledH, pooledW).
    @inlinable
    public static func forward<T: KernelFloat>(
        input: UnsafePointer<T>, channels: Int, height: Int, width: Int,
        rois: UnsafePointer<T>, count k: Int, spatialScale: T, pooledH: Int, pooledW: Int, samplingRatio: Int,
        aligned: Bool, output: UnsafeMutablePointer<T>
    ) {
        var level = Level(data: input, height: height, width: width, spatialScale: spatialScale)
        withUnsafePointer(to: &level) { levels in
            forward(levels: levels, levelOfRoI: nil, channels: channels, rois: rois, count: k, pooledH: pooledH,
                    pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned, output: output)
        }
    }

    /// Forward RoIAlign where RoI `i` is pooled from `levels[levelOfRoI[i]]`, or from `levels[0]` when
    /// `levelOfRoI` is nil. A RoI whose level is negative gets a zero output; levels must otherwise be in range.
    /// Every level has `channels` channels.
    @inlinable
    public static func forward<T: KernelFloat>(
        levels: UnsafePointer<Level<T>>, levelOfRoI: UnsafePointer<Int>?, channels: Int,
        rois: UnsafePointer<T>, count k: Int, pooledH: Int, pooledW: Int, samplingRatio: Int, aligned: Bool,
        output: UnsafeMutablePointer<T>
    ) {
        let binsPerPlane = pooledH * pooledW
        Parallel.forEachChunk(k * channels, minItemsPerChunk: minPairsPerChunk) { pairs in
            var tables = SampleTables<T>()
            defer { tables.deallocate() }
            var pair = pairs.lowerBound
            while pair < pairs.upperBound {
                // The run of channels of one RoI that this chunk covers.
                let r = pair / channels
                let c0 = pair % channels
                let c1 = Swift.min(channels, c0 + (pairs.upperBound - pair))
                pair += c1 - c0
                let out = output + (r * channels + c0) * binsPerPlane
                let planes = (c1 - c0) * binsPerPlane
                let levelIndex = levelOfRoI?[r] ?? 0
                if levelIndex < 0 {
                    out.update(repeating: 0, count: planes)
                    continue
                }
                let level = levels[levelIndex]
                let roi = rois + 5 * r
                let g = geometry(roi, spatialScale: level.spatialScale, pooledH: pooledH, pooledW: pooledW,
                                 samplingRatio: samplingRatio, aligned: aligned)
                let gridH = Int(Swift.max(g.gridH, 0)), gridW = Int(Swift.max(g.gridW, 0))
                if gridH == 0 || gridW == 0 {
                    out.update(repeating: 0, count: planes)
                    continue
                }
                tables.fill(g, gridH: gridH, gridW: gridW, pooledH: pooledH, pooledW: pooledW,
                            height: level.height, width: level.width)
                let count = T(gridH * gridW)
                let planeSize = level.height * level.width
                let image = Int(roi[0])
                for c in c0..<c1 {
                    let plane = level.data + (image * channels + c) * planeSize
                    let o = output + (r * channels + c) * binsPerPlane
                    for ph in 0..<pooledH {
                        for pw in 0..<pooledW {
                            var sum: T = 0
                            for yi in (ph * gridH)..<(ph * gridH + gridH) {
                                let row0 = plane + tables.rowLow[yi], row1 = plane + tables.rowHigh[yi]
                                let hy = tables.hy[yi], ly = tables.ly[yi]
                                for xi in (pw * gridW)..<(pw * gridW + gridW) {
                                    let a = tables.colLow[xi], b = tables.colHigh[xi]
                                    let hx = tables.hx[xi], lx = tables.lx[xi]
                                    let top = hy * hx * row0[a] + hy * lx * row0[b]
                                    sum += top + ly * hx * row1[a] + ly * lx * row1[b]
                                }
                            }
                            o[ph * pooledW + pw] = sum / count
                        }
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
        let planeSize = height * width
        let binsPerPlane = pooledH * pooledW
        // The RoIs of each image, in order: image i owns roisByImage[firstOfImage[i]..<firstOfImage[i + 1]].
        var firstOfImage = [Int](repeating: 0, count: n + 1)
        for r in 0..<k { firstOfImage[Int(rois[5 * r]) + 1] += 1 }
        for i in 0..<n { firstOfImage[i + 1] += firstOfImage[i] }
        var roisByImage = [Int](repeating: 0, count: k)
        var next = firstOfImage
        for r in 0..<k {
            let i = Int(rois[5 * r])
            roisByImage[next[i]] = r
            next[i] += 1
        }
        firstOfImage.withUnsafeBufferPointer { firstOfImage in
        roisByImage.withUnsafeBufferPointer { roisByImage in
            Parallel.forEachChunk(n * channels) { planes in
                var tables = SampleTables<T>()
                defer { tables.deallocate() }
                var p = planes.lowerBound
                while p < planes.upperBound {
                    // The run of channels of one image that this chunk owns.
                    let image = p / channels
                    let c0 = p % channels
                    let c1 = Swift.min(channels, c0 + (planes.upperBound - p))
                    p += c1 - c0
                    (gradInput + (image * channels + c0) * planeSize).update(repeating: 0,
                                                                             count: (c1 - c0) * planeSize)
                    for r in roisByImage[firstOfImage[image]..<firstOfImage[image + 1]] {
                        let g = geometry(rois + 5 * r, spatialScale: spatialScale, pooledH: pooledH,
                                         pooledW: pooledW, samplingRatio: samplingRatio, aligned: aligned)
                        let gridH = Int(Swift.max(g.gridH, 0)), gridW = Int(Swift.max(g.gridW, 0))
                        if gridH == 0 || gridW == 0 { continue }
                        tables.fill(g, gridH: gridH, gridW: gridW, pooledH: pooledH, pooledW: pooledW,
                                    height: height, width: width)
                        let count = T(gridH * gridW)
                        for c in c0..<c1 {
                            let plane = gradInput + (image * channels + c) * planeSize
                            let go = gradOutput + (r * channels + c) * binsPerPlane
                            for ph in 0..<pooledH {
                                for pw in 0..<pooledW {
                                    let grad = go[ph * pooledW + pw] / count
                                    for yi in (ph * gridH)..<(ph * gridH + gridH) where tables.rowValid[yi] {
                                        let row0 = plane + tables.rowLow[yi], row1 = plane + tables.rowHigh[yi]
                                        let gy0 = grad * tables.hy[yi], gy1 = grad * tables.ly[yi]
                                        for xi in (pw * gridW)..<(pw * gridW + gridW) where tables.colValid[xi] {
                                            let a = tables.colLow[xi], b = tables.colHigh[xi]
                                            let hx = tables.hx[xi], lx = tables.lx[xi]
                                            row0[a] += gy0 * hx
                                            row0[b] += gy0 * lx
                                            row1[a] += gy1 * hx
                                            row1[b] += gy1 * lx
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
    }
}

/// The separable bilinear sampling of one RoI: for each of its `PH * grid_h` sample rows the offsets of the two
/// neighbouring map rows (premultiplied by the width) and their weights, and likewise for its `PW * grid_w` sample
/// columns. A sample row or column outside the map has weights 0, offsets 0 and `valid == false`. Buffers grow
/// as needed and are owned by one thread.
@usableFromInline
struct SampleTables<T: KernelFloat> {
    @usableFromInline var capacityY = 0, capacityX = 0
    @usableFromInline var rowLow = UnsafeMutablePointer<Int>(bitPattern: MemoryLayout<Int>.alignment)!
    @usableFromInline var rowHigh = UnsafeMutablePointer<Int>(bitPattern: MemoryLayout<Int>.alignment)!
    @usableFromInline var hy = UnsafeMutablePointer<T>(bitPattern: MemoryLayout<T>.alignment)!
    @usableFromInline var ly = UnsafeMutablePointer<T>(bitPattern: MemoryLayout<T>.alignment)!
    @usableFromInline var rowValid = UnsafeMutablePointer<Bool>(bitPattern: 1)!
    @usableFromInline var colLow = UnsafeMutablePointer<Int>(bitPattern: MemoryLayout<Int>.alignment)!
    @usableFromInline var colHigh = UnsafeMutablePointer<Int>(bitPattern: MemoryLayout<Int>.alignment)!
    @usableFromInline var hx = UnsafeMutablePointer<T>(bitPattern: MemoryLayout<T>.alignment)!
    @usableFromInline var lx = UnsafeMutablePointer<T>(bitPattern: MemoryLayout<T>.alignment)!
    @usableFromInline var colValid = UnsafeMutablePointer<Bool>(bitPattern: 1)!

    @inlinable init() {}

    @inlinable
    mutating func deallocate() {
        if capacityY > 0 {
            rowLow.deallocate(); rowHigh.deallocate(); hy.deallocate(); ly.deallocate(); rowValid.deallocate()
        }
        if capacityX > 0 {
            colLow.deallocate(); colHigh.deallocate(); hx.deallocate(); lx.deallocate(); colValid.deallocate()
        }
        capacityY = 0
        capacityX = 0
    }

    /// Computes the tables of a RoI with geometry `g` on a `height x width` map.
    @inlinable
    mutating func fill(
        _ g: RoIAlign.Geometry<T>, gridH: Int, gridW: Int, pooledH: Int, pooledW: Int, height: Int, width: Int
    ) {
        let rows = pooledH * gridH, columns = pooledW * gridW
        if rows > capacityY {
            if capacityY > 0 {
                rowLow.deallocate(); rowHigh.deallocate(); hy.deallocate(); ly.deallocate(); rowValid.deallocate()
            }
            capacityY = Swift.max(rows, 2 * capacityY)
            rowLow = .allocate(capacity: capacityY); rowHigh = .allocate(capacity: capacityY)
            hy = .allocate(capacity: capacityY); ly = .allocate(capacity: capacityY)
            rowValid = .allocate(capacity: capacityY)
        }
        if columns > capacityX {
            if capacityX > 0 {
                colLow.deallocate(); colHigh.deallocate(); hx.deallocate(); lx.deallocate(); colValid.deallocate()
            }
            capacityX = Swift.max(columns, 2 * capacityX)
            colLow = .allocate(capacity: capacityX); colHigh = .allocate(capacity: capacityX)
            hx = .allocate(capacity: capacityX); lx = .allocate(capacity: capacityX)
            colValid = .allocate(capacity: capacityX)
        }
        SampleTables.fillAxis(start: g.startY, bin: g.binH, grid: gridH, pooled: pooledH, size: height,
                              stride: width, low: rowLow, high: rowHigh, lowWeight: hy, highWeight: ly,
                              valid: rowValid)
        SampleTables.fillAxis(start: g.startX, bin: g.binW, grid: gridW, pooled: pooledW, size: width, stride: 1,
                              low: colLow, high: colHigh, lowWeight: hx, highWeight: lx, valid: colValid)
    }

    /// One axis: sample `i = p * grid + j` lies at `start + p * bin + (j + 0.5) * bin / grid`. `lowWeight` is the
    /// weight of the lower neighbour (1 - frac), `highWeight` that of the upper one (frac).
    @inlinable
    static func fillAxis(
        start: T, bin: T, grid: Int, pooled: Int, size: Int, stride: Int, low: UnsafeMutablePointer<Int>,
        high: UnsafeMutablePointer<Int>, lowWeight: UnsafeMutablePointer<T>, highWeight: UnsafeMutablePointer<T>,
        valid: UnsafeMutablePointer<Bool>
    ) {
        let gridT = T(grid), sizeT = T(size)
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
                    valid[i] = true
                } else {
                    low[i] = 0
                    high[i] = 0
                    lowWeight[i] = 0
                    highWeight[i] = 0
                    valid[i] = false
                }
                i += 1
            }
        }
    }
}
