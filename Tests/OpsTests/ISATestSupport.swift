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
