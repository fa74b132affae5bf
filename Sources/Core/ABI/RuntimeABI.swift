import CSwiftRCNN
import SwiftRCNNOps

/// The library version reported by `srcnn_version`: `SRCNN_VERSION` of swiftrcnn.h, where it is written once.
public let swiftRCNNVersion: String = SRCNN_VERSION

private let versionCString: UnsafeMutablePointer<CChar> = {
    let bytes = Array(swiftRCNNVersion.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    p.initialize(from: bytes, count: bytes.count)
    return p
}()

@_cdecl("srcnn_version")
public func srcnn_version() -> UnsafePointer<CChar> {
    UnsafePointer(versionCString)
}

@_cdecl("srcnn_num_threads")
public func srcnn_num_threads() -> Int32 {
    Int32(Parallel.numThreads)
}

@_cdecl("srcnn_set_num_threads")
public func srcnn_set_num_threads(_ n: Int32, _ err: UnsafeMutablePointer<CChar>?) -> Int32 {
    abiCall(err) {
        try require(n >= 1 && n <= 1024, "num_threads: expected 1...1024, got \(n)")
        Parallel.numThreads = Int(n)
    }
}

@_cdecl("srcnn_kept_memory")
public func srcnn_kept_memory() -> Int64 {
    Int64(BufferCache.keptBytes)
}

@_cdecl("srcnn_release_memory")
public func srcnn_release_memory() -> Int64 {
    let kept = BufferCache.keptBytes
    BufferCache.release()
    return Int64(kept)
}

private let isaNames: [ISA: UnsafeMutablePointer<CChar>] = Dictionary(
    uniqueKeysWithValues: ISA.allCases.map {
        isa in
        let bytes = Array(isa.rawValue.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return (isa, p)
    })

@_cdecl("srcnn_isa")
public func srcnn_isa() -> UnsafePointer<CChar> {
    UnsafePointer(isaNames[ISA.current]!)
}

@_cdecl("srcnn_set_isa")
public func srcnn_set_isa(_ name: UnsafePointer<CChar>?, _ err: UnsafeMutablePointer<CChar>?) -> Int32 {
    abiCall(err) {
        guard let name else { throw SwiftRCNNError.invalidValue("isa: missing name (NULL)") }
        do throws(ISAError) {
            try ISA.select(String(cString: name))
        } catch {
            throw SwiftRCNNError.invalidValue("isa: \(error.message)")
        }
    }
}

@_cdecl("srcnn_isa_supported")
public func srcnn_isa_supported(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name, let isa = ISA(rawValue: String(cString: name)) else { return 0 }
    return isa.isSupported ? 1 : 0
}

@_cdecl("srcnn_isa_environment_error")
public func srcnn_isa_environment_error(_ out: UnsafeMutablePointer<CChar>?) -> Int32 {
    guard let message = ISA.environmentError else { return 0 }
    writeMessage(message, to: out)
    return 1
}

@_cdecl("srcnn_config_report")
public func srcnn_config_report(_ out: UnsafeMutablePointer<CChar>?, _ capacity: Int64) -> Int64 {
    let bytes = Array(Configuration.report.utf8)
    if let out, capacity > 0 {
        let n = min(bytes.count, Int(capacity) - 1)
        for i in 0..<n { out[i] = CChar(bitPattern: bytes[i]) }
        out[n] = 0
    }
    return Int64(bytes.count)
}
