import Synchronization

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
/// Threading: C is cut into rectangles — by columns when there are enough `nr`-column panels, else by rows, and by
/// rows as well when C is small and at least as tall as wide (`rowSplitMaximumColumns`) —
/// one to `piecesPerThread` per thread of `Parallel.numThreads`, each multiplied independently with its own packing
/// buffers (allocated once per piece), so threads write disjoint parts of C. When C is cut by columns, every piece
/// needs all of op(A), and the threads pack it together instead (`multiplySharingA`): the whole of it once when the
/// packed op(A) is at most `sharedPackingBytes`, else one depth block at a time, the threads taking the packing and
/// the pieces of each block as they free up. Each element of C is summed in the same order whatever the split, so
/// results do not depend on the thread count (they do depend on the path: the depth blocking and FMA differ).
public enum GEMM {
    /// Most pieces of C per thread; pieces are at least 64 column panels or 128 row panels wide.
    @usableFromInline static let piecesPerThread = 4
    /// Widest C (columns) that `multiply` cuts by rows when it is at least as tall as wide. On AMD EPYC Zen 3 (avx2,
    /// 2 threads; the splits alternating block of calls by block of calls in one process, medians of 14-16 rounds,
    /// in two sessions' quieter and busier spells) cutting by rows took square 384-768, 1024 × 512, 2048 × 512 and a
    /// 1000 × 512 linear layer 1.01-1.10× faster; square 1024, 512 × 1024 and fc7 (1000 × 1024) measured 0.98-1.03×
    /// (kept by columns), 256 × 512 with k = 2304 0.98×, and the ResNet convolutions (n ≥ 3800) 0.87-0.95×.
    @usableFromInline static let rowSplitMaximumColumns = 768
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
        // A C no wider than `rowSplitMaximumColumns` and at least as tall as wide is cut by rows: each thread packs
        // its own rows of op(A) and all of op(B) (B at small cost: the first band's tiles pack it as they go), no
        // thread waits for another, where the column split's shared op(A), packed by the threads together before
        // either can start, costs much of the little work each thread has.
        let rowsForSmall = n <= rowSplitMaximumColumns && m >= n
        let byColumns = !rowsForSmall && (nPanels >= 4 * threads || nPanels >= mPanels)
        // Up to `piecesPerThread` pieces each, handed out as threads free up (balance under uneven load), while
        // pieces stay wide enough that re-packing the other operand per piece costs little.
        let panels = byColumns ? nPanels : mPanels
        let perThread = min(piecesPerThread, max(1, panels / (threads * (byColumns ? 64 : 128))))
        let slots = min(threads * perThread, panels)
        // With C cut by columns every piece needs all of op(A): packed once, by the threads together, instead of
        // by every piece for itself (again per `nc` columns). On AMD EPYC Zen 3 (avx2, 2 threads) this took
        // bench/gemm.py's res3 3×3 from 0.84× to 1.06× OpenBLAS and res4 1×1 from 1.00× to 1.08× (best of 7, three
        // alternating runs each). Packing a larger op(A) per depth block instead of once per piece made fc6
        // (1000 × 12544 · 12544 × 1024) 2–3% faster (the same machine, medians of 8 and of 6 alternating
        // processes); square 2048 ran the same.
        if byColumns && slots > 1 && k > 0 {
            let packsWhole = kernels.prepackedCount(m, k) * MemoryLayout<T>.stride <= sharedPackingBytes
            multiplySharingA(
                kernels, m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
                transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate, bias: bias, addend: addend,
                relu: relu, threads: threads, slots: slots, whole: packsWhole)
            return
        }
        Parallel.forEachChunk(slots) { range in
            for s in range {
                if byColumns {
                    let lo = nPanels * s / slots * nr, hi = min(n, nPanels * (s + 1) / slots * nr)
                    kernels.gemmBlock(
                        0, m, lo, hi - lo, k, a, lda, transposeA, b, ldb, transposeB, c, ldc,
                        accumulate, bias, addend, relu, nil)
                } else {
                    let lo = mPanels * s / slots * mr, hi = min(m, mPanels * (s + 1) / slots * mr)
                    kernels.gemmBlock(
                        lo, hi - lo, 0, n, k, a, lda, transposeA, b, ldb, transposeB, c, ldc,
                        accumulate, bias, addend, relu, nil)
                }
            }
        }
    }

    /// Depth blocks of op(A) packed and held at once by `multiplySharingA` (a ring of buffers).
    @usableFromInline static let depthBlockRing = 3

    /// C cut by columns into `slots` pieces that share one packed op(A), packed by the threads together: whole,
    /// once (`whole`, for an op(A) of at most `sharedPackingBytes` packed), or else one depth block at a time, each
    /// multiplied by every piece into its columns of C. The blocks are the kernels' own depth blocks (k cut into
    /// `(k + kc - 1) / kc` equal blocks, block q starting at k·q / count), so each piece's `gemmBlock` sees a single
    /// block, accumulates onto the blocks before it and runs the epilogue after the last: every element of C is
    /// summed in the same order as by one `gemmBlock` over all of k.
    ///
    /// Scheduling: the work is a sequence of tasks (block q, piece s), in order of q then s (one block when
    /// `whole`), that the threads claim one after another. A task makes sure its block is packed — into buffer
    /// q % `depthBlockRing`, once every task of block q − `depthBlockRing` is done; its ranges of row panels go to
    /// whichever tasks of the block claim them first (`prepackA` puts each where it belongs in the block's
    /// layout), and the others wait for them — then waits for its piece's task of block q − 1 (the same elements of
    /// C), and multiplies. Every wait is for tasks claimed earlier, which running threads hold, so the threads never
    /// wait on each other in a cycle, and one thread alone runs every task in order. Where a barrier after each
    /// packing and each multiplication made the threads wait for each other twice per block, a thread that the
    /// machine slows now holds the other up only where their tasks depend on each other: on AMD EPYC Zen 3 (avx2,
    /// 2 threads, a noisy VM), the median of 20 interleaved rounds against OpenBLAS (each after a 0.3 s pause) went
    /// from 0.89–0.91× to 0.97–0.99× on fc6 and from 0.94× to 0.96× on res5 3×3, and that of 16 rounds on the
    /// op(A)s packed whole the same or up to 6% better (square 512 and 1024, res2 3×3, res4 1×1 and 3×3).
    @inlinable @usableFromInline
    static func multiplySharingA<T: KernelFloat>(
        _ kernels: KernelTable<T>, m: Int, n: Int, k: Int,
        a: UnsafePointer<T>, lda: Int, transposeA: Bool, b: UnsafePointer<T>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool,
        bias: UnsafePointer<T>?, addend: UnsafePointer<T>?, relu: Bool, threads: Int, slots: Int, whole: Bool
    ) {
        let nr = kernels.nr, nPanels = (n + nr - 1) / nr
        let mr = kernels.mr, mPanels = (m + mr - 1) / mr
        let blocks = whole ? 1 : (k + kernels.kc - 1) / kernels.kc
        let depthMax = (k + blocks - 1) / blocks
        let capacity = kernels.prepackedCount(m, depthMax)
        let ring = min(blocks, depthBlockRing)
        // From the buffer cache (kept between calls; fresh pages would be zero-filled on first touch, a page fault
        // each), as the threads' own packing buffers are (`srcnn_thread_scratch`).
        let held = BufferCache.take(T.self, count: ring * capacity)
        defer { BufferCache.give(held) }
        let buffers = held.pointer
        let parts = min(mPanels, 2 * threads)
        // Per block: parts claimed, parts packed, tasks done; per piece: blocks done; the next task.
        let counterCount = 3 * blocks + slots + 1
        let counters = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: counterCount)
        for i in 0..<counterCount { (counters + i).initialize(to: Atomic(0)) }
        defer {
            counters.deinitialize(count: counterCount)
            counters.deallocate()
        }
        let claimed = counters, packed = counters + blocks, finished = counters + 2 * blocks
        let progress = counters + 3 * blocks, nextTask = counters + 3 * blocks + slots
        let tasks = blocks * slots
        WorkerPool.pool().run(items: threads, threads: threads) { _ in
            while true {
                let task = nextTask[0].add(1, ordering: .relaxed).oldValue
                if task >= tasks { return }
                let q = task / slots, s = task % slots
                let pc = k * q / blocks, kb = k * (q + 1) / blocks - pc
                let aq = a + (transposeA ? pc * lda : pc), bq = b + (transposeB ? pc : pc * ldb)
                let buffer = buffers + (q % ring) * capacity
                if packed[q].load(ordering: .acquiring) < parts {
                    if q >= ring { WorkerPool.waitUntil { finished[q - ring].load(ordering: .acquiring) >= slots } }
                    while true {
                        let part = claimed[q].add(1, ordering: .relaxed).oldValue
                        if part >= parts { break }
                        let lo = mPanels * part / parts * mr, hi = min(m, mPanels * (part + 1) / parts * mr)
                        kernels.prepackA(aq, lda, transposeA, m, kb, lo, hi, buffer)
                        packed[q].add(1, ordering: .releasing)
                    }
                    WorkerPool.waitUntil { packed[q].load(ordering: .acquiring) >= parts }
                }
                if q > 0 { WorkerPool.waitUntil { progress[s].load(ordering: .acquiring) >= q } }
                let last = q == blocks - 1
                let lo = nPanels * s / slots * nr, hi = min(n, nPanels * (s + 1) / slots * nr)
                kernels.gemmBlock(
                    0, m, lo, hi - lo, kb, aq, lda, transposeA, bq, ldb, transposeB, c, ldc,
                    accumulate || q > 0, last ? bias : nil, last ? addend : nil, last && relu, UnsafePointer(buffer))
                progress[s].store(q + 1, ordering: .releasing)
                finished[q].add(1, ordering: .releasing)
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
