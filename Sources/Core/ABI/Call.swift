import CSwiftRCNN

/// Runs the body of an exported C function: maps thrown `SwiftRCNNError`s to a status and writes the message into
/// `err` (capacity `SRCNN_ERR_CAPACITY`, NUL-terminated, truncated at a UTF-8 boundary if needed).
func abiCall(_ err: UnsafeMutablePointer<CChar>?, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        if let err { err[0] = 0 }
        return Int32(SRCNN_OK.rawValue)
    } catch let e as SwiftRCNNError {
        writeMessage(e.description, to: err)
        return e.status
    } catch {
        writeMessage("internal error: \(error)", to: err)
        return Int32(SRCNN_INTERNAL_ERROR.rawValue)
    }
}

func writeMessage(_ message: String, to err: UnsafeMutablePointer<CChar>?) {
    guard let err else { return }
    let capacity = Int(SRCNN_ERR_CAPACITY)
    var bytes = [UInt8]()
    // Whole scalars only, so a truncated message is still valid UTF-8.
    for scalar in message.unicodeScalars {
        let encoded = Array(String(scalar).utf8)
        if bytes.count + encoded.count > capacity - 1 { break }
        bytes += encoded
    }
    for (i, b) in bytes.enumerated() { err[i] = CChar(bitPattern: b) }
    err[bytes.count] = 0
}

/// Checks an `int64_t *` out-parameter.
func outCount(_ p: UnsafeMutablePointer<Int64>?, _ name: String) throws -> UnsafeMutablePointer<Int64> {
    guard let p else { throw SwiftRCNNError.invalidValue("\(name): missing output pointer (NULL)") }
    return p
}
