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

/// The Swift API of matching, sampling and mask pasting.
final class DetectionAPITests: XCTestCase {
    func testMatcherThresholds() throws {
        // One ground truth, three predictions with qualities 0.9, 0.5, 0.1 at thresholds (0.7, 0.3).
        let matcher = Matcher(highThreshold: 0.7, lowThreshold: 0.3)
        let m = try matcher(Tensor<Float>([0.9, 0.5, 0.1], shape: [1, 3]))
        XCTAssertEqual(m.scalars, [0, Matcher.betweenThresholds, Matcher.belowLowThreshold])
    }

    func testSamplerReplaysWithSeed() throws {
        let matched = Tensor<Int64>((0..<100).map { $0 % 4 == 0 ? 1 : 0 }, shape: [100])
        var a = BalancedPositiveNegativeSampler(batchSizePerImage: 16, positiveFraction: 0.25, seed: 7)
        var b = BalancedPositiveNegativeSampler(batchSizePerImage: 16, positiveFraction: 0.25, seed: 7)
        let (pa, na) = try a.sample([matched])
        let (pb, nb) = try b.sample([matched])
        XCTAssertEqual(pa, pb)
        XCTAssertEqual(na, nb)
        XCTAssertEqual(pa[0].scalars.reduce(0) { $0 + Int($1) }, 4)
        XCTAssertEqual(na[0].scalars.reduce(0) { $0 + Int($1) }, 12)
    }

    func testPasteFullImageMask() throws {
        // A constant mask pasted with padding 0 over the whole 4 x 4 image fills it.
        let masks = Tensor<Float>([Float](repeating: 0.5, count: 4), shape: [1, 1, 2, 2])
        let boxes = Tensor<Float>([0, 0, 3, 3], shape: [1, 4])
        let out = try pasteMasksInImage(masks, boxes: boxes, height: 4, width: 4, padding: 0)
        XCTAssertEqual(out.shape, [1, 1, 4, 4])
        XCTAssertEqual(out.scalars, [Float](repeating: 0.5, count: 16))
        XCTAssertThrowsError(try pasteMasksInImage(masks, boxes: boxes, height: -1, width: 4))
    }
}

/// The Swift API of the RoI ops.
final class RoIAPITests: XCTestCase {
    func testRoIAlignOfConstantMapAndItsGradient() throws {
        // A constant map pools to the constant; the gradient of the mean spreads weight 1 in total per bin.
        let input = Tensor<Double>([Double](repeating: 3, count: 64), shape: [1, 1, 8, 8])
        let rois = Tensor<Double>([0, 1, 1, 6, 6], shape: [1, 5])
        let out = try roiAlign(input, rois: rois, pooledHeight: 2, pooledWidth: 2, samplingRatio: 2, aligned: true)
        XCTAssertEqual(out.shape, [1, 1, 2, 2])
        for v in out.scalars { XCTAssertEqual(v, 3, accuracy: 1e-12) }
        let grad = try roiAlignBackward(
            Tensor<Double>([1, 1, 1, 1], shape: [1, 1, 2, 2]), rois: rois,
            inputShape: [1, 1, 8, 8], samplingRatio: 2, aligned: true)
        XCTAssertEqual(grad.scalars.reduce(0, +), 4, accuracy: 1e-12)
    }

    func testRoIPoolArgmaxRoundTrip() throws {
        let input = Tensor<Float>((0..<16).map(Float.init), shape: [1, 1, 4, 4])
        let rois = Tensor<Float>([0, 0, 0, 3, 3], shape: [1, 5])
        let (out, argmax) = try roiPool(input, rois: rois, pooledHeight: 1, pooledWidth: 1)
        XCTAssertEqual(out.scalars, [15])
        XCTAssertEqual(argmax.scalars, [15])
        let grad = try roiPoolBackward(
            Tensor<Float>([2], shape: [1, 1, 1, 1]), argmax: argmax, inputShape: [1, 1, 4, 4])
        XCTAssertEqual(grad.scalars[15], 2)
        XCTAssertThrowsError(
            try roiPool(
                input, rois: Tensor<Float>([1, 0, 0, 3, 3], shape: [1, 5]), pooledHeight: 1,
                pooledWidth: 1)
        ) { error in
            XCTAssertTrue("\(error)".contains("boxes"), "\(error)")
        }
    }

    func testMultiScaleUsesTheMappedLevel() throws {
        // Two levels at scales 1/4 and 1/8 of a 64 x 64 image; a small box maps to the first level.
        let p2 = Tensor<Float>([Float](repeating: 1, count: 256), shape: [1, 1, 16, 16])
        let p3 = Tensor<Float>([Float](repeating: 2, count: 64), shape: [1, 1, 8, 8])
        let rois = Tensor<Float>([0, 4, 4, 20, 20], shape: [1, 5])
        let out = try multiScaleRoIAlign(
            features: [p2, p3], rois: rois, imageShapes: [(64, 64)], pooledHeight: 2,
            pooledWidth: 2, samplingRatio: 2)
        XCTAssertEqual(out.scalars, [1, 1, 1, 1])
    }
}

/// The Swift API of the py-faster-rcnn conventions.
final class LegacyAPITests: XCTestCase {
    func testClassicAnchorTableAndNMS() throws {
        let anchors = try LegacyOps.generateAnchors()
        XCTAssertEqual(anchors.shape, [9, 4])
        XCTAssertEqual(Array(anchors.scalars.prefix(4)), [-84, -40, 99, 55])
        // Two boxes of 11 x 11 (with +1 widths) overlapping in 10 x 11: IoU 110 / 132 > 0.7.
        let dets = Tensor<Float>([0, 0, 10, 10, 0.9, 1, 0, 11, 10, 0.8], shape: [2, 5])
        XCTAssertEqual(try LegacyOps.nms(dets, threshold: 0.7).scalars, [0])
    }
}
