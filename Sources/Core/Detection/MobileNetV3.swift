import SwiftRCNNOps

/// The activations of MobileNetV3 (torch's CPU formulas): hardsigmoid(x) = min(max(x + 3, 0), 6) / 6 and
/// hardswish(x) = x · min(max(x + 3, 0), 6) / 6; ReLU.
enum Activation: Sendable {
    case relu, hardswish

    func apply(_ x: inout FeatureMap) {
        let kind = self
        x.data.withUnsafeMutableBufferPointer { d in
            let p = d.baseAddress!
            Parallel.forEachChunk(d.count, minItemsPerChunk: 1 << 16) { range in
                switch kind {
                case .relu: VectorMath.relu(p + range.lowerBound, count: range.count)
                case .hardswish: VectorMath.hardswish(p + range.lowerBound, count: range.count)
                }
            }
        }
    }

    static func hardsigmoid(_ x: Float) -> Float { min(max(x + 3, 0), 6) / 6 }
}

/// A depthwise convolution (groups = channels) with its batch norm folded in.
struct DepthwiseConv2d: Sendable {
    let channels: Int, kernel: Int, stride: Int
    let weight: [Float], bias: [Float]

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        let p = (kernel - 1) / 2
        let ho = (x.height + 2 * p - kernel) / stride + 1, wo = (x.width + 2 * p - kernel) / stride + 1
        return x.data.withUnsafeBufferPointer { xb in
            weight.withUnsafeBufferPointer { wb in
                bias.withUnsafeBufferPointer { bb in
                    FeatureMap(batch: x.batch, channels: channels, height: ho, width: wo) { out in
                        Depthwise.forward(
                            xb.baseAddress!, weight: wb.baseAddress!, bias: bb.baseAddress!, batch: x.batch,
                            channels: channels, height: x.height, width: x.width, kernel: kernel, stride: stride,
                            padding: p, into: out.baseAddress!)
                    }
                }
            }
        }
    }
}

/// torchvision's `SqueezeExcitation` of MobileNetV3: x · hardsigmoid(fc2(relu(fc1(mean over the plane of x)))),
/// fc1 and fc2 1 × 1 convolutions with biases.
struct SqueezeExcitation: Sendable {
    let fc1: Linear, fc2: Linear

    func callAsFunction(_ x: inout FeatureMap) {
        let planes = x.batch * x.channels, plane = x.plane
        var pooled = [Float](repeating: 0, count: planes)
        x.data.withUnsafeBufferPointer { d in
            for q in 0..<planes {
                var sum: Float = 0
                for j in 0..<plane { sum += d[q * plane + j] }
                pooled[q] = sum / Float(plane)
            }
        }
        let scale = fc2(fc1(pooled, rows: x.batch), rows: x.batch).map(Activation.hardsigmoid)
        x.data.withUnsafeMutableBufferPointer { d in
            let p = d.baseAddress!
            Parallel.forEachChunk(planes, minItemsPerChunk: max(1, 16384 / max(1, plane))) { range in
                for q in range {
                    let s = scale[q]
                    for j in 0..<plane { p[q * plane + j] *= s }
                }
            }
        }
    }
}

/// torchvision's MobileNetV3 `InvertedResidual` with its batch norms folded: expand (1 × 1, when the expanded
/// width differs), depthwise k × k (stride s), squeeze-and-excitation (optional), project (1 × 1, no activation),
/// plus the input when the stride is 1 and the widths match.
struct InvertedResidual: Sendable {
    let expand: Conv2d?
    let depthwise: DepthwiseConv2d
    let se: SqueezeExcitation?
    let project: Conv2d
    let activation: Activation
    let residual: Bool

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        var y = x
        if let expand {
            y = expand(y)
            activation.apply(&y)
        }
        y = depthwise(y)
        activation.apply(&y)
        se?(&y)
        return residual ? project(y, adding: x) : project(y)
    }
}

/// torchvision's `mobilenet_v3_large` features with `_mobilenet_extractor(fpn=True)` and a two-level
/// `FeaturePyramidNetwork` (256 channels, `LastLevelMaxPool`): the outputs of features[13] (160 channels) and
/// features[16] (960), both at stride 32, give FPN levels "0" and "1", and "pool" is "1" subsampled. Keys:
/// `<prefix>body.<i>.block.<j>.{0, 1}` (convolution and norm of each Conv2dNormActivation; `fc1` / `fc2` for
/// the squeeze-and-excitation at its position j), `<prefix>body.0.{0, 1}` (stem), `<prefix>body.16.{0, 1}` (last
/// convolution), `<prefix>fpn.*`.
public struct MobileNetV3LargeFPN: Sendable {
    public static let levelNames = ["0", "1", "pool"]

    /// torchvision's `inverted_residual_setting` of MobileNetV3-Large: input, kernel, expanded, output channels,
    /// squeeze-and-excitation, hardswish (else ReLU), stride.
    static let blocks: [(Int, Int, Int, Int, Bool, Bool, Int)] = [
        (16, 3, 16, 16, false, false, 1), (16, 3, 64, 24, false, false, 2), (24, 3, 72, 24, false, false, 1),
        (24, 5, 72, 40, true, false, 2), (40, 5, 120, 40, true, false, 1), (40, 5, 120, 40, true, false, 1),
        (40, 3, 240, 80, false, true, 2), (80, 3, 200, 80, false, true, 1), (80, 3, 184, 80, false, true, 1),
        (80, 3, 184, 80, false, true, 1), (80, 3, 480, 112, true, true, 1), (112, 3, 672, 112, true, true, 1),
        (112, 5, 672, 160, true, true, 2), (160, 5, 960, 160, true, true, 1), (160, 5, 960, 160, true, true, 1),
    ]
    /// The features whose outputs feed the FPN (`_mobilenet_extractor`'s last two stages).
    static let returned = [13, 16]

    let stem: Conv2d
    let body: [InvertedResidual]
    let last: Conv2d
    let fpn: FeaturePyramidNetwork

    /// torchvision's `_make_divisible(v, 8)`: the squeeze width of an expanded width (v = expanded / 4).
    static func squeezeChannels(_ expanded: Int) -> Int {
        let v = expanded / 4, divisor = 8
        var n = max(divisor, (v + divisor / 2) / divisor * divisor)
        if Double(n) < 0.9 * Double(v) { n += divisor }
        return n
    }

    public init(weights: inout WeightStore, prefix: String) {
        let body = prefix + "body."
        func convNorm(_ at: String, _ inC: Int, _ outC: Int, _ k: Int, stride: Int = 1) -> Conv2d {
            convolutionWithBatchNorm(
                &weights,
                TorchvisionKeys.ConvBatchNormKeys(conv: TorchvisionKeys.LayerKeys(prefix: at + "0."), norm: at + "1."),
                inChannels: inC, outChannels: outC, kernel: k, stride: stride, padding: (k - 1) / 2, relu: false)
        }
        stem = convNorm(body + "0.", 3, 16, 3, stride: 2)
        var blocks = [InvertedResidual]()
        for (i, (inC, k, exp, outC, useSE, hs, stride)) in Self.blocks.enumerated() {
            let at = body + "\(i + 1).block."
            var j = 0
            var expand: Conv2d? = nil
            if exp != inC {
                expand = convNorm(at + "\(j).", inC, exp, 1)
                j += 1
            }
            // The depthwise convolution and its norm, folded.
            let dwKeys = TorchvisionKeys.LayerKeys(prefix: at + "\(j).0.")
            let norm = TorchvisionKeys.ConvBatchNormKeys(conv: dwKeys, norm: at + "\(j).1.").normParameters(
                channels: exp)
            let folded = Conv2d(
                weight: weights.take(dwKeys.convWeight(in: 1, out: exp, kernel: k)), bias: nil, inChannels: exp,
                outChannels: exp, kernel: (k, k), groups: exp, winograd: false
            )
            .foldingBatchNorm(
                gamma: weights.take(norm.weight), beta: weights.take(norm.bias), mean: weights.take(norm.runningMean),
                variance: weights.take(norm.runningVar), eps: batchNormEps, winograd: false)
            let depthwise = DepthwiseConv2d(
                channels: exp, kernel: k, stride: stride, weight: folded.weight, bias: folded.bias!)
            j += 1
            var se: SqueezeExcitation? = nil
            if useSE {
                let sq = Self.squeezeChannels(exp)
                let fc1 = TorchvisionKeys.LayerKeys(prefix: at + "\(j).fc1.")
                let fc2 = TorchvisionKeys.LayerKeys(prefix: at + "\(j).fc2.")
                se = SqueezeExcitation(
                    fc1: Linear(
                        weight: weights.take(fc1.convWeight(in: exp, out: sq, kernel: 1)),
                        bias: weights.take(fc1.bias(sq)), inFeatures: exp, outFeatures: sq, relu: true),
                    fc2: Linear(
                        weight: weights.take(fc2.convWeight(in: sq, out: exp, kernel: 1)),
                        bias: weights.take(fc2.bias(exp)), inFeatures: sq, outFeatures: exp))
                j += 1
            }
            let project = convNorm(at + "\(j).", exp, outC, 1)
            blocks.append(
                InvertedResidual(
                    expand: expand, depthwise: depthwise, se: se, project: project,
                    activation: hs ? .hardswish : .relu, residual: stride == 1 && inC == outC))
        }
        self.body = blocks
        last = convNorm(body + "16.", 160, 960, 1)
        fpn = FeaturePyramidNetwork(weights: &weights, prefix: prefix + "fpn.", inChannels: [160, 960])
    }

    /// The FPN levels "0", "1", "pool" of a normalised batch.
    public func callAsFunction(_ x: consuming FeatureMap) -> [FeatureMap] {
        var y = stem(x)
        Activation.hardswish.apply(&y)
        var c4: FeatureMap? = nil
        for (i, block) in body.enumerated() {
            y = block(y)
            if i + 1 == Self.returned[0] { c4 = y }
        }
        var c5 = last(y)
        Activation.hardswish.apply(&c5)
        return fpn([c4!, c5])
    }
}
