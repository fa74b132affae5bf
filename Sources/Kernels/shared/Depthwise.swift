// Depthwise convolution of one plane (`SwiftRCNNOps.Depthwise`, which splits the planes over threads): output
// columns whose window lies inside the input row run in this path's vectors, several vectors at a time so their
// sums do not wait on each other; the columns at the left and right borders run one by one. Every output is the
// bias plus its taps inside the input, row by row in the filter's order (the vector taps fused where the path has
// FMA, the border taps not), and every vector loop takes the same steps per output, so the overlapping last vector
// of a row writes the values already there.

extension Kernels {
    /// Output rows of one plane: input `h × w` at `src`, one `k × k` filter (row-major), stride `s`, zero padding
    /// `p`, output `ho × wo` at `dst`.
    @inline(__always)
    static func depthwisePlane<T: KernelScalar>(
        _ src: UnsafePointer<T>, height h: Int, width w: Int, filter: UnsafePointer<T>, bias: T, kernel k: Int,
        stride s: Int, padding p: Int, outHeight ho: Int, outWidth wo: Int, into dst: UnsafeMutablePointer<T>
    ) {
        let lanes = T.Vector.scalarCount
        // Output columns whose window lies inside the input: x0 = ox·s - p >= 0 and x0 + k <= w.
        let firstInner = min(wo, (p + s - 1) / s)
        let lastInner = max(firstInner, min(wo, w + p - k >= 0 ? (w + p - k) / s + 1 : 0))
        // With stride 2 a vector of outputs from ox on reads input columns 2·ox + kx - p ..< + 2·lanes for kx = 0,
        // 2, ..., k - 1 (one past the last it uses), which stay in the row while 2·ox <= room.
        // Other strides run scalar.
        let room = w + p - k - 2 * lanes + 1
        let vectorEnd =
            s == 1 ? lastInner : s == 2 && room >= 0 ? min(lastInner, max(firstInner, room / 2 + lanes)) : firstInner
        for oy in 0..<ho {
            let y0 = oy &* s &- p
            let row = dst + oy &* wo
            let kyLo = max(0, -y0), kyHi = min(k, h &- y0)
            @inline(__always) func scalar(_ ox: Int) -> T {
                let x0 = ox &* s &- p
                let kxLo = max(0, -x0), kxHi = min(k, w &- x0)
                var sum = bias
                if kxLo < kxHi {
                    for ky in kyLo..<kyHi {
                        let line = src + ((y0 &+ ky) &* w &+ x0), taps = filter + ky &* k
                        for kx in kxLo..<kxHi { sum += taps[kx] * line[kx] }
                    }
                }
                return sum
            }
            for ox in 0..<firstInner { row[ox] = scalar(ox) }
            var ox = firstInner
            if vectorEnd &- firstInner >= lanes {
                let origin = src + (y0 &* w &- p)
                if s == 1 {
                    depthwiseRowStride1(
                        origin, width: w, filter: filter, bias: bias, kernel: k, rows: kyLo, kyHi, from: ox,
                        to: vectorEnd, into: row)
                } else {
                    depthwiseRowStride2(
                        origin, width: w, filter: filter, bias: bias, kernel: k, rows: kyLo, kyHi, from: ox,
                        to: vectorEnd, into: row)
                }
                ox = vectorEnd
            }
            for ox in ox..<wo { row[ox] = scalar(ox) }
        }
    }

    /// Outputs `from ..< to` (at least one vector) of one row, stride 1: `origin` is the window of output 0 (input
    /// row y0, column -p), filter rows `kyLo ..< kyHi` lie inside the input, and every tap of these outputs lies
    /// inside the row. Four vectors at a time, then one; the last vector overlaps the one before when the outputs
    /// are not a whole number of vectors.
    @inline(__always)
    static func depthwiseRowStride1<T: KernelScalar>(
        _ origin: UnsafePointer<T>, width w: Int, filter: UnsafePointer<T>, bias: T, kernel k: Int,
        rows kyLo: Int, _ kyHi: Int, from: Int, to: Int, into row: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        var ox = from
        while ox &+ 4 &* lanes <= to {
            var a0 = V(repeating: bias), a1 = a0, a2 = a0, a3 = a0
            for ky in kyLo..<kyHi {
                let line = origin + (ky &* w &+ ox), taps = filter + ky &* k
                for kx in 0..<k {
                    let f = V(repeating: taps[kx])
                    a0 = V.multiplyAdd(a0, f, V.load(line + kx))
                    a1 = V.multiplyAdd(a1, f, V.load(line + (kx &+ lanes)))
                    a2 = V.multiplyAdd(a2, f, V.load(line + (kx &+ 2 &* lanes)))
                    a3 = V.multiplyAdd(a3, f, V.load(line + (kx &+ 3 &* lanes)))
                }
            }
            a0.store(to: row + ox)
            a1.store(to: row + (ox &+ lanes))
            a2.store(to: row + (ox &+ 2 &* lanes))
            a3.store(to: row + (ox &+ 3 &* lanes))
            ox &+= 4 &* lanes
        }
        while ox < to {
            let at = min(ox, to &- lanes)
            var a0 = V(repeating: bias)
            for ky in kyLo..<kyHi {
                let line = origin + (ky &* w &+ at), taps = filter + ky &* k
                for kx in 0..<k { a0 = V.multiplyAdd(a0, V(repeating: taps[kx]), V.load(line + kx)) }
            }
            a0.store(to: row + at)
            ox = at &+ lanes
        }
    }

    /// `depthwiseRowStride1` for stride 2: a pair of vectors from column 2·ox + kx holds tap kx of `lanes` outputs
    /// in its even lanes and tap kx + 1 in its odd ones (one column past the last tap is read).
    @inline(__always)
    static func depthwiseRowStride2<T: KernelScalar>(
        _ origin: UnsafePointer<T>, width w: Int, filter: UnsafePointer<T>, bias: T, kernel k: Int,
        rows kyLo: Int, _ kyHi: Int, from: Int, to: Int, into row: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        @inline(__always) func pair(_ acc: inout V, _ at: UnsafePointer<T>, _ f0: V, _ f1: V, _ both: Bool) {
            let (even, odd) = V.deinterleave(V.load(at), V.load(at + lanes))
            acc = V.multiplyAdd(acc, f0, even)
            if both { acc = V.multiplyAdd(acc, f1, odd) }
        }
        var ox = from
        while ox &+ 2 &* lanes <= to {
            var a0 = V(repeating: bias), a1 = a0
            for ky in kyLo..<kyHi {
                let line = origin + (ky &* w &+ 2 &* ox), taps = filter + ky &* k
                var kx = 0
                while kx < k {
                    let both = kx &+ 1 < k
                    let f0 = V(repeating: taps[kx]), f1 = V(repeating: both ? taps[kx &+ 1] : 0)
                    pair(&a0, line + kx, f0, f1, both)
                    pair(&a1, line + (kx &+ 2 &* lanes), f0, f1, both)
                    kx &+= 2
                }
            }
            a0.store(to: row + ox)
            a1.store(to: row + (ox &+ lanes))
            ox &+= 2 &* lanes
        }
        while ox < to {
            let at = min(ox, to &- lanes)
            var a0 = V(repeating: bias)
            for ky in kyLo..<kyHi {
                let line = origin + (ky &* w &+ 2 &* at), taps = filter + ky &* k
                var kx = 0
                while kx < k {
                    let both = kx &+ 1 < k
                    pair(&a0, line + kx, V(repeating: taps[kx]), V(repeating: both ? taps[kx &+ 1] : 0), both)
                    kx &+= 2
                }
            }
            a0.store(to: row + at)
            ox = at &+ lanes
        }
    }
}
