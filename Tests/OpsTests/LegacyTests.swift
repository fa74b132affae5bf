import SwiftRCNNOps
import XCTest

/// py-faster-rcnn kernels on small cases worked out by hand ("+1" widths).
final class LegacyTests: XCTestCase {
    func testGenerateAnchorsClassicRows() {
        // Base 16 (centre 7.5, area 256). Ratio 0.5: width round(sqrt(512)) = 23, height round(11.5) = 12;
        // scale 8: 184 x 96 -> [7.5 - 91.5, 7.5 - 47.5, 7.5 + 91.5, 7.5 + 47.5]. Ratio 1 scale 16: 256 x 256.
        let ratios: [Double] = [0.5, 1]
        let scales: [Double] = [8, 16]
        var out = [Double](repeating: 0, count: 16)
        Legacy.generateAnchors(baseSize: 16, ratios: ratios, count: 2, scales: scales, count: 2, into: &out)
        XCTAssertEqual(Array(out[0..<4]), [-84, -40, 99, 55])
        XCTAssertEqual(Array(out[4..<8]), [-176, -88, 191, 103])
        XCTAssertEqual(Array(out[12..<16]), [-120, -120, 135, 135])
    }

    func testTransformAndInverse() {
        // ex [0, 0, 9, 9]: 10 x 10, centre (5, 5). gt [0, 0, 19, 9]: 20 x 10, centre (10, 5).
        let ex: [Double] = [0, 0, 9, 9]
        let gt: [Double] = [0, 0, 19, 9]
        var t = [Double](repeating: 0, count: 4)
        Legacy.bboxTransform(ex: ex, gt: gt, count: 1, into: &t)
        XCTAssertEqual(t, [0.5, 0, log(2.0), 0])
        var back = [Double](repeating: 0, count: 4)
        Legacy.bboxTransformInv(boxes: ex, deltas: t, count: 1, groups: 1, into: &back)
        // Centre (10, 5), size 20 x 10: x1 = 10 - 10, x2 = 10 + 10 - 1.
        XCTAssertEqual(back, gt)
    }

    func testClipBoxes() {
        let boxes: [Float] = [-5, 3, 200, 50, .nan, -1, 7, 39.5]
        var out = [Float](repeating: 0, count: 8)
        Legacy.clipBoxes(boxes, values: 8, maxY: 39, maxX: 99, into: &out)
        XCTAssertEqual(Array(out[0..<4]), [0, 3, 99, 39])
        XCTAssertTrue(out[4].isNaN)
        XCTAssertEqual(Array(out[5..<8]), [0, 7, 39])
    }

    func testNMSPlusOneOverlapAndTies() {
        // A = [0, 0, 9, 9] and B = [5, 0, 14, 9] overlap 50 / 150 = 1/3; C = [9, 0, 18, 9] overlaps A by 10 / 190
        // and B by 60 / 140. D duplicates A with A's score: visited after A (lower index first), suppressed.
        let dets: [Double] = [0, 0, 9, 9, 0.9, 5, 0, 14, 9, 0.8, 9, 0, 18, 9, 0.7, 0, 0, 9, 9, 0.9]
        var keep = [Int64](repeating: -1, count: 4)
        var n = Legacy.nms(dets: dets, count: 4, threshold: 1.0 / 3, keep: &keep)
        XCTAssertEqual(Array(keep.prefix(n)), [0, 1])
        n = Legacy.nms(dets: dets, count: 4, threshold: 0.3, keep: &keep)
        XCTAssertEqual(Array(keep.prefix(n)), [0, 2])
        n = Legacy.nms(dets: dets, count: 4, threshold: 1, keep: &keep)
        XCTAssertEqual(Array(keep.prefix(n)), [0, 3, 1, 2])
    }
}
