import SwiftRCNN
import XCTest

/// The Swift API of the box ops: results, and errors that name the argument.
final class BoxesAPITests: XCTestCase {
    func testNMSAndIoU() throws {
        let boxes = Tensor<Float>([0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60], shape: [3, 4])
        let scores = Tensor<Float>([0.5, 0.9, 0.7], shape: [3])
        XCTAssertEqual(try nms(boxes: boxes, scores: scores, iouThreshold: 0.5).scalars, [1, 2])
        let iou = try boxIoU(boxes, boxes)
        XCTAssertEqual(iou.shape, [3, 3])
        XCTAssertEqual(iou.scalars[1], 81.0 / 119.0, accuracy: 1e-6)
        XCTAssertEqual(try boxArea(boxes).scalars, [100, 100, 100])
        let small = try removeSmallBoxes(boxes, minSize: 11)
        XCTAssertEqual(small.shape, [0])
    }

    func testErrorsNameArgument() {
        let boxes = Tensor<Double>([0, 0, 1], shape: [1, 3])
        XCTAssertThrowsError(try boxArea(boxes)) { error in
            XCTAssertEqual(error as? SwiftRCNNError, .invalidValue("boxes: expected shape (N, 4), got (1, 3)"))
        }
    }
}

/// The Swift API of anchors and box coding.
final class AnchorsAPITests: XCTestCase {
    func testAnchorsOfOneCellAndStride() throws {
        // Size 32, ratio 1 on a 2 x 2 map over a 64 x 64 image: cell anchor (-16, -16, 16, 16), stride 32.
        let gen = AnchorGenerator(sizes: [[32]], aspectRatios: [[1.0]])
        let a: Tensor<Float> = try gen.anchors(imageSize: (64, 64), featureSizes: [(2, 2)])
        XCTAssertEqual(a.shape, [4, 4])
        XCTAssertEqual(a.scalars, [-16, -16, 16, 16, 16, -16, 48, 16, -16, 16, 16, 48, 16, 16, 48, 48])
    }

    func testEncodeDecodeRoundTrip() throws {
        let coder = BoxCoder(weights: (10, 10, 5, 5))
        let anchors = Tensor<Double>([0, 0, 10, 20, 5, 5, 50, 30], shape: [2, 4])
        let gt = Tensor<Double>([1, 2, 12, 18, 0, 10, 40, 35], shape: [2, 4])
        let codes = try coder.encode(referenceBoxes: gt, proposals: anchors)
        let back = try coder.decode(relCodes: codes, boxes: anchors)
        for (x, y) in zip(back.scalars, gt.scalars) { XCTAssertEqual(x, y, accuracy: 1e-9) }
    }
}
