import SwiftRCNN

// State dicts for the ResNet-50-FPN tests, written out from torchvision's module structure (resnet50's Bottleneck
// layers and FeaturePyramidNetwork), independently of the code under test.

/// Every key of torchvision's `backbone.` state dict (num_batches_tracked aside) with its shape.
func resnet50FPNShapes() -> [(String, [Int])] {
    var shapes = [(String, [Int])]()
    func conv(_ name: String, _ out: Int, _ inC: Int, _ k: Int) { shapes.append((name + ".weight", [out, inC, k, k])) }
    func norm(_ name: String, _ c: Int) {
        for p in ["weight", "bias", "running_mean", "running_var"] { shapes.append(("\(name).\(p)", [c])) }
    }
    conv("backbone.body.conv1", 64, 3, 7)
    norm("backbone.body.bn1", 64)
    var inC = 64
    for (l, (blocks, width)) in zip([3, 4, 6, 3], [64, 128, 256, 512]).enumerated() {
        for b in 0..<blocks {
            let p = "backbone.body.layer\(l + 1).\(b)"
            conv(p + ".conv1", width, inC, 1); norm(p + ".bn1", width)
            conv(p + ".conv2", width, width, 3); norm(p + ".bn2", width)
            conv(p + ".conv3", 4 * width, width, 1); norm(p + ".bn3", 4 * width)
            if b == 0 { conv(p + ".downsample.0", 4 * width, inC, 1); norm(p + ".downsample.1", 4 * width) }
            inC = 4 * width
        }
    }
    for (i, c) in [256, 512, 1024, 2048].enumerated() {
        shapes.append(("backbone.fpn.inner_blocks.\(i).0.weight", [256, c, 1, 1]))
        shapes.append(("backbone.fpn.inner_blocks.\(i).0.bias", [256]))
        shapes.append(("backbone.fpn.layer_blocks.\(i).0.weight", [256, 256, 3, 3]))
        shapes.append(("backbone.fpn.layer_blocks.\(i).0.bias", [256]))
    }
    return shapes
}

/// Weights whose features can be worked out by hand: every convolution of the body is zero and every norm is zero
/// except bn3.bias = 1, so each bottleneck outputs relu(1 + identity) and a downsample branch outputs 0: layer l's
/// output is its block count (C2...C5 = 3, 4, 6, 3). The FPN's inner 1x1 convolutions average the channels
/// (weights 1/C, exact), so top-down inner_3 = 3, inner_2 = 6 + 3 = 9, inner_1 = 4 + 9 = 13, inner_0 = 3 + 13 = 16;
/// its 3x3 convolutions copy their input (centre tap identity) and add bias[c] = c. So level "0" is 16 + c, "1" 13 + c,
/// "2" 9 + c, "3" and "pool" 3 + c, for every pixel of channel c.
func handCheckedBackboneWeights() -> [String: WeightStore.Entry] {
    var entries = [String: WeightStore.Entry]()
    for (name, shape) in resnet50FPNShapes() {
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        if name.hasSuffix(".bn3.bias") {
            values = values.map { _ in 1 }
        } else if name.hasPrefix("backbone.fpn.inner_blocks.") && name.hasSuffix(".weight") {
            values = values.map { _ in 1 / Float(shape[1]) }
        } else if name.hasPrefix("backbone.fpn.layer_blocks.") && name.hasSuffix(".weight") {
            for c in 0..<256 { values[((c * 256 + c) * 3 + 1) * 3 + 1] = 1 }
        } else if name.hasPrefix("backbone.fpn.layer_blocks.") && name.hasSuffix(".bias") {
            values = (0..<256).map(Float.init)
        }
        entries[name] = WeightStore.Entry(shape: shape, values: values)
    }
    // The RPN and box heads of a 91-class Faster R-CNN, all zero: the model is built strictly from every key.
    for (name, shape) in fasterRCNNHeadShapes {
        entries[name] = WeightStore.Entry(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
    }
    return entries
}

/// The 14 rpn.* and roi_heads.* keys of torchvision's fasterrcnn_resnet50_fpn (91 classes) and their shapes.
let fasterRCNNHeadShapes: [(String, [Int])] = [
    ("rpn.head.conv.0.0.weight", [256, 256, 3, 3]), ("rpn.head.conv.0.0.bias", [256]),
    ("rpn.head.cls_logits.weight", [3, 256, 1, 1]), ("rpn.head.cls_logits.bias", [3]),
    ("rpn.head.bbox_pred.weight", [12, 256, 1, 1]), ("rpn.head.bbox_pred.bias", [12]),
    ("roi_heads.box_head.fc6.weight", [1024, 12544]), ("roi_heads.box_head.fc6.bias", [1024]),
    ("roi_heads.box_head.fc7.weight", [1024, 1024]), ("roi_heads.box_head.fc7.bias", [1024]),
    ("roi_heads.box_predictor.cls_score.weight", [91, 1024]), ("roi_heads.box_predictor.cls_score.bias", [91]),
    ("roi_heads.box_predictor.bbox_pred.weight", [364, 1024]), ("roi_heads.box_predictor.bbox_pred.bias", [364]),
]

/// The per-level offsets of `handCheckedBackboneWeights` ("0", "1", "2", "3", "pool").
let handCheckedLevelOffsets: [Float] = [16, 13, 9, 3, 3]
