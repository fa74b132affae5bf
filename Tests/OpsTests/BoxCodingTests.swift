import SwiftRCNNOps
import XCTest

/// Box coder kernels on small cases worked out by hand.
final class BoxCodingTests: XCTestCase {
    // Proposal [0, 0, 10, 10]: centre (5, 5), size 10 x 10. Reference [2, 4, 22, 14]: centre (12, 9), size 20 x 10.
    let proposal: [Double] = [0, 0, 10, 10]
    let reference: [Double] = [2, 4, 22, 14]

    func testEncode() {
        var t = [Double](repeating: 0, count: 4)
        BoxCoding.encode(reference: reference, proposals: proposal, count: 1, weights: (1, 1, 1, 1), into: &t)
        XCTAssertEqual(t[0], 0.7, accuracy: 1e-15)
        XCTAssertEqual(t[1], 0.4, accuracy: 1e-15)
        XCTAssertEqual(t[2], log(2.0), accuracy: 1e-15)
        XCTAssertEqual(t[3], 0)
        BoxCoding.encode(reference: reference, proposals: proposal, count: 1, weights: (10, 10, 5, 5), into: &t)
        XCTAssertEqual(t[0], 7, accuracy: 1e-14)
        XCTAssertEqual(t[1], 4, accuracy: 1e-14)
        XCTAssertEqual(t[2], 5 * log(2.0), accuracy: 1e-14)
    }

    func testDecodeInvertsEncodeAndClamps() {
        // Two groups per row: the encoding of the reference, then a code whose dw exceeds the clamp.
        let codes: [Double] = [7, 4, 5 * log(2.0), 0, 0, 0, 50, -50]
        var pred = [Double](repeating: 0, count: 8)
        BoxCoding.decode(
            codes: codes, boxes: proposal, count: 1, groups: 2, weights: (10, 10, 5, 5),
            xformClip: log(4.0), into: &pred)
        for (p, r) in zip(pred[0..<4], reference) { XCTAssertEqual(p, r, accuracy: 1e-12) }
        // dw = 10 -> clamped to log 4: width 40 around x = 5. dh = -10: height 10 e^-10 around y = 5.
        XCTAssertEqual(pred[4], -15, accuracy: 1e-12)
        XCTAssertEqual(pred[6], 25, accuracy: 1e-12)
        XCTAssertEqual(pred[7] - pred[5], 10 * exp(-10.0), accuracy: 1e-15)
    }

    func testDecodePropagatesNaN() {
        let codes: [Float] = [.nan, 0, 0, .nan]
        let boxes: [Float] = [0, 0, 10, 10]
        var pred = [Float](repeating: 0, count: 4)
        BoxCoding.decode(
            codes: codes, boxes: boxes, count: 1, groups: 1, weights: (1, 1, 1, 1), xformClip: 4,
            into: &pred)
        XCTAssertTrue(pred[0].isNaN && pred[2].isNaN && pred[1].isNaN && pred[3].isNaN)
    }
}
