#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The scalar type every kernel is generic over: `Float` or `Double`.
///
/// It adds the few elementary functions the kernels need to `BinaryFloatingPoint`, bound straight to the C math
/// library so hot loops call `expf`/`exp` without Foundation, and the SIMD steps whose generic forms are slow.
/// Kernels are `@inlinable` so that callers in other modules get code specialised for the concrete type.
public protocol KernelFloat: BinaryFloatingPoint, SIMDScalar, Sendable, Codable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func log2(_ x: Self) -> Self
    static func atan(_ x: Self) -> Self

    /// `Int(x)`, rounded toward zero; `x` must be finite and within `Int`'s range. In generic code `Int(x)` takes a
    /// slow path through the exponent and significand; the concrete conversion is one instruction.
    static func truncatedInt(_ x: Self) -> Int

    /// One step of a NaN-propagating running maximum (torch's max pooling): where `value > maximum` or `value` is
    /// NaN, sets `maximum` to `value`; a NaN maximum stays.
    static func keepGreaterOrNaN(_ value: SIMD16<Self>, maximum: inout SIMD16<Self>)

    /// One step of torch's max-pooling argmax over 16 lanes: where `value > maximum` or `value` is NaN, sets
    /// `maximum` to `value` and `argmax` to `index` (so the first maximum wins, and the last NaN).
    static func keepGreaterOrNaN(
        _ value: SIMD16<Self>, at index: SIMDMaskScalar, maximum: inout SIMD16<Self>,
        argmax: inout SIMD16<SIMDMaskScalar>)

    /// max(x, 0) per lane with NaN kept, as torch.relu.
    static func relu(_ x: SIMD16<Self>) -> SIMD16<Self>

    /// The GEMM, Winograd, im2col and RoI channel-tile kernels of the instruction-set path `isa` for this type (see
    /// `ISA`).
    static func kernels(_ isa: ISA) -> KernelTable<Self>
}

extension KernelFloat {
    /// `x` rounded toward zero and clamped to `lower...upper`, NaN giving `lower`: an `Int` conversion of a value
    /// computed from data that cannot trap, whatever the value.
    @inlinable @inline(__always)
    public static func clampedInt(_ x: Self, _ lower: Int, _ upper: Int) -> Int {
        guard x > Self(lower) else { return lower }
        guard x < Self(upper) else { return upper }
        return Swift.min(Swift.max(truncatedInt(x), lower), upper)
    }
}

extension Float: KernelFloat {
    @inlinable @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inlinable @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
    @inlinable @inline(__always) public static func log2(_ x: Float) -> Float { log2f(x) }
    @inlinable @inline(__always) public static func atan(_ x: Float) -> Float { atanf(x) }
    @inlinable @inline(__always) public static func truncatedInt(_ x: Float) -> Int { Int(x) }

    @inlinable @inline(__always)
    public static func keepGreaterOrNaN(_ value: SIMD16<Float>, maximum: inout SIMD16<Float>) {
        // Two single-comparison selects: a mask combined with .| compiles to per-lane code.
        maximum.replace(with: value, where: value .> maximum)
        maximum.replace(with: value, where: value .!= value)
    }

    @inlinable @inline(__always)
    public static func keepGreaterOrNaN(
        _ value: SIMD16<Float>, at index: Int32, maximum: inout SIMD16<Float>, argmax: inout SIMD16<Int32>
    ) {
        // Both masks before either select (a NaN maximum compares false), each applied by its own selects.
        let greater = value .> maximum, nan = value .!= value
        maximum.replace(with: value, where: greater)
        argmax.replace(with: index, where: greater)
        maximum.replace(with: value, where: nan)
        argmax.replace(with: index, where: nan)
    }

    @inlinable @inline(__always)
    public static func relu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        x.replacing(with: 0, where: x .< 0)
    }
}

// The C library's double functions under names of their own: inside `extension Double` an unqualified `exp` is the
// member being defined, and qualifying it names the C library's module, which is Glibc on Linux and Darwin on macOS.
// At top level the plain names resolve to whichever of them was imported.
@inlinable @inline(__always) func cExp(_ x: Double) -> Double { exp(x) }
@inlinable @inline(__always) func cLog(_ x: Double) -> Double { log(x) }
@inlinable @inline(__always) func cLog2(_ x: Double) -> Double { log2(x) }
@inlinable @inline(__always) func cAtan(_ x: Double) -> Double { atan(x) }

extension Double: KernelFloat {
    @inlinable @inline(__always) public static func exp(_ x: Double) -> Double { cExp(x) }
    @inlinable @inline(__always) public static func log(_ x: Double) -> Double { cLog(x) }
    @inlinable @inline(__always) public static func log2(_ x: Double) -> Double { cLog2(x) }
    @inlinable @inline(__always) public static func atan(_ x: Double) -> Double { cAtan(x) }
    @inlinable @inline(__always) public static func truncatedInt(_ x: Double) -> Int { Int(x) }

    @inlinable @inline(__always)
    public static func keepGreaterOrNaN(_ value: SIMD16<Double>, maximum: inout SIMD16<Double>) {
        // Two single-comparison selects: a mask combined with .| compiles to per-lane code.
        maximum.replace(with: value, where: value .> maximum)
        maximum.replace(with: value, where: value .!= value)
    }

    @inlinable @inline(__always)
    public static func keepGreaterOrNaN(
        _ value: SIMD16<Double>, at index: Int64, maximum: inout SIMD16<Double>, argmax: inout SIMD16<Int64>
    ) {
        // Both masks before either select (a NaN maximum compares false), each applied by its own selects.
        let greater = value .> maximum, nan = value .!= value
        maximum.replace(with: value, where: greater)
        argmax.replace(with: index, where: greater)
        maximum.replace(with: value, where: nan)
        argmax.replace(with: index, where: nan)
    }

    @inlinable @inline(__always)
    public static func relu(_ x: SIMD16<Double>) -> SIMD16<Double> {
        x.replacing(with: 0, where: x .< 0)
    }
}
