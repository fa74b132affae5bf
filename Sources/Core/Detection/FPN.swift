import SwiftRCNNOps

/// torchvision's `FeaturePyramidNetwork` without norm layers, with the `LastLevelMaxPool` extra block.
///
/// For inputs C2...C5 (coarsest last): inner_i = 1x1 conv (with bias) of C_i; top-down from the coarsest,
/// inner_i += nearest-upsample(inner_{i+1}) to inner_i's size; P_i = 3x3 conv (with bias, padding 1) of inner_i;
/// "pool" = max_pool2d(P5, kernel 1, stride 2), i.e. every other row and column of P5.
public struct FeaturePyramidNetwork: Sendable {
    /// Channels of every level (torchvision's resnet_fpn_backbone uses 256).
    public static let outChannels = 256

    let inner: [Conv2d]
    let layer: [Conv2d]

    /// `prefix` is the state-dict prefix of the FPN, e.g. "backbone.fpn.". With `norm` (the v2 models), every
    /// convolution is bias-free and followed by a batch norm, folded in.
    public init(weights: inout WeightStore, prefix: String, inChannels: [Int], norm: Bool = false) {
        let c = Self.outChannels
        func block(_ keys: TorchvisionKeys.ConvBatchNormKeys, _ n: Int, _ k: Int) -> Conv2d {
            guard norm else {
                return Conv2d(
                    weight: weights.take(keys.conv.convWeight(in: n, out: c, kernel: k)),
                    bias: weights.take(keys.conv.bias(c)), inChannels: n, outChannels: c, kernel: (k, k),
                    padding: k / 2)
            }
            return convolutionWithBatchNorm(
                &weights, keys, inChannels: n, outChannels: c, kernel: k, padding: k / 2, relu: false)
        }
        inner = inChannels.enumerated().map { i, n in block(TorchvisionKeys.FPN.innerNorm(prefix, i), n, 1) }
        layer = inChannels.indices.map { i in block(TorchvisionKeys.FPN.outputNorm(prefix, i), c, 3) }
    }

    /// features: C2...C5, consumed as they are used -> [P2, P3, P4, P5, pool].
    public func callAsFunction(_ features: consuming [FeatureMap]) -> [FeatureMap] {
        let levels = features.count
        var results = [FeatureMap?](repeating: nil, count: levels)
        var last = inner[levels - 1](features.removeLast())
        results[levels - 1] = layer[levels - 1](last)
        for i in stride(from: levels - 2, through: 0, by: -1) {
            var lateral = inner[i](features.removeLast())
            Self.addUpsampled(last, into: &lateral)
            last = consume lateral
            results[i] = layer[i](last)
        }
        var outputs = results.map { $0! }
        outputs.append(Self.subsample(outputs[levels - 1]))
        return outputs
    }

    /// target += nearest-upsample(top) to target's size (torch's F.interpolate(mode="nearest") index rule).
    static func addUpsampled(_ top: FeatureMap, into target: inout FeatureMap) {
        let (h, w) = (target.height, target.width)
        top.data.withUnsafeBufferPointer { src in
            target.data.withUnsafeMutableBufferPointer { dst in
                Interpolation.nearest(
                    src.baseAddress!, planes: top.batch * top.channels, height: top.height,
                    width: top.width, outHeight: h, outWidth: w, into: dst.baseAddress!,
                    accumulate: true)
            }
        }
    }

    /// max_pool2d(kernel_size=1, stride=2, padding=0).
    static func subsample(_ x: FeatureMap) -> FeatureMap {
        let ho = (x.height - 1) / 2 + 1, wo = (x.width - 1) / 2 + 1
        return x.data.withUnsafeBufferPointer { src in
            FeatureMap(batch: x.batch, channels: x.channels, height: ho, width: wo) { out in
                MaxPool2d.forward(
                    src.baseAddress!, planes: x.batch * x.channels, height: x.height, width: x.width,
                    kernel: 1, stride: 2, padding: 0, into: out.baseAddress!)
            }
        }
    }
}

/// torchvision's `resnet_fpn_backbone("resnet50")` in eval mode: `ResNet50` body (state-dict prefix
/// `<prefix>body.`) and `FeaturePyramidNetwork` (`<prefix>fpn.`) on its four layers.
public struct ResNet50FPN: Sendable {
    let body: ResNet50
    let fpn: FeaturePyramidNetwork

    /// Names of the levels `callAsFunction` returns, in order.
    public static let levelNames = ["0", "1", "2", "3", "pool"]

    /// `fpnNorm`: the v2 models' FPN with batch norms.
    public init(weights: inout WeightStore, prefix: String = TorchvisionKeys.backbone, fpnNorm: Bool = false) {
        body = ResNet50(weights: &weights, prefix: TorchvisionKeys.Backbone.body(prefix))
        fpn = FeaturePyramidNetwork(
            weights: &weights, prefix: TorchvisionKeys.Backbone.fpn(prefix),
            inChannels: ResNet50.outChannels, norm: fpnNorm)
    }

    /// The FPN levels "0", "1", "2", "3", "pool" (256 channels each), in that order.
    public func callAsFunction(_ x: consuming FeatureMap) -> [FeatureMap] {
        fpn(body(consume x))
    }
}
