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
