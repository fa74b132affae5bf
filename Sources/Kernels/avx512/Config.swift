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
    /// Most Winograd tiles per block (a multiple of the Float tile width): V_e of 256 channels × 256 tiles (256
    /// KiB) per product stays in a 1 MiB L2.
    static var winogradTiles: Int { 256 }
    /// Columns of B per chunk in the row-band order: the whole B block (≤ 128 × 1024 Floats, 512 KiB) stays in a 1 MiB L2.
    static var rowOrderColumns: Int { nc }
    /// Deepest k block whose tiles are visited row band by row band.
    static var rowOrderMaximumDepth: Int { 128 }
}

extension Kernels {
    @inline(__always)
    static func microKernel<T: KernelScalar>(
        depth: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, ldc: Int, add: Bool
    ) {
        microKernel8(depth: depth, a, b, c, ldc: ldc, add: add)
    }
}

extension SIMD16: LaneVector where Scalar == Float {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func deinterleave(_ lo: Self, _ hi: Self) -> (even: Self, odd: Self) {
        (Self(lo[0], lo[2], lo[4], lo[6], lo[8], lo[10], lo[12], lo[14],
              hi[0], hi[2], hi[4], hi[6], hi[8], hi[10], hi[12], hi[14]),
         Self(lo[1], lo[3], lo[5], lo[7], lo[9], lo[11], lo[13], lo[15],
              hi[1], hi[3], hi[5], hi[7], hi[9], hi[11], hi[13], hi[15]))
    }
    @inline(__always) static func interleave(_ e: Self, _ o: Self) -> (lo: Self, hi: Self) {
        (Self(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3], e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7]),
         Self(e[8], o[8], e[9], o[9], e[10], o[10], e[11], o[11], e[12], o[12], e[13], o[13], e[14], o[14], e[15], o[15]))
    }
}

extension SIMD8: LaneVector where Scalar == Double {
    @inline(__always) static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self { acc.addingProduct(x, y) }
    @inline(__always) static func relu(_ x: Self) -> Self { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) static func deinterleave(_ lo: Self, _ hi: Self) -> (even: Self, odd: Self) {
        (Self(lo[0], lo[2], lo[4], lo[6], hi[0], hi[2], hi[4], hi[6]),
         Self(lo[1], lo[3], lo[5], lo[7], hi[1], hi[3], hi[5], hi[7]))
    }
    @inline(__always) static func interleave(_ e: Self, _ o: Self) -> (lo: Self, hi: Self) {
        (Self(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3]), Self(e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7]))
    }
}
