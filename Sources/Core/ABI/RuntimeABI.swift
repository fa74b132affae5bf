import CSwiftRCNN
import SwiftRCNNOps

/// The library version reported by `srcnn_version`.
public let swiftRCNNVersion = "0.1.0"

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
