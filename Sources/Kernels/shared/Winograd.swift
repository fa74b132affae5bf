// Winograd F(2×2, 3×3) for one block of output tiles: input transform, the 16 products, output transform. The
// method, the tile numbering and the threading are documented on `SwiftRCNNOps.Winograd`, which cuts the tiles
// into blocks and runs them on threads; the transforms here run `T.Vector.scalarCount` tiles of one tile row at a
// time, one tile per lane.

extension Kernels {
    /// 0, 1, 2, ... in the lanes of a vector.
    @inline(__always)
    static func laneIndices<V: LaneVector>(_: V.Type) -> V {
        var iota = V()
        for i in 0..<V.scalarCount { iota[i] = V.Scalar(i) }
        return iota
    }

    /// Row `iy` of a run's patches as their columns d0...d3 across lanes, transformed along the row (Bᵀ on the
    /// columns): (d0 - d2, d1 + d2, d2 - d1, d1 - d3); zero for a row outside the image.
    @_transparent
    static func inputRow<T: KernelScalar>(
        _ src: UnsafePointer<T>, _ iy: Int, x0: Int, height h: Int, width w: Int, inside: Bool,
        staging: UnsafeMutablePointer<T>
    ) -> (T.Vector, T.Vector, T.Vector, T.Vector) {
        typealias V = T.Vector
        guard iy >= 0 && iy < h else { return (V(), V(), V(), V()) }
        let (a0, a1, a2, a3) = patchRow(src, row: iy, x0: x0, width: w, plane: h * w, inside: inside, staging: staging)
        let (d0, d1) = V.deinterleave(a0, a1)
        let (d2, d3) = V.deinterleave(a2, a3)
        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }

    /// Row `iy` of a patch run: the input columns x0 + shift + lane (lane < lanes) for shift 0, lanes, 2 and
    /// 2 + lanes, zeros outside [0, w), from the h × w plane at `src`. `inside`: all of them lie in [0, w). An
    /// edge run reads its columns straight from the plane when they stay inside it and zeros the lanes outside
    /// [0, w) with masks; only near the plane's first or last element does it go through `staging` (2 · lanes + 2
    /// elements).
    @_transparent
    static func patchRow<T: KernelScalar>(
        _ src: UnsafePointer<T>, row iy: Int, x0: Int, width w: Int, plane: Int, inside: Bool,
        staging: UnsafeMutablePointer<T>
    ) -> (T.Vector, T.Vector, T.Vector, T.Vector) {
        typealias V = T.Vector
        let lanes = V.scalarCount, span = 2 * lanes + 2
        let start = iy * w + x0
        var p = src + start
        let direct = inside || (start >= 0 && start + span <= plane)
        if !direct {
            let lo = max(0, -x0), hi = max(lo, min(span, w - x0))
            staging.update(repeating: 0, count: span)
            (staging + lo).update(from: p + lo, count: hi - lo)
            p = UnsafePointer(staging)
        }
        var a0 = V.load(p), a1 = V.load(p + lanes), a2 = V.load(p + 2), a3 = V.load(p + 2 + lanes)
        if !inside && direct {
            let width = V(repeating: T(w))
            let c0 = laneIndices(V.self) + V(repeating: T(x0)), c1 = c0 + V(repeating: T(lanes))
            let c2 = c0 + V(repeating: 2), c3 = c1 + V(repeating: 2)
            a0 = V.zeroOutside(a0, columns: c0, width: width)
            a1 = V.zeroOutside(a1, columns: c1, width: width)
            a2 = V.zeroOutside(a2, columns: c2, width: width)
            a3 = V.zeroOutside(a3, columns: c3, width: width)
        }
        return (a0, a1, a2, a3)
    }

    /// Calls `body(n, ty, tx, count, offset)` for each run of at most `lanes` consecutive tiles of one tile row
    /// within tiles t0 ..< t1 of a map of `height` × `width` (tiles of `tile` × `tile` outputs, numbered image by
    /// image, row by row); `offset` is the first tile's index minus t0. (Plain integers rather than a struct: a struct's
    /// value witnesses are code shared by name with other modules, which must not carry this module's
    /// instructions; see scripts/check_kernel_symbols.sh.)
    @inline(__always)
    static func forEachRun(
        _ t0: Int, _ t1: Int, height: Int, width: Int, tile: Int = 2, lanes: Int,
        _ body: (Int, Int, Int, Int, Int) -> Void
    ) {
        let rows = (height + tile - 1) / tile, columns = (width + tile - 1) / tile
        var t = t0
        while t < t1 {
            let row = t / columns, tx = t - row * columns
            let n = row / rows, ty = row - n * rows
            let count = min(lanes, columns - tx, t1 - t)
            body(n, ty, tx, count, t - t0)
            t += count
        }
    }

    /// Tiles t0 ..< t1 of the convolution with output tiles of `tile` × `tile` (2: F(2×2, 3×3), 4: F(4×4, 3×3),
    /// `Winograd4.swift`); n = tile + 2: V_e = Bᵀ d B of every channel into `v` (n² matrices C × `ld`), the n²
    /// products M_e = U_e · V_e into `m` (n² matrices K × `ld`), then Y = Aᵀ M A plus bias and ReLU into `output`.
    /// `u` holds the n² filter matrices packed by `prepackA` (each `packedCount(m: K, k: C)` elements); `ld` is at
    /// least t1 - t0 + lanes and at least t1 - t0 rounded up to whole `nr`-column panels (the products read V_e in
    /// place, in whole panels); `staging` holds 4 · lanes + 4 elements.
    @inline(__always)
    static func convolveTiles<T: KernelScalar>(
        _ input: UnsafePointer<T>, batch: Int, channels: Int, height: Int, width: Int, tiles t0: Int, _ t1: Int,
        tile: Int, weights u: UnsafePointer<T>, outChannels: Int, bias: UnsafePointer<T>?, relu: Bool,
        into output: UnsafeMutablePointer<T>, v: UnsafeMutablePointer<T>, m: UnsafeMutablePointer<T>, ld: Int,
        staging: UnsafeMutablePointer<T>
    ) {
        if tile == 2 {
            transformInput(
                input, channels: channels, 0, channels, height: height, width: width, tiles: t0, t1, into: v,
                ld: ld, staging: staging)
        } else {
            transformInput4(
                input, channels: channels, 0, channels, height: height, width: width, tiles: t0, t1, into: v,
                ld: ld, staging: staging)
        }
        let packed = packedCount(m: outChannels, k: channels)
        for e in 0..<(tile + 2) * (tile + 2) {
            multiplyBlock(
                rows: 0, outChannels, columns: 0, t1 - t0, k: channels,
                a: u + e * packed, lda: channels, transposeA: false,
                b: v + e * channels * ld, ldb: ld, transposeB: false,
                c: m + e * outChannels * ld, ldc: ld, accumulate: false,
                bias: nil, addend: nil, relu: false, prepackedA: u + e * packed, inPlaceB: true)
        }
        if tile == 2 {
            transformOutput(
                m, ld: ld, outChannels: outChannels, height: height, width: width, tiles: t0, t1, bias: bias,
                relu: relu, into: output)
        } else {
            transformOutput4(
                m, ld: ld, outChannels: outChannels, height: height, width: width, tiles: t0, t1, bias: bias,
                relu: relu, into: output)
        }
    }

    /// V_e(c, t - t0) for channels c0 ..< c1 of `channels` and tiles t0 ..< t1 (V_e at `v + e·C·ld`): Bᵀ d B of
    /// each channel's 4 × 4 patch, whose top-left input element is (2ty - 1, 2tx - 1); zeros outside the image.
    /// `staging` holds 2 · lanes + 2 elements.
    @inline(__always)
    static func transformInput<T: KernelScalar>(
        _ input: UnsafePointer<T>, channels: Int, _ c0: Int, _ c1: Int, height h: Int, width w: Int,
        tiles t0: Int, _ t1: Int, into v: UnsafeMutablePointer<T>, ld: Int, staging: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount, span = 2 * lanes + 2
        let plane = h * w, componentStride = channels * ld
        for c in c0..<c1 {
            forEachRun(t0, t1, height: h, width: w, lanes: lanes) { n, ty, tx, _, offset in
                let src = input + (n * channels + c) * plane
                let x0 = 2 * tx - 1
                let inside = x0 >= 0 && x0 + span <= w
                let r0 = inputRow(src, 2 * ty - 1, x0: x0, height: h, width: w, inside: inside, staging: staging)
                let r1 = inputRow(src, 2 * ty, x0: x0, height: h, width: w, inside: inside, staging: staging)
                let r2 = inputRow(src, 2 * ty + 1, x0: x0, height: h, width: w, inside: inside, staging: staging)
                let r3 = inputRow(src, 2 * ty + 2, x0: x0, height: h, width: w, inside: inside, staging: staging)
                let dst = v + c * ld + offset
                // Bᵀ on the rows: (row0 - row2, row1 + row2, row2 - row1, row1 - row3). Lanes past the run's
                // count land in later tiles of this block (written afterwards) or in the row's padding.
                @inline(__always) func column(_ s: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V) {
                    (x0 - x2).store(to: dst + s * componentStride)
                    (x1 + x2).store(to: dst + (4 + s) * componentStride)
                    (x2 - x1).store(to: dst + (8 + s) * componentStride)
                    (x1 - x3).store(to: dst + (12 + s) * componentStride)
                }
                column(0, r0.0, r1.0, r2.0, r3.0)
                column(1, r0.1, r1.1, r2.1, r3.1)
                column(2, r0.2, r1.2, r2.2, r3.2)
                column(3, r0.3, r1.3, r2.3, r3.3)
            }
        }
    }

    /// dM_e(k, t - t0) for output channels k0 ..< k1 of `channels` and tiles t0 ..< t1 (dM_e at `m + e·K·ld`):
    /// A dY Aᵀ of each channel's 2 × 2 tile of the output gradient, whose top-left element is (2ty, 2tx), with
    /// zeros for outputs past the map's edge — the gradient of the M_e that `transformOutput` reads, for the
    /// weight gradient (see `SwiftRCNNOps.Winograd.weightGradient`). With Aᵀ = [1 1 1 0; 0 1 -1 -1], A applied to
    /// (y0, y1) is (y0, y0 + y1, y0 - y1, -y1). `staging` holds 2 · lanes elements.
    @inline(__always)
    static func transformGradient<T: KernelScalar>(
        _ gradient: UnsafePointer<T>, channels: Int, _ k0: Int, _ k1: Int, height h: Int, width w: Int,
        tiles t0: Int, _ t1: Int, into m: UnsafeMutablePointer<T>, ld: Int, staging: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        let plane = h * w, componentStride = channels * ld
        for k in k0..<k1 {
            forEachRun(t0, t1, height: h, width: w, lanes: lanes) { n, ty, tx, _, offset in
                let src = gradient + (n * channels + k) * plane
                let x0 = 2 * tx
                let inside = x0 + 2 * lanes <= w
                // Each of the tile's two rows as its columns y0, y1 across lanes, A applied along the row. A row
                // past the bottom edge is zero.
                @inline(__always) func row(_ r: Int) -> (V, V, V, V) {
                    let iy = 2 * ty + r
                    guard iy < h else { return (V(), V(), V(), V()) }
                    var p = src + iy * w + x0
                    if !inside {
                        // Columns x0 ..< x0 + 2·lanes with zeros from w on.
                        staging.update(repeating: 0, count: 2 * lanes)
                        staging.update(from: p, count: w - x0)
                        p = UnsafePointer(staging)
                    }
                    let (y0, y1) = V.deinterleave(V.load(p), V.load(p + lanes))
                    return (y0, y0 + y1, y0 - y1, V() - y1)
                }
                let r0 = row(0), r1 = row(1)
                let dst = m + k * ld + offset
                // A applied across the rows: (row0, row0 + row1, row0 - row1, -row1). Lanes past the run's count
                // land in later tiles of this block (written afterwards) or in the row's padding.
                @inline(__always) func column(_ s: Int, _ x0: V, _ x1: V) {
                    x0.store(to: dst + s * componentStride)
                    (x0 + x1).store(to: dst + (4 + s) * componentStride)
                    (x0 - x1).store(to: dst + (8 + s) * componentStride)
                    (V() - x1).store(to: dst + (12 + s) * componentStride)
                }
                column(0, r0.0, r1.0)
                column(1, r0.1, r1.1)
                column(2, r0.2, r1.2)
                column(3, r0.3, r1.3)
            }
        }
    }

    /// The output tiles of t0 ..< t1 from M_e(k, t - t0) (M_e at `m + e·K·ld`): Aᵀ M A, plus bias, ReLU.
    @inline(__always)
    static func transformOutput<T: KernelScalar>(
        _ m: UnsafePointer<T>, ld: Int, outChannels: Int, height h: Int, width w: Int, tiles t0: Int, _ t1: Int,
        bias: UnsafePointer<T>?, relu: Bool, into output: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        let plane = h * w, componentStride = outChannels * ld
        for k in 0..<outChannels {
            let b = V(repeating: bias?[k] ?? 0)
            forEachRun(t0, t1, height: h, width: w, lanes: lanes) { n, ty, tx, count, offset in
                let src = m + k * ld + offset
                @inline(__always) func load(_ e: Int) -> V { V.load(src + e * componentStride) }
                // Aᵀ on the rows of M (p0, p1), then on the columns.
                @inline(__always) func rows(_ s: Int) -> (V, V) {
                    let (r0, r1, r2, r3) = (load(s), load(4 + s), load(8 + s), load(12 + s))
                    return (r0 + r1 + r2, r1 - r2 - r3)
                }
                let q0 = rows(0), q1 = rows(1), q2 = rows(2), q3 = rows(3)
                var y00 = q0.0 + q1.0 + q2.0 + b, y01 = q1.0 - q2.0 - q3.0 + b
                var y10 = q0.1 + q1.1 + q2.1 + b, y11 = q1.1 - q2.1 - q3.1 + b
                if relu {
                    y00 = V.relu(y00); y01 = V.relu(y01); y10 = V.relu(y10); y11 = V.relu(y11)
                }
                let oy = 2 * ty, ox = 2 * tx
                let dst = output + (n * outChannels + k) * plane + oy * w + ox
                let valid = min(2 * count, w - ox)
                @inline(__always) func storeRow(_ even: V, _ odd: V, _ p: UnsafeMutablePointer<T>) {
                    let (lo, hi) = V.interleave(even, odd)
                    if valid == 2 * lanes {
                        lo.store(to: p)
                        hi.store(to: p + lanes)
                    } else {
                        for j in 0..<min(valid, lanes) { p[j] = lo[j] }
                        if valid > lanes {
                            for j in lanes..<valid { p[j] = hi[j - lanes] }
                        }
                    }
                }
                storeRow(y00, y01, dst)
                if oy + 1 < h { storeRow(y10, y11, dst + w) }
            }
        }
    }
}
