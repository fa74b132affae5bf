/// Balanced sampling of positive and negative training examples, as
/// `torchvision.models.detection._utils.BalancedPositiveNegativeSampler` for one image.
///
/// `matchedIdxs` (n,) marks positives (`>= 1`), negatives (`0`) and ignored entries (`< 0`). Of a batch of
/// `batchSizePerImage`, `min(#positives, trunc(batchSizePerImage * positiveFraction))` positives and
/// `min(#negatives, batchSizePerImage - numPositives)` negatives are drawn uniformly at random without replacement
/// (partial Fisher–Yates over each class, positives first, from one `Xoshiro256StarStar` stream seeded by `seed`).
/// torch's generator cannot be reproduced, so the draw differs from torchvision's; its distribution does not.
///
/// Writes 0/1 masks `positive` and `negative` (n,). Single-threaded: one image is O(n).
/// Callers guarantee `batchSizePerImage >= 0` and `0 <= positiveFraction <= 1` (validated at the boundary).
public enum BalancedSampler {
    @inlinable
    public static func sample(
        matchedIdxs: UnsafePointer<Int64>, count n: Int, batchSizePerImage: Int, positiveFraction: Double,
        seed: UInt64, positive: UnsafeMutablePointer<UInt8>, negative: UnsafeMutablePointer<UInt8>
    ) {
        positive.update(repeating: 0, count: n)
        negative.update(repeating: 0, count: n)
        var positives = [Int](), negatives = [Int]()
        for i in 0..<n {
            if matchedIdxs[i] >= 1 { positives.append(i) } else if matchedIdxs[i] == 0 { negatives.append(i) }
        }
        // Python's int(batch * fraction), taken after the min so the conversion cannot overflow.
        let quota = Double(batchSizePerImage) * positiveFraction
        let numPositive = quota >= Double(positives.count) ? positives.count : Int(quota)
        let numNegative = min(negatives.count, batchSizePerImage - numPositive)
        var rng = Xoshiro256StarStar(seed: seed)
        pick(numPositive, of: &positives, rng: &rng, into: positive)
        pick(numNegative, of: &negatives, rng: &rng, into: negative)
    }

    /// Sets `mask[i] = 1` for `k` entries `i` of `items` chosen uniformly without replacement (partial
    /// Fisher–Yates: the first `k` slots of a uniformly shuffled `items`).
    @inlinable
    static func pick(
        _ k: Int, of items: inout [Int], rng: inout Xoshiro256StarStar, into mask: UnsafeMutablePointer<UInt8>
    ) {
        let count = items.count
        for slot in 0..<k {
            let other = slot + Int(rng.next(below: UInt64(count - slot)))
            items.swapAt(slot, other)
            mask[items[slot]] = 1
        }
    }
}

/// xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021): a fast 64-bit
/// generator with 256 bits of state, seeded from one 64-bit value through SplitMix64 as its authors recommend.
public struct Xoshiro256StarStar: Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    @inlinable
    public init(seed: UInt64) {
        // SplitMix64 (Steele, Lea & Flood 2014) constants: the golden-ratio increment and its two mixing multipliers.
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// A uniform integer in `0..<bound` (`bound > 0`), without modulo bias (Lemire, "Fast random integer
    /// generation in an interval", 2019: multiply-shift with rejection of the short first interval).
    @inlinable
    public mutating func next(below bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    @inlinable @inline(__always)
    func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
