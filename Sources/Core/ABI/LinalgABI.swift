import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the linear algebra section of swiftrcnn.h: the float GEMM the convolution and linear layers run on.

/// A transpose flag of the ABI: exactly 0 or 1.
func transposeFlag(_ value: Int32, _ name: String) throws -> Bool {
    try require(value == 0 || value == 1, "\(name): expected 0 or 1, got \(value)")
    return value == 1
}

/// Fails when the element ranges of `out` and `input` share memory.
func requireDisjoint(_ out: ArrayArgument, _ input: ArrayArgument, elementSize: Int) throws {
    guard out.count > 0, input.count > 0, let o = out.data, let i = input.data else { return }
    let oEnd = o + out.count * elementSize, iEnd = i + input.count * elementSize
    try require(oEnd <= i || iEnd <= o, "\(out.name): must not overlap \(input.name)")
}

@_cdecl("srcnn_matmul")
public func srcnn_matmul(
    _ a: UnsafePointer<srcnn_array>?, _ b: UnsafePointer<srcnn_array>?, _ transposeA: Int32, _ transposeB: Int32,
    _ out: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let x = try ArrayArgument(a, "a"), y = try ArrayArgument(b, "b"), o = try ArrayArgument(out, "out")
        let ta = try transposeFlag(transposeA, "transpose_a"), tb = try transposeFlag(transposeB, "transpose_b")
        try x.expect(shape: [nil, nil], "(m, k)")
        try y.expect(shape: [nil, nil], "(k, n)")
        let dtype = try x.floatType()
        try y.expect(sameFloatTypeAs: x)
        let (m, k) = ta ? (x[1], x[0]) : (x[0], x[1])
        let (k2, n) = tb ? (y[1], y[0]) : (y[0], y[1])
        try require(
            k == k2,
            "a and b: inner dimensions differ: op(a) is \(ArrayArgument.describe([m, k])), "
                + "op(b) is \(ArrayArgument.describe([k2, n]))")
        try requireOutput(o, dtype: dtype, shape: [m, n])
        let size = dtype == .float32 ? MemoryLayout<Float>.stride : MemoryLayout<Double>.stride
        try requireDisjoint(o, x, elementSize: size)
        try requireDisjoint(o, y, elementSize: size)
        func run<T: KernelFloat>(_: T.Type) {
            GEMM.multiply(
                m: m, n: n, k: k, a: x.pointer(T.self), lda: x[1], transposeA: ta,
                b: y.pointer(T.self), ldb: y[1], transposeB: tb, c: o.pointer(T.self), ldc: n)
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}
