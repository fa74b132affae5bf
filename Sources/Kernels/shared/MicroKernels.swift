// GEMM micro-kernels: an mr × (2 vectors) tile of C from a packed A panel (`depth` columns of mr contiguous values)
// and a B panel of `depth` rows of two vectors, `bStride` elements apart (`nr` in a packed panel, 64-byte aligned;
// the matrix's row stride when the GEMM reads B in place). The tile stays in 2·mr vector registers for
// the whole depth loop: per step two vector loads of B, mr broadcasts of A and 2·mr multiply-adds. The tile is then
// written to `c` (row stride `ldc`, any alignment), or added to it when `add`. Each instruction set's `Config.swift`
// picks the row count that fits its register file (2·mr accumulators + 2 B vectors + 1 broadcast). Each kernel first
// asks for the tile's rows of C (`prefetchTile`): C is often in L3 or memory, and without the hint the stores at
// the end wait for it.

import _SwiftRCNNCPUID

extension Kernels {
    /// 6 rows: 12 accumulators, for 16-register files (AVX2's ymm, SSE's xmm).
    @inline(__always)
    static func microKernel6<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, bStride: Int, _ c: UnsafeMutablePointer<T>, ldc: Int,
        add: Bool, packInto: UnsafeMutablePointer<T>? = nil
    ) {
        typealias V = T.Vector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        prefetchTile(c, ldc: ldc, rows: 6, columns: 2 * V.scalarCount)
        var pa = a
        var pb = UnsafeRawPointer(b)
        let vectorBytes = MemoryLayout<V>.size, rowBytes = bStride &* MemoryLayout<T>.stride
        // One step of depth: two vectors of B, six broadcasts of A, twelve multiply-adds. Two steps per iteration
        // give the out-of-order core loads of the next step to start while this one's multiply-adds run.
        @inline(__always) func step(_ pa: UnsafePointer<T>, _ pb: UnsafeRawPointer, _ copy: UnsafeMutableRawPointer?) {
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: vectorBytes, as: V.self)
            if let copy {
                copy.storeBytes(of: b0, as: V.self)
                copy.storeBytes(of: b1, toByteOffset: vectorBytes, as: V.self)
            }
            var x = V(repeating: pa[0])
            c00 = V.multiplyAdd(c00, x, b0); c01 = V.multiplyAdd(c01, x, b1)
            x = V(repeating: pa[1])
            c10 = V.multiplyAdd(c10, x, b0); c11 = V.multiplyAdd(c11, x, b1)
            x = V(repeating: pa[2])
            c20 = V.multiplyAdd(c20, x, b0); c21 = V.multiplyAdd(c21, x, b1)
            x = V(repeating: pa[3])
            c30 = V.multiplyAdd(c30, x, b0); c31 = V.multiplyAdd(c31, x, b1)
            x = V(repeating: pa[4])
            c40 = V.multiplyAdd(c40, x, b0); c41 = V.multiplyAdd(c41, x, b1)
            x = V(repeating: pa[5])
            c50 = V.multiplyAdd(c50, x, b0); c51 = V.multiplyAdd(c51, x, b1)
        }
        // With `packInto` (the first row band's tile, `Blocking.packsBWhileMultiplying`) each step's two vectors,
        // read from B where it is, are also written to the packed panel (rows two vectors apart). Called with the
        // pointer or with nil, the loop is compiled once for each.
        let packedRowBytes = 2 &* vectorBytes
        @inline(__always) func steps(_ copy: UnsafeMutableRawPointer?) {
            var pd = copy
            for _ in 0..<depth / 2 {
                step(pa, pb, pd)
                step(pa + 6, pb + rowBytes, pd.map { $0 + packedRowBytes })
                pa += 12
                pb += 2 &* rowBytes
                pd = pd.map { $0 + 2 &* packedRowBytes }
            }
            if depth % 2 == 1 { step(pa, pb, pd) }
        }
        if let packInto { steps(UnsafeMutableRawPointer(packInto)) } else { steps(nil) }
        storeTile(c, ldc: ldc, add: add, row: 0, c00, c01); storeTile(c, ldc: ldc, add: add, row: 1, c10, c11)
        storeTile(c, ldc: ldc, add: add, row: 2, c20, c21); storeTile(c, ldc: ldc, add: add, row: 3, c30, c31)
        storeTile(c, ldc: ldc, add: add, row: 4, c40, c41); storeTile(c, ldc: ldc, add: add, row: 5, c50, c51)
    }

    /// The first `rows` (1 ... 4) rows of a tile whose packed A panel is `aStride` (the path's `mr`) rows high:
    /// 8 accumulators. For the last row panel of an m that is not a multiple of `mr` (m = 64 or 128 on a 6-row
    /// path): four rows take two thirds of the time of six (eight multiply-adds per step keep both FMA pipes busy
    /// over their 4-cycle latency), and only the valid rows are written, without the edge buffer. Each element is
    /// summed in the same order as in the full kernels, so results are the same bit for bit.
    @inline(__always)
    static func microKernel4Rows<T: KernelScalar>(
        rows: Int, depth: Int, _ a: UnsafePointer<T>, aStride: Int, _ b: UnsafePointer<T>, bStride: Int,
        _ c: UnsafeMutablePointer<T>, ldc: Int, add: Bool
    ) {
        typealias V = T.Vector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        prefetchTile(c, ldc: ldc, rows: rows, columns: 2 * V.scalarCount)
        var pa = a
        var pb = UnsafeRawPointer(b)
        let step = MemoryLayout<V>.size, rowBytes = bStride &* MemoryLayout<T>.stride
        for _ in 0..<depth {
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: step, as: V.self)
            var x = V(repeating: pa[0])
            c00 = V.multiplyAdd(c00, x, b0); c01 = V.multiplyAdd(c01, x, b1)
            x = V(repeating: pa[1])
            c10 = V.multiplyAdd(c10, x, b0); c11 = V.multiplyAdd(c11, x, b1)
            x = V(repeating: pa[2])
            c20 = V.multiplyAdd(c20, x, b0); c21 = V.multiplyAdd(c21, x, b1)
            x = V(repeating: pa[3])
            c30 = V.multiplyAdd(c30, x, b0); c31 = V.multiplyAdd(c31, x, b1)
            pa += aStride
            pb += rowBytes
        }
        storeTile(c, ldc: ldc, add: add, row: 0, c00, c01)
        if rows > 1 { storeTile(c, ldc: ldc, add: add, row: 1, c10, c11) }
        if rows > 2 { storeTile(c, ldc: ldc, add: add, row: 2, c20, c21) }
        if rows > 3 { storeTile(c, ldc: ldc, add: add, row: 3, c30, c31) }
    }

    /// 8 rows: 16 accumulators, for 32-register files (AVX-512's zmm).
    @inline(__always)
    static func microKernel8<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, bStride: Int, _ c: UnsafeMutablePointer<T>, ldc: Int,
        add: Bool
    ) {
        typealias V = T.Vector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        prefetchTile(c, ldc: ldc, rows: 8, columns: 2 * V.scalarCount)
        var pa = a
        var pb = UnsafeRawPointer(b)
        let step = MemoryLayout<V>.size, rowBytes = bStride &* MemoryLayout<T>.stride
        for _ in 0..<depth {
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: step, as: V.self)
            var x = V(repeating: pa[0])
            c00 = V.multiplyAdd(c00, x, b0); c01 = V.multiplyAdd(c01, x, b1)
            x = V(repeating: pa[1])
            c10 = V.multiplyAdd(c10, x, b0); c11 = V.multiplyAdd(c11, x, b1)
            x = V(repeating: pa[2])
            c20 = V.multiplyAdd(c20, x, b0); c21 = V.multiplyAdd(c21, x, b1)
            x = V(repeating: pa[3])
            c30 = V.multiplyAdd(c30, x, b0); c31 = V.multiplyAdd(c31, x, b1)
            x = V(repeating: pa[4])
            c40 = V.multiplyAdd(c40, x, b0); c41 = V.multiplyAdd(c41, x, b1)
            x = V(repeating: pa[5])
            c50 = V.multiplyAdd(c50, x, b0); c51 = V.multiplyAdd(c51, x, b1)
            x = V(repeating: pa[6])
            c60 = V.multiplyAdd(c60, x, b0); c61 = V.multiplyAdd(c61, x, b1)
            x = V(repeating: pa[7])
            c70 = V.multiplyAdd(c70, x, b0); c71 = V.multiplyAdd(c71, x, b1)
            pa += 8
            pb += rowBytes
        }
        storeTile(c, ldc: ldc, add: add, row: 0, c00, c01); storeTile(c, ldc: ldc, add: add, row: 1, c10, c11)
        storeTile(c, ldc: ldc, add: add, row: 2, c20, c21); storeTile(c, ldc: ldc, add: add, row: 3, c30, c31)
        storeTile(c, ldc: ldc, add: add, row: 4, c40, c41); storeTile(c, ldc: ldc, add: add, row: 5, c50, c51)
        storeTile(c, ldc: ldc, add: add, row: 6, c60, c61); storeTile(c, ldc: ldc, add: add, row: 7, c70, c71)
    }

    /// Prefetches (for writing) the cache lines of a `rows` × `columns` tile at `c` with row stride `ldc`: each row's
    /// first and last element and every 64 bytes between.
    @inline(__always)
    static func prefetchTile<T>(_ c: UnsafeMutablePointer<T>, ldc: Int, rows: Int, columns: Int) {
        let step = max(1, 64 / MemoryLayout<T>.stride)
        for r in 0..<rows {
            let row = c + r &* ldc
            var j = 0
            while j < columns {
                srcnn_prefetch_for_write(row + j)
                j &+= step
            }
            srcnn_prefetch_for_write(row + (columns &- 1))
        }
    }

    /// Row `row` of a tile: two vectors written to (or added to) `c + row · ldc`.
    @inline(__always)
    static func storeTile<V: LaneVector>(
        _ c: UnsafeMutablePointer<V.Scalar>, ldc: Int, add: Bool, row: Int, _ lo: V, _ hi: V
    ) {
        let p = c + row * ldc
        if add {
            (V.load(p) + lo).store(to: p)
            (V.load(p + V.scalarCount) + hi).store(to: p + V.scalarCount)
        } else {
            lo.store(to: p)
            hi.store(to: p + V.scalarCount)
        }
    }
}
