import SwiftRCNNOps
import XCTest

/// Mask pasting on small cases worked out by hand.
final class PasteMasksTests: XCTestCase {
    func paste(_ masks: [Double], m: Int, boxes: [Double], padding: Int, height: Int, width: Int) -> [Double] {
        let n = boxes.count / 4
        var out = [Double](repeating: .nan, count: n * height * width)
        PasteMasks.paste(
            masks: masks, boxes: boxes, count: n, maskSize: m, padding: padding, height: height,
            width: width, into: &out)
        return out
    }

    func testTaps() {
        // 2 -> 3 samples: position d reads (d + 0.5) * 2/3 - 0.5, clamped at 0.
        let first: (i0: Int, i1: Int, w0: Double, w1: Double) = PasteMasks.tap(0, inSize: 2, outSize: 3)
        XCTAssertTrue(first == (0, 1, 1, 0))
        let middle: (i0: Int, i1: Int, w0: Double, w1: Double) = PasteMasks.tap(1, inSize: 2, outSize: 3)
        XCTAssertEqual(middle.i0, 0)
        XCTAssertEqual(middle.i1, 1)
        XCTAssertEqual(middle.w1, 0.5, accuracy: 1e-15)
        // Past the last sample both taps are the last sample.
        let last: (i0: Int, i1: Int, w0: Double, w1: Double) = PasteMasks.tap(2, inSize: 2, outSize: 3)
        XCTAssertEqual(last.i0, 1)
        XCTAssertEqual(last.i1, 1)
        XCTAssertEqual(last.w1, 2.5 * 2 / 3 - 1.5, accuracy: 1e-15)
        let same: (i0: Int, i1: Int, w0: Double, w1: Double) = PasteMasks.tap(4, inSize: 5, outSize: 5)
        XCTAssertTrue(same == (4, 4, 1, 0))
    }

    func testExpandedBoxTruncates() {
        // Scale 30/28 about the centre (20, 40): half sizes 10 * 30/28 and 20 * 30/28.
        let box: [Double] = [10, 20, 30, 60]
        XCTAssertTrue(PasteMasks.expandedBox(box, scale: 30.0 / 28) == (9, 18, 30, 61))
        // Toward zero for negatives, as a cast to int64.
        let negative: [Double] = [-3.5, -7.9, -1.2, 2.5]
        XCTAssertTrue(PasteMasks.expandedBox(negative, scale: 1) == (-3, -7, -1, 2))
    }

    func testSameSizePasteIsACopy() {
        // Mask 2x2 without padding into box (1, 1, 2, 2): a 2x2 window at (1, 1) of a 4x4 image.
        let out = paste([1, 2, 3, 4], m: 2, boxes: [1, 1, 2, 2], padding: 0, height: 4, width: 4)
        XCTAssertEqual(
            out,
            [
                0, 0, 0, 0,
                0, 1, 2, 0,
                0, 3, 4, 0,
                0, 0, 0, 0,
            ])
    }

    func testClippedAtTheImageBorder() {
        // Box (-1, -1, 0, 0): only the resized mask's bottom-right pixel lands in the image.
        let out = paste([1, 2, 3, 4], m: 2, boxes: [-1, -1, 0, 0], padding: 0, height: 2, width: 2)
        XCTAssertEqual(out, [4, 0, 0, 0])
        // Wholly outside: nothing.
        XCTAssertEqual(paste([1, 2, 3, 4], m: 2, boxes: [5, 0, 9, 1], padding: 0, height: 2, width: 2), [0, 0, 0, 0])
    }

    func testPaddingAndUpsampling() {
        // Mask [1] padded to [0 1 0] (3x3); box (0, 0, 2, 2) scaled by 3 about (1, 1) -> (-2, -2, 4, 4), 7 pixels.
        // Image pixel x is resized pixel x + 2, which reads padded position (x + 2.5) * 3/7 - 0.5 = 4/7, 1, 10/7:
        // weights of the centre 4/7, 1, 4/7 along each axis.
        let out = paste([1], m: 1, boxes: [0, 0, 2, 2], padding: 1, height: 3, width: 3)
        let a = 4.0 / 7
        let expected = [a * a, a, a * a, a, 1, a, a * a, a, a * a]
        for (o, e) in zip(out, expected) { XCTAssertEqual(o, e, accuracy: 1e-12) }
        // Downsampled to a single pixel: position (0.5) * 3 - 0.5 = 1, the mask's own value.
        XCTAssertEqual(paste([5], m: 1, boxes: [0, 0, 0, 0], padding: 1, height: 2, width: 2), [5, 0, 0, 0])
    }
}
