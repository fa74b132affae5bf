extension GEMM {
    // Index arithmetic here uses wrapping operators: the callers' sizes bound every offset, and trap checks in
    // these copy loops would keep LLVM from unrolling and vectorising them.

    /// Copies rows `i0 ..< i0 + rows` and columns `p0 ..< p0 + depth` of op(A) into `mr`-row panels.
    ///
    /// Panel `q` holds rows `i0 + q·mr ..< i0 + (q + 1)·mr` and occupies `mr · depth` elements at
    /// `dst + q·mr·depth`, column after column: element (row r, column p) is at `p·mr + r`, so the micro-kernel
    /// reads the `mr` values of one column contiguously. Rows past the end of the block are zero. op(A)(i, p) is
    /// `a[i·lda + p]`, or `a[p·lda + i]` when `transposed`; either way the copy reads along contiguous runs.
    @inlinable
    static func packA<T: KernelFloat>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool, rows i0: Int, _ rows: Int, columns p0: Int, _ depth: Int,
        into dst: UnsafeMutablePointer<T>
    ) {
        let full = rows / mr * mr
        if transposed {
            // Source rows are op(A) columns: walk them in order (long contiguous reads), scattering to panels.
            for p in 0..<depth {
                let src = a + ((p0 &+ p) &* lda &+ i0)
                var d = dst + p &* mr
                var q = 0
                while q < full {
                    UnsafeMutableRawPointer(d).storeBytes(
                        of: UnsafeRawPointer(src + q).loadUnaligned(as: SIMD8<T>.self), as: SIMD8<T>.self)
                    d += mr &* depth
                    q &+= mr
                }
                if q < rows {
                    for r in 0..<rows - q { d[r] = src[q &+ r] }
                    for r in rows - q..<mr { d[r] = 0 }
                }
            }
            return
        }
        var panel = dst
        var q = 0
        while q < full {
            // Eight (mr) source rows read side by side; each step writes one contiguous column of the panel.
            let s = a + ((i0 &+ q) &* lda &+ p0)
            let s0 = s, s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda
            let s6 = s5 + lda, s7 = s6 + lda
            for p in 0..<depth {
                UnsafeMutableRawPointer(panel + p &* mr).storeBytes(
                    of: SIMD8<T>(s0[p], s1[p], s2[p], s3[p], s4[p], s5[p], s6[p], s7[p]), as: SIMD8<T>.self)
            }
            panel += mr &* depth
            q &+= mr
        }
        if q < rows {
            let h = rows - q
            for r in 0..<h {
                let src = a + ((i0 &+ q &+ r) &* lda &+ p0)
                for p in 0..<depth { panel[p &* mr &+ r] = src[p] }
            }
            for r in h..<mr {
                for p in 0..<depth { panel[p &* mr &+ r] = 0 }
            }
        }
    }

    /// Copies rows `p0 ..< p0 + depth` and columns `j0 ..< j0 + columns` of op(B) into `nr`-column panels.
    ///
    /// Panel `q` holds columns `j0 + q·nr ..< j0 + (q + 1)·nr` and occupies `depth · nr` elements at
    /// `dst + q·depth·nr`, row after row: element (row p, column j) is at `p·nr + j`, one SIMD load per `16`
    /// columns in the micro-kernel. Columns past the end of the block are zero. op(B)(p, j) is `b[p·ldb + j]`, or
    /// `b[j·ldb + p]` when `transposed`.
    @inlinable
    static func packB<T: KernelFloat>(
        _ b: UnsafePointer<T>, ldb: Int, transposed: Bool, rows p0: Int, _ depth: Int, columns j0: Int,
        _ columns: Int, into dst: UnsafeMutablePointer<T>
    ) {
        if !transposed {
            // Walk the source rows in order (long contiguous reads), scattering each into the panels.
            for p in 0..<depth {
                let src = b + ((p0 &+ p) &* ldb &+ j0)
                var d = dst + p &* nr
                var q = 0
                while q &+ nr <= columns {
                    UnsafeMutableRawPointer(d).storeBytes(
                        of: UnsafeRawPointer(src + q).loadUnaligned(as: SIMD32<T>.self), as: SIMD32<T>.self)
                    d += depth &* nr
                    q &+= nr
                }
                if q < columns {
                    for j in 0..<columns - q { d[j] = src[q &+ j] }
                    for j in columns - q..<nr { d[j] = 0 }
                }
            }
            return
        }
        var panel = dst
        for q in stride(from: 0, to: columns, by: nr) {
            let w = min(nr, columns - q)
            for j in 0..<w {
                let src = b + ((j0 &+ q &+ j) &* ldb &+ p0)
                for p in 0..<depth { panel[p &* nr &+ j] = src[p] }
            }
            for j in w..<nr {
                for p in 0..<depth { panel[p &* nr &+ j] = 0 }
            }
            panel += depth &* nr
        }
    }
}
