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
/// zeros), and a register-blocked `mr × nr` micro-kernel runs over every pair of panels. The loop nest, the packing
/// and the micro-kernel run in the current instruction-set path's module (`ISA`, `KernelTable.gemmBlock`), with
/// that path's tile and block sizes (`Sources/Kernels/<isa>/Config.swift`).
///
/// Threading: C is cut into rectangles — by columns when there are enough `nr`-column panels, else by rows —
/// one to `piecesPerThread` per thread of `Parallel.numThreads`, each multiplied independently with its own packing
/// buffers (allocated once per piece), so threads write disjoint parts of C. When C is cut by columns, every piece
/// needs all of op(A), and the threads pack it together instead: the whole of it once when the packed op(A) is at
/// most `sharedPackingBytes`, else one depth block at a time, each multiplied by every piece before the next is
/// packed (`multiplyByDepthBlocks`). Each element of C is summed in the same order whatever the split, so results
/// do not depend on the thread count (they do depend on the path: the depth blocking and FMA differ).
public enum GEMM {
    /// Most pieces of C per thread; pieces are at least 64 column panels or 128 row panels wide.
    @usableFromInline static let piecesPerThread = 4
    /// Multiply-adds below which a thread is not worth waking (~10 µs of work).
    @usableFromInline static let parallelMinimumWork = 1 << 21
    /// Largest packed op(A) (bytes) that the threads pack whole, once, when C is cut by columns. A larger one would
    /// be read back from memory by every thread (fc6's 50 MiB ran 15% slower that way on AMD EPYC Zen 4), so it is
    /// packed and multiplied one depth block at a time.
    public static let sharedPackingBytes = 4 << 20

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
        let kernels = T.kernels
        let (mr, nr) = (kernels.mr, kernels.nr)
        let bias = epilogue?.bias, addend = epilogue?.addend, relu = epilogue?.relu ?? false
        let work = Double(m) * Double(n) * Double(max(k, 1))
        let threads = Int(min(Double(Parallel.numThreads), max(1, work / Double(parallelMinimumWork))))
        let mPanels = (m + mr - 1) / mr, nPanels = (n + nr - 1) / nr
        let byColumns = nPanels >= 4 * threads || nPanels >= mPanels
        // Up to `piecesPerThread` pieces each, handed out as threads free up (balance under uneven load), while
        // pieces stay wide enough that re-packing the other operand per piece costs little.
        let panels = byColumns ? nPanels : mPanels
        let perThread = min(piecesPerThread, max(1, panels / (threads * (byColumns ? 64 : 128))))
        let slots = min(threads * perThread, panels)
        // With C cut by columns every piece needs all of op(A): packed once, ranges of its row panels shared out
        // over the threads (`prepackA` places each range in the whole layout), instead of by every piece for
        // itself (again per `nc` columns). On AMD EPYC
        // Zen 3 (avx2, 2 threads) this took bench/gemm.py's res3 3×3 from 0.84× to 1.06× OpenBLAS and res4 1×1 from
        // 1.00× to 1.08× (best of 7, three alternating runs each). Packing a larger op(A) per depth block instead of
        // once per piece made fc6 (1000 × 12544 · 12544 × 1024) 2–3% faster (the same machine, medians of 8 and of 6
        // alternating processes); square 2048 ran the same.
        let packedCount = kernels.prepackedCount(m, k)
        let shared = byColumns && slots > 1 && k > 0
        let packsWhole = packedCount * MemoryLayout<T>.stride <= sharedPackingBytes
        if shared && !packsWhole {
            multiplyByDepthBlocks(
                kernels, m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
                transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate, bias: bias, addend: addend,
                relu: relu, threads: threads, slots: slots)
            return
        }
        var packed: UnsafeMutableRawPointer? = nil
        if shared {
            let buffer = UnsafeMutableRawPointer.allocate(
                byteCount: packedCount * MemoryLayout<T>.stride, alignment: 64)
            packed = buffer
            prepackShared(
                kernels, a: a, lda: lda, transposeA: transposeA, m: m, k: k, threads: threads,
                into: buffer.bindMemory(to: T.self, capacity: packedCount))
        }
        defer { packed?.deallocate() }
        let prepacked = packed.map { UnsafePointer($0.assumingMemoryBound(to: T.self)) }
        Parallel.forEachChunk(slots) { range in
            for s in range {
                if byColumns {
                    let lo = nPanels * s / slots * nr, hi = min(n, nPanels * (s + 1) / slots * nr)
                    kernels.gemmBlock(
                        0, m, lo, hi - lo, k, a, lda, transposeA, b, ldb, transposeB, c, ldc,
                        accumulate, bias, addend, relu, prepacked)
                } else {
                    let lo = mPanels * s / slots * mr, hi = min(m, mPanels * (s + 1) / slots * mr)
                    kernels.gemmBlock(
                        lo, hi - lo, 0, n, k, a, lda, transposeA, b, ldb, transposeB, c, ldc,
                        accumulate, bias, addend, relu, nil)
                }
            }
        }
    }

    /// The whole op(A) (m × k) packed by the threads together, each a range of its row panels (`prepackA` puts
    /// every range where it belongs in the whole layout).
    @inlinable @usableFromInline
    static func prepackShared<T: KernelFloat>(
        _ kernels: KernelTable<T>, a: UnsafePointer<T>, lda: Int, transposeA: Bool, m: Int, k: Int, threads: Int,
        into dst: UnsafeMutablePointer<T>
    ) {
        let mr = kernels.mr, mPanels = (m + mr - 1) / mr
        let parts = min(mPanels, threads)
        Parallel.forEachChunk(parts) { range in
            for part in range {
                let lo = mPanels * part / parts * mr, hi = min(m, mPanels * (part + 1) / parts * mr)
                kernels.prepackA(a, lda, transposeA, m, k, lo, hi, dst)
            }
        }
    }

    /// C cut by columns into `slots` pieces when op(A) is too large to pack whole once: one depth block at a
    /// time, the threads pack that block of op(A) together (rows m × the block's depth, one copy instead of one
    /// per piece), then every piece multiplies it into its columns of C. The blocks are the kernels' own depth
    /// blocks (k cut into `(k + kc - 1) / kc` equal blocks, block q starting at k·q / count), so each piece's
    /// `gemmBlock` sees a single block, accumulates onto the blocks before it and runs the epilogue after the last:
    /// every element of C is summed in the same order as by one `gemmBlock` over all of k.
    @inlinable @usableFromInline
    static func multiplyByDepthBlocks<T: KernelFloat>(
        _ kernels: KernelTable<T>, m: Int, n: Int, k: Int,
        a: UnsafePointer<T>, lda: Int, transposeA: Bool, b: UnsafePointer<T>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool,
        bias: UnsafePointer<T>?, addend: UnsafePointer<T>?, relu: Bool, threads: Int, slots: Int
    ) {
        let nr = kernels.nr, nPanels = (n + nr - 1) / nr
        let blocks = (k + kernels.kc - 1) / kernels.kc
        let depthMax = (k + blocks - 1) / blocks
        let capacity = kernels.prepackedCount(m, depthMax)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<T>.stride, alignment: 64)
        defer { raw.deallocate() }
        let buffer = raw.bindMemory(to: T.self, capacity: capacity)
        for q in 0..<blocks {
            let pc = k * q / blocks, kb = k * (q + 1) / blocks - pc
            let aq = a + (transposeA ? pc * lda : pc), bq = b + (transposeB ? pc : pc * ldb)
            prepackShared(kernels, a: aq, lda: lda, transposeA: transposeA, m: m, k: kb, threads: threads, into: buffer)
            let last = q == blocks - 1
            Parallel.forEachChunk(slots) { range in
                for s in range {
                    let lo = nPanels * s / slots * nr, hi = min(n, nPanels * (s + 1) / slots * nr)
                    kernels.gemmBlock(
                        0, m, lo, hi - lo, kb, aq, lda, transposeA, bq, ldb, transposeB, c, ldc,
                        accumulate || q > 0, last ? bias : nil, last ? addend : nil, last && relu,
                        UnsafePointer(buffer))
                }
            }
        }
    }

    /// Elements of `prepackA`'s result for an m × k op(A) on path `isa` (the same for Float and Double: a path
    /// packs both in panels of the same height).
    @inlinable
    public static func prepackedCount(m: Int, k: Int, for isa: ISA = .current) -> Int {
        Float.kernels(isa).prepackedCount(m, k)
    }

    /// op(A) (m × k) packed once, in the current path's panel layout, for products that reuse it (a layer's
    /// weights): the `prepackedA` of `KernelTable.gemmBlock`.
    @inlinable
    public static func prepackA<T: KernelFloat>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool = false, m: Int, k: Int, into dst: UnsafeMutablePointer<T>
    ) {
        T.kernels.prepackA(a, lda, transposed, m, k, 0, m, dst)
    }
}

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
}
