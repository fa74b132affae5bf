import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// TorchvisionInit: the keys and shapes of torchvision's state dicts, seeding, and the schemes' parameters. The
/// distributions themselves are tested on the whole model in Tests/python/test_init.py (against torchvision's
/// constructors), where the statistics run fast.
final class InitializationTests: XCTestCase {
    var savedThreads = 0
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// torchvision's rpn.* and roi_heads.* keys (mask branch included for Mask R-CNN), written out from its modules.
    func headShapes(numClasses k: Int, masks: Bool) -> [(String, [Int])] {
        var shapes = fasterRCNNHeadShapes.filter { !$0.0.hasPrefix("roi_heads.box_predictor.") }
        shapes += [
            ("roi_heads.box_predictor.cls_score.weight", [k, 1024]), ("roi_heads.box_predictor.cls_score.bias", [k]),
            ("roi_heads.box_predictor.bbox_pred.weight", [4 * k, 1024]),
            ("roi_heads.box_predictor.bbox_pred.bias", [4 * k]),
        ]
        guard masks else { return shapes }
        for i in 0..<4 {
            shapes += [
                ("roi_heads.mask_head.\(i).0.weight", [256, 256, 3, 3]), ("roi_heads.mask_head.\(i).0.bias", [256]),
            ]
        }
        return shapes + [
            ("roi_heads.mask_predictor.conv5_mask.weight", [256, 256, 2, 2]),
            ("roi_heads.mask_predictor.conv5_mask.bias", [256]),
            ("roi_heads.mask_predictor.mask_fcn_logits.weight", [k, 256, 1, 1]),
            ("roi_heads.mask_predictor.mask_fcn_logits.bias", [k]),
        ]
    }

    func testKeysAndShapesAreTorchvisions() {
        for kind in [DetectionModel.Kind.fasterRCNN, .maskRCNN] {
            for k in [3, 91] {
                let expected = resnet50FPNShapes() + headShapes(numClasses: k, masks: kind == .maskRCNN)
                let tensors = TorchvisionInit.tensors(kind: kind, numClasses: k)
                XCTAssertEqual(tensors.count, expected.count, "\(kind) \(k)")
                XCTAssertEqual(Set(tensors.map(\.name)).count, tensors.count, "duplicate keys")
                let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
                for (name, shape) in expected { XCTAssertEqual(shapes[name], shape, "\(kind) \(k) \(name)") }
            }
        }
    }

    /// A model builds from the whole initial state with WeightStore's strict checks (every key used, each with its
    /// shape): Mask R-CNN with 91 classes. The RoI heads, where num_classes matters, of both kinds with 91 classes
    /// and with their predictors re-initialised for 3 classes (as when a checkpoint is loaded for another number of
    /// classes). (A whole model takes seconds to draw and build in a debug build; the key lists of every
    /// configuration are checked against torchvision's above.)
    func testModelBuildsFromState() throws {
        var config = DetectionModel.Config()
        config.kind = .maskRCNN
        let mask91 = try TorchvisionInit.state(kind: .maskRCNN, numClasses: 91, seed: 1)
        var weights = WeightStore(mask91)
        XCTAssertNoThrow(try DetectionModel(config: config, weights: &weights))

        let predictors3 = try TorchvisionInit.state(
            kind: .maskRCNN, numClasses: 3, seed: 2, only: TorchvisionInit.predictorKeys(kind: .maskRCNN).contains)
        let mask3 = mask91.merging(predictors3) { $1 }
        let maskBranch = ["roi_heads.mask_head.", "roi_heads.mask_predictor."]
        for (k, state) in [(91, mask91), (3, mask3)] {
            for masks in [false, true] {
                var heads = WeightStore(
                    state.filter { name, _ in
                        name.hasPrefix("roi_heads.") && (masks || !maskBranch.contains { name.hasPrefix($0) })
                    })
                _ = RoIHeads(weights: &heads, numClasses: k, config: RoIHeadsConfig(), masks: masks)
                XCTAssertNoThrow(try heads.finish(), "\(masks ? "Mask" : "Faster") R-CNN, \(k) classes")
            }
        }
    }

    /// The same seed gives the same values whatever the thread count; another seed other values; a tensor's
    /// values depend on its name and the seed alone, not on which other tensors are drawn.
    func testSeeding() throws {
        // rpn.head.conv.0.0.weight has 589,824 values: 9 blocks, so threads share it.
        let small: (String) -> Bool = { $0.hasPrefix("rpn.") || $0.hasPrefix("roi_heads.box_predictor.") }
        Parallel.numThreads = 1
        let one = try TorchvisionInit.state(kind: .fasterRCNN, numClasses: 3, seed: 42, only: small)
        Parallel.numThreads = 2
        let two = try TorchvisionInit.state(kind: .fasterRCNN, numClasses: 3, seed: 42, only: small)
        let other = try TorchvisionInit.state(kind: .fasterRCNN, numClasses: 3, seed: 43, only: small)
        XCTAssertEqual(one.keys.sorted(), two.keys.sorted())
        XCTAssertEqual(one.count, 10)
        for (name, entry) in one {
            XCTAssertEqual(entry.values, two[name]!.values, name)
            if name.hasSuffix(".weight") || name.hasPrefix("roi_heads.") {
                XCTAssertNotEqual(entry.values, other[name]!.values, name)
            } else {
                XCTAssertEqual(entry.values, other[name]!.values, "\(name): a zero bias")
            }
        }
        // Blocks of one tensor are distinct streams.
        let conv = one["rpn.head.conv.0.0.weight"]!.values
        XCTAssertNotEqual(Array(conv[0..<16]), Array(conv[(1 << 16)..<((1 << 16) + 16)]))

        let predictors = Set(TorchvisionInit.predictorKeys(kind: .fasterRCNN))
        let alone = try TorchvisionInit.state(kind: .fasterRCNN, numClasses: 3, seed: 42, only: predictors.contains)
        XCTAssertEqual(Set(alone.keys), predictors)
        for (name, entry) in alone { XCTAssertEqual(entry.values, one[name]!.values, name) }
    }

    func testPredictorKeys() {
        let box = [
            "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
            "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias",
        ]
        XCTAssertEqual(TorchvisionInit.predictorKeys(kind: .fasterRCNN), box)
        XCTAssertEqual(
            TorchvisionInit.predictorKeys(kind: .maskRCNN),
            box + ["roi_heads.mask_predictor.mask_fcn_logits.weight", "roi_heads.mask_predictor.mask_fcn_logits.bias"]
        )
    }

    /// Each module's scheme with its parameters worked out by hand from torchvision's constructors.
    func testSchemes() {
        let schemes = Dictionary(
            uniqueKeysWithValues: TorchvisionInit.tensors(kind: .maskRCNN, numClasses: 3).map { ($0.name, $0.scheme) })
        func normal(_ std: Double) -> TorchvisionInit.Scheme { .normal(std: std) }
        func uniform(_ bound: Double) -> TorchvisionInit.Scheme { .uniform(bound: bound) }
        let cases: [(String, TorchvisionInit.Scheme)] = [
            // kaiming_normal_ fan_out relu: √(2 / (out·k²)).
            ("backbone.body.conv1.weight", normal((2.0 / (64 * 49)).squareRoot())),
            ("backbone.body.layer3.0.conv2.weight", normal((2.0 / (256 * 9)).squareRoot())),
            ("backbone.body.layer4.0.downsample.0.weight", normal((2.0 / 2048).squareRoot())),
            ("backbone.body.layer1.2.bn3.weight", .constant(1)), ("backbone.body.layer1.2.bn3.bias", .constant(0)),
            ("backbone.body.bn1.running_mean", .constant(0)), ("backbone.body.bn1.running_var", .constant(1)),
            // kaiming_uniform_(a=1): √(3 / (in·k²)).
            ("backbone.fpn.inner_blocks.3.0.weight", uniform((3.0 / 2048).squareRoot())),
            ("backbone.fpn.layer_blocks.0.0.weight", uniform((3.0 / (256 * 9)).squareRoot())),
            ("backbone.fpn.layer_blocks.0.0.bias", .constant(0)),
            ("rpn.head.conv.0.0.weight", normal(0.01)), ("rpn.head.bbox_pred.weight", normal(0.01)),
            ("rpn.head.cls_logits.bias", .constant(0)),
            // nn.Linear: 1/√in for weight and bias.
            ("roi_heads.box_head.fc6.weight", uniform(1 / 12544.0.squareRoot())),
            ("roi_heads.box_head.fc6.bias", uniform(1 / 12544.0.squareRoot())),
            ("roi_heads.box_predictor.cls_score.weight", uniform(1 / 32)),
            ("roi_heads.box_predictor.bbox_pred.bias", uniform(1 / 32)),
            ("roi_heads.mask_head.2.0.weight", normal((2.0 / (256 * 9)).squareRoot())),
            ("roi_heads.mask_head.2.0.bias", .constant(0)),
            // ConvTranspose2d (256, 256, 2, 2): fan_out = 256·4, the bias's fan_in = 256·4.
            ("roi_heads.mask_predictor.conv5_mask.weight", normal((2.0 / 1024).squareRoot())),
            ("roi_heads.mask_predictor.conv5_mask.bias", uniform(1 / 32)),
            ("roi_heads.mask_predictor.mask_fcn_logits.weight", normal((2.0 / 3).squareRoot())),
            ("roi_heads.mask_predictor.mask_fcn_logits.bias", uniform(1 / 16)),
        ]
        for (name, scheme) in cases {
            guard case let got? = schemes[name] else { return XCTFail("missing \(name)") }
            switch (got, scheme) {
            case (.normal(let a), .normal(let b)), (.uniform(let a), .uniform(let b)):
                XCTAssertEqual(a, b, accuracy: 1e-15 * b, name)
            default: XCTAssertEqual(got, scheme, name)
            }
        }
        XCTAssertTrue(TorchvisionInit.Scheme.fans([256, 128, 2, 2]) == (512, 1024))
    }

    /// Values follow their scheme: constants exact, uniform draws within the bound and filling it, normal draws
    /// with about the right spread (loose bounds: the precise tests are in Python).
    func testValuesFollowSchemes() throws {
        let names: Set = [
            "backbone.body.bn1.weight", "backbone.body.bn1.running_mean", "backbone.fpn.layer_blocks.1.0.weight",
            "backbone.fpn.layer_blocks.1.0.bias", "rpn.head.conv.0.0.weight",
        ]
        let state = try TorchvisionInit.state(kind: .maskRCNN, numClasses: 3, seed: 9, only: names.contains)
        XCTAssertEqual(state["backbone.body.bn1.weight"]!.values, [Float](repeating: 1, count: 64))
        XCTAssertEqual(state["backbone.body.bn1.running_mean"]!.values, [Float](repeating: 0, count: 64))
        XCTAssertEqual(state["backbone.fpn.layer_blocks.1.0.bias"]!.values, [Float](repeating: 0, count: 256))
        let bound = Float((3.0 / (256 * 9)).squareRoot())
        let fpn = state["backbone.fpn.layer_blocks.1.0.weight"]!.values
        XCTAssertLessThanOrEqual(fpn.map(abs).max()!, bound)
        XCTAssertGreaterThan(fpn.map(abs).max()!, 0.999 * bound)
        let rpn = state["rpn.head.conv.0.0.weight"]!.values.map(Double.init)
        let mean = rpn.reduce(0, +) / Double(rpn.count)
        let std = (rpn.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rpn.count)).squareRoot()
        // 589,824 draws: the sample mean's sd is 1.3e-5, the sample std's relative sd 0.09 %.
        XCTAssertEqual(mean, 0, accuracy: 1e-4)
        XCTAssertEqual(std, 0.01, accuracy: 1e-4)
    }

    func testNumClassesOutOfRangeThrows() {
        for k in [0, -1, (1 << 20) + 1] {
            XCTAssertThrowsError(try TorchvisionInit.state(kind: .fasterRCNN, numClasses: k, seed: 0)) { error in
                XCTAssertTrue("\(error)".contains("num_classes"), "\(error)")
            }
        }
    }
}
