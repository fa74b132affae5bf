import SwiftRCNN
import XCTest

/// The JSON reader and the general builder's description (`Architecture`), and a tiny sequential-backbone model
/// built and run through the Swift API.
final class ArchitectureTests: XCTestCase {
    func testJSONValues() throws {
        let v = try JSON(parsing: #" {"a": [1, -2.5e1, true, null], "b": "x\"\u00e9\n"} "#, name: "t")
        XCTAssertEqual(
            v, .object([("a", .array([.number(1), .number(-25), .bool(true), .null])), ("b", .string("x\"é\n"))]))
        XCTAssertEqual(v["b"], .string("x\"é\n"))
        XCTAssertNil(v["c"])
    }

    func testJSONErrorsSayWhere() {
        for (text, message) in [
            ("{", "t: invalid JSON at byte 1: expected a key"), ("[1,]", "t: invalid JSON at byte 3"),
            ("{\"a\": 1, \"a\": 2}", "key \"a\" repeated"), ("1 2", "unexpected text after the JSON value"),
            ("[1e999]", "bad number 1e999"), (String(repeating: "[", count: 65), "nested deeper than 64"),
            ("\"a\u{01}\"", "control character"),
        ] {
            XCTAssertThrowsError(try JSON(parsing: text, name: "t"), text) { error in
                XCTAssertTrue("\(error)".contains(message), "\(text): \(error)")
            }
        }
    }

    func testEmptyDescriptionIsTheResNet50FPNModel() throws {
        let a = try Architecture(json: "{}")
        XCTAssertTrue(a.isResNet50FPN)
        XCTAssertEqual(a.levelNames, ["0", "1", "2", "3", "pool"])
        XCTAssertEqual(a.resolvedAnchorSizes, [[32], [64], [128], [256], [512]])
        XCTAssertEqual(a, try Architecture(json: #"{"backbone": {"type": "resnet50_fpn"}}"#))
    }

    let tiny = #"""
        {"backbone": {"type": "sequential", "layers": [
            {"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": false},
            {"type": "batch_norm2d", "num_features": 4}, {"type": "relu"},
            {"type": "max_pool2d", "kernel_size": 2},
            {"type": "conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2}]},
         "anchor_sizes": [[16, 32]], "aspect_ratios": [[1.0]],
         "box_roi_pool": {"type": "roi_pool", "output_size": 2, "spatial_scale": 0.25},
         "box_head": {"type": "two_mlp_head", "representation_size": 8}}
        """#

    func testSequentialDescription() throws {
        let a = try Architecture(json: tiny)
        XCTAssertFalse(a.isResNet50FPN)
        XCTAssertEqual(
            a.backbone,
            .sequential([
                .conv2d(inChannels: 3, outChannels: 4, kernel: 3, stride: 1, padding: 1, bias: false),
                .batchNorm2d(features: 4, eps: 1e-5), .relu, .maxPool2d(kernel: 2, stride: 2, padding: 0),
                .conv2d(inChannels: 4, outChannels: 6, kernel: 3, stride: 2, padding: 0, bias: true),
            ]))
        XCTAssertEqual(a.outChannels, 6)
        XCTAssertEqual(a.levelNames, ["0"])
        XCTAssertEqual(a.boxRoIPool, .roiPool(featmapName: "0", outputSize: 2, spatialScale: 0.25))
        XCTAssertNoThrow(try a.validate(masks: false))
        // The default mask pooler names "0" ... "3": as torchvision's MultiScaleRoIAlign, it pools from those the
        // backbone has ("0"); a pooler naming none of them is an error.
        XCTAssertNoThrow(try a.validate(masks: true))
        XCTAssertEqual(
            a.resolved(a.maskRoIPool), .multiScaleRoIAlign(featmapNames: ["0"], outputSize: 14, samplingRatio: 2))
        var b = a
        b.maskRoIPool = .multiScaleRoIAlign(featmapNames: ["p2", "p3"], outputSize: 14, samplingRatio: 2)
        XCTAssertThrowsError(try b.validate(masks: true)) { error in
            XCTAssertTrue("\(error)".contains("mask_roi_pool.featmap_names: none of"), "\(error)")
        }
    }

    func testDescriptionErrorsNameTheMember() {
        for (text, message) in [
            (
                #"{"backbone": {"type": "sequential", "layers": [{"type": "conv2d", "in_channels": 3}]}}"#,
                "architecture.backbone.layers[0]: missing member 'out_channels'"
            ),
            (
                #"{"backbone": {"type": "sequential", "layers": [{"type": "dropout"}]}}"#,
                "architecture.backbone.layers[0].type: expected"
            ),
            (#"{"anchor_sizes": [[32], "x"]}"#, "architecture.anchor_sizes[1]: expected a list of numbers"),
            (
                #"{"box_head": {"type": "two_mlp_head", "representation_size": 1.5}}"#,
                "architecture.box_head.representation_size: expected an int, got 1.5"
            ),
            (#"{"box_head": {"type": "two_mlp_head", "size": 4}}"#, "box_head: unknown member 'size'"),
        ] {
            XCTAssertThrowsError(try Architecture(json: text), text) { error in
                XCTAssertTrue("\(error)".contains(message), "\(text): \(error)")
            }
        }
    }

    func testTinySequentialModelRuns() throws {
        var config = DetectionModel.Config()
        config.numClasses = 3
        config.minSize = 40
        config.maxSize = 64
        config.architecture = try Architecture(json: tiny)
        var entries = [String: WeightStore.Entry]()
        func add(_ name: String, _ shape: [Int], _ value: Float) {
            entries[name] = WeightStore.Entry(
                shape: shape, values: [Float](repeating: value, count: shape.reduce(1, *)))
        }
        add("backbone.0.weight", [4, 3, 3, 3], 0.1)
        for k in ["weight", "running_var"] { add("backbone.1.\(k)", [4], 1) }
        for k in ["bias", "running_mean"] { add("backbone.1.\(k)", [4], 0) }
        add("backbone.4.weight", [6, 4, 3, 3], 0.05)
        add("backbone.4.bias", [6], 0)
        add("rpn.head.conv.0.0.weight", [6, 6, 3, 3], 0.01)
        add("rpn.head.conv.0.0.bias", [6], 0)
        add("rpn.head.cls_logits.weight", [2, 6, 1, 1], 0.1)
        add("rpn.head.cls_logits.bias", [2], 0)
        add("rpn.head.bbox_pred.weight", [8, 6, 1, 1], 0)
        add("rpn.head.bbox_pred.bias", [8], 0)
        add("roi_heads.box_head.fc6.weight", [8, 24], 0.1)
        add("roi_heads.box_head.fc6.bias", [8], 0)
        add("roi_heads.box_head.fc7.weight", [8, 8], 0.1)
        add("roi_heads.box_head.fc7.bias", [8], 0)
        add("roi_heads.box_predictor.cls_score.weight", [3, 8], 0)
        add("roi_heads.box_predictor.cls_score.bias", [3], 0)
        add("roi_heads.box_predictor.bbox_pred.weight", [12, 8], 0)
        add("roi_heads.box_predictor.bbox_pred.bias", [12], 0)
        var store = WeightStore(entries)
        let model = try DetectionModel(config: config, weights: &store)
        let image = FeatureMap(
            batch: 1, channels: 3, height: 40, width: 48, data: (0..<(3 * 40 * 48)).map { Float($0 % 7) / 7 })
        let (levels, sizes) = try model.features([image])
        // 40 x 48 padded to 64 x 64; pool /2 -> 32, 3x3 stride 2 unpadded -> 15.
        XCTAssertEqual(levels.map(\.shape), [[1, 6, 15, 15]])
        XCTAssertTrue(sizes[0] == (40, 48))
        // Every class scores 1/3 (zero classifier): all detections pass the 0.05 threshold, at most 100 kept.
        let d = try model.detect([image])
        XCTAssertEqual(d.count, 1)
        XCTAssertFalse(d[0].scores.isEmpty)
        XCTAssertTrue(d[0].scores.allSatisfy { abs($0 - 1.0 / 3) < 1e-6 })
        // A mis-shaped key is named.
        entries["backbone.4.weight"] = WeightStore.Entry(
            shape: [6, 3, 3, 3], values: [Float](repeating: 0, count: 162))
        var bad = WeightStore(entries)
        XCTAssertThrowsError(try DetectionModel(config: config, weights: &bad)) { error in
            XCTAssertTrue("\(error)".contains("backbone.4.weight: expected shape [6, 4, 3, 3]"), "\(error)")
        }
    }
}
