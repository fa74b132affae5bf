import SwiftRCNNOps

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The parameters torchvision's constructors give `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn` (and the
/// general builder's models, `tensors(architecture:kind:numClasses:)`), drawn from
/// our seeded generator: the same distribution for every tensor, other values (torch's generator cannot be
/// reproduced).
///
/// What each constructor does (torchvision 0.29; `fan_in`, `fan_out` as `Scheme.fans` computes them):
/// - `ResNet`: every `Conv2d` `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, N(0, 2 / fan_out). The norms
///   are those of a backbone built for pretrained weights, `FrozenBatchNorm2d`, whose buffers start at weight 1,
///   bias 0, running_mean 0, running_var 1 (the `BatchNorm2d` built without weights starts the same).
/// - `FeaturePyramidNetwork`: every `Conv2d` `kaiming_uniform_(a=1)`, U(±√(3 / fan_in)); biases 0.
/// - `RPNHead`: every `Conv2d` (the 3x3 conv, cls_logits, bbox_pred) `normal_(std=0.01)`; biases 0.
/// - `TwoMLPHead` (fc6, fc7) and `FastRCNNPredictor` (cls_score, bbox_pred): `nn.Linear`'s own `reset_parameters`,
///   `kaiming_uniform_(a=√5)` = U(±1/√fan_in) for the weight and U(±1/√fan_in) for the bias.
/// - `MaskRCNNHeads`: every `Conv2d` `kaiming_normal_(mode="fan_out", nonlinearity="relu")`; biases 0.
/// - `MaskRCNNPredictor`: both weights (conv5_mask, a `ConvTranspose2d`, and mask_fcn_logits)
///   `kaiming_normal_(mode="fan_out", nonlinearity="relu")`; the biases keep their layer's default, U(±1/√fan_in)
///   (torchvision's zeroing of them is commented out).
///
/// A tensor is drawn in blocks of `blockSize` values, block `b` of tensor `name` from its own `Xoshiro256StarStar`
/// seeded by `seed ^ FNV-1a(name, b)`: a tensor's values depend on the seed and its name alone (the predictors
/// re-initialised for a new `num_classes` are those of the whole model from the same seed), blocks fill in parallel,
/// and the result does not depend on the thread count.
public enum TorchvisionInit {
    /// How a tensor's values are drawn, each independently.
    public enum Scheme: Equatable, Sendable {
        /// Every value `value` (`constant_`, `zeros_`, and the buffers' initial ones and zeros).
        case constant(Float)
        /// N(0, std²) (`normal_`, `kaiming_normal_`): Box–Muller in Double, rounded to Float.
        case normal(std: Double)
        /// U(-bound, bound) (`uniform_`, `kaiming_uniform_`), rounded to Float (so |value| <= Float(bound)).
        case uniform(bound: Double)

        /// torch's `_calculate_fan_in_and_fan_out`: shape[1] and shape[0] times the receptive field (the product of
        /// the other dimensions). For a `ConvTranspose2d` weight, (in, out, k, k), fan_in is thus out·k² and
        /// fan_out in·k², as torch computes them.
        public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
            let receptiveField = shape.dropFirst(2).reduce(1, *)
            return (shape[1] * receptiveField, shape[0] * receptiveField)
        }

        /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`: std = gain / √fan_out with relu's gain √2.
        static func kaimingNormalReLUFanOut(_ shape: [Int]) -> Scheme {
            .normal(std: (2 / Double(fans(shape).fanOut)).squareRoot())
        }

        /// `kaiming_uniform_(a=a)` (mode fan_in, leaky_relu): bound = gain·√(3 / fan_in), gain = √(2 / (1 + a²)).
        static func kaimingUniform(_ shape: [Int], a: Double) -> Scheme {
            .uniform(bound: (2 / (1 + a * a) * 3 / Double(fans(shape).fanIn)).squareRoot())
        }

        /// The bias of a `Linear` / `Conv2d` / `ConvTranspose2d` from its `reset_parameters`: U(±1/√fan_in), fan_in
        /// of the layer's weight.
        static func defaultBias(weight shape: [Int]) -> Scheme {
            .uniform(bound: 1 / Double(fans(shape).fanIn).squareRoot())
        }

        /// The weight of a layer from its `reset_parameters`: `kaiming_uniform_(a=√5)`, i.e. U(±1/√fan_in).
        static func defaultWeight(_ shape: [Int]) -> Scheme { kaimingUniform(shape, a: 5.squareRoot()) }
    }

    /// One state-dict entry, its torchvision shape and how torchvision initialises it.
    public struct Tensor: Sendable {
        public let name: String
        public let shape: [Int]
        public let scheme: Scheme

        public var count: Int { shape.reduce(1, *) }
    }

    /// Values per random stream (see the type's documentation): 64 Ki values, ~1.5 ms of drawing (22 ns a value,
    /// measured on one core), so the few large tensors (fc6 has 12.8 M values) split over threads and the many small
    /// ones stay one block each.
    static let blockSize = 1 << 16

    /// Every key of torchvision's state dict for `kind` and `numClasses` (FrozenBatchNorm2d: no
    /// num_batches_tracked), in its order, with its shape and scheme. Sizes are the model's (ResNet50,
    /// FeaturePyramidNetwork, RPNConfig and RoIHeadsConfig defaults), keys `TorchvisionKeys`'.
    public static func tensors(kind: DetectionModel.Kind, numClasses: Int) -> [Tensor] {
        try! tensors(architecture: Architecture(), kind: kind, numClasses: numClasses)
    }

    /// `tensors(kind:numClasses:)` for the general builder's models. A sequential network's layers start as
    /// torchvision's modules do: `Conv2d` and `Linear` by their `reset_parameters` (U(±1/√fan_in) weights and
    /// biases), batch norms at weight 1, bias 0, running_mean 0, running_var 1 (no num_batches_tracked), and a
    /// ResNet layer as `ResNet` initialises it (convolutions `kaiming_normal_` fan_out). Throws for the parts
    /// training does not cover (norms in the FPN or the mask head, a deeper RPN head, Keypoint R-CNN).
    public static func tensors(
        architecture: Architecture, kind: DetectionModel.Kind, numClasses: Int
    ) throws
        -> [Tensor]
    {
        try require(kind != .keypointRCNN, "kind: initialisation covers Faster and Mask R-CNN")
        try require(
            architecture.rpnConvDepth == 1 && !architecture.fpnNorm && !architecture.maskHeadNorm,
            "architecture: initialisation covers RPN heads of one convolution and no batch norms in the FPN or the "
                + "mask head")
        var tensors = [Tensor]()
        func add(_ parameter: TorchvisionKeys.Parameter, _ scheme: Scheme) {
            tensors.append(Tensor(name: parameter.key, shape: parameter.shape, scheme: scheme))
        }
        /// A layer's weight, drawn by `scheme`, and its bias of `out` values, drawn by `bias` (the layer's default
        /// when nil).
        func layer(
            _ keys: TorchvisionKeys.LayerKeys, _ weight: TorchvisionKeys.Parameter, out: Int,
            _ scheme: ([Int]) -> Scheme, bias: Scheme? = nil
        ) {
            add(weight, scheme(weight.shape))
            add(keys.bias(out), bias ?? .defaultBias(weight: weight.shape))
        }
        func norm(_ keys: TorchvisionKeys.ConvBatchNormKeys, channels: Int) {
            let norm = keys.normParameters(channels: channels)
            add(norm.weight, .constant(1))
            add(norm.bias, .constant(0))
            add(norm.runningMean, .constant(0))
            add(norm.runningVar, .constant(1))
        }
        func convNorm(_ keys: TorchvisionKeys.ConvBatchNormKeys, in inChannels: Int, out: Int, kernel: Int) {
            let weight = keys.conv.convWeight(in: inChannels, out: out, kernel: kernel)
            add(weight, .kaimingNormalReLUFanOut(weight.shape))
            norm(keys, channels: out)
        }
        typealias ResNetKeys = TorchvisionKeys.ResNet
        /// torchvision's `_make_layer` bottlenecks under `prefix` (`<prefix><block>.conv1` ...).
        func bottlenecks(_ prefix: String, in inChannels: Int, width: Int, blocks: Int, stride: Int) -> Int {
            var c = inChannels
            let out = width * ResNet50.expansion
            for b in 0..<blocks {
                let block = prefix + "\(b)."
                convNorm(ResNetKeys.conv(block, 1), in: c, out: width, kernel: 1)
                convNorm(ResNetKeys.conv(block, 2), in: width, out: width, kernel: 3)
                convNorm(ResNetKeys.conv(block, 3), in: width, out: out, kernel: 1)
                if b == 0 && (stride != 1 || c != out) {
                    convNorm(ResNetKeys.downsample(block), in: c, out: out, kernel: 1)
                }
                c = out
            }
            return c
        }
        /// The modules of a Sequential under `prefix`.
        func sequential(_ layers: [Architecture.SequentialLayer], prefix: String) {
            for (i, l) in layers.enumerated() {
                let at = prefix + "\(i)."
                let keys = TorchvisionKeys.LayerKeys(prefix: at)
                switch l {
                case .conv2d(let inC, let outC, let k, _, _, let hasBias):
                    let weight = keys.convWeight(in: inC, out: outC, kernel: k)
                    add(weight, .defaultWeight(weight.shape))
                    if hasBias { add(keys.bias(outC), .defaultBias(weight: weight.shape)) }
                case .batchNorm2d(let n, _):
                    norm(TorchvisionKeys.ConvBatchNormKeys(conv: keys, norm: at), channels: n)
                case .linear(let inF, let outF, let hasBias):
                    let weight = keys.linearWeight(in: inF, out: outF)
                    add(weight, .defaultWeight(weight.shape))
                    if hasBias { add(keys.bias(outF), .defaultBias(weight: weight.shape)) }
                case .resNetLayer(let inC, let width, let blocks, let stride):
                    _ = bottlenecks(at, in: inC, width: width, blocks: blocks, stride: stride)
                case .sequential(let inner):
                    sequential(inner, prefix: at)
                case .relu, .maxPool2d, .adaptiveAvgPool2d, .flatten:
                    break
                }
            }
        }

        switch architecture.backbone {
        case .resnet50FPN:
            // ResNet body.
            let body = TorchvisionKeys.Backbone.body(TorchvisionKeys.backbone)
            let stemChannels = ResNet50.widths[0]
            convNorm(ResNetKeys.stem(body), in: 3, out: stemChannels, kernel: 7)
            var inChannels = stemChannels
            for (l, (count, width)) in zip(ResNet50.blocks, ResNet50.widths).enumerated() {
                inChannels = bottlenecks(
                    "\(body)layer\(l + 1).", in: inChannels, width: width, blocks: count, stride: l == 0 ? 1 : 2)
            }
            // FPN.
            let fpn = TorchvisionKeys.Backbone.fpn(TorchvisionKeys.backbone), c = FeaturePyramidNetwork.outChannels
            let fpnScheme = { (shape: [Int]) in Scheme.kaimingUniform(shape, a: 1) }
            for (i, n) in ResNet50.outChannels.enumerated() {
                let keys = TorchvisionKeys.FPN.inner(fpn, i)
                layer(keys, keys.convWeight(in: n, out: c, kernel: 1), out: c, fpnScheme, bias: .constant(0))
            }
            for i in ResNet50.outChannels.indices {
                let keys = TorchvisionKeys.FPN.output(fpn, i)
                layer(keys, keys.convWeight(in: c, out: c, kernel: 3), out: c, fpnScheme, bias: .constant(0))
            }
        case .sequential(let layers):
            sequential(layers, prefix: TorchvisionKeys.backbone)
        case .mobileNetV3LargeFPN:
            throw SwiftRCNNError.invalidValue(
                "architecture.backbone: initialisation covers ResNet-50-FPN and sequential backbones")
        }
        let channels = architecture.outChannels

        // RPN head.
        let rpnPrefix = TorchvisionKeys.rpn
        let anchors = architecture.resolvedAnchorSizes[0].count * architecture.resolvedAspectRatios[0].count
        let rpnScheme = { (_: [Int]) in Scheme.normal(std: 0.01) }
        for (keys, out, kernel) in [
            (TorchvisionKeys.RPNHead.conv(rpnPrefix), channels, 3),
            (TorchvisionKeys.RPNHead.clsLogits(rpnPrefix), anchors, 1),
            (TorchvisionKeys.RPNHead.bboxPred(rpnPrefix), 4 * anchors, 1),
        ] {
            layer(
                keys, keys.convWeight(in: channels, out: out, kernel: kernel), out: out, rpnScheme,
                bias: .constant(0))
        }

        // Box head and predictor: nn.Linear's defaults.
        let roiHeads = TorchvisionKeys.roiHeads
        let pooled = channels * architecture.boxRoIPool.outputSize * architecture.boxRoIPool.outputSize
        let r = architecture.representationSize
        typealias Box = TorchvisionKeys.BoxHead
        switch architecture.boxHead {
        case .twoMLPHead:
            for (keys, inFeatures, out) in [(Box.fc6(roiHeads), pooled, r), (Box.fc7(roiHeads), r, r)] {
                layer(keys, keys.linearWeight(in: inFeatures, out: out), out: out, Scheme.defaultWeight)
            }
        case .sequential(let layers):
            sequential(layers, prefix: roiHeads + "box_head.")
        }
        for (keys, out) in [(Box.clsScore(roiHeads), numClasses), (Box.bboxPred(roiHeads), 4 * numClasses)] {
            layer(keys, keys.linearWeight(in: r, out: out), out: out, Scheme.defaultWeight)
        }
        guard kind == .maskRCNN else { return tensors }

        // Mask head and predictor.
        typealias Mask = TorchvisionKeys.MaskHead
        var c = channels
        for (i, out) in architecture.maskLayers.enumerated() {
            let keys = Mask.layer(roiHeads, i)
            layer(
                keys, keys.convWeight(in: c, out: out, kernel: 3), out: out, Scheme.kaimingNormalReLUFanOut,
                bias: .constant(0))
            c = out
        }
        let reduced = architecture.maskDimReduced
        let upsample = Mask.conv5Mask(roiHeads), logits = Mask.logits(roiHeads)
        layer(
            upsample, upsample.convTransposeWeight(in: c, out: reduced, kernel: 2), out: reduced,
            Scheme.kaimingNormalReLUFanOut)
        layer(
            logits, logits.convWeight(in: reduced, out: numClasses, kernel: 1), out: numClasses,
            Scheme.kaimingNormalReLUFanOut)
        return tensors
    }

    /// The predictor tensors whose shapes depend on `num_classes`, re-initialised when a checkpoint is loaded for
    /// another number of classes: the box predictor's cls_score and bbox_pred and, for Mask R-CNN, the mask
    /// predictor's last layer, mask_fcn_logits.
    public static func predictorKeys(kind: DetectionModel.Kind) -> [String] {
        let roiHeads = TorchvisionKeys.roiHeads
        var layers = [TorchvisionKeys.BoxHead.clsScore(roiHeads), TorchvisionKeys.BoxHead.bboxPred(roiHeads)]
        if kind == .maskRCNN { layers.append(TorchvisionKeys.MaskHead.logits(roiHeads)) }
        return layers.flatMap { [$0.weightKey, $0.biasKey] }
    }

    /// The state dict torchvision's constructor would give the model (values drawn from `seed`), restricted to the
    /// keys `only` accepts when given. Throws `invalidValue` when `numClasses` is outside 1 ... 2^20.
    ///
    /// Parallel over the blocks of each tensor; the values do not depend on the thread count.
    public static func state(
        kind: DetectionModel.Kind, numClasses: Int, seed: UInt64, architecture: Architecture = Architecture(),
        only: ((String) -> Bool)? = nil
    ) throws -> [String: WeightStore.Entry] {
        try require(
            numClasses >= 1 && numClasses <= DetectionModel.Config.maxClasses,
            "num_classes: expected an int in [1, \(DetectionModel.Config.maxClasses)], got \(numClasses)")
        var state = [String: WeightStore.Entry]()
        for tensor in try tensors(architecture: architecture, kind: kind, numClasses: numClasses)
        where only?(tensor.name) ?? true {
            state[tensor.name] = WeightStore.Entry(shape: tensor.shape, values: values(of: tensor, seed: seed))
        }
        return state
    }

    /// The values of `tensor` drawn from `seed` (see the type's documentation).
    static func values(of tensor: Tensor, seed: UInt64) -> [Float] {
        let n = tensor.count
        if case .constant(let value) = tensor.scheme { return [Float](repeating: value, count: n) }
        let blocks = (n + blockSize - 1) / blockSize
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            Parallel.forEachChunk(blocks) { range in
                for b in range {
                    let start = b * blockSize
                    var rng = Xoshiro256StarStar(seed: seed ^ streamKey(tensor.name, block: b))
                    draw(
                        tensor.scheme, &rng,
                        into: UnsafeMutableBufferPointer(rebasing: buffer[start..<min(start + blockSize, n)]))
                }
            }
            initialized = n
        }
    }

    /// FNV-1a (64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3) of the name's UTF-8 bytes and the
    /// block index's 8 bytes: a hash that is the same in every process (Swift's `Hasher` is seeded per process).
    static func streamKey(_ name: String, block: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt64) { hash = (hash ^ byte) &* 0x100_0000_01b3 }
        for byte in name.utf8 { mix(UInt64(byte)) }
        for shift in stride(from: 0, to: 64, by: 8) { mix(UInt64(truncatingIfNeeded: block >> shift) & 0xff) }
        return hash
    }

    /// Fills `out` with independent draws of `scheme` (not `.constant`).
    static func draw(_ scheme: Scheme, _ rng: inout Xoshiro256StarStar, into out: UnsafeMutableBufferPointer<Float>) {
        /// A uniform Double in [0, 1): the top 53 bits of a draw.
        func unit() -> Double { Double(rng.next() >> 11) * 0x1p-53 }
        switch scheme {
        case .constant(let value):
            out.update(repeating: value)
        case .uniform(let bound):
            for i in out.indices { out[i] = Float(bound * (2 * unit() - 1)) }
        case .normal(let std):
            // Box–Muller: for u1 in (0, 1] and u2 in [0, 1), √(-2 ln u1)·(cos 2πu2, sin 2πu2) are two independent
            // standard normals.
            var i = out.startIndex
            while i < out.endIndex {
                let radius = std * (-2 * log(1 - unit())).squareRoot(), angle = 2 * Double.pi * unit()
                out[i] = Float(radius * cos(angle))
                if i + 1 < out.endIndex { out[i + 1] = Float(radius * sin(angle)) }
                i += 2
            }
        }
    }
}
