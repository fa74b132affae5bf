import SwiftRCNNOps

/// torchvision's frozen batch norm (`FrozenBatchNorm2d`, and `BatchNorm2d` in eval mode) has eps 1e-5 in ResNet.
let batchNormEps: Float = 1e-5

/// Takes a bias-free convolution's weight of shape (out, in, k, k) and the batch norm's {weight, bias, running_mean,
/// running_var} that follows it (`keys`), and returns the convolution with the norm folded in.
func convolutionWithBatchNorm(
    _ weights: inout WeightStore, _ keys: TorchvisionKeys.ConvBatchNormKeys, inChannels: Int, outChannels: Int,
    kernel: Int, stride: Int = 1, padding: Int = 0, relu: Bool
) -> Conv2d {
    let w = weights.take(keys.conv.convWeight(in: inChannels, out: outChannels, kernel: kernel))
    let norm = keys.normParameters(channels: outChannels)
    let gamma = weights.take(norm.weight)
    let beta = weights.take(norm.bias)
    let mean = weights.take(norm.runningMean)
    let variance = weights.take(norm.runningVar)
    // The filters are transformed for Winograd (where it applies) once, after folding.
    return Conv2d(
        weight: w, bias: nil, inChannels: inChannels, outChannels: outChannels, kernel: (kernel, kernel),
        stride: stride, padding: padding, relu: relu, winograd: false
    )
    .foldingBatchNorm(
        gamma: gamma, beta: beta, mean: mean, variance: variance, eps: batchNormEps,
        winograd: true)
}

/// torchvision's ResNet `Bottleneck` (v1.5: the stride is on the 3x3 convolution) with its batch norms folded:
/// relu(conv3(relu(conv2(relu(conv1(x))))) + identity), identity = downsample(x) (1x1 conv + norm) on the first
/// block of a layer, else x. The residual add and the last ReLU run inside conv3's output pass.
struct Bottleneck: Sendable {
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    let downsample: Conv2d?

    /// `prefix` is the block's state-dict prefix, e.g. "backbone.body.layer2.0." (`TorchvisionKeys.ResNet.block`).
    init(_ weights: inout WeightStore, prefix: String, inChannels: Int, width: Int, stride: Int, downsample: Bool) {
        typealias Keys = TorchvisionKeys.ResNet
        let out = width * ResNet50.expansion
        conv1 = convolutionWithBatchNorm(
            &weights, Keys.conv(prefix, 1), inChannels: inChannels, outChannels: width,
            kernel: 1, relu: true)
        conv2 = convolutionWithBatchNorm(
            &weights, Keys.conv(prefix, 2), inChannels: width, outChannels: width,
            kernel: 3, stride: stride, padding: 1, relu: true)
        conv3 = convolutionWithBatchNorm(
            &weights, Keys.conv(prefix, 3), inChannels: width, outChannels: out,
            kernel: 1, relu: true)
        self.downsample =
            downsample
            ? convolutionWithBatchNorm(
                &weights, Keys.downsample(prefix), inChannels: inChannels, outChannels: out,
                kernel: 1, stride: stride, relu: false)
            : nil
    }

    func callAsFunction(_ x: consuming FeatureMap) -> FeatureMap {
        var y = conv1(x)
        let identity: FeatureMap
        if let downsample { identity = downsample(consume x) } else { identity = consume x }
        y = conv2(consume y)
        return conv3(y, adding: identity)
    }
}

/// The body of torchvision's `resnet50` as `resnet_fpn_backbone` uses it (eval mode, every norm frozen and
/// folded into its convolution): conv1 7x7/2 + norm + ReLU, max-pool 3/2, then layer1...layer4 of 3, 4, 6 and 3
/// bottlenecks. Returns the outputs of the four layers (C2...C5: 256, 512, 1024, 2048 channels at strides 4...32).
public struct ResNet50: Sendable {
    /// A bottleneck's output has 4x its width (torchvision's `Bottleneck.expansion`).
    static let expansion = 4
    /// Blocks per layer and the width of each layer's bottlenecks (torchvision's resnet50).
    static let blocks = [3, 4, 6, 3]
    static let widths = [64, 128, 256, 512]
    /// Channels of C2...C5.
    public static let outChannels = widths.map { $0 * expansion }

    let stem: Conv2d
    let layers: [[Bottleneck]]

    /// `prefix` is the state-dict prefix of the body, e.g. "backbone.body.".
    public init(weights: inout WeightStore, prefix: String) {
        stem = convolutionWithBatchNorm(
            &weights, TorchvisionKeys.ResNet.stem(prefix), inChannels: 3,
            outChannels: 64, kernel: 7, stride: 2, padding: 3, relu: true)
        var inChannels = 64
        var layers = [[Bottleneck]]()
        for (l, (count, width)) in zip(Self.blocks, Self.widths).enumerated() {
            var layer = [Bottleneck]()
            for b in 0..<count {
                // The first block of every layer but the first halves the resolution; each first block changes
                // the channel count, so it has a downsample branch.
                layer.append(
                    Bottleneck(
                        &weights, prefix: TorchvisionKeys.ResNet.block(prefix, layer: l, index: b),
                        inChannels: inChannels, width: width, stride: b == 0 && l > 0 ? 2 : 1,
                        downsample: b == 0))
                inChannels = width * Self.expansion
            }
            layers.append(layer)
        }
        self.layers = layers
    }

    /// x (N, 3, H, W) -> [C2, C3, C4, C5].
    public func callAsFunction(_ x: consuming FeatureMap) -> [FeatureMap] {
        var y = stem(consume x)
        y = maxPool(consume y)
        var outputs = [FeatureMap]()
        for layer in layers {
            for block in layer { y = block(consume y) }
            outputs.append(y)
        }
        return outputs
    }

    /// torchvision's ResNet max-pool: kernel 3, stride 2, padding 1.
    func maxPool(_ x: consuming FeatureMap) -> FeatureMap {
        let (k, s, p) = (3, 2, 1)
        let ho = (x.height + 2 * p - k) / s + 1, wo = (x.width + 2 * p - k) / s + 1
        return x.data.withUnsafeBufferPointer { src in
            FeatureMap(batch: x.batch, channels: x.channels, height: ho, width: wo) { out in
                MaxPool2d.forward(
                    src.baseAddress!, planes: x.batch * x.channels, height: x.height, width: x.width,
                    kernel: k, stride: s, padding: p, into: out.baseAddress!)
            }
        }
    }
}
