/// The element types the kernels are compiled for, each with the SIMD vector that fills one register of this
/// instruction set (`Config.swift` of the instruction set's folder picks it).
protocol KernelScalar: BinaryFloatingPoint, SIMDScalar {
    associatedtype Vector: LaneVector where Vector.Scalar == Self
}

/// One register of lanes and the steps whose generic SIMD forms compile to lane-by-lane code (conformances on the
/// concrete vector types in each instruction set's `Config.swift`), plus lane shuffles shared by all.
protocol LaneVector: SIMD where Scalar: KernelScalar {
    /// acc + x·y: fused where the instruction set has FMA, else a multiply and an add.
    static func multiplyAdd(_ acc: Self, _ x: Self, _ y: Self) -> Self
    /// max(x, 0) per lane with NaN kept, as torch.relu.
    static func relu(_ x: Self) -> Self
    /// x with the lanes whose `columns` lie outside [0, width) set to zero.
    static func zeroOutside(_ x: Self, columns: Self, width: Self) -> Self
}

extension LaneVector {
    // Lane loops of constant length: once specialised for a concrete vector they unroll into shuffles.

    /// The even and the odd lanes of the 2n-lane sequence `lo`, `hi`.
    @inline(__always)
    static func deinterleave(_ lo: Self, _ hi: Self) -> (even: Self, odd: Self) {
        var even = Self(), odd = Self()
        let half = scalarCount / 2
        for i in 0..<half {
            even[i] = lo[2 * i]; even[half + i] = hi[2 * i]
            odd[i] = lo[2 * i + 1]; odd[half + i] = hi[2 * i + 1]
        }
        return (even, odd)
    }

    /// The 2n-lane sequence even[0], odd[0], even[1], odd[1], ... as its two halves.
    @inline(__always)
    static func interleave(_ even: Self, _ odd: Self) -> (lo: Self, hi: Self) {
        var lo = Self(), hi = Self()
        let half = scalarCount / 2
        for i in 0..<half {
            lo[2 * i] = even[i]; lo[2 * i + 1] = odd[i]
            hi[2 * i] = even[half + i]; hi[2 * i + 1] = odd[half + i]
        }
        return (lo, hi)
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Scalar>) -> Self { UnsafeRawPointer(p).loadUnaligned(as: Self.self) }

    @inline(__always)
    func store(to p: UnsafeMutablePointer<Scalar>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self) }
}
