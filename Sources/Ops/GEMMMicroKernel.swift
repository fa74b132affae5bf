extension GEMM {
    /// The Float micro-kernel: an `mr × nr` (8 × 32) tile of C from a packed A panel and a packed B panel.
    ///
    /// `a` is an A panel (`depth` columns of 8 contiguous values), `b` a B panel (`depth` rows of 32 contiguous
    /// values, 64-byte aligned). The tile lives in 16 `SIMD16<Float>` accumulators — two per row — that stay in
    /// vector registers for the whole `depth` loop: each step loads two vectors of B, broadcasts eight values of A
    /// and issues 16 fused multiply-adds (AVX-512 `vfmadd231ps` when built for such a CPU). The tile is then
    /// written to `c` (row stride `ldc`, no alignment needed), or added to it when `add`.
    @inlinable
    static func microKernel(
        depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, ldc: Int,
        add: Bool
    ) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<depth {
            let b0 = pb.load(as: V.self)
            let b1 = pb.load(fromByteOffset: 64, as: V.self)
            var x = V(repeating: pa[0])
            c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = V(repeating: pa[1])
            c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = V(repeating: pa[2])
            c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = V(repeating: pa[3])
            c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = V(repeating: pa[4])
            c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = V(repeating: pa[5])
            c50.addProduct(x, b0); c51.addProduct(x, b1)
            x = V(repeating: pa[6])
            c60.addProduct(x, b0); c61.addProduct(x, b1)
            x = V(repeating: pa[7])
            c70.addProduct(x, b0); c71.addProduct(x, b1)
            pa += 8
            pb += 128
        }
        @inline(__always) func store(_ row: Int, _ lo: V, _ hi: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            if add {
                p.storeBytes(of: p.loadUnaligned(as: V.self) + lo, as: V.self)
                p.storeBytes(of: p.loadUnaligned(fromByteOffset: 64, as: V.self) + hi, toByteOffset: 64, as: V.self)
            } else {
                p.storeBytes(of: lo, as: V.self)
                p.storeBytes(of: hi, toByteOffset: 64, as: V.self)
            }
        }
        store(0, c00, c01); store(1, c10, c11); store(2, c20, c21); store(3, c30, c31)
        store(4, c40, c41); store(5, c50, c51); store(6, c60, c61); store(7, c70, c71)
    }

    /// The micro-kernel for any element type (Double): same packed operands and output as `microKernel`.
    ///
    /// Rows are taken two at a time with eight `SIMD8<T>` accumulators (two rows of 32), so each pass over the B
    /// panel does eight vector multiply-adds per four loads.
    @inlinable
    static func microKernelGeneric<T: KernelFloat>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, ldc: Int, add: Bool
    ) {
        typealias V = SIMD8<T>
        @inline(__always) func load(_ p: UnsafePointer<T>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<T>) {
            let raw = UnsafeMutableRawPointer(p)
            raw.storeBytes(of: add ? raw.loadUnaligned(as: V.self) + v : v, as: V.self)
        }
        for r in stride(from: 0, to: mr, by: 2) {
            var u0 = V(), u1 = V(), u2 = V(), u3 = V(), w0 = V(), w1 = V(), w2 = V(), w3 = V()
            for p in 0..<depth {
                let pb = b + p * nr
                let b0 = load(pb), b1 = load(pb + 8), b2 = load(pb + 16), b3 = load(pb + 24)
                let x = V(repeating: a[p * mr + r]), y = V(repeating: a[p * mr + r + 1])
                u0.addProduct(x, b0); u1.addProduct(x, b1); u2.addProduct(x, b2); u3.addProduct(x, b3)
                w0.addProduct(y, b0); w1.addProduct(y, b1); w2.addProduct(y, b2); w3.addProduct(y, b3)
            }
            let c0 = c + r * ldc, c1 = c0 + ldc
            store(u0, c0); store(u1, c0 + 8); store(u2, c0 + 16); store(u3, c0 + 24)
            store(w0, c1); store(w1, c1 + 8); store(w2, c1 + 16); store(w3, c1 + 24)
        }
    }
}
