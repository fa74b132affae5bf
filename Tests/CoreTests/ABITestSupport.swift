import CSwiftRCNN
import XCTest

// Helpers for calling the C ABI exactly as a C program would: through the declarations in swiftrcnn.h (module
// CSwiftRCNN), with srcnn_array descriptors over Swift arrays. Calls are qualified `CSwiftRCNN.srcnn_...` so they
// bind to the header's declarations, not to the Swift functions that implement them.

/// An srcnn_array describing `pointer` with `shape`.
func makeArray(_ pointer: UnsafeMutableRawPointer?, _ shape: [Int], _ dtype: srcnn_dtype) -> srcnn_array {
    var a = srcnn_array()
    a.data = pointer
    a.ndim = Int32(shape.count)
    a.dtype = Int32(dtype.rawValue)
    withUnsafeMutableBytes(of: &a.shape) { raw in
        let s = raw.bindMemory(to: Int64.self)
        for (i, d) in shape.enumerated() { s[i] = Int64(d) }
    }
    return a
}

protocol ABIScalar { static var dtype: srcnn_dtype { get } }
extension Float: ABIScalar { static var dtype: srcnn_dtype { SRCNN_FLOAT32 } }
extension Double: ABIScalar { static var dtype: srcnn_dtype { SRCNN_FLOAT64 } }
extension Int64: ABIScalar { static var dtype: srcnn_dtype { SRCNN_INT64 } }
extension UInt8: ABIScalar { static var dtype: srcnn_dtype { SRCNN_UINT8 } }

/// A Swift array plus its shape, passed to the ABI as an srcnn_array.
final class Buf<T: ABIScalar> {
    var values: [T]
    let shape: [Int]
    init(_ values: [T], _ shape: [Int]) {
        precondition(values.count == shape.reduce(1, *))
        self.values = values
        self.shape = shape
    }
    convenience init(zeros shape: [Int], _ fill: T) {
        self.init([T](repeating: fill, count: shape.reduce(1, *)), shape)
    }
    /// Runs `body` with a pointer to an srcnn_array describing this buffer.
    func with<R>(_ body: (UnsafeMutablePointer<srcnn_array>) throws -> R) rethrows -> R {
        try values.withUnsafeMutableBytes { raw in
            var a = makeArray(raw.baseAddress, shape, T.dtype)
            return try body(&a)
        }
    }
}

/// Error-message buffer of SRCNN_ERR_CAPACITY bytes.
final class ErrBuf {
    var bytes = [CChar](repeating: 0, count: Int(SRCNN_ERR_CAPACITY))
    var message: String { String(cString: bytes) }
}

/// Asserts `status` is `expected` and, for failures, that the message mentions `fragment`.
func assertStatus(
    _ status: Int32, _ expected: srcnn_status, _ err: ErrBuf, mentions fragment: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(status, Int32(expected.rawValue), "message: \(err.message)", file: file, line: line)
    if expected != SRCNN_OK && !fragment.isEmpty {
        XCTAssertTrue(err.message.contains(fragment), "\(err.message) lacks \(fragment)", file: file, line: line)
    }
}
