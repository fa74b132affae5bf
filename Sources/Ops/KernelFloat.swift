#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The scalar type every kernel is generic over: `Float` or `Double`.
///
/// It adds the few elementary functions the kernels need to `BinaryFloatingPoint`, bound straight to the C math
/// library so hot loops call `expf`/`exp` without Foundation. Kernels are `@inlinable` so that callers in other
/// modules get code specialised for the concrete type.
public protocol KernelFloat: BinaryFloatingPoint, SIMDScalar, Sendable, Codable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func log2(_ x: Self) -> Self
    static func atan(_ x: Self) -> Self
}

extension Float: KernelFloat {
    @inlinable @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inlinable @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
    @inlinable @inline(__always) public static func log2(_ x: Float) -> Float { log2f(x) }
    @inlinable @inline(__always) public static func atan(_ x: Float) -> Float { atanf(x) }
}

extension Double: KernelFloat {
    @inlinable @inline(__always) public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    @inlinable @inline(__always) public static func log(_ x: Double) -> Double { Glibc.log(x) }
    @inlinable @inline(__always) public static func log2(_ x: Double) -> Double { Glibc.log2(x) }
    @inlinable @inline(__always) public static func atan(_ x: Double) -> Double { Glibc.atan(x) }
}
