/// Lane shuffles between 16- and 32-lane vectors, written out lane by lane so that, once inlined, LLVM emits one
/// two-source permute (AVX-512 `vpermt2ps`) each. The standard library's `evenHalf` / `oddHalf` do the same but are
/// not always inlined in large loops, which leaves a call and a scalar loop per vector.
extension SIMD32 {
    /// Lanes 0, 2, ..., 30.
    @inlinable @inline(__always)
    public var evenLanes: SIMD16<Scalar> {
        SIMD16(
            self[0], self[2], self[4], self[6], self[8], self[10], self[12], self[14],
            self[16], self[18], self[20], self[22], self[24], self[26], self[28], self[30])
    }

    /// Lanes 1, 3, ..., 31.
    @inlinable @inline(__always)
    public var oddLanes: SIMD16<Scalar> {
        SIMD16(
            self[1], self[3], self[5], self[7], self[9], self[11], self[13], self[15],
            self[17], self[19], self[21], self[23], self[25], self[27], self[29], self[31])
    }

    /// (even[0], odd[0], even[1], odd[1], ..., even[15], odd[15]).
    @inlinable @inline(__always)
    public init(interleaving even: SIMD16<Scalar>, _ odd: SIMD16<Scalar>) {
        self.init(
            even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3],
            even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7],
            even[8], odd[8], even[9], odd[9], even[10], odd[10], even[11], odd[11],
            even[12], odd[12], even[13], odd[13], even[14], odd[14], even[15], odd[15])
    }
}
