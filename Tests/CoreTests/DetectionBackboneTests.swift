import SwiftRCNN
import XCTest

/// GeneralizedRCNNTransform, ResNet50FPN and DetectionModel on small cases worked out by hand.
final class DetectionBackboneTests: XCTestCase {
    func image(_ h: Int, _ w: Int, _ values: [Float]) -> FeatureMap {
        FeatureMap(batch: 1, channels: 3, height: h, width: w, data: values)
    }

    func testResizedSizes() {
        let t = GeneralizedRCNNTransform(minSize: 800, maxSize: 1333, imageMean: [0, 0, 0], imageStd: [1, 1, 1])
        // scale = min(800 / short side, 1333 / long side), sizes floored (Python's arithmetic).
        XCTAssertTrue(t.resizedSize(height: 480, width: 640) == (800, 1066))
        XCTAssertTrue(t.resizedSize(height: 100, width: 1000) == (133, 1333))
        XCTAssertTrue(t.resizedSize(height: 7, width: 3) == (1333, 571))
        XCTAssertTrue(GeneralizedRCNNTransform.batchSize([(800, 1066), (133, 1333)]) == (800, 1344))
    }

    func testTransformNormalisesResizesAndPads() throws {
        // Channel c holds mean_c + std_c · v with v = [[0, 4], [8, 12]]: normalised, every channel is v.
        let mean: [Float] = [0, 1, -1], std: [Float] = [1, 2, 0.5]
        let v: [Float] = [0, 4, 8, 12]
        let a = image(2, 2, (0..<3).flatMap { c in v.map { mean[c] + std[c] * $0 } })
        // A constant image: (7 - mean) / std per channel at any size.
        let b = image(3, 5, (0..<3).flatMap { c in [Float](repeating: 7, count: 15) })
        let t = GeneralizedRCNNTransform(minSize: 4, maxSize: 100, imageMean: mean, imageStd: std)
        let (batch, sizes) = try t([a, b])
        XCTAssertTrue(sizes.count == 2 && sizes[0] == (4, 4) && sizes[1] == (4, 6))
        XCTAssertEqual(batch.shape, [2, 3, 32, 32])
        // Upsampling x2 (align_corners=False) samples at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        let up: [Float] = [0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12]
        func at(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> Float { batch.data[((n * 3 + c) * 32 + y) * 32 + x] }
        for c in 0..<3 {
            for y in 0..<32 {
                for x in 0..<32 {
                    XCTAssertEqual(at(0, c, y, x), y < 4 && x < 4 ? up[y * 4 + x] : 0)
                    XCTAssertEqual(at(1, c, y, x), y < 4 && x < 6 ? (7 - mean[c]) / std[c] : 0, accuracy: 1e-6)
                }
            }
        }
    }

    func testTransformRejects() {
        let t = GeneralizedRCNNTransform(minSize: 320, maxSize: 512, imageMean: [0, 0, 0], imageStd: [1, 1, 1])
        XCTAssertThrowsError(try t([])) { XCTAssertTrue("\($0)".contains("at least one image")) }
        let fourChannels = FeatureMap(
            batch: 1, channels: 4, height: 2, width: 2,
            data: [Float](repeating: 0, count: 16))
        XCTAssertThrowsError(try t([image(2, 2, [Float](repeating: 0, count: 12)), fourChannels])) {
            XCTAssertTrue("\($0)".contains("images[1]: expected shape (3, H, W)"), "\($0)")
        }
        // 512 / 5000 of one row is no row.
        XCTAssertThrowsError(try t([image(1, 5000, [Float](repeating: 0, count: 15000))])) {
            XCTAssertTrue("\($0)".contains("resizes to 0 x 512"), "\($0)")
        }
        let huge = GeneralizedRCNNTransform(
            minSize: Double(1 << 15), maxSize: Double(1 << 15), imageMean: [0, 0, 0],
            imageStd: [1, 1, 1])
        XCTAssertThrowsError(try huge([image(1, 1, [0, 0, 0])])) { error in
            guard case SwiftRCNNError.tooLarge = error else { return XCTFail("\(error)") }
        }
    }

    func testBuildReportsEveryProblemInOneError() throws {
        var entries = handCheckedBackboneWeights()
        var good = WeightStore(entries)
        var config = DetectionModel.Config()
        config.minSize = 32
        config.maxSize = 64
        XCTAssertNoThrow(try DetectionModel(config: config, weights: &good))

        func zeros(_ shape: [Int]) -> WeightStore.Entry {
            WeightStore.Entry(shape: shape, values: .init(repeating: 0, count: shape.reduce(1, *)))
        }
        entries["backbone.body.layer3.2.conv2.weight"] = nil
        entries["backbone.body.layer1.0.downsample.1.running_var"] = zeros([255])
        entries["backbone.fpn.layer_blocks.3.0.weight"] = zeros([256, 256, 1, 1])
        entries["rpn.head.extra.bias"] = WeightStore.Entry(shape: [3], values: [0, 0, 0])
        entries["backbone.body.bn1.num_batches_tracked"] = WeightStore.Entry(shape: [], values: [0])
        var bad = WeightStore(entries)
        XCTAssertThrowsError(try DetectionModel(config: config, weights: &bad)) { error in
            XCTAssertEqual(
                "\(error)",
                "weights: 2 mis-shaped, 1 unexpected, 1 missing. shape mismatches: "
                    + "backbone.body.layer1.0.downsample.1.running_var: expected shape [256], got [255]; "
                    + "backbone.fpn.layer_blocks.3.0.weight: expected shape [256, 256, 3, 3], got [256, 256, 1, 1]. "
                    + "unexpected keys: rpn.head.extra.bias. "
                    + "missing keys: backbone.body.layer3.2.conv2.weight (expected shape [256, 256, 3, 3])")
        }
    }

    func testBadConfigIsRejectedBeforeWeights() {
        var store = WeightStore([:])
        var config = DetectionModel.Config()
        config.imageStd = [1, 0, 1]
        XCTAssertThrowsError(try DetectionModel(config: config, weights: &store)) {
            XCTAssertTrue("\($0)".hasPrefix("image_std"), "\($0)")
        }
    }

    func testFeaturesOfHandCheckedWeights() throws {
        var store = WeightStore(handCheckedBackboneWeights())
        var config = DetectionModel.Config()
        config.minSize = 32
        config.maxSize = 64
        let model = try DetectionModel(config: config, weights: &store)
        // A 32 x 64 image keeps its size (scale 1); the levels are at strides 4, 8, 16, 32 and 64.
        let (levels, sizes) = try model.features([image(32, 64, (0..<6144).map { Float($0 % 7) / 7 })])
        XCTAssertTrue(sizes.count == 1 && sizes[0] == (32, 64))
        XCTAssertEqual(
            levels.map(\.shape),
            [
                [1, 256, 8, 16], [1, 256, 4, 8], [1, 256, 2, 4], [1, 256, 1, 2],
                [1, 256, 1, 1],
            ])
        for (level, offset) in zip(levels, handCheckedLevelOffsets) {
            for c in 0..<256 {
                let plane = level.data[(c * level.plane)..<((c + 1) * level.plane)]
                XCTAssertTrue(plane.allSatisfy { $0 == offset + Float(c) }, "channel \(c): \(Array(plane))")
            }
        }
    }
}
