import SwiftRCNNOps

/// Runs `body` once on every instruction-set path this CPU supports (`ISA.current` set to it), then restores the
/// path: a developer on an AVX-512 machine also tests the AVX2 and generic kernels.
func forEachISA(_ body: (ISA) throws -> Void) rethrows {
    let saved = ISA.current
    defer { try! ISA.select(saved) }
    for isa in ISA.supported {
        try! ISA.select(isa)
        try body(isa)
    }
}

/// `body`'s result with `ISA.current` set to `isa` (which this CPU must support), then the path restored: the
/// reference that every path's results are compared with.
func onISA<R>(_ isa: ISA, _ body: () throws -> R) rethrows -> R {
    let saved = ISA.current
    defer { try! ISA.select(saved) }
    try! ISA.select(isa)
    return try body()
}
