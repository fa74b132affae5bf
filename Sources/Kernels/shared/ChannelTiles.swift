// Channels-last tiles of the RoI kernels (`SwiftRCNNOps.ChannelTile`): 16 channels of one feature-map cell in one
// `SIMD16` (a 64-byte line of Float: one zmm on AVX-512, two ymm on AVX2, four xmm on SSE / NEON), so that pooling
// that visits cells in an irregular order (RoI bins) still does 16 channels per load. Compiled per instruction
// set like the rest of `shared/`; `SwiftRCNNOps` splits the work (groups, channel blocks, RoIs) and calls these
// for one tile or one RoI at a time.

/// The element types of the tile kernels, with the one step whose generic SIMD form runs lane by lane.
protocol TileScalar: KernelScalar {
    /// The integer lanes of this type's SIMD comparison masks (argmax lanes: cell indices of a tile).
    associatedtype Lane: SIMDScalar & FixedWidthInteger
    /// Where `value > maximum` (false when either is NaN): `maximum` = `value`, `argmax` = `index`.
    static func keepGreater(
        _ value: SIMD16<Self>, at index: Lane, maximum: inout SIMD16<Self>, argmax: inout SIMD16<Lane>)
}

extension Float: TileScalar {
    @inline(__always)
    static func keepGreater(
        _ value: SIMD16<Float>, at index: Int32, maximum: inout SIMD16<Float>, argmax: inout SIMD16<Int32>
    ) {
        let greater = value .> maximum
        maximum.replace(with: value, where: greater)
        argmax.replace(with: index, where: greater)
    }
}

extension Double: TileScalar {
    @inline(__always)
    static func keepGreater(
        _ value: SIMD16<Double>, at index: Int64, maximum: inout SIMD16<Double>, argmax: inout SIMD16<Int64>
    ) {
        let greater = value .> maximum
        maximum.replace(with: value, where: greater)
        argmax.replace(with: index, where: greater)
    }
}

extension Kernels {
    /// Cells `fillTile` moves per step: each channel's run of them is read contiguously, and their slice of the
    /// tile (16 KiB of Float) stays in L1 while it is written four channels at a time.
    @inline(__always)
    static var tileRun: Int { 256 }

    /// Copies `channels` (1 ... 16) planes of `plane` cells from `src` into `tile`: lane g of `tile[cell]` is
    /// `src[g · plane + cell]`; lanes from `channels` on repeat the last channel. Lanes are written four at a time
    /// (one `SIMD4` of four channels), several times faster than single-lane stores.
    @inline(__always)
    static func fillTile<T: TileScalar>(
        _ tile: UnsafeMutablePointer<SIMD16<T>>, from src: UnsafePointer<T>, channels: Int, plane: Int
    ) {
        let quads = UnsafeMutableRawPointer(tile).assumingMemoryBound(to: SIMD4<T>.self)
        var start = 0
        while start < plane {
            let end = min(start &+ tileRun, plane)
            for q in 0..<4 {
                let p0 = src + min(4 &* q, channels &- 1) &* plane
                let p1 = src + min(4 &* q &+ 1, channels &- 1) &* plane
                let p2 = src + min(4 &* q &+ 2, channels &- 1) &* plane
                let p3 = src + min(4 &* q &+ 3, channels &- 1) &* plane
                for cell in start..<end { quads[cell &* 4 &+ q] = SIMD4(p0[cell], p1[cell], p2[cell], p3[cell]) }
            }
            start = end
        }
    }

    /// Writes the first `channels` lanes of `count` vectors as `channels` rows of `count` values:
    /// `dst[g · count + i] = values[i][g]`, four channels at a time read as one `SIMD4`.
    @inline(__always)
    static func storeTile<T: TileScalar>(
        _ values: UnsafePointer<SIMD16<T>>, count: Int, channels: Int, to dst: UnsafeMutablePointer<T>
    ) {
        let quads = UnsafeRawPointer(values).assumingMemoryBound(to: SIMD4<T>.self)
        let full = channels / 4
        for q in 0..<full {
            let d0 = dst + 4 &* q &* count, d1 = d0 + count, d2 = d1 + count, d3 = d2 + count
            for i in 0..<count {
                let v = quads[i &* 4 &+ q]
                d0[i] = v[0]; d1[i] = v[1]; d2[i] = v[2]; d3[i] = v[3]
            }
        }
        for g in (4 &* full)..<channels {
            for i in 0..<count { dst[g &* count &+ i] = values[i][g] }
        }
    }

    /// RoIAlign of one RoI from a tile (see `SwiftRCNNOps.RoIAlign`): bin row `ph` sums the map rows
    /// `rowIndex[e]` (cell offsets) weighted by `rowWeight[e]`, `e` in `rowBounds[ph] ..< rowBounds[ph + 1]`, over
    /// the columns `spanLow ... spanHigh` into `line` (two rows per pass, the first pass overwriting), then bin
    /// (ph, pw) is the dot product of `line` with the column weights of bin column `pw`, divided by `samples`.
    /// Writes the `pooledH · pooledW` averages to `averages`.
    @inline(__always)
    static func alignTile<T: TileScalar>(
        _ tile: UnsafePointer<SIMD16<T>>, line: UnsafeMutablePointer<SIMD16<T>>,
        rowBounds rb: UnsafePointer<Int>, rowIndex: UnsafePointer<Int>, rowWeight: UnsafePointer<T>,
        columnBounds cb: UnsafePointer<Int>, columnIndex: UnsafePointer<Int>, columnWeight: UnsafePointer<T>,
        span spanLow: Int, _ spanHigh: Int, pooledH: Int, pooledW: Int, samples: T,
        into averages: UnsafeMutablePointer<SIMD16<T>>
    ) {
        let count = SIMD16(repeating: samples)
        let span = spanLow...spanHigh
        for ph in 0..<pooledH {
            var e = rb[ph]
            let end = rb[ph &+ 1]
            if end &- e >= 2 {
                let row0 = tile + rowIndex[e], row1 = tile + rowIndex[e &+ 1]
                let w0 = rowWeight[e], w1 = rowWeight[e &+ 1]
                for x in span { line[x] = w0 * row0[x] + w1 * row1[x] }
                e &+= 2
            } else if end &- e == 1 {
                let row = tile + rowIndex[e], w = rowWeight[e]
                for x in span { line[x] = w * row[x] }
                e &+= 1
            } else {
                for x in span { line[x] = SIMD16() }
            }
            while end &- e >= 2 {
                let row0 = tile + rowIndex[e], row1 = tile + rowIndex[e &+ 1]
                let w0 = rowWeight[e], w1 = rowWeight[e &+ 1]
                for x in span { line[x] += w0 * row0[x] + w1 * row1[x] }
                e &+= 2
            }
            if e < end {
                let row = tile + rowIndex[e], w = rowWeight[e]
                for x in span { line[x] += w * row[x] }
            }
            for pw in 0..<pooledW {
                var sum = SIMD16<T>()
                for e in cb[pw]..<cb[pw &+ 1] { sum += columnWeight[e] * line[columnIndex[e]] }
                averages[ph &* pooledW &+ pw] = sum / count
            }
        }
    }

    /// RoIPool of one RoI from a tile of row width `width` (see `SwiftRCNNOps.RoIPool`): `edges` holds the bin
    /// rows' starts and ends, then the bin columns' (`2 · (pooledH + pooledW)` cells, ends exclusive). Bin (i, j)
    /// gets the per-lane maximum over its cells (first maximum wins; below every finite value: the lowest finite
    /// Float) and its cell index, or 0 and -1 when empty.
    @inline(__always)
    static func poolTile<T: TileScalar>(
        _ tile: UnsafePointer<SIMD16<T>>, width w: Int, edges: UnsafePointer<Int>, pooledH ph: Int, pooledW pw: Int,
        maxima: UnsafeMutablePointer<SIMD16<T>>, winners: UnsafeMutablePointer<SIMD16<T.Lane>>
    ) {
        let lowest = SIMD16<T>(repeating: T(-Float.greatestFiniteMagnitude))
        let hs = edges, he = edges + ph, ws = edges + 2 &* ph, we = edges + (2 &* ph &+ pw)
        for i in 0..<ph {
            for j in 0..<pw {
                let o = i &* pw &+ j
                if he[i] <= hs[i] || we[j] <= ws[j] {
                    maxima[o] = SIMD16(repeating: 0)
                    winners[o] = SIMD16(repeating: -1)
                    continue
                }
                var m = lowest
                var a = SIMD16<T.Lane>(repeating: -1)
                for y in hs[i]..<he[i] {
                    for cell in (y &* w &+ ws[j])..<(y &* w &+ we[j]) {
                        T.keepGreater(tile[cell], at: T.Lane(truncatingIfNeeded: cell), maximum: &m, argmax: &a)
                    }
                }
                maxima[o] = m
                winners[o] = a
            }
        }
    }
}

// MARK: - Entry points, one per element type

extension Kernels {
    public static func fillChannelTile(
        _ tile: UnsafeMutablePointer<SIMD16<Float>>, from src: UnsafePointer<Float>, channels: Int, plane: Int
    ) {
        fillTile(tile, from: src, channels: channels, plane: plane)
    }

    public static func fillChannelTile(
        _ tile: UnsafeMutablePointer<SIMD16<Double>>, from src: UnsafePointer<Double>, channels: Int, plane: Int
    ) {
        fillTile(tile, from: src, channels: channels, plane: plane)
    }

    public static func storeChannelTile(
        _ values: UnsafePointer<SIMD16<Float>>, count: Int, channels: Int, to dst: UnsafeMutablePointer<Float>
    ) {
        storeTile(values, count: count, channels: channels, to: dst)
    }

    public static func storeChannelTile(
        _ values: UnsafePointer<SIMD16<Double>>, count: Int, channels: Int, to dst: UnsafeMutablePointer<Double>
    ) {
        storeTile(values, count: count, channels: channels, to: dst)
    }

    public static func roiAlignTile(
        _ tile: UnsafePointer<SIMD16<Float>>, line: UnsafeMutablePointer<SIMD16<Float>>,
        rowBounds: UnsafePointer<Int>, rowIndex: UnsafePointer<Int>, rowWeight: UnsafePointer<Float>,
        columnBounds: UnsafePointer<Int>, columnIndex: UnsafePointer<Int>, columnWeight: UnsafePointer<Float>,
        span spanLow: Int, _ spanHigh: Int, pooledH: Int, pooledW: Int, samples: Float,
        into averages: UnsafeMutablePointer<SIMD16<Float>>
    ) {
        alignTile(
            tile, line: line, rowBounds: rowBounds, rowIndex: rowIndex, rowWeight: rowWeight,
            columnBounds: columnBounds, columnIndex: columnIndex, columnWeight: columnWeight, span: spanLow, spanHigh,
            pooledH: pooledH, pooledW: pooledW, samples: samples, into: averages)
    }

    public static func roiAlignTile(
        _ tile: UnsafePointer<SIMD16<Double>>, line: UnsafeMutablePointer<SIMD16<Double>>,
        rowBounds: UnsafePointer<Int>, rowIndex: UnsafePointer<Int>, rowWeight: UnsafePointer<Double>,
        columnBounds: UnsafePointer<Int>, columnIndex: UnsafePointer<Int>, columnWeight: UnsafePointer<Double>,
        span spanLow: Int, _ spanHigh: Int, pooledH: Int, pooledW: Int, samples: Double,
        into averages: UnsafeMutablePointer<SIMD16<Double>>
    ) {
        alignTile(
            tile, line: line, rowBounds: rowBounds, rowIndex: rowIndex, rowWeight: rowWeight,
            columnBounds: columnBounds, columnIndex: columnIndex, columnWeight: columnWeight, span: spanLow, spanHigh,
            pooledH: pooledH, pooledW: pooledW, samples: samples, into: averages)
    }

    public static func roiPoolTile(
        _ tile: UnsafePointer<SIMD16<Float>>, width: Int, edges: UnsafePointer<Int>, pooledH: Int, pooledW: Int,
        maxima: UnsafeMutablePointer<SIMD16<Float>>, winners: UnsafeMutablePointer<SIMD16<Int32>>
    ) {
        poolTile(tile, width: width, edges: edges, pooledH: pooledH, pooledW: pooledW, maxima: maxima, winners: winners)
    }

    public static func roiPoolTile(
        _ tile: UnsafePointer<SIMD16<Double>>, width: Int, edges: UnsafePointer<Int>, pooledH: Int, pooledW: Int,
        maxima: UnsafeMutablePointer<SIMD16<Double>>, winners: UnsafeMutablePointer<SIMD16<Int64>>
    ) {
        poolTile(tile, width: width, edges: edges, pooledH: pooledH, pooledW: pooledW, maxima: maxima, winners: winners)
    }
}
