/// General matrix multiply on row-major matrices: C = op(A)·op(B), or C += op(A)·op(B).
///
/// Layout: op(A) is m × k, op(B) is k × n, C is m × n, all row-major with leading dimensions (row strides, in
/// elements) `lda`, `ldb`, `ldc`. Without transposition op(A)(i, p) = `a[i·lda + p]`; with `transposeA` the stored
/// matrix is k × m and op(A)(i, p) = `a[p·lda + i]` (likewise for B), so a linear layer x·Wᵀ with weights
/// (out, in) and a convolution over an im2col matrix run without copies. Callers guarantee that the strides cover
/// the rows (`lda >= k`, or `>= m` when transposed, ...) and that C does not overlap A or B.
///
/// Method (GotoBLAS / BLIS): the k × n operand is cut into `kc × nc` blocks packed into `nr`-column panels, the
/// m × k operand into `mc × kc` blocks packed into `mr`-row panels (packing absorbs transposes and pads edges with
/// zeros), and a register-blocked `mr × nr` micro-kernel runs over every pair of panels. For Float it keeps the
/// whole tile in SIMD registers (see `microKernel`); other types use `microKernelGeneric`. Partial edge tiles are
/// computed into a scratch tile and copied.
///
/// Threading: C is cut into rectangles — by columns when there are enough `nr`-column panels, else by rows —
/// one to `piecesPerThread` per thread of `Parallel.numThreads`, each multiplied independently with its own packing
/// buffers (allocated once per piece), so threads write disjoint parts of C. Each element of C is summed in the
/// same order whatever the split, so results do not depend on the thread count.
/// What `GEMM.multiply` does to each finished element of C before it leaves the cache:
/// C(i, j) = relu?(C(i, j) + bias[i] + addend(i, j)), where `addend` is an m × n matrix with C's row stride.
/// A convolution's bias, a ResNet block's residual and its ReLU thus cost no extra pass over the output.
public struct GEMMEpilogue<T: KernelFloat> {
    public var bias: UnsafePointer<T>?
    public var addend: UnsafePointer<T>?
    public var relu: Bool

    @inlinable
    public init(bias: UnsafePointer<T>? = nil, addend: UnsafePointer<T>? = nil, relu: Bool = false) {
        self.bias = bias
        self.addend = addend
        self.relu = relu
    }

    /// Applies the epilogue to the `rows` × `columns` tile of C at `c` (row stride `ldc`) whose first element is
    /// C(i, j). Full 32-column tiles go 16 lanes at a time.
    @inlinable @inline(__always)
    func apply(_ c: UnsafeMutablePointer<T>, ldc: Int, i: Int, j: Int, rows: Int, columns: Int) {
        for r in 0..<rows {
            let row = c + r * ldc
            let b = bias?[i + r] ?? 0
            let add = addend.map { $0 + (i + r) * ldc + j }
            var q = 0
            while q + 16 <= columns {
                let p = UnsafeMutableRawPointer(row + q)
                var v = p.loadUnaligned(as: SIMD16<T>.self) + SIMD16(repeating: b)
                if let add { v += UnsafeRawPointer(add + q).loadUnaligned(as: SIMD16<T>.self) }
                if relu { v = T.relu(v) }
                p.storeBytes(of: v, as: SIMD16<T>.self)
                q += 16
            }
            while q < columns {
                var v = row[q] + b
                if let add { v += add[q] }
                if relu && v < 0 { v = 0 }
                row[q] = v
                q += 1
            }
        }
    }
}

public enum GEMM {
    /// Rows of the micro-kernel tile: eight broadcasts of A per step. `microKernel` and the SIMD8 copies in
    /// `packA` are written out for mr = 8 and nr = 32; changing either means rewriting them.
    @usableFromInline static let mr = 8
    /// Columns of the micro-kernel tile: two 16-float (AVX-512) vectors of B per step. 8 × 32 uses 16 accumulator
    /// registers plus two for B; larger tiles (12 × 32, 14 × 32, 8 × 48) ran no faster in cache and waste more on
    /// the edges of m = 64·c convolution weights.
    @usableFromInline static let nr = 32
    /// Most depth of a packed block; k is cut into equal blocks of at most this. A 640 × 32 Float B panel (80 KiB)
    /// overflows L1 but streams from L2 fast enough, and fewer k blocks mean fewer passes over C: on the 64-row
    /// convolutions 640 ran ~15% faster than 256 or 384, elsewhere the same.
    @usableFromInline static let kc = 640
    /// Rows of a packed A block: 128 × 640 Floats (320 KiB) stay in the per-core L2 (1 MiB here).
    @usableFromInline static let mc = 128
    /// Columns of a packed B block: 640 × 1024 Floats (2.5 MiB) per piece, in the shared L3 (32 MiB here).
    @usableFromInline static let nc = 1024
    /// Largest share of op(A) (elements, padded to whole panels) packed once for all column blocks: 1 MiB of
    /// Floats, so it stays in L2 beside a B block.
    @usableFromInline static let packedAWholeLimit = 1 << 18
    /// Most pieces of C per thread; pieces are at least 64 column panels (2048 columns) or 128 row panels wide.
    @usableFromInline static let piecesPerThread = 4
    /// Deepest k block whose tiles are visited row band by row band (see `multiplyBlock`).
    @usableFromInline static let rowOrderMaximumDepth = 128
    /// Multiply-adds below which a thread is not worth waking (~10 µs of work).
    @usableFromInline static let parallelMinimumWork = 1 << 21

    /// C (m × n, row stride `ldc`) = op(A)·op(B), or C += op(A)·op(B) when `accumulate`, then `epilogue` on each
    /// element. With k = 0 the product is zero. See the type's documentation for layouts and threading.
    @inlinable
    public static func multiply<T: KernelFloat>(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<T>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<T>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool = false, epilogue: GEMMEpilogue<T>? = nil
    ) {
        if m <= 0 || n <= 0 { return }
        if k <= 0 {
            if !accumulate {
                for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            }
            epilogue?.apply(c, ldc: ldc, i: 0, j: 0, rows: m, columns: n)
            return
        }
        let work = Double(m) * Double(n) * Double(k)
        let threads = Int(min(Double(Parallel.numThreads), max(1, work / Double(parallelMinimumWork))))
        let mPanels = (m + mr - 1) / mr, nPanels = (n + nr - 1) / nr
        let byColumns = nPanels >= 4 * threads || nPanels >= mPanels
        // Up to `piecesPerThread` pieces each, handed out as threads free up (balance under uneven load), while
        // pieces stay wide enough that re-packing the other operand per piece costs little.
        let panels = byColumns ? nPanels : mPanels
        let perThread = min(piecesPerThread, max(1, panels / (threads * (byColumns ? 64 : 128))))
        let slots = min(threads * perThread, panels)
        Parallel.forEachChunk(slots) { range in
            for s in range {
                if byColumns {
                    let lo = nPanels * s / slots * nr, hi = min(n, nPanels * (s + 1) / slots * nr)
                    multiplyBlock(rows: 0, m, columns: lo, hi - lo, k: k, a: a, lda: lda, transposeA: transposeA,
                                  b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate,
                                  epilogue: epilogue)
                } else {
                    let lo = mPanels * s / slots * mr, hi = min(m, mPanels * (s + 1) / slots * mr)
                    multiplyBlock(rows: lo, hi - lo, columns: 0, n, k: k, a: a, lda: lda, transposeA: transposeA,
                                  b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate,
                                  epilogue: epilogue)
                }
            }
        }
    }

    /// One thread's share: rows `i0 ..< i0 + rows` and columns `j0 ..< j0 + columns` of C, the blocked loop nest
    /// with its own packing buffers.
    ///
    /// k is cut into equal blocks of at most `kc` (no thin last block). When this share of op(A), padded to whole
    /// panels, fits `packedAWholeLimit`, it is packed once up front instead of once per column block. The
    /// epilogue runs on each tile after its last depth block, while the tile is still in L1. `prepackedA`, from
    /// `prepackA` of rows `0 ..< rows` (so `i0` = 0), replaces packing A (`a` is then not read).
    @inlinable
    static func multiplyBlock<T: KernelFloat>(
        rows i0: Int, _ rows: Int, columns j0: Int, _ columns: Int, k: Int,
        a: UnsafePointer<T>, lda: Int, transposeA: Bool,
        b: UnsafePointer<T>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool, epilogue: GEMMEpilogue<T>? = nil,
        prepackedA: UnsafePointer<T>? = nil
    ) {
        let depthBlocks = depthBlockCount(k)
        @inline(__always) func depthStart(_ q: Int) -> Int { k * q / depthBlocks }
        let depthMax = (k + depthBlocks - 1) / depthBlocks
        let rowsPadded = (rows + mr - 1) / mr * mr
        let wholeA = prepackedA != nil || rowsPadded * k <= packedAWholeLimit
        let aCount = prepackedA != nil ? 0 : wholeA ? rowsPadded * k : min(mc, rowsPadded) * depthMax
        let bCount = depthMax * min(nc, (columns + nr - 1) / nr * nr)
        let tileCount = mr * nr
        // One 64-byte aligned allocation: B block, A block(s), edge tile (each a multiple of 16 elements).
        let buffer = UnsafeMutableRawPointer.allocate(
            byteCount: (aCount + bCount + tileCount) * MemoryLayout<T>.stride, alignment: 64)
        defer { buffer.deallocate() }
        let packedB = buffer.bindMemory(to: T.self, capacity: aCount + bCount + tileCount)
        let packedA = packedB + bCount
        let edge = packedA + aCount
        if wholeA && prepackedA == nil {
            packWholeA(a, lda: lda, transposed: transposeA, rows: i0, rows, k: k, into: packedA)
        }
        let wholeBase = prepackedA ?? UnsafePointer(packedA)

        for jc in stride(from: 0, to: columns, by: nc) {
            let nb = min(nc, columns - jc)
            for q in 0..<depthBlocks {
                let pc = depthStart(q), kb = depthStart(q + 1) - pc
                let add = accumulate || q > 0
                let finish = q == depthBlocks - 1 ? epilogue : nil
                packB(b, ldb: ldb, transposed: transposeB, rows: pc, kb, columns: j0 + jc, nb, into: packedB)
                for ic in stride(from: 0, to: rows, by: mc) {
                    let mb = min(mc, rows - ic)
                    let blockA: UnsafePointer<T>
                    if wholeA {
                        blockA = wholeBase + rowsPadded * pc + ic * kb
                    } else {
                        packA(a, lda: lda, transposed: transposeA, rows: i0 + ic, mb, columns: pc, kb, into: packedA)
                        blockA = UnsafePointer(packedA)
                    }
                    @inline(__always) func tile(_ ir: Int, _ jr: Int) {
                        let h = min(mr, mb - ir), w = min(nr, nb - jr)
                        let ap = blockA + ir * kb, bp = packedB + jr * kb
                        let cp = c + (i0 + ic + ir) * ldc + j0 + jc + jr
                        if h == mr && w == nr {
                            kernel(depth: kb, ap, bp, cp, ldc: ldc, add: add)
                        } else {
                            kernel(depth: kb, ap, bp, edge, ldc: nr, add: false)
                            for r in 0..<h {
                                let dst = cp + r * ldc, src = edge + r * nr
                                if add {
                                    for j in 0..<w { dst[j] += src[j] }
                                } else {
                                    dst.update(from: src, count: w)
                                }
                            }
                        }
                        finish?.apply(cp, ldc: ldc, i: i0 + ic + ir, j: j0 + jc + jr, rows: h, columns: w)
                    }
                    if kb <= rowOrderMaximumDepth {
                        // Shallow products are bound by the traffic to C: walk each 8-row band of C along its
                        // rows (a few long streams the prefetchers follow) while the A panel stays in L1 and the
                        // B block (≤ 128 × 1024) in L2.
                        for ir in stride(from: 0, to: mb, by: mr) {
                            for jr in stride(from: 0, to: nb, by: nr) { tile(ir, jr) }
                        }
                    } else {
                        // The B panel stays in L1 while the A block streams from L2.
                        for jr in stride(from: 0, to: nb, by: nr) {
                            for ir in stride(from: 0, to: mb, by: mr) { tile(ir, jr) }
                        }
                    }
                }
            }
        }
    }

    /// Depth blocks of a product of depth k: k is cut into this many equal blocks (block q starts at k·q / count),
    /// each at most `kc` deep.
    @inlinable @inline(__always)
    static func depthBlockCount(_ k: Int) -> Int { (k + kc - 1) / kc }

    /// Packs rows `i0 ..< i0 + rows` of op(A) (all k columns) whole: depth block q (k cut as `multiplyBlock` cuts
    /// it) occupies rowsPadded · kb elements from rowsPadded · depthStart(q), its rows ic.. starting ic · kb
    /// further on — the layout `multiplyBlock` reads.
    @inlinable
    static func packWholeA<T: KernelFloat>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool, rows i0: Int, _ rows: Int, k: Int,
        into dst: UnsafeMutablePointer<T>
    ) {
        let depthBlocks = depthBlockCount(k)
        let rowsPadded = (rows + mr - 1) / mr * mr
        for q in 0..<depthBlocks {
            let pc = k * q / depthBlocks, kb = k * (q + 1) / depthBlocks - pc
            packA(a, lda: lda, transposed: transposed, rows: i0, rows, columns: pc, kb, into: dst + rowsPadded * pc)
        }
    }

    /// Elements of `prepackA`'s result for an m × k op(A).
    @inlinable
    public static func prepackedCount(m: Int, k: Int) -> Int { (m + mr - 1) / mr * mr * k }

    /// op(A) (m × k) packed once for products that reuse it (a layer's weights); `multiplyBlock` reads it in place
    /// of packing A itself.
    @inlinable
    public static func prepackA<T: KernelFloat>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool = false, m: Int, k: Int, into dst: UnsafeMutablePointer<T>
    ) {
        packWholeA(a, lda: lda, transposed: transposed, rows: 0, m, k: k, into: dst)
    }

    /// The micro-kernel for `T`: the SIMD Float kernel, else the generic one.
    @inlinable @inline(__always)
    static func kernel<T: KernelFloat>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, ldc: Int, add: Bool
    ) {
        if T.self == Float.self {
            microKernel(
                depth: depth, UnsafeRawPointer(a).assumingMemoryBound(to: Float.self),
                UnsafeRawPointer(b).assumingMemoryBound(to: Float.self),
                UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc, add: add)
        } else {
            microKernelGeneric(depth: depth, a, b, c, ldc: ldc, add: add)
        }
    }
}
