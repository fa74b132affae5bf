import _SwiftRCNNCPUID

// Winograd F(4×4, 3×3)'s input and output transforms for one block of output tiles; `convolveTiles` (Winograd.swift)
// runs them around the 36 products. The method (points 0, 1, -1, 1/2, -2, ∞), the tile numbering and the threading
// are documented on `SwiftRCNNOps.Winograd`, which cuts the tiles into blocks and runs them on threads. As in
// F(2×2, 3×3), the transforms run `T.Vector.scalarCount` tiles of one tile row at a time, one tile per lane, with
// plain multiplies and adds (no fused multiply-adds), so every path computes the same values.

extension Kernels {
    /// Bᵀ applied to the six values d0 ... d5 (one row or column of a 6 × 6 patch).
    @_transparent
    static func inputTransform6<V: LaneVector>(
        _ d0: V, _ d1: V, _ d2: V, _ d3: V, _ d4: V, _ d5: V
    )
        -> (V, V, V, V, V, V)
    {
        let half = V(repeating: 0.5), oneAndHalf = V(repeating: 1.5), two = V(repeating: 2)
        let twoAndHalf = V(repeating: 2.5)
        let r0 = (d0 - d2 * two) + (d3 - d1) * oneAndHalf + d4
        let r1 = (d4 - d1) + d2 * half + d3 * twoAndHalf
        let r2 = (d4 + d1) - d2 * twoAndHalf + d3 * half
        let r3 = (d4 - d2) + (d3 - d1) * two
        let r4 = (d4 - d2) + (d1 - d3) * half
        let r5 = (d5 + d1) - d3 * two + (d4 - d2) * oneAndHalf
        return (r0, r1, r2, r3, r4, r5)
    }

    /// Aᵀ applied to the six values m0 ... m5 (one column or row of a transformed tile): four outputs.
    @_transparent
    static func outputTransform6<V: LaneVector>(
        _ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V
    )
        -> (V, V, V, V)
    {
        let sum = m1 + m2, difference = m1 - m2
        let y0 = m0 + sum + (m3 + m4)
        let y1 = difference + m3 * V(repeating: 0.5) - m4 * V(repeating: 2)
        let y2 = sum + m3 * V(repeating: 0.25) + m4 * V(repeating: 4)
        let y3 = difference + m3 * V(repeating: 0.125) - m4 * V(repeating: 8) + m5
        return (y0, y1, y2, y3)
    }

    /// Row `iy` of a run's 6 × 6 patches as their columns c0 ... c5 across lanes (column j of tile lane t is input
    /// column x0 + 4t + j), zeros outside the image. The row covers input columns x0 ..< x0 + 4·lanes + 4: read
    /// straight from the plane when they lie in it (masked to [0, w) at the map's edges), else through `staging`
    /// (4·lanes + 4 elements).
    @_transparent
    static func patchRow6<T: KernelScalar>(
        _ src: UnsafePointer<T>, row iy: Int, x0: Int, height h: Int, width w: Int, inside: Bool,
        staging: UnsafeMutablePointer<T>
    ) -> (T.Vector, T.Vector, T.Vector, T.Vector, T.Vector, T.Vector) {
        typealias V = T.Vector
        guard iy >= 0 && iy < h else { return (V(), V(), V(), V(), V(), V()) }
        let lanes = V.scalarCount, span = 4 * lanes + 4, plane = h * w
        let start = iy * w + x0
        var p = src + start
        let direct = inside || (start >= 0 && start + span <= plane)
        if !direct {
            let lo = max(0, -x0), hi = max(lo, min(span, w - x0))
            staging.update(repeating: 0, count: span)
            (staging + lo).update(from: p + lo, count: hi - lo)
            p = UnsafePointer(staging)
        }
        let mask = !inside && direct
        let (c0, c1, c2, c3): (V, V, V, V) = patchColumns4(UnsafePointer(p), x0: x0, width: w, masked: mask)
        let (c4, c5, _, _): (V, V, V, V) = patchColumns4(UnsafePointer(p) + 4, x0: x0 + 4, width: w, masked: mask)
        return (c0, c1, c2, c3, c4, c5)
    }

    /// The 4·lanes elements at `p` (input columns x0 ...) split into columns 4t, 4t + 1, 4t + 2, 4t + 3 across lanes;
    /// with `masked`, columns outside [0, w) read as zeros.
    @_transparent
    static func patchColumns4<V: LaneVector>(
        _ p: UnsafePointer<V.Scalar>, x0: Int, width w: Int, masked: Bool
    )
        -> (V, V, V, V)
    {
        let lanes = V.scalarCount
        var a0 = V.load(p), a1 = V.load(p + lanes), a2 = V.load(p + 2 * lanes), a3 = V.load(p + 3 * lanes)
        if masked {
            let width = V(repeating: V.Scalar(w))
            let c0 = laneIndices(V.self) + V(repeating: V.Scalar(x0))
            let step = V(repeating: V.Scalar(lanes))
            a0 = V.zeroOutside(a0, columns: c0, width: width)
            a1 = V.zeroOutside(a1, columns: c0 + step, width: width)
            a2 = V.zeroOutside(a2, columns: c0 + step + step, width: width)
            a3 = V.zeroOutside(a3, columns: c0 + step + step + step, width: width)
        }
        let (e0, o0) = V.deinterleave(a0, a1), (e1, o1) = V.deinterleave(a2, a3)
        let (q0, q2) = V.deinterleave(e0, e1), (q1, q3) = V.deinterleave(o0, o1)
        return (q0, q1, q2, q3)
    }

    /// V_e(c, t - t0) of F(4×4, 3×3) for channels c0 ..< c1 of `channels` and tiles t0 ..< t1 (V_e at
    /// `v + e·C·ld`, e = 6·row + column of the transformed tile): Bᵀ d B of each channel's 6 × 6 patch, whose
    /// top-left input element is (4ty - 1, 4tx - 1); zeros outside the image. `staging` holds 4·lanes + 4
    /// elements.
    @inline(__always)
    static func transformInput4<T: KernelScalar>(
        _ input: UnsafePointer<T>, channels: Int, _ c0: Int, _ c1: Int, height h: Int, width w: Int,
        tiles t0: Int, _ t1: Int, into v: UnsafeMutablePointer<T>, ld: Int, staging: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount, span = 4 * lanes + 4
        let plane = h * w, componentStride = channels * ld
        for c in c0..<c1 {
            forEachRun(t0, t1, height: h, width: w, tile: 4, lanes: lanes) { n, ty, tx, _, offset in
                let src = input + (n * channels + c) * plane
                let x0 = 4 * tx - 1, y0 = 4 * ty - 1
                let inside = x0 >= 0 && x0 + span <= w
                // The next channel's rows of these patches go to the cache while this one's are transformed: rows
                // of a few hundred bytes, one plane apart, are too short for the hardware prefetchers.
                if c + 1 < c1 {
                    let lo = max(0, x0), hi = min(w, x0 + span), line = max(1, 64 / MemoryLayout<T>.stride)
                    for iy in max(0, y0)..<min(h, y0 + 6) where lo < hi {
                        let row = src + plane + iy * w
                        var j = lo
                        while j < hi {
                            srcnn_prefetch_ahead(UnsafeRawPointer(row + j))
                            j += line
                        }
                        srcnn_prefetch_ahead(UnsafeRawPointer(row + hi - 1))
                    }
                }
                @inline(__always) func row(_ r: Int) -> (V, V, V, V, V, V) {
                    let (d0, d1, d2, d3, d4, d5) = patchRow6(
                        src, row: y0 + r, x0: x0, height: h, width: w, inside: inside, staging: staging)
                    return inputTransform6(d0, d1, d2, d3, d4, d5)
                }
                let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5)
                let dst = v + c * ld + offset
                // Bᵀ across the rows, column by column. Lanes past the run's count land in later tiles of this
                // block (written afterwards) or in the row's padding.
                @inline(__always) func column(_ s: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V, _ x4: V, _ x5: V) {
                    let (z0, z1, z2, z3, z4, z5) = inputTransform6(x0, x1, x2, x3, x4, x5)
                    z0.store(to: dst + s * componentStride)
                    z1.store(to: dst + (6 + s) * componentStride)
                    z2.store(to: dst + (12 + s) * componentStride)
                    z3.store(to: dst + (18 + s) * componentStride)
                    z4.store(to: dst + (24 + s) * componentStride)
                    z5.store(to: dst + (30 + s) * componentStride)
                }
                column(0, r0.0, r1.0, r2.0, r3.0, r4.0, r5.0)
                column(1, r0.1, r1.1, r2.1, r3.1, r4.1, r5.1)
                column(2, r0.2, r1.2, r2.2, r3.2, r4.2, r5.2)
                column(3, r0.3, r1.3, r2.3, r3.3, r4.3, r5.3)
                column(4, r0.4, r1.4, r2.4, r3.4, r4.4, r5.4)
                column(5, r0.5, r1.5, r2.5, r3.5, r4.5, r5.5)
            }
        }
    }

    /// The output tiles of t0 ..< t1 from M_e(k, t - t0) of F(4×4, 3×3) (M_e at `m + e·K·ld`): Aᵀ M A, plus bias,
    /// ReLU; outputs past the map's edge are not written.
    @inline(__always)
    static func transformOutput4<T: KernelScalar>(
        _ m: UnsafePointer<T>, ld: Int, outChannels: Int, height h: Int, width w: Int, tiles t0: Int, _ t1: Int,
        bias: UnsafePointer<T>?, relu: Bool, into output: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        let plane = h * w, componentStride = outChannels * ld
        for k in 0..<outChannels {
            let b = V(repeating: bias?[k] ?? 0)
            forEachRun(t0, t1, height: h, width: w, tile: 4, lanes: lanes) { n, ty, tx, count, offset in
                let src = m + k * ld + offset
                @inline(__always) func load(_ e: Int) -> V { V.load(src + e * componentStride) }
                // Aᵀ across the rows of M, column by column: q_s holds rows 0 ... 3 of column s.
                @inline(__always) func column(_ s: Int) -> (V, V, V, V) {
                    outputTransform6(load(s), load(6 + s), load(12 + s), load(18 + s), load(24 + s), load(30 + s))
                }
                let q0 = column(0), q1 = column(1), q2 = column(2), q3 = column(3), q4 = column(4), q5 = column(5)
                let oy = 4 * ty, ox = 4 * tx
                let dst = output + (n * outChannels + k) * plane + oy * w + ox
                let valid = min(4 * count, w - ox)
                @inline(__always) func finish(_ y: V) -> V { relu ? V.relu(y + b) : y + b }
                // Output row r: Aᵀ along the row, then the four columns of each tile interleaved into 4·lanes
                // consecutive outputs.
                @inline(__always) func storeRow(_ r: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V, _ x4: V, _ x5: V) {
                    if oy + r >= h { return }
                    let (y0, y1, y2, y3) = outputTransform6(x0, x1, x2, x3, x4, x5)
                    let (e0, e1) = V.interleave(finish(y0), finish(y2))
                    let (o0, o1) = V.interleave(finish(y1), finish(y3))
                    let (a0, a1) = V.interleave(e0, o0), (a2, a3) = V.interleave(e1, o1)
                    let p = dst + r * w
                    if valid == 4 * lanes {
                        a0.store(to: p)
                        a1.store(to: p + lanes)
                        a2.store(to: p + 2 * lanes)
                        a3.store(to: p + 3 * lanes)
                    } else {
                        for j in 0..<valid {
                            let part = j / lanes, lane = j - part * lanes
                            p[j] = part == 0 ? a0[lane] : part == 1 ? a1[lane] : part == 2 ? a2[lane] : a3[lane]
                        }
                    }
                }
                storeRow(0, q0.0, q1.0, q2.0, q3.0, q4.0, q5.0)
                storeRow(1, q0.1, q1.1, q2.1, q3.1, q4.1, q5.1)
                storeRow(2, q0.2, q1.2, q2.2, q3.2, q4.2, q5.2)
                storeRow(3, q0.3, q1.3, q2.3, q3.3, q4.3, q5.3)
            }
        }
    }
}
