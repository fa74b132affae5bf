import SwiftRCNNOps
import XCTest

/// Balanced sampling counts, classes and seeding; the generator's range and spread.
final class BalancedSamplerTests: XCTestCase {
    func sample(_ idx: [Int64], batch: Int, fraction: Double, seed: UInt64) -> ([UInt8], [UInt8]) {
        var pos = [UInt8](repeating: 7, count: idx.count), neg = [UInt8](repeating: 7, count: idx.count)
        BalancedSampler.sample(
            matchedIdxs: idx, count: idx.count, batchSizePerImage: batch, positiveFraction: fraction,
            seed: seed, positive: &pos, negative: &neg)
        return (pos, neg)
    }

    func testCountsAndClasses() {
        // 4 positives, 6 negatives, 2 ignored. batch 6 x 0.5 -> 3 positives, then 3 negatives.
        let idx: [Int64] = [1, 0, 0, -1, 2, 0, 0, 3, 0, -2, 0, 5]
        let (pos, neg) = sample(idx, batch: 6, fraction: 0.5, seed: 1)
        XCTAssertEqual(pos.reduce(0) { $0 + Int($1) }, 3)
        XCTAssertEqual(neg.reduce(0) { $0 + Int($1) }, 3)
        for i in idx.indices {
            if pos[i] == 1 { XCTAssertGreaterThanOrEqual(idx[i], 1) }
            if neg[i] == 1 { XCTAssertEqual(idx[i], 0) }
            XCTAssertTrue(pos[i] <= 1 && neg[i] <= 1)
        }
        // Too few positives: all 4 are taken and the negatives fill up to the batch, capped by the 6 available.
        let (allPos, allNeg) = sample(idx, batch: 20, fraction: 0.9, seed: 1)
        XCTAssertEqual(allPos, idx.map { $0 >= 1 ? 1 : 0 })
        XCTAssertEqual(allNeg, idx.map { $0 == 0 ? 1 : 0 })
        // int(7 * 0.3) = 2 positives, 5 negatives.
        let (p, n) = sample(idx, batch: 7, fraction: 0.3, seed: 9)
        XCTAssertEqual(p.reduce(0) { $0 + Int($1) }, 2)
        XCTAssertEqual(n.reduce(0) { $0 + Int($1) }, 5)
    }

    func testSeeding() {
        let idx = (0..<200).map { Int64($0 % 3) }
        XCTAssertTrue(
            sample(idx, batch: 40, fraction: 0.25, seed: 5) == sample(idx, batch: 40, fraction: 0.25, seed: 5))
        XCTAssertFalse(
            sample(idx, batch: 40, fraction: 0.25, seed: 5) == sample(idx, batch: 40, fraction: 0.25, seed: 6))
    }

    func testBoundedDrawsCoverTheRange() {
        var rng = Xoshiro256StarStar(seed: 123)
        var counts = [Int](repeating: 0, count: 3)
        for _ in 0..<30000 { counts[Int(rng.next(below: 3))] += 1 }
        // Each of the 3 values expected 10000 times; 5 standard deviations is ~408.
        for c in counts { XCTAssertLessThan(abs(c - 10000), 410) }
        for _ in 0..<100 { XCTAssertEqual(rng.next(below: 1), 0) }
        var a = Xoshiro256StarStar(seed: 0), b = Xoshiro256StarStar(seed: 1)
        XCTAssertNotEqual(a.next(), b.next())
    }
}
