// The portable path: 128-bit vectors (SSE2 on baseline x86-64, NEON on arm64), correct on every CPU. Compiled for
// the baseline of the target architecture (-target-cpu x86-64 on x86-64 hosts).

extension Float: KernelScalar { typealias Vector = SIMD4<Float> }
extension Double: KernelScalar { typealias Vector = SIMD2<Double> }

/// Block sizes (elements) of the GEMM on this instruction set; see `Kernels.multiplyBlock`.
enum Blocking {
    /// Rows of the micro-kernel tile: 6 × 2 xmm = 12 accumulators of 16 SSE registers.
    static var mr: Int { 6 }
    /// Most depth of a packed block: a 256 × 8 Float B panel (8 KiB) stays in L1.
    static var kc: Int { 256 }
    /// Rows of a packed A block: 96 × 256 Floats (96 KiB) stay in a 256 KiB or larger L2.
    static var mc: Int { 96 }
    /// Columns of a packed B block: 256 × 2048 Floats (2 MiB) per piece.
    static var nc: Int { 2048 }
    /// Largest share of op(A) (elements, padded to whole panels) packed once for all column blocks: 256 KiB.
    static var packedAWholeLimit: Int { 1 << 16 }
    /// Most Winograd tiles per block (a multiple of the Float tile width): as on AVX2.
    static var winogradTiles: Int { 256 }
    /// Bytes of B panels per chunk in the row-band order, and B packed by the first band: as on AVX2 (on Zen 3 with this
    /// path forced, 1.02-1.06× the 128 columns packed apart on square 512, res2 / res3 / res5 3×3 and res2 1×1; the
    /// same on square 1024).
    static var rowOrderChunkBytes: Int { 24 << 10 }
    static var packsBWhileMultiplying: Bool { true }
    /// Deepest k block whose tiles are visited row band by row band: every block, as on AVX2 (16 registers).
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

// Baseline x86-64 has no FMA: `addingProduct` would become a call to fmaf per lane. arm64 always has it.
extension SIMD4: LaneVector where Scalar == Float {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self {
        #if arch(arm64)
            acc.addingProduct(x, y)
        #else
            acc + x * y
        #endif
    }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}

extension SIMD2: LaneVector where Scalar == Double {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self {
        #if arch(arm64)
            acc.addingProduct(x, y)
        #else
            acc + x * y
        #endif
    }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}
