// AVX2 + FMA (x86-64-v3: 16 × 256-bit registers). Compiled with -target-cpu haswell.

extension Float: KernelScalar { typealias Vector = SIMD8<Float> }
extension Double: KernelScalar { typealias Vector = SIMD4<Double> }

/// Block sizes (elements) of the GEMM on this instruction set; see `Kernels.multiplyBlock`.
enum Blocking {
    /// Rows of the micro-kernel tile: 6 × 2 ymm = 12 accumulators, plus two B vectors and a broadcast, of 16
    /// registers (BLIS's Haswell sgemm shape, 6 × 16).
    static var mr: Int { 6 }
    /// Most depth of a packed block. In the row-band order (`rowOrderMaximumDepth`) the 6 × 512 Float A panel
    /// (12 KiB) stays in the 32 KiB L1 while the B panels stream from L2, and deeper blocks mean fewer passes of
    /// loads and stores over C: on AMD EPYC Zen 3 (2 threads, medians of three alternating processes of 8 paced
    /// rounds each against OpenBLAS) 512 instead of 384 took square 512 from 0.80× to 1.04×, square 1024 from 0.92×
    /// to 1.02×, res5 3×3 from 0.88× to 1.04× and fc6 from 1.00× to 1.08×, the others the same or better; 768 was
    /// 0–5% slower than 512 on most problems. (Before the row-band order, 384 beat 256 and 512.)
    static var kc: Int { 512 }
    /// Rows of a packed A block: 96 × 512 Floats (192 KiB) stay in a 512 KiB L2 (AMD Zen 3).
    static var mc: Int { 96 }
    /// Columns of a packed B block: 512 × 2048 Floats (4 MiB) per piece, in the shared L3.
    static var nc: Int { 2048 }
    /// Largest share of op(A) (elements, padded to whole panels) packed once for all column blocks: 256 KiB.
    static var packedAWholeLimit: Int { 1 << 16 }
    /// Most Winograd tiles per block (a multiple of the Float tile width), for few channels: 128, 256 and 384 gave
    /// the same detector times within the ±10% noise of a 2-core Zen 3 VM; 256 as on AVX-512. Many channels get
    /// fewer (`SwiftRCNNOps.Winograd.blockElements`).
    static var winogradTiles: Int { 256 }
    /// Bytes of B panels per chunk in the row-band order: as many whole panels of the depth block as 24 KiB holds,
    /// at least one (one 16-column Float panel at depths of 384 and more, 96 columns at res2 1×1's 64). With the B
    /// panels packed by the first band (`packsBWhileMultiplying`), against 128 columns packed apart, on AMD
    /// EPYC Zen 3 (2 threads; the variants alternating block of calls by block of calls in one process, median of
    /// 16 rounds): res2 / res3 / res4 / res5 3×3 1.10 / 1.05 / 1.05 / 1.08×, square 512 / 1024 1.12 / 1.04×, fc6
    /// 1.07×, res2 1×1 and res4 1×1 1.01×, square 2048 0.98×; one thread: the 3×3 convolutions 1.01-1.11×, the
    /// rest 0.99-1.01×. 32 KiB measured alike; 48 KiB, or 64 columns, less.
    static var rowOrderChunkBytes: Int { 24 << 10 }
    /// The first row band's tiles of each depth block pack B's panels while multiplying them (`microKernel`'s
    /// `packInto`), instead of a separate copy before them: the copy, waiting on B's rows from L3 or memory, had
    /// taken 7-9% of res3 3×3's time. With a chunk of one panel the separate copy was 5-11% slower again.
    static var packsBWhileMultiplying: Bool { true }
    /// Deepest k block whose tiles are visited row band by row band: every block. Walking each 6-row band of C
    /// along a chunk of columns ran 10–30% faster than the column-panel order (B panel in L1, A block from L2) on
    /// bench/gemm.py's problems (Zen 3) with B packed apart in chunks of 128 columns; with the chunks of one panel
    /// that deep blocks now get, the two orders visit the tiles alike.
    static var rowOrderMaximumDepth: Int { kc }
}

extension Kernels {
    @inline(__always)
    static func microKernel<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, bStride: Int, _ c: UnsafeMutablePointer<T>, ldc: Int,
        add: Bool, packInto: UnsafeMutablePointer<T>? = nil
    ) {
        microKernel6(depth: depth, a, b, bStride: bStride, c, ldc: ldc, add: add, packInto: packInto)
    }
}

extension SIMD8: LaneVector where Scalar == Float {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}

extension SIMD4: LaneVector where Scalar == Double {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}
