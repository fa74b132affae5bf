// AVX2 + FMA (x86-64-v3: 16 × 256-bit registers). Compiled with -target-cpu haswell.

extension Float: KernelScalar { typealias Vector = SIMD8<Float> }
extension Double: KernelScalar { typealias Vector = SIMD4<Double> }

/// Block sizes (elements) of the GEMM on this instruction set; see `Kernels.multiplyBlock`.
enum Blocking {
    /// Rows of the micro-kernel tile: 6 × 2 ymm = 12 accumulators, plus two B vectors and a broadcast, of 16
    /// registers (BLIS's Haswell sgemm shape, 6 × 16).
    static var mr: Int { 6 }
    /// Most depth of a packed block: a 384 × 16 Float B panel (24 KiB) stays in a 32 KiB L1; on AMD EPYC Zen 3
    /// (2 threads) 384 ran 0–10% faster than 256 and steadier than 512 on the square and convolution problems of
    /// bench/gemm.py.
    static var kc: Int { 384 }
    /// Rows of a packed A block: 96 × 384 Floats (144 KiB) stay in a 512 KiB L2 (AMD Zen 3).
    static var mc: Int { 96 }
    /// Columns of a packed B block: 384 × 2048 Floats (3 MiB) per piece, in the shared L3.
    static var nc: Int { 2048 }
    /// Largest share of op(A) (elements, padded to whole panels) packed once for all column blocks: 256 KiB.
    static var packedAWholeLimit: Int { 1 << 16 }
    /// Most Winograd tiles per block (a multiple of the Float tile width), for few channels: 128, 256 and 384 gave
    /// the same detector times within the ±10% noise of a 2-core Zen 3 VM; 256 as on AVX-512. Many channels get
    /// fewer (`SwiftRCNNOps.Winograd.blockElements`).
    static var winogradTiles: Int { 256 }
    /// Columns of B per chunk in the row-band order: 128 × 384 Floats (192 KiB) of B panels stay in a 512 KiB L2
    /// beside the A block; the whole B block (up to 2048 columns, from L3) ran 5–20% slower on Zen 3.
    static var rowOrderColumns: Int { 128 }
    /// Deepest k block whose tiles are visited row band by row band: every block. Walking each 6-row band of C
    /// along a chunk of columns (A panel in L1, B panels in L2) ran 10–30% faster than the column-panel order
    /// (B panel in L1, A block from L2) on bench/gemm.py's problems (Zen 3).
    static var rowOrderMaximumDepth: Int { kc }
}

extension Kernels {
    @inline(__always)
    static func microKernel<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, bStride: Int, _ c: UnsafeMutablePointer<T>, ldc: Int,
        add: Bool
    ) {
        microKernel6(depth: depth, a, b, bStride: bStride, c, ldc: ldc, add: add)
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
