import SwiftRCNNOps
import XCTest

/// Anchor kernels on small cases worked out by hand.
final class AnchorsTests: XCTestCase {
    func testCellAnchorsRoundHalfToEven() {
        // Ratio 1: w = h = size. Size 5 gives ±2.5 -> ±2 (ties to even), size 3 gives ±1.5 -> ±2, size 32 ±16.
        let sizes: [Float] = [5, 3, 32]
        let ratios: [Float] = [1]
        var out = [Float](repeating: 0, count: 12)
        Anchors.cellAnchors(sizes: sizes, count: 3, ratios: ratios, count: 1, into: &out)
        XCTAssertEqual(out, [-2, -2, 2, 2, -2, -2, 2, 2, -16, -16, 16, 16])
    }

    func testCellAnchorsRatioMajorOrder() {
        // Ratio 0.5 (height / width), size 128: h = sqrt(0.5) * 128 = 90.51, w = 181.02 -> halves 45.25, 90.51.
        // Ratio 4, size 10: h = 20, w = 5 -> halves 10 and 2.5 (-> 2).
        let sizes: [Float] = [128, 10]
        let ratios: [Float] = [0.5, 4]
        var out = [Float](repeating: 0, count: 16)
        Anchors.cellAnchors(sizes: sizes, count: 2, ratios: ratios, count: 2, into: &out)
        XCTAssertEqual(Array(out[0..<4]), [-91, -45, 91, 45])  // (0.5, 128)
        XCTAssertEqual(Array(out[4..<8]), [-7, -4, 7, 4])  // (0.5, 10): w = 14.14, h = 7.07
        XCTAssertEqual(Array(out[8..<12]), [-32, -128, 32, 128])  // (4, 128): w = 64, h = 256
        XCTAssertEqual(Array(out[12..<16]), [-2, -10, 2, 10])  // (4, 10)
    }

    func testGridIsLocationMajor() {
        // Two cell anchors on a 2 x 3 grid with strides (y 4, x 5).
        let cell: [Float] = [-1, -1, 1, 1, -2, -3, 2, 3]
        var out = [Double](repeating: .nan, count: 2 * 3 * 2 * 4)
        Anchors.grid(cell: cell, count: 2, height: 2, width: 3, strideY: 4, strideX: 5, into: &out)
        // Location (y 1, x 2) is location 5: shift (x 10, y 4); its anchors are rows 10 and 11.
        XCTAssertEqual(Array(out[40..<44]), [9, 3, 11, 5])
        XCTAssertEqual(Array(out[44..<48]), [8, 1, 12, 7])
        // Location (y 0, x 1): shift (5, 0).
        XCTAssertEqual(Array(out[8..<12]), [4, -1, 6, 1])
        XCTAssertFalse(out.contains { $0.isNaN })
    }

    func testGridFloatShiftRounding() {
        // 2^24 + 1 is not a float32: the shift rounds to 2^24 before the cell anchor is added.
        let cell: [Float] = [0, 0, 1, 1]
        var out = [Float](repeating: 0, count: 8)
        Anchors.grid(cell: cell, count: 1, height: 1, width: 2, strideY: 1, strideX: (1 << 24) + 1, into: &out)
        XCTAssertEqual(out[4], 16_777_216)
        XCTAssertEqual(out[6], 16_777_216 + 1)
    }
}
