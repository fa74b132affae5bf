// AVX-512 (x86-64-v4: 32 × 512-bit registers, FMA). Compiled with -target-cpu skylake-avx512.

extension Float: KernelScalar { typealias Vector = SIMD16<Float> }
extension Double: KernelScalar { typealias Vector = SIMD8<Double> }

/// Block sizes (elements) of the GEMM on this instruction set; see `Kernels.multiplyBlock`.
enum Blocking {
    /// Rows of the micro-kernel tile: 8 × 2 zmm = 16 accumulators of 32 registers. Larger tiles (12 × 32,
    /// 14 × 32, 8 × 48) ran no faster in cache and waste more on the edges of m = 64·c convolution weights.
    static var mr: Int { 8 }
    /// Most depth of a packed block: a 640 × 32 Float B panel (80 KiB) overflows L1 but streams from L2 fast
    /// enough, and fewer k blocks mean fewer passes over C: on the 64-row convolutions 640 ran ~15% faster than
    /// 256 or 384 (AMD EPYC Zen 4/5, 1 MiB L2 per core).
    static var kc: Int { 640 }
    /// Rows of a packed A block: 128 × 640 Floats (320 KiB) stay in a 1 MiB L2.
    static var mc: Int { 128 }
    /// Columns of a packed B block: 640 × 1024 Floats (2.5 MiB) per piece, in the shared L3.
    static var nc: Int { 1024 }
    /// Largest share of op(A) (elements, padded to whole panels) packed once for all column blocks: 1 MiB of Floats.
    static var packedAWholeLimit: Int { 1 << 18 }
    /// Most Winograd tiles per block (a multiple of the Float tile width), for few channels: V and M of 64 channels
    /// in and out × 256 tiles (2 MiB). Many channels get fewer (`SwiftRCNNOps.Winograd.blockElements`).
    static var winogradTiles: Int { 256 }
    /// Bytes of B panels per chunk in the row-band order: no limit, so the chunk is the whole B block (≤ 128 × 1024
    /// Floats, 512 KiB), which stays in a 1 MiB L2.
    static var rowOrderChunkBytes: Int { Int.max }
    /// B packed apart, before the tiles that use it, as measured on AMD EPYC Zen 4. Packing by the first band (as on
    /// AVX2, where it took most problems 4-11% faster) is not measured on an AVX-512 machine yet; trying it takes
    /// `packInto` in the 8-row kernel and the row-band order for deep blocks too (`rowOrderMaximumDepth`).
    static var packsBWhileMultiplying: Bool { false }
    /// Deepest k block whose tiles are visited row band by row band.
    static var rowOrderMaximumDepth: Int { 128 }
}

extension Kernels {
    @inline(__always)
    static func microKernel<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, bStride: Int, _ c: UnsafeMutablePointer<T>, ldc: Int,
        add: Bool, packInto: UnsafeMutablePointer<T>? = nil
    ) {
        // B is packed apart on this path (`packsBWhileMultiplying`); the 8-row kernel has no `packInto`.
        precondition(packInto == nil, "microKernel8 does not pack B")
        microKernel8(depth: depth, a, b, bStride: bStride, c, ldc: ldc, add: add)
    }
}

extension SIMD16: LaneVector where Scalar == Float {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}

extension SIMD8: LaneVector where Scalar == Double {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self {
        x.replacing(with: 0, where: (columns .< 0) .| (columns .>= width))
    }
}
