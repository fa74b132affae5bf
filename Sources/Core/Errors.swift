import CSwiftRCNN

/// Errors raised at the library boundary (the Swift API and the C ABI). The message names the argument.
public enum SwiftRCNNError: Error, Equatable, CustomStringConvertible {
    /// A value, shape or size is invalid (Python `ValueError`).
    case invalidValue(String)
    /// An array has the wrong element type (Python `TypeError`).
    case invalidType(String)
    /// The result would need an absurd allocation (Python `MemoryError`).
    case tooLarge(String)

    public var description: String {
        switch self {
        case .invalidValue(let m), .invalidType(let m), .tooLarge(let m): return m
        }
    }

    var status: Int32 {
        switch self {
        case .invalidValue: return Int32(SRCNN_VALUE_ERROR.rawValue)
        case .invalidType: return Int32(SRCNN_TYPE_ERROR.rawValue)
        case .tooLarge: return Int32(SRCNN_MEMORY_ERROR.rawValue)
        }
    }
}

/// Throws `invalidValue(message())` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw SwiftRCNNError.invalidValue(message()) }
}

/// The largest number of elements any single array the library allocates or accepts may have (`SRCNN_MAX_ELEMENTS`,
/// 2^40, 4 TiB of floats): beyond it a request is a mistake, and refusing it early beats an allocation failure that
/// aborts.
let maxElements = Int(SRCNN_MAX_ELEMENTS)
