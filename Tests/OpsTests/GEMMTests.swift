import Dispatch
import SwiftRCNNOps
import XCTest
import _SwiftRCNNCPUID

/// GEMM on small integer matrices, where every product and sum is exact in Float and Double, so results are
/// compared for equality with a plain triple loop.
final class GEMMTests: XCTestCase {
    func testHandChecked() {
        forEachISA { isa in
            // [[1, 2, 3], [4, 5, 6]] · [[7, 8], [9, 10], [11, 12]]: 1·7 + 2·9 + 3·11 = 58, 1·8 + 2·10 + 3·12 = 64, ...
            let a: [Float] = [1, 2, 3, 4, 5, 6]
            let b: [Float] = [7, 8, 9, 10, 11, 12]
            var c = [Float](repeating: -1, count: 4)
            GEMM.multiply(m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, c: &c, ldc: 2)
            XCTAssertEqual(c, [58, 64, 139, 154])
            // Aᵀ·Bᵀ with A stored (3, 2) and B stored (2, 3): the same numbers read the other way.
            let at: [Float] = [1, 4, 2, 5, 3, 6]
            let bt: [Float] = [7, 9, 11, 8, 10, 12]
            GEMM.multiply(
                m: 2, n: 2, k: 3, a: at, lda: 2, transposeA: true, b: bt, ldb: 3, transposeB: true, c: &c,
                ldc: 2, accumulate: true)
            XCTAssertEqual(c, [116, 128, 278, 308])
        }
    }

    func testTransposeCombinations() {
        forEachISA { isa in
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Float.self, m: 13, n: 37, k: 19, transposeA: ta, transposeB: tb)
                    check(Double.self, m: 13, n: 37, k: 19, transposeA: ta, transposeB: tb)
                }
            }
        }
    }

    /// Sizes on both sides of every path's tile (6 × 8, 6 × 16, 8 × 32) and block (kc = 256, 512, 640; mc = 96,
    /// 128) edges, with row strides wider than the rows.
    func testSizesAcrossTilesAndBlocks() {
        forEachISA { isa in
            let sizes = [
                (1, 1, 1), (8, 32, 7), (7, 31, 3), (9, 33, 257), (129, 40, 20), (3, 2050, 5), (17, 65, 641),
                (6, 16, 385), (6, 16, 513), (13, 17, 769), (97, 9, 40),
            ]
            for (m, n, k) in sizes {
                for (ta, tb) in [(false, false), (true, true), (false, true)] {
                    check(Float.self, m: m, n: n, k: k, transposeA: ta, transposeB: tb, pad: 3)
                }
                check(Double.self, m: m, n: n, k: k, transposeA: true, transposeB: false, pad: 2)
            }
        }
    }

    /// A share of op(A) too large to pack once (144 × 1900 > packedAWholeLimit): packed per 128-row block, with k
    /// cut into three equal blocks.
    func testBlockedPackingOfA() {
        forEachISA { isa in
            check(Float.self, m: 140, n: 40, k: 1900, transposeA: false, transposeB: true, pad: 1, accumulate: true)
        }
    }

    func testAccumulate() {
        forEachISA { isa in
            check(Float.self, m: 21, n: 45, k: 300, transposeA: false, transposeB: false, pad: 1, accumulate: true)
            check(Double.self, m: 10, n: 3, k: 4, transposeA: false, transposeB: true, accumulate: true)
        }
    }

    func testDepthZeroAndOne() {
        forEachISA { isa in
            check(Float.self, m: 5, n: 7, k: 0, transposeA: false, transposeB: false, pad: 2)
            check(Float.self, m: 5, n: 7, k: 0, transposeA: false, transposeB: false, pad: 2, accumulate: true)
            check(Double.self, m: 5, n: 7, k: 0, transposeA: true, transposeB: true)
            // k = 1: the outer product of a column and a row.
            check(Float.self, m: 11, n: 35, k: 1, transposeA: true, transposeB: false, pad: 1)
            check(Double.self, m: 11, n: 35, k: 1, transposeA: false, transposeB: true)
        }
    }

    func testEmptyProductWritesNothing() {
        var c: [Float] = [7]
        GEMM.multiply(m: 0, n: 1, k: 3, a: [Float](), lda: 3, b: [1, 2, 3], ldb: 1, c: &c, ldc: 1)
        GEMM.multiply(m: 1, n: 0, k: 3, a: [1, 2, 3], lda: 3, b: [Float](), ldb: 0, c: &c, ldc: 0)
        XCTAssertEqual(c, [7])
    }

    /// Two threads, splitting C by columns (many column panels) and by rows (one column panel, many row panels).
    func testThreadSplits() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        Parallel.numThreads = 2
        check(Float.self, m: 20, n: 700, k: 400, transposeA: false, transposeB: false, pad: 1)
        check(Float.self, m: 900, n: 20, k: 300, transposeA: true, transposeB: true, pad: 1, accumulate: true)
        check(Double.self, m: 600, n: 9, k: 800, transposeA: false, transposeB: false)
        // Small and at least as tall as wide (`GEMM.rowSplitMaximumColumns`): cut by rows, each thread packing all
        // of B (by its first band, and its partial last panel ahead).
        check(Float.self, m: 300, n: 200, k: 700, transposeA: false, transposeB: false, pad: 1)
        check(Float.self, m: 768, n: 768, k: 40, transposeA: true, transposeB: true, accumulate: true)
        check(Double.self, m: 500, n: 333, k: 600, transposeA: false, transposeB: false, pad: 2)
    }

    /// C cut by columns with op(A) packed once by both threads together (`GEMM.sharedPackingBytes`): rows split
    /// between the threads at a panel boundary, an edge panel, several depth blocks, op(A) as stored and transposed.
    func testSharedPackingOfA() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        forEachISA { isa in
            for threads in [1, 2] {
                Parallel.numThreads = threads
                check(Float.self, m: 45, n: 1300, k: 800, transposeA: false, transposeB: false, pad: 1)
                check(Float.self, m: 45, n: 1300, k: 800, transposeA: true, transposeB: true, pad: 2, accumulate: true)
                check(Float.self, m: 1, n: 2100, k: 700, transposeA: true, transposeB: false)
                check(Double.self, m: 23, n: 1300, k: 900, transposeA: false, transposeB: true, pad: 1)
            }
        }
    }

    /// C cut by columns with an op(A) too large to pack whole once (more than `GEMM.sharedPackingBytes`): the threads
    /// pack it one depth block at a time (`GEMM.multiplySharingA`). Exact on integers (both layouts of A,
    /// accumulating, the epilogue after the last block only), and on real numbers bit for bit what one thread gives
    /// (one `gemmBlock` over all of k): the summation order is the same.
    func testSharedPackingByDepthBlocks() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        forEachISA { isa in
            let (m, n, k) = (530, 540, 2100)
            XCTAssertGreaterThan(GEMM.prepackedCount(m: m, k: k, for: isa) * 4, GEMM.sharedPackingBytes)
            Parallel.numThreads = 2
            check(Float.self, m: m, n: n, k: k, transposeA: false, transposeB: false, pad: 1)
            check(Float.self, m: m, n: n, k: k, transposeA: true, transposeB: true, pad: 2, accumulate: true)
            check(Double.self, m: m, n: n, k: k, transposeA: false, transposeB: true)

            var state: UInt64 = 12345
            func next() -> Float {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int(state >> 40)) / Float(1 << 23) - 1
            }
            let a = (0..<m * k).map { _ in next() }, b = (0..<k * n).map { _ in next() }
            let bias = (0..<m).map { _ in next() }, addend = (0..<m * n).map { _ in next() }
            var results: [[Float]] = []
            for threads in [1, 2] {
                Parallel.numThreads = threads
                var c = [Float](repeating: 0, count: m * n)
                bias.withUnsafeBufferPointer { bp in
                    addend.withUnsafeBufferPointer { ap in
                        GEMM.multiply(
                            m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n,
                            epilogue: GEMMEpilogue(bias: bp.baseAddress, addend: ap.baseAddress, relu: true))
                    }
                }
                results.append(c)
            }
            let differing = zip(results[0], results[1]).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(isa): elements where two threads differ from one")
            // The epilogue ran once, after the whole sum: ReLU zeroed about half, and a row checked in Double.
            XCTAssertGreaterThan(results[0].filter { $0 == 0 }.count, m * n / 4)
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[7 * k + p]) * Double(b[p * n + j]) }
                s = max(0, s + Double(bias[7]) + Double(addend[7 * n + j]))
                XCTAssertEqual(Double(results[0][7 * n + j]), s, accuracy: 1e-3, "\(isa) (7, \(j))")
            }
        }
    }

    /// Products that share a packed op(A) started from inside a parallel loop, where the pool is busy and each one
    /// runs its tasks on its own thread (`multiplySharingA` must not wait for a helper that never comes): by depth
    /// blocks, more of them than the ring of buffers holds, and whole; each gives bit for bit what one thread gives.
    func testSharingAInsideAParallelLoop() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        var state: UInt64 = 99
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(state >> 40)) / Float(1 << 23) - 1
        }
        for (m, n, k) in [(530, 540, 2100), (40, 700, 300)] {
            let a = (0..<m * k).map { _ in next() }, b = (0..<k * n).map { _ in next() }
            Parallel.numThreads = 1
            var expected = [Float](repeating: 0, count: m * n)
            GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &expected, ldc: n)
            Parallel.numThreads = 2
            let results = UnsafeMutablePointer<Float>.allocate(capacity: 2 * m * n)
            defer { results.deallocate() }
            Parallel.forEachChunk(2) { range in
                for i in range {
                    GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: results + i * m * n, ldc: n)
                }
            }
            for i in 0..<2 {
                let got = Array(UnsafeBufferPointer(start: results + i * m * n, count: m * n))
                XCTAssertEqual(got, expected, "m \(m), n \(n), k \(k), product \(i)")
            }
        }
    }

    /// The kernel entry that packs a range of op(A)'s rows: ranges that cover 0 ..< m (panel-aligned starts, the
    /// last one ending at an edge panel) give exactly the copy that packing all rows at once gives, on every path,
    /// with several depth blocks and both layouts of A; a range writes nothing outside its own rows.
    func testPrepackingRowRanges() {
        forEachISA { isa in
            let table = Float.kernels(isa)
            let mr = table.mr
            let m = 4 * mr + 3, k = 2 * table.kc + 5
            for transposed in [false, true] {
                let lda = (transposed ? m : k) + 2
                let a = (0..<(transposed ? k : m) * lda).map { Float($0 % 251) }
                let count = table.prepackedCount(m, k)
                var whole = [Float](repeating: -1, count: count)
                var writers = [Int](repeating: 0, count: count)
                var joined = [Float](repeating: -1, count: count)
                a.withUnsafeBufferPointer { ap in
                    table.prepackA(ap.baseAddress!, lda, transposed, m, k, 0, m, &whole)
                    let cuts = [0, mr, 3 * mr, m]
                    for (lo, hi) in zip(cuts, cuts.dropFirst()) {
                        var piece = [Float](repeating: -1, count: count)
                        table.prepackA(ap.baseAddress!, lda, transposed, m, k, lo, hi, &piece)
                        for i in 0..<count where piece[i] != -1 {
                            writers[i] += 1
                            joined[i] = piece[i]
                        }
                    }
                }
                XCTAssertEqual(joined, whole, "\(isa) transposed \(transposed)")
                XCTAssertEqual(writers.filter { $0 != 1 }.count, 0, "\(isa): elements written by no range or by two")
                XCTAssertFalse(whole.contains(-1), "\(isa): the whole copy left elements unwritten")
            }
        }
    }

    /// The epilogue (row bias, addend with C's stride, ReLU) on full and edge tiles, with several depth blocks
    /// (it must run once, after the last), over both thread splits and k = 0.
    func testEpilogue() {
        forEachISA { isa in
            let saved = Parallel.numThreads
            defer { Parallel.numThreads = saved }
            for threads in [1, 2] {
                Parallel.numThreads = threads
                for (m, n, k) in [(13, 70, 5), (20, 700, 1300), (900, 20, 30), (4, 9, 0)] {
                    let ldc = n + 3
                    let a = (0..<m * k).map { Float(($0 * 7) % 9 - 4) }
                    let b = (0..<k * n).map { Float(($0 * 5) % 9 - 4) }
                    let bias = (0..<m).map { Float($0 % 5 - 2) }
                    let addend = (0..<m * ldc).map { Float(($0 * 3) % 11 - 5) }
                    for relu in [false, true] {
                        var c = [Float](repeating: 1000, count: m * ldc)
                        bias.withUnsafeBufferPointer { bp in
                            addend.withUnsafeBufferPointer { ap in
                                GEMM.multiply(
                                    m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: ldc,
                                    epilogue: GEMMEpilogue(
                                        bias: bp.baseAddress, addend: ap.baseAddress,
                                        relu: relu))
                            }
                        }
                        for i in 0..<m {
                            for j in 0..<ldc {
                                guard j < n else {
                                    XCTAssertEqual(c[i * ldc + j], 1000)
                                    continue
                                }
                                var s: Float = 0
                                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                                s += bias[i] + addend[i * ldc + j]
                                XCTAssertEqual(c[i * ldc + j], relu ? max(s, 0) : s, "\((m, n, k, relu)) (\(i), \(j))")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The packing buffers are the thread's kept scratch (`srcnn_thread_scratch`): whatever a product before left
    /// in it — here NaN in every byte — must not reach C (every padded row and column of a panel is written before
    /// it is read), the same buffer serves the next product, and after `BufferCache.release()` the next product
    /// allocates one of the size it needs.
    func testPackingBuffersKeptBetweenCalls() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        Parallel.numThreads = 1
        forEachISA { isa in
            let poisonBytes = 8 << 20
            guard let poison = srcnn_thread_scratch(poisonBytes) else { return XCTFail("no scratch") }
            poison.initializeMemory(as: UInt8.self, repeating: 0xFF, count: poisonBytes)
            for (m, n, k) in [(13, 37, 19), (7, 31, 3), (129, 40, 20), (17, 65, 641), (6, 16, 513)] {
                check(Float.self, m: m, n: n, k: k, transposeA: false, transposeB: true, pad: 1)
                check(Double.self, m: m, n: n, k: k, transposeA: true, transposeB: false, pad: 2, accumulate: true)
                XCTAssertEqual(srcnn_thread_scratch(1), poison, "the kept buffer is reused")
                poison.initializeMemory(as: UInt8.self, repeating: 0xFF, count: poisonBytes)
            }
            XCTAssertEqual(srcnn_thread_scratch_bytes(), poisonBytes)
            BufferCache.release()
            check(Float.self, m: 13, n: 37, k: 19, transposeA: false, transposeB: false)
            let bytes = srcnn_thread_scratch_bytes()
            XCTAssertGreaterThan(bytes, 0)
            XCTAssertLessThan(bytes, poisonBytes, "released, then allocated for the product's size")
        }
    }

    /// B not transposed: the first row band's tiles pack B's whole panels as they multiply them, a partial last
    /// panel is packed ahead, and the later bands and row blocks read the packed panels. Sizes put the partial panel
    /// in a later chunk (res2 1×1-like depth 64: chunks of several panels), leave a single column, cut k into two
    /// and three blocks and m into two row blocks (the second reading panels the first block packed), and end with
    /// a band of 1-4 rows; below one full band (m < 6) B is packed apart. Scratch poisoned with NaN bytes first, so
    /// a panel the first band did not write would show; then the same on two threads (several pieces of C).
    func testBPackedByTheFirstBand() {
        let saved = Parallel.numThreads
        defer { Parallel.numThreads = saved }
        let sizes = [(97, 100, 64), (13, 33, 1100), (200, 47, 700), (6, 16, 513), (5, 40, 30), (130, 250, 300)]
        forEachISA { isa in
            for threads in [1, 2] {
                Parallel.numThreads = threads
                for (m, n, k) in sizes {
                    if threads == 1 {
                        guard let poison = srcnn_thread_scratch(8 << 20) else { return XCTFail("no scratch") }
                        poison.initializeMemory(as: UInt8.self, repeating: 0xFF, count: 8 << 20)
                    }
                    check(Float.self, m: m, n: n, k: k, transposeA: false, transposeB: false, pad: 3)
                    check(Double.self, m: m, n: n, k: k, transposeA: true, transposeB: false, pad: 1, accumulate: true)
                }
            }
        }
    }

    /// Each thread has its own kept scratch buffer, the same one on every call while it is large enough.
    func testThreadScratchPerThread() {
        let here = srcnn_thread_scratch(1 << 16)
        XCTAssertNotNil(here)
        XCTAssertEqual(srcnn_thread_scratch(100), here)
        XCTAssertEqual(Int(bitPattern: here) % 64, 0)
        let other = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { other.deallocate() }
        let done = DispatchSemaphore(value: 0)
        let address = Int(bitPattern: other)
        DispatchQueue.global().async {
            let slots = UnsafeMutablePointer<Int>(bitPattern: address)!
            slots[0] = Int(bitPattern: srcnn_thread_scratch(1 << 16))
            slots[1] = Int(bitPattern: srcnn_thread_scratch(1 << 10))
            done.signal()
        }
        done.wait()
        XCTAssertNotEqual(other[0], 0)
        XCTAssertNotEqual(other[0], Int(bitPattern: here))
        XCTAssertEqual(other[0], other[1])
        let grown = srcnn_thread_scratch(1 << 20)
        XCTAssertNotNil(grown)
        XCTAssertGreaterThanOrEqual(srcnn_thread_scratch_bytes(), 1 << 20)
    }

    /// Multiplies integer matrices in [-4, 4] laid out with row strides `pad` wider than needed and compares with
    /// a triple loop: the m × n block of C must equal op(A)·op(B) (+ the old C when `accumulate`), and the padding
    /// of C must be untouched.
    func check<T: KernelFloat>(
        _: T.Type, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, pad: Int = 0,
        accumulate: Bool = false, file: StaticString = #filePath, line: UInt = #line
    ) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(m * 1_000_003 + n * 1009 + k)
        func next() -> T {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return T(Int(state >> 33) % 9 - 4)
        }
        let (aRows, aCols) = transposeA ? (k, m) : (m, k)
        let (bRows, bCols) = transposeB ? (n, k) : (k, n)
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = (0..<aRows * lda).map { _ in next() }
        let b = (0..<bRows * ldb).map { _ in next() }
        let sentinel = T(1000)
        var c = (0..<m * ldc).map { i in i % ldc < n ? next() : sentinel }
        var expected = c
        for i in 0..<m {
            for j in 0..<n {
                var s: T = accumulate ? c[i * ldc + j] : 0
                for p in 0..<k {
                    let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += x * y
                }
                expected[i * ldc + j] = s
            }
        }
        GEMM.multiply(
            m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
            transposeB: transposeB, c: &c, ldc: ldc, accumulate: accumulate)
        XCTAssertEqual(
            c, expected, "\(T.self) m \(m) n \(n) k \(k) transposes \(transposeA) \(transposeB)",
            file: file, line: line)
    }
}
