/// Elementary functions over contiguous arrays, written as straight-line arithmetic so LLVM vectorises the loops
/// (the C library's scalar `expf` is several times slower per element than a vector polynomial; hardswish's
/// division runs a few lanes at a time). They run in the
/// instruction-set path's kernels (`Sources/Kernels/shared/VectorMath.swift`, which documents the method), so a
/// portable build still uses the CPU's widest vectors; every path gives the same results bit for bit.
public enum VectorMath {
    /// In-place exp of `count` Floats: about 1 ulp; +inf above the representable range, 0 below, NaN stays NaN.
    @inlinable
    public static func exp(_ p: UnsafeMutablePointer<Float>, count: Int) {
        Float.kernels.expInPlace(p, count)
    }

    /// In-place exp of `count` Doubles.
    @inlinable
    public static func exp(_ p: UnsafeMutablePointer<Double>, count: Int) {
        Double.kernels.expInPlace(p, count)
    }

    /// In-place hardswish of `count` Floats: x · min(max(x + 3, 0), 6) / 6, evaluated in that order (as torch's
    /// `hardswish`); NaN stays NaN.
    @inlinable
    public static func hardswish(_ p: UnsafeMutablePointer<Float>, count: Int) {
        Float.kernels.hardswishInPlace(p, count)
    }

    /// In-place hardswish of `count` Doubles.
    @inlinable
    public static func hardswish(_ p: UnsafeMutablePointer<Double>, count: Int) {
        Double.kernels.hardswishInPlace(p, count)
    }

    /// In-place ReLU of `count` Floats: negative values become 0; NaN and -0 stay (as torch.relu).
    @inlinable
    public static func relu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        Float.kernels.reluInPlace(p, count)
    }

    /// In-place ReLU of `count` Doubles.
    @inlinable
    public static func relu(_ p: UnsafeMutablePointer<Double>, count: Int) {
        Double.kernels.reluInPlace(p, count)
    }
}

extension KernelFloat {
    /// In-place exp of `count` elements (see `VectorMath`).
    @inlinable @inline(__always)
    public static func expInPlace(_ p: UnsafeMutablePointer<Self>, count: Int) {
        if Self.self == Float.self {
            VectorMath.exp(UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self), count: count)
        } else if Self.self == Double.self {
            VectorMath.exp(UnsafeMutableRawPointer(p).assumingMemoryBound(to: Double.self), count: count)
        } else {
            for i in 0..<count { p[i] = Self.exp(p[i]) }
        }
    }
}
