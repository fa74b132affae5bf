import SwiftRCNNOps
import XCTest

/// Matcher on a small matrix worked out by hand.
final class MatchingTests: XCTestCase {
    // 3 ground truths x 5 predictions. Column maxima: 0.9 (rows 0 and 1 tie: row 0), 0.4 (row 1), 0.6 (row 1),
    // 0.2 (rows 0 and 2 tie: row 0), 0.3 (rows 1 and 2 tie: row 1).
    let quality: [Double] = [
        0.9, 0.1, 0.5, 0.2, 0.2,
        0.9, 0.4, 0.6, 0.1, 0.3,
        0.1, 0.2, 0.1, 0.2, 0.3,
    ]

    func match<T: KernelFloat>(_ q: [T], m: Int, n: Int, high: T, low: T, allow: Bool) -> [Int64] {
        var out = [Int64](repeating: 99, count: n)
        Matching.match(
            quality: q, groundTruths: m, predictions: n, highThreshold: high, lowThreshold: low,
            allowLowQualityMatches: allow, matches: &out)
        return out
    }

    func testThresholdsAndFirstMaximum() {
        // 0.9 >= high; 0.4, 0.6 and 0.3 in [low, high); 0.2 < low.
        XCTAssertEqual(match(quality, m: 3, n: 5, high: 0.7, low: 0.3, allow: false), [0, -2, -2, -1, -2])
        XCTAssertEqual(match(quality, m: 3, n: 5, high: 0.1, low: 0.1, allow: false), [0, 1, 1, 0, 1])
    }

    func testLowQualityMatchesRestoreAllTies() {
        // Best per gt: 0.9 (row 0: column 0), 0.9 (row 1: column 0), 0.3 (row 2: column 4). Column 4 gets back its
        // own best ground truth, row 1, not row 2.
        XCTAssertEqual(match(quality, m: 3, n: 5, high: 0.7, low: 0.3, allow: true), [0, -2, -2, -1, 1])
        // A ground truth whose best quality is shared by two predictions restores both.
        let q: [Double] = [0.2, 0.1, 0.2, 0.05]
        XCTAssertEqual(match(q, m: 1, n: 4, high: 0.7, low: 0.3, allow: true), [0, -1, 0, -1])
    }

    func testThresholdsInElementType() {
        // Float(0.7) is below 0.7 as a Double, but equals the threshold once that is converted to Float.
        let q: [Float] = [0.7]
        XCTAssertEqual(match(q, m: 1, n: 1, high: Float(0.7), low: Float(0.3), allow: false), [0])
    }

    func testNaNAsTorchMax() {
        // torch's max propagates NaN and returns the first NaN's index. Column 0: rows 1 and 2 are NaN, row 1 wins
        // and matches (NaN is neither below nor between the thresholds). Row 1's best is NaN, so it restores
        // nothing; row 0's best, 0.4 at column 2, restores column 2 to its best ground truth, row 2.
        let nan = Double.nan
        let q: [Double] = [
            0.2, 0.1, 0.4,
            nan, 0.2, 0.3,
            nan, 0.9, 0.5,
        ]
        XCTAssertEqual(match(q, m: 3, n: 3, high: 0.7, low: 0.3, allow: false), [1, 2, -2])
        XCTAssertEqual(match(q, m: 3, n: 3, high: 0.7, low: 0.3, allow: true), [1, 2, 2])
        // A NaN in the first row is the maximum too.
        XCTAssertEqual(match([nan, 0.9] as [Double], m: 2, n: 1, high: 0.7, low: 0.3, allow: true), [0])
    }
}
