import SwiftRCNNOps

/// A sequential network's forward pass in training: `values[i]` is step i's input and `values[i + 1]` its output;
/// ResNet layers keep their bottlenecks' tapes and nested networks their own tape, by step index.
struct SequentialTape {
    var values: [FeatureMap]
    var blocks: [Int: [BottleneckTape]] = [:]
    var nested: [Int: SequentialTape] = [:]

    var output: FeatureMap { values[values.count - 1] }
}

extension SequentialNetwork {
    /// The forward pass, keeping every step's input for `backward`. Throws as `callAsFunction` does.
    func forwardKeeping(_ x: FeatureMap) throws -> SequentialTape {
        var tape = SequentialTape(values: [x])
        for (i, step) in steps.enumerated() {
            let y = tape.values[i]
            switch step {
            case .bottlenecks(let blocks, _):
                var kept = [BottleneckTape]()
                var v = y
                for block in blocks {
                    let s = block.conv2.stride
                    try Self.checkSize((v.height - 1) / s + 1, (v.width - 1) / s + 1, v)
                    let t = block.forwardKeeping(v)
                    v = t.out
                    kept.append(t)
                }
                tape.blocks[i] = kept
                tape.values.append(v)
            case .nested(let inner):
                let t = try inner.forwardKeeping(y)
                tape.nested[i] = t
                tape.values.append(t.output)
            default:
                tape.values.append(try Self.apply(step, y))
            }
        }
        return tape
    }

    /// From the gradient of the output, adds every trainable tensor's gradient to `store` (frozen batch norms are
    /// folded into their convolutions: `ConvolutionParameters` scales the gradients back to the unfolded tensors)
    /// and returns the gradient of the input when `inputGradient` (else nil, and the first layer computes none).
    func backward(
        _ tape: SequentialTape, outputGradient: FeatureMap, store: ParameterStore, inputGradient: Bool
    ) -> FeatureMap? {
        var g = outputGradient
        for i in stride(from: steps.count - 1, through: 0, by: -1) {
            let x = tape.values[i], y = tape.values[i + 1]
            let wantInput = inputGradient || i > 0
            switch steps[i] {
            case .conv(let conv, let parameters):
                if conv.relu { maskReLU(&g, output: y) }
                guard
                    let d = conv.backward(
                        input: x, outputGradient: g, parameters: parameters, store: store, inputGradient: wantInput)
                else { return nil }
                g = d
            case .relu:
                maskReLU(&g, output: y)
            case .maxPool(let k, let s, let p):
                var d = zeroMap(like: x)
                g.data.withUnsafeBufferPointer { gp in
                    x.data.withUnsafeBufferPointer { xp in
                        d.data.withUnsafeMutableBufferPointer { dp in
                            MaxPool2d.backward(
                                gp.baseAddress!, input: xp.baseAddress!, planes: x.batch * x.channels,
                                height: x.height, width: x.width, kernel: k, stride: s, padding: p,
                                into: dp.baseAddress!)
                        }
                    }
                }
                g = d
            case .bottlenecks(let blocks, let prefixes):
                let kept = tape.blocks[i]!
                for b in stride(from: blocks.count - 1, through: 0, by: -1) {
                    guard
                        let d = blocks[b].backward(
                            kept[b], outputGradient: g, prefix: prefixes[b], store: store,
                            inputGradient: b > 0 || wantInput)
                    else { return nil }
                    g = d
                }
            case .globalAveragePool:
                // Each cell of a plane gets 1/plane of the plane's mean's gradient.
                let plane = x.plane, scale = 1 / Float(plane)
                let source = g
                g = FeatureMap(batch: x.batch, channels: x.channels, height: x.height, width: x.width) { out in
                    for q in 0..<(x.batch * x.channels) {
                        (out.baseAddress! + q * plane).initialize(repeating: source.data[q] * scale, count: plane)
                    }
                }
            case .flatten:
                g = FeatureMap(batch: x.batch, channels: x.channels, height: x.height, width: x.width, data: g.data)
            case .linear(let linear, let parameters):
                if linear.relu { maskReLU(&g, output: y) }
                guard
                    let d = linear.backward(
                        input: x.data, rows: x.batch, outputGradient: g.data, parameters: parameters, store: store,
                        inputGradient: wantInput)
                else { return nil }
                g = FeatureMap(batch: x.batch, channels: x.channels, height: x.height, width: x.width, data: d)
            case .nested(let inner):
                guard
                    let d = inner.backward(
                        tape.nested[i]!, outputGradient: g, store: store, inputGradient: wantInput)
                else { return nil }
                g = d
            }
        }
        return g
    }

    /// The torchvision names of the frozen batch norms' tensors among `layers` under `prefix` (the trainer treats
    /// every norm of a sequential network as `FrozenBatchNorm2d`: buffers, no gradient, no update).
    static func normTensorNames(_ layers: [Architecture.SequentialLayer], prefix: String) -> [String] {
        let tensors = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
        var names = [String]()
        for (i, layer) in layers.enumerated() {
            let at = prefix + "\(i)."
            switch layer {
            case .batchNorm2d:
                names += tensors.map { at + $0 }
            case .resNetLayer(let inC, let width, let blocks, let stride):
                for b in 0..<blocks {
                    var norms = ["bn1.", "bn2.", "bn3."]
                    if b == 0 && (stride != 1 || inC != width * ResNet50.expansion) { norms.append("downsample.1.") }
                    for n in norms { names += tensors.map { at + "\(b)." + n + $0 } }
                }
            case .sequential(let inner):
                names += normTensorNames(inner, prefix: at)
            default:
                break
            }
        }
        return names
    }
}
