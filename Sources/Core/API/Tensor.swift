@_exported import SwiftRCNNOps
import CSwiftRCNN

/// Element types a `Tensor` can hold, with their C ABI dtype code.
public protocol TensorElement: Sendable, Equatable {
    static var dtypeCode: Int32 { get }
    static var zero: Self { get }
}

extension Float: TensorElement {
    public static var dtypeCode: Int32 { Int32(SRCNN_FLOAT32.rawValue) }
}
extension Double: TensorElement {
    public static var dtypeCode: Int32 { Int32(SRCNN_FLOAT64.rawValue) }
}
extension Int64: TensorElement {
    public static var dtypeCode: Int32 { Int32(SRCNN_INT64.rawValue) }
}
extension UInt8: TensorElement {
    public static var dtypeCode: Int32 { Int32(SRCNN_UINT8.rawValue) }
}

/// A dense row-major array: the argument and result type of the Swift API.
///
/// The Swift API functions take and return tensors and go through exactly the validation of the C ABI, so a
/// Swift caller gets the same checks (and `SwiftRCNNError` messages naming the argument) as a Python caller.
public struct Tensor<Scalar: TensorElement>: Equatable, Sendable {
    public private(set) var shape: [Int]
    public var scalars: [Scalar]

    /// A tensor over `scalars` with `shape`; the element count must match (a programming error otherwise).
    public init(_ scalars: [Scalar], shape: [Int]) {
        precondition(
            shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == scalars.count,
            "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A zero-filled tensor of `shape`.
    /// A vector (1-D tensor) of `scalars`.
    public init(_ scalars: [Scalar]) {
        self.init(scalars, shape: [scalars.count])
    }

    public init(zeros shape: [Int]) {
        self.init([Scalar](repeating: .zero, count: shape.reduce(1, *)), shape: shape)
    }

    public var count: Int { scalars.count }

    /// Calls `body` with an srcnn_array describing this tensor (read-only use).
    func withArray<R>(_ body: (UnsafePointer<srcnn_array>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBytes { raw in
            // The ABI only reads inputs; the mutable pointer is what srcnn_array's field type requires.
            var a = describe(raw.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) })
            return try body(&a)
        }
    }

    /// Calls `body` with an srcnn_array describing this tensor's storage, which `body` may write.
    mutating func withMutableArray<R>(_ body: (UnsafeMutablePointer<srcnn_array>) throws -> R) rethrows -> R {
        let shape = self.shape
        return try scalars.withUnsafeMutableBytes { raw in
            var a = Tensor.describe(raw.baseAddress, shape)
            return try body(&a)
        }
    }

    private func describe(_ data: UnsafeMutableRawPointer?) -> srcnn_array { Tensor.describe(data, shape) }

    private static func describe(_ data: UnsafeMutableRawPointer?, _ shape: [Int]) -> srcnn_array {
        arrayDescription(data: data, shape: shape, dtype: Scalar.dtypeCode)
    }

    /// Keeps the first `n` rows (used for results whose length the op reports).
    mutating func keepRows(_ n: Int) {
        let rowSize = shape.dropFirst().reduce(1, *)
        scalars.removeLast(scalars.count - n * rowSize)
        shape[0] = n
    }
}

/// Runs a C ABI call with an error buffer and turns a failure status into the `SwiftRCNNError` it stands for.
func check(_ call: (UnsafeMutablePointer<CChar>) -> Int32) throws {
    var err = [CChar](repeating: 0, count: Int(SRCNN_ERR_CAPACITY))
    let status = err.withUnsafeMutableBufferPointer { call($0.baseAddress!) }
    if status == Int32(SRCNN_OK.rawValue) { return }
    let message = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    switch status {
    case Int32(SRCNN_TYPE_ERROR.rawValue): throw SwiftRCNNError.invalidType(message)
    case Int32(SRCNN_MEMORY_ERROR.rawValue): throw SwiftRCNNError.tooLarge(message)
    default: throw SwiftRCNNError.invalidValue(message)
    }
}

/// The srcnn_array describing an array of `shape` (its first SRCNN_MAX_DIMS extents) and dtype code `dtype` at
/// `data`.
func arrayDescription(data: UnsafeMutableRawPointer?, shape: [Int], dtype: Int32) -> srcnn_array {
    var a = srcnn_array()
    a.data = data
    a.ndim = Int32(shape.count)
    a.dtype = dtype
    withUnsafeMutableBytes(of: &a.shape) { raw in
        let s = raw.bindMemory(to: Int64.self)
        for (i, d) in shape.enumerated() where i < Int(SRCNN_MAX_DIMS) { s[i] = Int64(d) }
    }
    return a
}
