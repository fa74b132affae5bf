import SwiftRCNNOps

/// An `nn.Sequential` of convolutions, batch norms, ReLUs, max-pools, ResNet layers (torchvision's `_make_layer`
/// stacks of bottlenecks), global average pooling, flattening, linear layers and nested Sequentials, in eval mode:
/// each batch norm is folded into the convolution before it, and each ReLU that follows a convolution (or its norm)
/// or a linear layer runs in that layer's output pass. A backbone (VGG's `features`, ResNet's stem and layer1–3,
/// or a small custom network; its last map is the feature level "0") or a box head (ResNet's layer4, pooled and
/// flattened).
///
/// State-dict keys are the Sequential's: `<prefix><index>.weight` (and `.bias`) for a convolution or linear layer at
/// `index`, `<prefix><index>.{weight, bias, running_mean, running_var}` for a norm, `<prefix><index>.<block>.conv1.*`
/// etc. for a ResNet layer, `<prefix><index>.<inner index>...` for a nested Sequential; ReLUs, pools and flattens
/// hold no weights but count in the indices.
///
/// Flattened values are maps of shape (N, F, 1, 1).
public struct SequentialNetwork: Sendable {
    /// One computing step; convolutions and linear layers carry the torchvision tensors they were built from
    /// (the trainer adds their gradients there), a ResNet layer the key prefix of each bottleneck.
    enum Step: Sendable {
        case conv(Conv2d, ConvolutionParameters)
        case relu
        case maxPool(kernel: Int, stride: Int, padding: Int)
        case bottlenecks([Bottleneck], prefixes: [String])
        case globalAveragePool
        case flatten
        case linear(Linear, ConvolutionParameters)
        case nested(SequentialNetwork)
    }

    let steps: [Step]

    /// `layers` must have passed `Architecture.validate`.
    init(layers: [Architecture.SequentialLayer], weights: inout WeightStore, prefix: String) {
        var steps = [Step]()
        var i = 0
        // Whether the layer after `i` is a ReLU (then fused and skipped).
        func fusesReLU(_ i: Int) -> Bool {
            if i + 1 < layers.count, case .relu = layers[i + 1] { return true }
            return false
        }
        while i < layers.count {
            let at = prefix + "\(i)."
            switch layers[i] {
            case .conv2d(let inC, let outC, let k, let s, let p, let hasBias):
                let keys = TorchvisionKeys.LayerKeys(prefix: at)
                var w = weights.take(keys.convWeight(in: inC, out: outC, kernel: k))
                var b = hasBias ? weights.take(keys.bias(outC)) : nil
                var scale: [Float]? = nil
                if i + 1 < layers.count, case .batchNorm2d(let n, let eps) = layers[i + 1] {
                    let norm = TorchvisionKeys.ConvBatchNormKeys(conv: keys, norm: prefix + "\(i + 1).")
                        .normParameters(channels: n)
                    let (gamma, variance) = (weights.take(norm.weight), weights.take(norm.runningVar))
                    let folded = Conv2d(
                        weight: w, bias: b, inChannels: inC, outChannels: outC, kernel: (k, k), winograd: false
                    )
                    .foldingBatchNorm(
                        gamma: gamma, beta: weights.take(norm.bias), mean: weights.take(norm.runningMean),
                        variance: variance, eps: Float(eps), winograd: false)
                    (w, b) = (folded.weight, folded.bias)
                    scale = Conv2d.batchNormScale(gamma: gamma, variance: variance, eps: Float(eps))
                    i += 1
                }
                let parameters = ConvolutionParameters(
                    weight: keys.weightKey, bias: hasBias ? keys.biasKey : nil, scale: scale)
                let relu = fusesReLU(i)
                if relu { i += 1 }
                steps.append(
                    .conv(
                        Conv2d(
                            weight: w, bias: b, inChannels: inC, outChannels: outC, kernel: (k, k), stride: s,
                            padding: p, relu: relu), parameters))
            case .linear(let inF, let outF, let hasBias):
                let keys = TorchvisionKeys.LayerKeys(prefix: at)
                let w = weights.take(keys.linearWeight(in: inF, out: outF))
                let b = hasBias ? weights.take(keys.bias(outF)) : nil
                let relu = fusesReLU(i)
                if relu { i += 1 }
                steps.append(
                    .linear(
                        Linear(weight: w, bias: b, inFeatures: inF, outFeatures: outF, relu: relu),
                        ConvolutionParameters(weight: keys.weightKey, bias: hasBias ? keys.biasKey : nil, scale: nil)))
            case .resNetLayer(let inC, let width, let blocks, let stride):
                var c = inC
                var layer = [Bottleneck]()
                let prefixes = (0..<blocks).map { at + "\($0)." }
                for b in 0..<blocks {
                    let first = b == 0
                    layer.append(
                        Bottleneck(
                            &weights, prefix: prefixes[b], inChannels: c, width: width, stride: first ? stride : 1,
                            downsample: first && (stride != 1 || inC != width * ResNet50.expansion)))
                    c = width * ResNet50.expansion
                }
                steps.append(.bottlenecks(layer, prefixes: prefixes))
            case .relu: steps.append(.relu)
            case .maxPool2d(let k, let s, let p): steps.append(.maxPool(kernel: k, stride: s, padding: p))
            case .adaptiveAvgPool2d: steps.append(.globalAveragePool)
            case .flatten: steps.append(.flatten)
            case .sequential(let inner):
                steps.append(.nested(SequentialNetwork(layers: inner, weights: &weights, prefix: at)))
            case .batchNorm2d: preconditionFailure("SequentialNetwork: a batch norm must follow a convolution")
            }
            i += 1
        }
        self.steps = steps
    }

    /// Runs the layers; throws when a layer's output would be empty (an input too small for the network's kernels
    /// and strides).
    public func callAsFunction(_ x: consuming FeatureMap) throws -> FeatureMap {
        var y = x
        for step in steps { y = try Self.apply(step, consume y) }
        return y
    }

    /// One step's output.
    static func apply(_ step: Step, _ x: consuming FeatureMap) throws -> FeatureMap {
        var y = x
        switch step {
        case .conv(let conv, _):
            try Self.checkSize(
                (y.height + 2 * conv.padding - conv.kernelH) / conv.stride + 1,
                (y.width + 2 * conv.padding - conv.kernelW) / conv.stride + 1, y)
            y = conv(consume y)
        case .relu:
            y.data.withUnsafeMutableBufferPointer { d in
                for j in d.indices where d[j] < 0 { d[j] = 0 }
            }
        case .maxPool(let k, let s, let p):
            let ho = (y.height + 2 * p - k) / s + 1, wo = (y.width + 2 * p - k) / s + 1
            try Self.checkSize(ho, wo, y)
            let src = y
            y = src.data.withUnsafeBufferPointer { d in
                FeatureMap(batch: src.batch, channels: src.channels, height: ho, width: wo) { out in
                    MaxPool2d.forward(
                        d.baseAddress!, planes: src.batch * src.channels, height: src.height,
                        width: src.width, kernel: k, stride: s, padding: p, into: out.baseAddress!)
                }
            }
        case .bottlenecks(let blocks, _):
            for block in blocks {
                let s = block.conv2.stride
                try Self.checkSize((y.height - 1) / s + 1, (y.width - 1) / s + 1, y)
                y = block(consume y)
            }
        case .globalAveragePool:
            let src = y
            y = src.data.withUnsafeBufferPointer { d in
                FeatureMap(batch: src.batch, channels: src.channels, height: 1, width: 1) { out in
                    let plane = src.plane
                    Parallel.forEachChunk(src.batch * src.channels, minItemsPerChunk: 256) { range in
                        for q in range {
                            var sum: Float = 0
                            for j in 0..<plane { sum += d[q * plane + j] }
                            out[q] = sum / Float(plane)
                        }
                    }
                }
            }
        case .flatten:
            y = FeatureMap(
                batch: y.batch, channels: y.channels * y.plane, height: 1, width: 1, data: y.data)
        case .linear(let linear, _):
            let rows = y.batch
            y = FeatureMap(
                batch: rows, channels: linear.outFeatures, height: 1, width: 1, data: linear(y.data, rows: rows))
        case .nested(let inner):
            y = try inner(consume y)
        }
        return y
    }

    static func checkSize(_ ho: Int, _ wo: Int, _ x: FeatureMap) throws {
        guard ho >= 1 && wo >= 1 else {
            throw SwiftRCNNError.invalidValue(
                "images: a map of \(x.height) x \(x.width) at this layer is too small for the network's kernels")
        }
    }
}

/// The backbone of a `DetectionModel`: torchvision's ResNet-50-FPN or a sequential network.
public enum DetectorBackbone: Sendable {
    case resnet50FPN(ResNet50FPN)
    case mobileNetV3LargeFPN(MobileNetV3LargeFPN)
    case sequential(SequentialNetwork)

    init(_ architecture: Architecture, weights: inout WeightStore, prefix: String) {
        switch architecture.backbone {
        case .resnet50FPN:
            self = .resnet50FPN(ResNet50FPN(weights: &weights, prefix: prefix, fpnNorm: architecture.fpnNorm))
        case .mobileNetV3LargeFPN:
            self = .mobileNetV3LargeFPN(MobileNetV3LargeFPN(weights: &weights, prefix: prefix))
        case .sequential(let layers):
            self = .sequential(SequentialNetwork(layers: layers, weights: &weights, prefix: prefix))
        }
    }

    /// The feature levels, in `Architecture.levelNames` order.
    public func callAsFunction(_ x: consuming FeatureMap) throws -> [FeatureMap] {
        switch self {
        case .resnet50FPN(let b): return b(consume x)
        case .mobileNetV3LargeFPN(let b): return b(consume x)
        case .sequential(let b): return [try b(consume x)]
        }
    }

    /// The ResNet-50-FPN backbone (the trainer's), or nil.
    public var resnet50FPN: ResNet50FPN? {
        if case .resnet50FPN(let b) = self { return b }
        return nil
    }
}
