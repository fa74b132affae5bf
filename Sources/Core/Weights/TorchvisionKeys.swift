/// torchvision's state-dict names, and the shapes its modules give their parameters, for `fasterrcnn_resnet50_fpn`
/// and `maskrcnn_resnet50_fpn`: the one place that spells them out. The model's parts (Detection/) take their
/// weights through these keys; the test-only stage exports (ABI/Testing) check with them the shapes that size a
/// part.
///
/// Prefixes end in "." and name a module (e.g. "roi_heads.box_head.fc6."); a part is built with the prefix of its
/// parent, so every function here takes that prefix and appends the torchvision attribute path of the module.
public enum TorchvisionKeys {
    /// `GeneralizedRCNN`'s parts: `backbone` (`BackboneWithFPN`), `rpn` and `roi_heads`.
    public static let backbone = "backbone."
    public static let rpn = "rpn."
    public static let roiHeads = "roi_heads."

    /// BatchNorm's step counter: present in torchvision's checkpoints, unused in eval mode, so never "unexpected".
    static let batchNormCounter = "num_batches_tracked"

    /// One state-dict entry: its key and the shape torchvision gives it.
    struct Parameter: Sendable {
        let key: String
        let shape: [Int]
    }

    /// The `weight` and `bias` of a `Conv2d`, `ConvTranspose2d` or `Linear` under `prefix`.
    struct LayerKeys: Sendable {
        let prefix: String

        var weightKey: String { prefix + "weight" }
        var biasKey: String { prefix + "bias" }

        /// `Conv2d(in, out, kernel)`: weight (out, in, kernel, kernel).
        func convWeight(in inChannels: Int, out: Int, kernel: Int) -> Parameter {
            Parameter(key: weightKey, shape: [out, inChannels, kernel, kernel])
        }

        /// `ConvTranspose2d(in, out, kernel)`: weight (in, out, kernel, kernel).
        func convTransposeWeight(in inChannels: Int, out: Int, kernel: Int) -> Parameter {
            Parameter(key: weightKey, shape: [inChannels, out, kernel, kernel])
        }

        /// `Linear(in, out)`: weight (out, in).
        func linearWeight(in inFeatures: Int, out: Int) -> Parameter {
            Parameter(key: weightKey, shape: [out, inFeatures])
        }

        /// Any of the three: bias (out,).
        func bias(_ out: Int) -> Parameter { Parameter(key: biasKey, shape: [out]) }
    }

    /// A bias-free `Conv2d` (under `conv`) and the `BatchNorm2d` / `FrozenBatchNorm2d` after it (under `norm`).
    struct ConvBatchNormKeys: Sendable {
        let conv: LayerKeys
        let norm: String

        /// The norm's weight, bias, running_mean and running_var, each (channels,).
        func normParameters(
            channels: Int
        )
            -> (weight: Parameter, bias: Parameter, runningMean: Parameter, runningVar: Parameter)
        {
            (
                Parameter(key: norm + "weight", shape: [channels]), Parameter(key: norm + "bias", shape: [channels]),
                Parameter(key: norm + "running_mean", shape: [channels]),
                Parameter(key: norm + "running_var", shape: [channels])
            )
        }
    }

    /// `BackboneWithFPN` under `backbone`: the ResNet `body` and the `fpn`.
    enum Backbone {
        static func body(_ backbone: String) -> String { backbone + "body." }
        static func fpn(_ backbone: String) -> String { backbone + "fpn." }
    }

    /// torchvision's `ResNet` under `body`.
    enum ResNet {
        /// conv1 and bn1.
        static func stem(_ body: String) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: LayerKeys(prefix: body + "conv1."), norm: body + "bn1.")
        }

        /// Bottleneck `index` of layer `layer` (0-based: torchvision's layer1 is 0).
        static func block(_ body: String, layer: Int, index: Int) -> String { "\(body)layer\(layer + 1).\(index)." }

        /// convN and bnN (N = 1, 2, 3) of a bottleneck.
        static func conv(_ block: String, _ n: Int) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: LayerKeys(prefix: block + "conv\(n)."), norm: block + "bn\(n).")
        }

        /// A bottleneck's downsample branch: `Sequential(conv, norm)`.
        static func downsample(_ block: String) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: LayerKeys(prefix: block + "downsample.0."), norm: block + "downsample.1.")
        }
    }

    /// `FeaturePyramidNetwork` under `fpn`: per level i, `inner_blocks[i]` (1x1) and `layer_blocks[i]` (3x3), each a
    /// `Conv2dNormActivation` whose convolution is its item 0.
    enum FPN {
        static func inner(_ fpn: String, _ level: Int) -> LayerKeys {
            LayerKeys(prefix: "\(fpn)inner_blocks.\(level).0.")
        }
        static func output(_ fpn: String, _ level: Int) -> LayerKeys {
            LayerKeys(prefix: "\(fpn)layer_blocks.\(level).0.")
        }
        /// The batch norms of the v2 models' FPN (item 1 of each `Conv2dNormActivation`).
        static func innerNorm(_ fpn: String, _ level: Int) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: inner(fpn, level), norm: "\(fpn)inner_blocks.\(level).1.")
        }
        static func outputNorm(_ fpn: String, _ level: Int) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: output(fpn, level), norm: "\(fpn)layer_blocks.\(level).1.")
        }
    }

    /// `RPNHead` under `rpn` (its attribute `head`): the shared 3x3 `conv` (item 0 of item 0 of a `Sequential` of
    /// `Conv2dNormActivation`s) and the 1x1 `cls_logits` and `bbox_pred`.
    enum RPNHead {
        static func conv(_ rpn: String) -> LayerKeys { LayerKeys(prefix: rpn + "head.conv.0.0.") }
        /// Convolution `i` of a deeper head (`conv_depth` > 1, the v2 models).
        static func conv(_ rpn: String, _ i: Int) -> LayerKeys { LayerKeys(prefix: rpn + "head.conv.\(i).0.") }
        static func clsLogits(_ rpn: String) -> LayerKeys { LayerKeys(prefix: rpn + "head.cls_logits.") }
        static func bboxPred(_ rpn: String) -> LayerKeys { LayerKeys(prefix: rpn + "head.bbox_pred.") }
    }

    /// The box branch under `roi_heads`: `TwoMLPHead` (`box_head`: fc6, fc7) and `FastRCNNPredictor`
    /// (`box_predictor`: cls_score, bbox_pred).
    enum BoxHead {
        static func fc6(_ roiHeads: String) -> LayerKeys { LayerKeys(prefix: roiHeads + "box_head.fc6.") }
        static func fc7(_ roiHeads: String) -> LayerKeys { LayerKeys(prefix: roiHeads + "box_head.fc7.") }
        static func clsScore(_ roiHeads: String) -> LayerKeys {
            LayerKeys(prefix: roiHeads + "box_predictor.cls_score.")
        }
        static func bboxPred(_ roiHeads: String) -> LayerKeys {
            LayerKeys(prefix: roiHeads + "box_predictor.bbox_pred.")
        }
    }

    /// The mask branch under `roi_heads`: `MaskRCNNHeads` (`mask_head`: layer i is a `Conv2dNormActivation` whose
    /// 3x3 convolution is its item 0) and `MaskRCNNPredictor` (`mask_predictor`: conv5_mask, a 2x2 transposed
    /// convolution, and the 1x1 mask_fcn_logits).
    enum MaskHead {
        static func layer(_ roiHeads: String, _ i: Int) -> LayerKeys {
            LayerKeys(prefix: "\(roiHeads)mask_head.\(i).0.")
        }
        /// Layer i with its batch norm (item 1; the v2 models).
        static func layerNorm(_ roiHeads: String, _ i: Int) -> ConvBatchNormKeys {
            ConvBatchNormKeys(conv: layer(roiHeads, i), norm: "\(roiHeads)mask_head.\(i).1.")
        }
        static func conv5Mask(_ roiHeads: String) -> LayerKeys {
            LayerKeys(prefix: roiHeads + "mask_predictor.conv5_mask.")
        }
        static func logits(_ roiHeads: String) -> LayerKeys {
            LayerKeys(prefix: roiHeads + "mask_predictor.mask_fcn_logits.")
        }
    }
}

extension WeightStore {
    /// `take(_:shape:)` of a parameter named by `TorchvisionKeys`.
    mutating func take(_ parameter: TorchvisionKeys.Parameter) -> [Float] {
        take(parameter.key, shape: parameter.shape)
    }
}
