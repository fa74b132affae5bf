/// The parts of a two-stage detector that differ between models, chosen independently as torchvision's
/// `FasterRCNN(backbone, num_classes, rpn_anchor_generator=..., box_roi_pool=..., box_head=...)` /
/// `MaskRCNN(...)` choose them: the backbone, the anchor generator, the box and mask poolers and the heads' sizes.
/// The default is `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn`.
///
/// It crosses the C ABI as JSON (`init(json:)`); every member is optional there and defaults to the ResNet-50-FPN
/// model's:
/// ```
/// {"backbone": {"type": "resnet50_fpn"}
///            | {"type": "sequential", "layers": [{"type": "conv2d", "in_channels": 3, "out_channels": 64,
///                 "kernel_size": 3, "stride": 1, "padding": 1, "bias": true}, {"type": "relu"},
///                 {"type": "batch_norm2d", "num_features": 64, "eps": 1e-5},
///                 {"type": "max_pool2d", "kernel_size": 2, "stride": 2, "padding": 0}, ...]},
///  "anchor_sizes": [[32], [64], ...], "aspect_ratios": [[0.5, 1.0, 2.0], ...],
///  "box_roi_pool": {"type": "multi_scale_roi_align", "featmap_names": ["0", ...], "output_size": 7,
///                   "sampling_ratio": 2}
///                | {"type": "roi_pool", "featmap_name": "0", "output_size": 7, "spatial_scale": 0.0625},
///  "box_head": {"type": "two_mlp_head", "representation_size": 1024},
///  "mask_roi_pool": {"type": "multi_scale_roi_align", ...}, "mask_head": {"layers": [256, 256, 256, 256]},
///  "mask_predictor": {"dim_reduced": 256}, "legacy": false}
/// ```
/// A "sequential" backbone is an `nn.Sequential` described module by module, so its state-dict keys are
/// `backbone.<index>.weight` etc. as torchvision's for that Sequential; its output is the one feature map "0".
public struct Architecture: Sendable, Equatable {
    public enum Backbone: Sendable, Equatable {
        /// torchvision's `resnet_fpn_backbone("resnet50")`: levels "0", "1", "2", "3", "pool", 256 channels.
        case resnet50FPN
        /// torchvision's `mobilenet_backbone("mobilenet_v3_large", fpn=True)`: levels "0", "1", "pool", 256
        /// channels (`fasterrcnn_mobilenet_v3_large_fpn`).
        case mobileNetV3LargeFPN
        /// An `nn.Sequential` of the layers below; one output level "0".
        case sequential([SequentialLayer])
    }

    /// One module of a sequential network (a backbone or a box head).
    public indirect enum SequentialLayer: Sendable, Equatable {
        case conv2d(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, bias: Bool)
        /// `BatchNorm2d` (eval mode) or `FrozenBatchNorm2d`: folded into the convolution before it.
        case batchNorm2d(features: Int, eps: Double)
        case relu
        /// `MaxPool2d(kernel_size, stride, padding)` with ceil_mode False and dilation 1.
        case maxPool2d(kernel: Int, stride: Int, padding: Int)
        /// torchvision's ResNet `_make_layer(Bottleneck, width, blocks, stride)` from `inChannels` (frozen norms):
        /// `blocks` bottlenecks, the first with the stride and a downsample branch when the shape changes.
        case resNetLayer(inChannels: Int, width: Int, blocks: Int, stride: Int)
        /// `AdaptiveAvgPool2d(1)` (global average pooling).
        case adaptiveAvgPool2d
        /// `Flatten()` (from dimension 1).
        case flatten
        case linear(inFeatures: Int, outFeatures: Int, bias: Bool)
        /// A nested `nn.Sequential` (keys `<index>.<inner index>...`).
        case sequential([SequentialLayer])
    }

    /// The box head: torchvision's `TwoMLPHead` or a sequential network ending flat (e.g. ResNet's layer4, average
    /// pooling and flattening, as in the C4 model).
    public enum BoxHead: Sendable, Equatable {
        case twoMLPHead(representationSize: Int)
        case sequential([SequentialLayer])
    }

    /// How the RoI heads pool a region from the feature maps.
    public enum Pooler: Sendable, Equatable {
        /// torchvision's `MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)`: scales inferred from the
        /// maps' sizes, FPN level mapping when there are several.
        case multiScaleRoIAlign(featmapNames: [String], outputSize: Int, samplingRatio: Int)
        /// `torchvision.ops.roi_pool(features[featmap_name], proposals, output_size, spatial_scale)`.
        case roiPool(featmapName: String, outputSize: Int, spatialScale: Double)

        public var outputSize: Int {
            switch self {
            case .multiScaleRoIAlign(_, let s, _), .roiPool(_, let s, _): return s
            }
        }
    }

    public var backbone: Backbone = .resnet50FPN
    /// The FPN's convolutions are followed by batch norms (the v2 models: `norm_layer=BatchNorm2d`).
    public var fpnNorm = false
    /// RPNHead's `conv_depth` (2 in the v2 models).
    public var rpnConvDepth = 1
    /// Anchor sizes and aspect ratios per feature level (AnchorGenerator's); nil: torchvision's defaults for the
    /// backbone — ((32,), (64,), (128,), (256,), (512,)) × (0.5, 1, 2) for the FPN, ((128, 256, 512),) ×
    /// ((0.5, 1, 2),) for a single map.
    public var anchorSizes: [[Float]]? = nil
    public var aspectRatios: [[Float]]? = nil
    public var boxRoIPool = Pooler.multiScaleRoIAlign(
        featmapNames: ["0", "1", "2", "3"], outputSize: 7, samplingRatio: 2)
    public var boxHead = BoxHead.twoMLPHead(representationSize: 1024)
    public var maskRoIPool = Pooler.multiScaleRoIAlign(
        featmapNames: ["0", "1", "2", "3"], outputSize: 14, samplingRatio: 2)
    /// MaskRCNNHeads' 3x3 convolutions' channels, and MaskRCNNPredictor's `dim_reduced`.
    public var maskLayers = [256, 256, 256, 256]
    public var maskDimReduced = 256
    /// MaskRCNNHeads' convolutions are followed by batch norms (the v2 models).
    public var maskHeadNorm = false
    /// Keypoint R-CNN: the keypoint pooler, KeypointRCNNHeads' 3x3 convolutions (keys keypoint_head.0, .2, ...)
    /// and KeypointRCNNPredictor's keypoint count.
    public var keypointRoIPool = Pooler.multiScaleRoIAlign(
        featmapNames: ["0", "1", "2", "3"], outputSize: 14, samplingRatio: 2)
    public var keypointLayers = [Int](repeating: 512, count: 8)
    public var numKeypoints = 17
    /// faster-rcnn.pytorch's conventions (`legacy=True`): "+1" pixel arithmetic in box decoding, clipping and NMS,
    /// py-faster-rcnn's anchor table, a minimum proposal size, its per-class postprocessing and image threshold
    /// (`RegionProposalNetwork.legacyProposals`, `RoIHeads.legacyDetect`). Faster R-CNN on one feature map, eval
    /// mode only.
    public var legacy = false

    public init() {}

    /// Whether this is torchvision's ResNet-50-FPN model (the one the trainer and the initialiser cover).
    public var isResNet50FPN: Bool { self == Architecture() }

    /// Names of the backbone's output levels, in order.
    public var levelNames: [String] {
        switch backbone {
        case .resnet50FPN: return ResNet50FPN.levelNames
        case .mobileNetV3LargeFPN: return MobileNetV3LargeFPN.levelNames
        case .sequential: return ["0"]
        }
    }

    /// Channels of every output level.
    public var outChannels: Int {
        switch backbone {
        case .resnet50FPN, .mobileNetV3LargeFPN: return FeaturePyramidNetwork.outChannels
        case .sequential(let layers): return (try? Self.trace(layers, Shape(channels: 3), "")).map(\.channels) ?? 0
        }
    }

    /// Features per RoI the box head gives (the predictor's input).
    public var representationSize: Int {
        switch boxHead {
        case .twoMLPHead(let r): return r
        case .sequential(let layers):
            let s = boxRoIPool.outputSize
            return (try? Self.trace(layers, Shape(channels: outChannels, side: (s, s)), "")).map(\.channels) ?? 0
        }
    }

    /// What flows between layers while validating: channels (features once flat) and, when known, the spatial size.
    struct Shape {
        var channels: Int
        var side: (Int, Int)? = nil
        var flat = false
    }

    /// The shape after `layers`, or an error naming the first layer that does not fit.
    static func trace(_ layers: [SequentialLayer], _ input: Shape, _ path: String) throws -> Shape {
        try require(
            !layers.isEmpty && layers.count <= maxLayers,
            "\(path): expected 1...\(maxLayers) layers, got \(layers.count)")
        var x = input
        func spatial(_ k: Int, _ s: Int, _ p: Int, _ at: String) throws {
            guard let (h, w) = x.side else { return }
            let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            try require(
                h + 2 * p >= k && w + 2 * p >= k, "\(at): a \(h) x \(w) input is smaller than the kernel \(k)")
            x.side = (ho, wo)
        }
        for (i, layer) in layers.enumerated() {
            let at = "\(path)[\(i)]"
            if case .linear = layer {
            } else if case .flatten = layer {
            } else if case .relu = layer {
            } else {
                try require(!x.flat, "\(at): a map layer after flatten")
            }
            switch layer {
            case .conv2d(let inC, let outC, let k, let s, let pad, _):
                try require(
                    inC == x.channels, "\(at): conv2d in_channels is \(inC) but the layer before gives \(x.channels)")
                try require((1...maxChannels).contains(outC), "\(at): out_channels out of range: \(outC)")
                try require((1...maxKernel).contains(k), "\(at): kernel_size out of range: \(k)")
                try require((1...maxKernel).contains(s), "\(at): stride out of range: \(s)")
                try require((0...maxKernel).contains(pad), "\(at): padding out of range: \(pad)")
                try spatial(k, s, pad, at)
                x.channels = outC
            case .batchNorm2d(let n, let eps):
                try require(
                    n == x.channels, "\(at): batch_norm2d num_features is \(n) but the layer before gives \(x.channels)"
                )
                try require(eps > 0 && eps.isFinite, "\(at): eps must be a positive number, got \(eps)")
                guard i > 0, case .conv2d = layers[i - 1] else {
                    throw SwiftRCNNError.invalidValue("\(at): batch_norm2d must follow a conv2d (it is folded into it)")
                }
            case .relu: break
            case .maxPool2d(let k, let s, let pad):
                try require((1...maxKernel).contains(k), "\(at): kernel_size out of range: \(k)")
                try require((1...maxKernel).contains(s), "\(at): stride out of range: \(s)")
                try require(pad >= 0 && 2 * pad <= k, "\(at): padding must be in [0, kernel_size / 2], got \(pad)")
                try spatial(k, s, pad, at)
            case .resNetLayer(let inC, let width, let blocks, let stride):
                try require(
                    inC == x.channels,
                    "\(at): resnet_layer in_channels is \(inC) but the layer before gives \(x.channels)")
                try require((1...maxChannels / 4).contains(width), "\(at): width out of range: \(width)")
                try require((1...maxLayers).contains(blocks), "\(at): blocks out of range: \(blocks)")
                try require((1...2).contains(stride), "\(at): stride must be 1 or 2, got \(stride)")
                try spatial(3, stride, 1, at)
                x.channels = width * ResNet50.expansion
            case .adaptiveAvgPool2d:
                x.side = (1, 1)
            case .flatten:
                if !x.flat {
                    guard let (h, w) = x.side else {
                        throw SwiftRCNNError.invalidValue("\(at): flatten in a backbone (it must end with a map)")
                    }
                    x.channels *= h * w
                    x.side = (1, 1)
                    x.flat = true
                }
            case .linear(let inF, let outF, _):
                try require(x.flat, "\(at): linear needs a flattened input (add a flatten before it)")
                try require(
                    inF == x.channels, "\(at): linear in_features is \(inF) but the layer before gives \(x.channels)")
                try require((1...maxChannels).contains(outF), "\(at): out_features out of range: \(outF)")
                x.channels = outF
            case .sequential(let inner):
                x = try trace(inner, x, "\(at).layers")
            }
        }
        return x
    }

    public var resolvedAnchorSizes: [[Float]] {
        if let anchorSizes { return anchorSizes }
        switch backbone {
        case .resnet50FPN: return [[32], [64], [128], [256], [512]]
        case .mobileNetV3LargeFPN: return Array(repeating: [32, 64, 128, 256, 512], count: 3)
        case .sequential: return [[128, 256, 512]]
        }
    }

    public var resolvedAspectRatios: [[Float]] {
        if let aspectRatios { return aspectRatios }
        return Array(repeating: [0.5, 1, 2], count: resolvedAnchorSizes.count)
    }

    /// Largest layer count, channel count, kernel or pooled size accepted: far beyond real models, small enough
    /// that products of them stay far from overflow.
    static let maxLayers = 1024, maxChannels = 1 << 16, maxKernel = 64, maxPooled = 256

    /// Throws `invalidValue` naming the first inconsistent member ("architecture.<member>: ...").
    public func validate(masks: Bool, keypoints: Bool = false) throws {
        let p = "architecture"
        if legacy {
            try require(
                !masks && !keypoints, "\(p).legacy: faster-rcnn.pytorch's conventions are for Faster R-CNN only")
            try require(
                levelNames.count == 1, "\(p).legacy: faster-rcnn.pytorch's conventions need a single-map backbone")
        }
        if case .sequential(let layers) = backbone {
            let out = try Self.trace(layers, Shape(channels: 3), "\(p).backbone.layers")
            try require(!out.flat, "\(p).backbone.layers: the backbone must end with a map, not flattened features")
            try require(
                out.channels != 3 || layers.contains { if case .conv2d = $0 { true } else { false } },
                "\(p).backbone.layers: no conv2d")
        }
        if fpnNorm {
            guard case .resnet50FPN = backbone else {
                throw SwiftRCNNError.invalidValue("\(p).backbone.fpn_norm: only for the resnet50_fpn backbone")
            }
        }
        try require((1...16).contains(rpnConvDepth), "\(p).rpn_head.conv_depth: expected 1...16, got \(rpnConvDepth)")
        let sizes = resolvedAnchorSizes, ratios = resolvedAspectRatios
        let levels = levelNames.count
        try require(
            sizes.count == levels,
            "\(p).anchor_sizes: the backbone has \(levels) feature map(s), expected as many lists, got \(sizes.count)")
        try require(
            ratios.count == levels,
            "\(p).aspect_ratios: the backbone has \(levels) feature map(s), expected as many lists, got \(ratios.count)"
        )
        let counts = zip(sizes, ratios).map { $0.count * $1.count }
        try require(
            counts.allSatisfy { $0 == counts[0] && $0 > 0 && $0 <= 4096 },
            "\(p).anchor_sizes / aspect_ratios: every level needs the same number (1...4096) of anchors, got \(counts)")
        try require(
            sizes.joined().allSatisfy { $0.isFinite && $0 > 0 }, "\(p).anchor_sizes: expected positive numbers")
        try require(
            ratios.joined().allSatisfy { $0.isFinite && $0 > 0 }, "\(p).aspect_ratios: expected positive numbers")
        try validate(boxRoIPool, "\(p).box_roi_pool")
        switch boxHead {
        case .twoMLPHead(let r):
            try require((1...Self.maxChannels).contains(r), "\(p).box_head.representation_size out of range: \(r)")
        case .sequential(let layers):
            let s = boxRoIPool.outputSize
            let out = try Self.trace(layers, Shape(channels: outChannels, side: (s, s)), "\(p).box_head.layers")
            try require(
                out.flat || out.side.map { $0 == (1, 1) } == true,
                "\(p).box_head.layers: the box head must end with flattened features (add a flatten)")
        }
        if keypoints {
            try validate(keypointRoIPool, "\(p).keypoint_roi_pool")
            guard case .multiScaleRoIAlign = keypointRoIPool else {
                throw SwiftRCNNError.invalidValue(
                    "\(p).keypoint_roi_pool: keypoints are pooled with multi_scale_roi_align")
            }
            try require(
                !keypointLayers.isEmpty && keypointLayers.count <= Self.maxLayers
                    && keypointLayers.allSatisfy { (1...Self.maxChannels).contains($0) },
                "\(p).keypoint_head.layers: expected 1...\(Self.maxLayers) channel counts, got \(keypointLayers)")
            try require(
                (1...4096).contains(numKeypoints),
                "\(p).keypoint_predictor.num_keypoints: expected 1...4096, got \(numKeypoints)")
        }
        if masks {
            try validate(maskRoIPool, "\(p).mask_roi_pool")
            guard case .multiScaleRoIAlign = maskRoIPool else {
                throw SwiftRCNNError.invalidValue(
                    "\(p).mask_roi_pool: Mask R-CNN pools masks with multi_scale_roi_align")
            }
            try require(
                !maskLayers.isEmpty && maskLayers.count <= Self.maxLayers
                    && maskLayers.allSatisfy { (1...Self.maxChannels).contains($0) },
                "\(p).mask_head.layers: expected 1...\(Self.maxLayers) channel counts, got \(maskLayers)")
            try require(
                (1...Self.maxChannels).contains(maskDimReduced),
                "\(p).mask_predictor.dim_reduced out of range: \(maskDimReduced)")
        }
    }

    private func validate(_ pooler: Pooler, _ name: String) throws {
        let names = levelNames
        switch pooler {
        case .multiScaleRoIAlign(let featmaps, let size, let ratio):
            try require(!featmaps.isEmpty, "\(name).featmap_names: expected at least one name")
            // torchvision's MultiScaleRoIAlign pools from the named maps the backbone has (`resolved`).
            try require(
                featmaps.contains(where: names.contains),
                "\(name).featmap_names: none of \(featmaps) is a backbone level (\(names))")
            try require(Set(featmaps).count == featmaps.count, "\(name).featmap_names: a name appears twice")
            try require((1...Self.maxPooled).contains(size), "\(name).output_size out of range: \(size)")
            try require((-1...Self.maxPooled).contains(ratio), "\(name).sampling_ratio out of range: \(ratio)")
        case .roiPool(let f, let size, let scale):
            try require(names.contains(f), "\(name).featmap_name: '\(f)' is not a backbone level (\(names))")
            try require((1...Self.maxPooled).contains(size), "\(name).output_size out of range: \(size)")
            try require(scale.isFinite && scale > 0, "\(name).spatial_scale: expected a positive number, got \(scale)")
        }
    }

    /// `pooler` restricted to the maps the backbone has, as torchvision's MultiScaleRoIAlign filters its input
    /// (the default ["0", "1", "2", "3"] pools from "0" and "1" of a MobileNet FPN).
    public func resolved(_ pooler: Pooler) -> Pooler {
        guard case .multiScaleRoIAlign(let featmaps, let size, let ratio) = pooler else { return pooler }
        return .multiScaleRoIAlign(
            featmapNames: featmaps.filter(levelNames.contains), outputSize: size, samplingRatio: ratio)
    }

    /// Indices in `levelNames` of a multi-scale pooler's feature maps, or the RoIPool's one.
    func levelIndices(_ pooler: Pooler) -> [Int] {
        let names = levelNames
        switch pooler {
        case .multiScaleRoIAlign(let featmaps, _, _): return featmaps.map { names.firstIndex(of: $0)! }
        case .roiPool(let f, _, _): return [names.firstIndex(of: f)!]
        }
    }
}

extension Architecture {
    /// Reads the JSON description above (unknown members are an error, so a misspelt one is not ignored).
    public init(json text: String) throws {
        self.init()
        let root = try JSON(parsing: text, name: "architecture")
        let reader = JSONReader(root, "architecture")
        try reader.only([
            "backbone", "anchor_sizes", "aspect_ratios", "rpn_head", "box_roi_pool", "box_head", "mask_roi_pool",
            "mask_head", "mask_predictor", "keypoint_roi_pool", "keypoint_head", "keypoint_predictor", "legacy",
        ])
        if let b = try reader.object("backbone") {
            try b.only(["type", "layers", "fpn_norm"])
            switch try b.string("type") {
            case "resnet50_fpn":
                try require(b.value["layers"] == nil, "architecture.backbone.layers: only for a sequential backbone")
                backbone = .resnet50FPN
                fpnNorm = try b.bool("fpn_norm", default: false)
            case "mobilenet_v3_large_fpn":
                try b.only(["type"])
                backbone = .mobileNetV3LargeFPN
            case "sequential":
                try require(b.value["fpn_norm"] == nil, "architecture.backbone.fpn_norm: only for resnet50_fpn")
                let layers = try b.array("layers").map { try Self.sequentialLayer($0) }
                backbone = .sequential(layers)
            case let other:
                throw SwiftRCNNError.invalidValue(
                    "architecture.backbone.type: expected 'resnet50_fpn', 'mobilenet_v3_large_fpn' or 'sequential', "
                        + "got '\(other)'")
            }
        }
        legacy = try reader.bool("legacy", default: false)
        if let h = try reader.object("rpn_head") {
            try h.only(["conv_depth"])
            rpnConvDepth = try h.int("conv_depth", default: 1)
        }
        if reader.value["anchor_sizes"] != nil { anchorSizes = try reader.numberLists("anchor_sizes") }
        if reader.value["aspect_ratios"] != nil { aspectRatios = try reader.numberLists("aspect_ratios") }
        if let p = try reader.object("box_roi_pool") { boxRoIPool = try Self.pooler(p) }
        if let h = try reader.object("box_head") {
            switch try h.string("type") {
            case "two_mlp_head":
                try h.only(["type", "representation_size"])
                boxHead = .twoMLPHead(representationSize: try h.int("representation_size"))
            case "sequential":
                try h.only(["type", "layers"])
                boxHead = .sequential(try h.array("layers").map { try Self.sequentialLayer($0) })
            case let other:
                throw SwiftRCNNError.invalidValue(
                    "architecture.box_head.type: expected 'two_mlp_head' or 'sequential', got '\(other)'")
            }
        }
        if let p = try reader.object("mask_roi_pool") { maskRoIPool = try Self.pooler(p) }
        if let h = try reader.object("mask_head") {
            try h.only(["layers", "norm"])
            maskLayers = try h.array("layers").map { try $0.asInt() }
            maskHeadNorm = try h.bool("norm", default: false)
        }
        if let p = try reader.object("keypoint_roi_pool") { keypointRoIPool = try Self.pooler(p) }
        if let h = try reader.object("keypoint_head") {
            try h.only(["layers"])
            keypointLayers = try h.array("layers").map { try $0.asInt() }
        }
        if let h = try reader.object("keypoint_predictor") {
            try h.only(["num_keypoints"])
            numKeypoints = try h.int("num_keypoints")
        }
        if let h = try reader.object("mask_predictor") {
            try h.only(["dim_reduced"])
            maskDimReduced = try h.int("dim_reduced")
        }
    }

    private static func sequentialLayer(_ r: JSONReader) throws -> SequentialLayer {
        switch try r.string("type") {
        case "conv2d":
            try r.only(["type", "in_channels", "out_channels", "kernel_size", "stride", "padding", "bias"])
            return .conv2d(
                inChannels: try r.int("in_channels"), outChannels: try r.int("out_channels"),
                kernel: try r.int("kernel_size"), stride: try r.int("stride", default: 1),
                padding: try r.int("padding", default: 0), bias: try r.bool("bias", default: true))
        case "batch_norm2d":
            try r.only(["type", "num_features", "eps"])
            return .batchNorm2d(features: try r.int("num_features"), eps: try r.number("eps", default: 1e-5))
        case "relu":
            try r.only(["type"])
            return .relu
        case "max_pool2d":
            try r.only(["type", "kernel_size", "stride", "padding"])
            let k = try r.int("kernel_size")
            return .maxPool2d(
                kernel: k, stride: try r.int("stride", default: k), padding: try r.int("padding", default: 0))
        case "resnet_layer":
            try r.only(["type", "in_channels", "width", "blocks", "stride"])
            return .resNetLayer(
                inChannels: try r.int("in_channels"), width: try r.int("width"), blocks: try r.int("blocks"),
                stride: try r.int("stride", default: 1))
        case "adaptive_avg_pool2d":
            try r.only(["type", "output_size"])
            let size = try r.int("output_size", default: 1)
            try require(size == 1, "\(r.name).output_size: only 1 (global average pooling) is supported, got \(size)")
            return .adaptiveAvgPool2d
        case "flatten":
            try r.only(["type"])
            return .flatten
        case "linear":
            try r.only(["type", "in_features", "out_features", "bias"])
            return .linear(
                inFeatures: try r.int("in_features"), outFeatures: try r.int("out_features"),
                bias: try r.bool("bias", default: true))
        case "sequential":
            try r.only(["type", "layers"])
            return .sequential(try r.array("layers").map { try sequentialLayer($0) })
        case let other:
            throw SwiftRCNNError.invalidValue(
                "\(r.name).type: expected one of conv2d, batch_norm2d, relu, max_pool2d, resnet_layer, "
                    + "adaptive_avg_pool2d, flatten, linear, sequential; got '\(other)'")
        }
    }

    private static func pooler(_ r: JSONReader) throws -> Pooler {
        switch try r.string("type") {
        case "multi_scale_roi_align":
            try r.only(["type", "featmap_names", "output_size", "sampling_ratio"])
            let names = try r.array("featmap_names").map { try $0.asString() }
            return .multiScaleRoIAlign(
                featmapNames: names, outputSize: try r.int("output_size"),
                samplingRatio: try r.int("sampling_ratio", default: 2))
        case "roi_pool":
            try r.only(["type", "featmap_name", "output_size", "spatial_scale"])
            return .roiPool(
                featmapName: try r.string("featmap_name", default: "0"), outputSize: try r.int("output_size"),
                spatialScale: try r.number("spatial_scale"))
        case let other:
            throw SwiftRCNNError.invalidValue(
                "\(r.name).type: expected 'multi_scale_roi_align' or 'roi_pool', got '\(other)'")
        }
    }
}

/// Typed access to a JSON value with messages naming its path.
struct JSONReader {
    let value: JSON
    let name: String

    init(_ value: JSON, _ name: String) {
        self.value = value
        self.name = name
    }

    func member(_ key: String) -> JSONReader? {
        value[key].map { JSONReader($0, "\(name).\(key)") }
    }

    func only(_ keys: Set<String>) throws {
        guard case .object(let members) = value else {
            throw SwiftRCNNError.invalidValue("\(name): expected a JSON object")
        }
        if let unknown = members.first(where: { !keys.contains($0.0) }) {
            throw SwiftRCNNError.invalidValue(
                "\(name): unknown member '\(unknown.0)' (expected one of \(keys.sorted().joined(separator: ", ")))")
        }
    }

    func object(_ key: String) throws -> JSONReader? {
        guard let m = member(key) else { return nil }
        guard case .object = m.value else { throw SwiftRCNNError.invalidValue("\(m.name): expected a JSON object") }
        return m
    }

    func required(_ key: String) throws -> JSONReader {
        guard let m = member(key) else { throw SwiftRCNNError.invalidValue("\(name): missing member '\(key)'") }
        return m
    }

    func array(_ key: String) throws -> [JSONReader] {
        let m = try required(key)
        guard case .array(let items) = m.value else { throw SwiftRCNNError.invalidValue("\(m.name): expected a list") }
        return items.enumerated().map { JSONReader($1, "\(m.name)[\($0)]") }
    }

    func asString() throws -> String {
        guard case .string(let s) = value else { throw SwiftRCNNError.invalidValue("\(name): expected a string") }
        return s
    }

    func asNumber() throws -> Double {
        guard case .number(let v) = value else { throw SwiftRCNNError.invalidValue("\(name): expected a number") }
        return v
    }

    func asInt() throws -> Int {
        let v = try asNumber()
        guard v == v.rounded(), abs(v) <= Double(1 << 31) else {
            throw SwiftRCNNError.invalidValue("\(name): expected an int, got \(v)")
        }
        return Int(v)
    }

    func string(_ key: String, default d: String? = nil) throws -> String {
        if d != nil, member(key) == nil { return d! }
        return try required(key).asString()
    }

    func number(_ key: String, default d: Double? = nil) throws -> Double {
        if let d, member(key) == nil { return d }
        return try required(key).asNumber()
    }

    func int(_ key: String, default d: Int? = nil) throws -> Int {
        if let d, member(key) == nil { return d }
        return try required(key).asInt()
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let m = member(key) else { return d }
        guard case .bool(let b) = m.value else {
            throw SwiftRCNNError.invalidValue("\(m.name): expected true or false")
        }
        return b
    }

    /// A list of lists of numbers, e.g. anchor sizes per level.
    func numberLists(_ key: String) throws -> [[Float]] {
        try array(key).map { level in
            guard case .array(let items) = level.value else {
                throw SwiftRCNNError.invalidValue("\(level.name): expected a list of numbers")
            }
            return try items.enumerated().map { Float(try JSONReader($1, "\(level.name)[\($0)]").asNumber()) }
        }
    }
}
