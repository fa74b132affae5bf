import CSwiftRCNN
import SwiftRCNNOps

/// Element types of `srcnn_array`.
enum DType: Int32 {
    case float32 = 1, float64 = 2, int64 = 3, uint8 = 4

    /// Bytes per element.
    var size: Int {
        switch self {
        case .float32: return 4
        case .float64, .int64: return 8
        case .uint8: return 1
        }
    }

    var name: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .int64: return "int64"
        case .uint8: return "uint8"
        }
    }
}

/// One array argument of a C ABI call, checked for internal consistency (rank, non-negative dims, a size that
/// fits, data present) on construction. Every shape and dtype rule of an op is checked through it before any
/// element is read, so the kernels behind it never see inconsistent sizes.
///
/// The caller's memory may change during a call (the Python extension releases the GIL, so another thread can
/// write into an argument): values that index memory are checked on a `copied()` argument, which the kernel then
/// reads.
struct ArrayArgument {
    let name: String
    let shape: [Int]
    let dtype: DType
    let data: UnsafeMutableRawPointer?
    /// The memory `data` points into when this is a copy.
    private let storage: ArrayStorage?

    init(_ pointer: UnsafePointer<srcnn_array>?, _ name: String) throws {
        guard let a = pointer?.pointee else { throw SwiftRCNNError.invalidValue("\(name): missing array (NULL)") }
        try self.init(a, name)
    }

    init(_ a: srcnn_array, _ name: String) throws {
        self.name = name
        guard a.ndim >= 0 && a.ndim <= SRCNN_MAX_DIMS else {
            throw SwiftRCNNError.invalidValue("\(name): rank \(a.ndim) is outside 0...\(SRCNN_MAX_DIMS)")
        }
        guard let dtype = DType(rawValue: a.dtype) else {
            throw SwiftRCNNError.invalidType("\(name): unknown dtype code \(a.dtype)")
        }
        self.dtype = dtype
        var dims = [Int]()
        withUnsafeBytes(of: a.shape) { raw in
            let s = raw.bindMemory(to: Int64.self)
            for i in 0..<Int(a.ndim) { dims.append(Int(s[i])) }
        }
        var total = 1
        for d in dims {
            guard d >= 0 else { throw SwiftRCNNError.invalidValue("\(name): negative dimension in shape \(dims)") }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else {
                throw SwiftRCNNError.tooLarge("\(name): shape \(dims) has too many elements")
            }
            total = p
        }
        guard total == 0 || a.data != nil else { throw SwiftRCNNError.invalidValue("\(name): data is NULL") }
        self.shape = dims
        self.data = a.data
        self.storage = nil
    }

    private init(copying other: ArrayArgument) {
        name = other.name
        shape = other.shape
        dtype = other.dtype
        let storage = ArrayStorage(copying: other.data, byteCount: other.count * other.dtype.size)
        self.storage = storage
        data = other.data == nil ? nil : storage.bytes
    }

    /// This argument with its elements copied into memory of its own, which lives as long as the copy: what is
    /// checked on it is what a kernel given it reads.
    func copied() -> ArrayArgument { ArrayArgument(copying: self) }

    /// The elements of a 1-D array of `dtype`, copied (the values checked are the values used even if the caller's
    /// memory changes meanwhile).
    func vector<T>(_: T.Type, _ dtype: DType) throws -> [T] {
        guard self.dtype == dtype else {
            throw SwiftRCNNError.invalidType("\(name): expected a \(dtype.name) vector, got dtype \(self.dtype.name)")
        }
        guard rank == 1 else {
            throw SwiftRCNNError.invalidValue(
                "\(name): expected a \(dtype.name) vector, got shape \(ArrayArgument.describe(shape))")
        }
        return Array(UnsafeBufferPointer(start: pointer(T.self), count: count))
    }

    var count: Int { shape.reduce(1, *) }
    var rank: Int { shape.count }
    subscript(dim: Int) -> Int { shape[dim] }

    /// "(3, 4)" — a shape the way NumPy prints it.
    static func describe(_ dims: [Int]) -> String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
    }

    /// Checks the shape against a pattern: `nil` entries match any size. `pattern` documents the expectation in
    /// the message, e.g. "(N, 4)".
    func expect(shape expected: [Int?], _ pattern: String) throws {
        let ok = shape.count == expected.count && zip(shape, expected).allSatisfy { $1 == nil || $0 == $1! }
        if !ok {
            throw SwiftRCNNError.invalidValue(
                "\(name): expected shape \(pattern), got \(ArrayArgument.describe(shape))")
        }
    }

    func expect(dtype expected: DType) throws {
        if dtype != expected {
            throw SwiftRCNNError.invalidType("\(name): expected dtype \(expected.name), got \(dtype.name)")
        }
    }

    /// Checks that this is a float array with the same dtype as `other` (the op's float type).
    func expect(sameFloatTypeAs other: ArrayArgument) throws {
        if dtype != other.dtype {
            throw SwiftRCNNError.invalidType(
                "\(name): expected dtype \(other.dtype.name) (the dtype of \(other.name)), got \(dtype.name)")
        }
    }

    /// The float type of an op's leading float argument.
    func floatType() throws -> DType {
        guard dtype == .float32 || dtype == .float64 else {
            throw SwiftRCNNError.invalidType("\(name): expected dtype float32 or float64, got \(dtype.name)")
        }
        return dtype
    }

    /// Typed element pointer. Callers have checked the dtype; a zero-element array yields a dangling but never
    /// dereferenced pointer.
    func pointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        guard let data else { return UnsafeMutablePointer<T>(bitPattern: MemoryLayout<T>.alignment)! }
        return data.assumingMemoryBound(to: T.self)
    }

    /// Fails when any element is NaN (`allowInfinite`) or not finite.
    func requireNoNaN<T: KernelFloat>(_: T.Type, allowInfinite: Bool = true) throws {
        let p = pointer(T.self)
        for i in 0..<count where p[i].isNaN || (!allowInfinite && p[i].isInfinite) {
            throw SwiftRCNNError.invalidValue(
                "\(name): contains \(p[i].isNaN ? "NaN" : "an infinite value") at flat index \(i)")
        }
    }
}

/// The elements of a copied `ArrayArgument`.
final class ArrayStorage {
    let bytes: UnsafeMutableRawPointer

    init(copying source: UnsafeMutableRawPointer?, byteCount: Int) {
        bytes = .allocate(byteCount: Swift.max(byteCount, 1), alignment: 16)
        if let source, byteCount > 0 { bytes.copyMemory(from: source, byteCount: byteCount) }
    }

    deinit { bytes.deallocate() }
}

/// Runs `body` with `Float` or `Double` as `T` according to `dtype`.
@inline(__always)
func dispatchFloat<R>(
    _ dtype: DType, float32: () throws -> R, float64: () throws -> R
) rethrows -> R {
    dtype == .float32 ? try float32() : try float64()
}
