import SwiftRCNN
import XCTest

/// The RPN and the RoI heads' postprocessing on tiny inputs worked out by hand.
final class DetectionHeadsTests: XCTestCase {
    func sigmoid(_ x: Float) -> Float { 1 / (1 + Float.exp(-x)) }

    /// A one-channel RPN whose conv passes the (positive) map through, whose logit of anchor a is (a + 1) · x, and
    /// whose deltas are `deltaBias` (12 values: anchor-major, then dx, dy, dw, dh).
    func tinyRPN(
        anchorSizes: [[Float]], ratios: [[Float]], logitWeights: [Float], deltaBias: [Float],
        preNMSTopN: Int, nmsThresh: Double
    ) throws -> RegionProposalNetwork {
        let a = logitWeights.count
        var store = WeightStore([
            "rpn.head.conv.0.0.weight": .init(shape: [1, 1, 3, 3], values: [0, 0, 0, 0, 1, 0, 0, 0, 0]),
            "rpn.head.conv.0.0.bias": .init(shape: [1], values: [0]),
            "rpn.head.cls_logits.weight": .init(shape: [a, 1, 1, 1], values: logitWeights),
            "rpn.head.cls_logits.bias": .init(shape: [a], values: [Float](repeating: 0, count: a)),
            "rpn.head.bbox_pred.weight": .init(shape: [4 * a, 1, 1, 1], values: [Float](repeating: 0, count: 4 * a)),
            "rpn.head.bbox_pred.bias": .init(shape: [4 * a], values: deltaBias),
        ])
        let config = RPNConfig(
            preNMSTopN: preNMSTopN, postNMSTopN: 100, nmsThresh: nmsThresh,
            anchorSizes: anchorSizes, aspectRatios: ratios, inChannels: 1)
        let rpn = RegionProposalNetwork(weights: &store, config: config)
        try store.finish()
        return rpn
    }

    /// Flattening order: anchor a of location p is candidate p · A + a, its logit is channel a and its deltas
    /// channels 4a ..< 4a + 4; anchors are location-major over the grid of stride batch / map.
    func testFlatteningOrderDecodingAndClipping() throws {
        var deltas = [Float](repeating: 0, count: 12)
        deltas[4 * 1 + 0] = 0.5  // anchor 1 (ratio 1) moves right by half its width
        let rpn = try tinyRPN(
            anchorSizes: [[16]], ratios: [[0.5, 1, 2]], logitWeights: [1, 2, 3], deltaBias: deltas,
            preNMSTopN: 4, nmsThresh: 1)
        // Locations p = y * 3 + x hold 1, 4, 2 / 3, 0.5, 5; logits (a + 1) x[p]: the top four are 15 (p5, a2),
        // 12 (p1, a2), 10 (p5, a1), 9 (p3, a2).
        let map = FeatureMap(batch: 1, channels: 1, height: 2, width: 3, data: [1, 4, 2, 3, 0.5, 5])
        let result = rpn.proposals(features: [map], batchHW: (32, 48), imageSizes: [(32, 48)])
        // Cell anchors of size 16: ratio 0.5 (-11, -6, 11, 6), 1 (-8, -8, 8, 8), 2 (-6, -11, 6, 11); location
        // (y, x) shifts by (16x, 16y); boxes clipped to 48 x 32.
        XCTAssertEqual(
            result[0].boxes,
            [
                26, 5, 38, 27,  // p5 = (1, 2), a2
                10, 0, 22, 11,  // p1 = (0, 1), a2, y1 clipped
                32, 8, 48, 24,  // p5, a1 moved by 0.5 · 16
                0, 5, 6, 27,
            ])  // p3 = (1, 0), a2, x1 clipped
        XCTAssertEqual(result[0].scores, [sigmoid(15), sigmoid(12), sigmoid(10), sigmoid(9)])
    }

    /// NMS runs per level: the same box from two levels survives twice; within a level it is suppressed.
    func testNMSPerLevelAndTopNPerLevel() throws {
        let rpn = try tinyRPN(
            anchorSizes: [[16], [16]], ratios: [[1], [1]], logitWeights: [1],
            deltaBias: [0, 0, 0, 0], preNMSTopN: 2, nmsThresh: 0.5)
        // Level 0: a 1 x 3 map of stride 4 (anchors 4 px apart, heavily overlapping); level 1: one location.
        let level0 = FeatureMap(batch: 1, channels: 1, height: 1, width: 3, data: [1, 3, 2])
        let level1 = FeatureMap(batch: 1, channels: 1, height: 1, width: 1, data: [2.5])
        let result = rpn.proposals(features: [level0, level1], batchHW: (12, 12), imageSizes: [(12, 12)])
        // Level 0 keeps its top 2 (x = 1: logit 3; x = 2: logit 2); both clip to (0, 0, 12, 8), so NMS drops x = 2.
        // Level 1's box (0, 0, 8, 8) overlaps that box with IoU 2/3 > 0.5 but is on another level.
        XCTAssertEqual(result[0].boxes, [0, 0, 12, 8, 0, 0, 8, 8])
        XCTAssertEqual(result[0].scores, [sigmoid(3), sigmoid(2.5)])
    }

    func testPostprocess() {
        // Three classes (0 is the background); image 0 has two proposals, image 1 one.
        let proposals: [[Float]] = [[0, 0, 10, 10, 1, 1, 11, 11], [20, 20, 40, 30]]
        let logits: [Float] = [
            0, 2, 0,
            0, 1, 0,
            0, -5, 3,
        ]
        var regression = [Float](repeating: 0, count: 3 * 12)
        regression[2 * 12 + 2 * 4] = 1  // image 1, class 2: dx / 10 = 0.1 of the width 20
        let config = RoIHeadsConfig(scoreThresh: 0.05, nmsThresh: 0.5, detectionsPerImage: 100)
        let d = RoIHeads.postprocess(
            classLogits: logits, boxRegression: regression, proposals: proposals,
            imageSizes: [(50, 50), (25, 35)], numClasses: 3, config: config)
        let e2 = Float.exp(2), e1 = Float.exp(1), e3 = Float.exp(3), em5 = Float.exp(-5)
        // Image 0: class 1 keeps proposal 0 (0.787) and suppresses proposal 1 (IoU 81 / 119 > 0.5); class 2 keeps
        // proposal 1 (0.212) and suppresses proposal 0 (0.107).
        XCTAssertEqual(d[0].labels, [1, 2])
        XCTAssertEqual(d[0].boxes, [0, 0, 10, 10, 1, 1, 11, 11])
        XCTAssertEqual(d[0].scores[0], e2 * (1 / (2 + e2)), accuracy: 1e-6)
        XCTAssertEqual(d[0].scores[1], 1 / (2 + e1), accuracy: 1e-6)
        XCTAssertNil(d[0].masks)
        // Image 1: class 1 (probability e^-5 / ...) is below the threshold; class 2's box moves right by 2 and is
        // clipped to the 35 x 25 image.
        XCTAssertEqual(d[1].labels, [2])
        XCTAssertEqual(d[1].boxes, [22, 20, 35, 25])
        XCTAssertEqual(d[1].scores[0], e3 / (1 + em5 + e3), accuracy: 1e-6)

        let one = RoIHeads.postprocess(
            classLogits: logits, boxRegression: regression, proposals: proposals,
            imageSizes: [(50, 50), (25, 35)], numClasses: 3,
            config: RoIHeadsConfig(detectionsPerImage: 1))
        XCTAssertEqual(one.map(\.labels), [[1], [2]])
        // A proposal that clips to a sliver narrower than 1e-2 is dropped.
        let sliver = RoIHeads.postprocess(
            classLogits: [0, 5, 0], boxRegression: [Float](repeating: 0, count: 12),
            proposals: [[49.995, 0, 60, 10]], imageSizes: [(50, 50)], numClasses: 3,
            config: config)
        XCTAssertEqual(sliver[0].count, 0)
    }

    /// The mask head's batched 3x3 convolution equals Conv2d, whatever the number of images per product.
    func testConvolveSmallMapsMatchesConv2d() {
        var seed: UInt64 = 7
        func random(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
            }
        }
        let x = FeatureMap(batch: 5, channels: 3, height: 4, width: 6, data: random(5 * 3 * 24))
        let conv = Conv2d(
            weight: random(4 * 3 * 9), bias: random(4), inChannels: 3, outChannels: 4, kernel: (3, 3),
            padding: 1, relu: true)
        let expected = conv(x).data
        for budget in [1, 27 * 24 * 2, 1 << 22] {  // one image, two images, all images per product
            let got = RoIHeads.convolveSmallMaps(conv, x, columnElements: budget).data
            XCTAssertEqual(got.count, expected.count)
            for (g, e) in zip(got, expected) { XCTAssertEqual(g, e, accuracy: 1e-5) }
        }
    }
}
