import SwiftRCNNOps

/// The gradient of a convolution's weights, added to the torchvision parameters it was built from: a frozen batch
/// norm folded into the convolution scales output channel o by s_o = γ_o / sqrt(var_o + eps), so the gradient of
/// the unfolded weight is s_o times that of the folded one (the norm's own tensors are buffers: no gradient).
struct ConvolutionParameters {
    /// The torchvision key of the weight, and of the bias (nil when the convolution has none in torchvision).
    let weight: String, bias: String?
    /// The frozen norm's per-channel scale when one was folded in.
    let scale: [Float]?

    /// Keys and norm scale of a `convolutionWithBatchNorm` convolution.
    init(_ keys: TorchvisionKeys.ConvBatchNormKeys, _ store: ParameterStore) {
        weight = keys.conv.weightKey
        bias = nil
        let gamma = store.value(keys.norm + "weight"), variance = store.value(keys.norm + "running_var")
        scale = Conv2d.batchNormScale(gamma: gamma, variance: variance, eps: batchNormEps)
    }

    /// Keys of a plain convolution or linear layer with a bias.
    init(_ keys: TorchvisionKeys.LayerKeys) {
        weight = keys.weightKey
        bias = keys.biasKey
        scale = nil
    }

    /// A layer's keys (`bias` nil when it has none) and the scale of a norm folded into it. The folded bias is
    /// (b - mean)·s + beta, so the unfolded bias's gradient is also s_o times the folded one's.
    init(weight: String, bias: String?, scale: [Float]?) {
        self.weight = weight
        self.bias = bias
        self.scale = scale
    }

    /// Whether any of the tensors gets a gradient.
    func trainable(_ store: ParameterStore) -> Bool { store.isTrainable(weight) }

    /// Runs `backward` with buffers for the folded weight and bias gradients and adds them to the store's
    /// gradients; buffers are nil for tensors without one. Returns `backward`'s result.
    func accumulate<R>(
        into store: ParameterStore, weightCount: Int, biasCount: Int,
        _ backward: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) -> R
    ) -> R {
        let wantWeight = store.isTrainable(weight), wantBias = bias.map(store.isTrainable) ?? false
        var dw = [Float](repeating: 0, count: wantWeight ? weightCount : 0)
        var db = [Float](repeating: 0, count: wantBias ? biasCount : 0)
        // An empty array's buffer may still have a base address (shared storage): pass nil for unwanted gradients.
        let result = dw.withUnsafeMutableBufferPointer { w in
            db.withUnsafeMutableBufferPointer { b in
                backward(wantWeight ? w.baseAddress : nil, wantBias ? b.baseAddress : nil)
            }
        }
        if wantWeight {
            if let scale {
                let perOut = weightCount / scale.count
                for o in scale.indices { for i in 0..<perOut { dw[o * perOut + i] *= scale[o] } }
            }
            store.accumulate(weight, dw, count: weightCount)
        }
        if wantBias, let bias {
            if let scale { for o in scale.indices { db[o] *= scale[o] } }
            store.accumulate(bias, db, count: biasCount)
        }
        return result
    }
}

extension Conv2d {
    /// `backward` adding the parameter gradients to `store` under `parameters`' names.
    func backward(
        input x: FeatureMap, outputGradient dy: FeatureMap, parameters: ConvolutionParameters,
        store: ParameterStore, inputGradient: Bool
    ) -> FeatureMap? {
        parameters.accumulate(into: store, weightCount: weight.count, biasCount: outChannels) { w, b in
            backward(input: x, outputGradient: dy, weightGradient: w, biasGradient: b, inputGradient: inputGradient)
        }
    }
}

extension Linear {
    func backward(
        input x: some ContiguousFloats, rows: Int, outputGradient dy: some ContiguousFloats,
        parameters: ConvolutionParameters,
        store: ParameterStore, inputGradient: Bool
    ) -> [Float]? {
        parameters.accumulate(into: store, weightCount: weight.count, biasCount: outFeatures) { w, b in
            backward(
                input: x, rows: rows, outputGradient: dy, weightGradient: w, biasGradient: b,
                inputGradient: inputGradient)
        }
    }
}

/// g = y > 0 ? g : 0 over a whole map (ReLU's backward from its output).
func maskReLU(_ g: inout FeatureMap, output y: FeatureMap) {
    precondition(g.data.count == y.data.count, "maskReLU: shapes differ")
    y.data.withUnsafeBufferPointer { yb in
        g.data.withUnsafeMutableBufferPointer { gb in
            reluBackward(output: yb.baseAddress!, gradient: gb.baseAddress!, count: gb.count)
        }
    }
}

/// a += b elementwise (same shapes).
func addInPlace(_ a: inout FeatureMap, _ b: FeatureMap) {
    precondition(a.data.count == b.data.count, "addInPlace: shapes differ")
    b.data.withUnsafeBufferPointer { bb in
        a.data.withUnsafeMutableBufferPointer { ab in
            let (ap, bp) = (ab.baseAddress!, bb.baseAddress!)
            Parallel.forEachChunk(ab.count, minItemsPerChunk: 1 << 16) { range in
                for i in range { ap[i] += bp[i] }
            }
        }
    }
}

func zeroMap(like x: FeatureMap) -> FeatureMap {
    FeatureMap(
        batch: x.batch, channels: x.channels, height: x.height, width: x.width,
        data: [Float](repeating: 0, count: x.data.count))
}

/// What a bottleneck's backward pass needs from its forward pass.
struct BottleneckTape {
    let x: FeatureMap, y1: FeatureMap, y2: FeatureMap, out: FeatureMap
}

extension Bottleneck {
    /// The forward pass, keeping the activations for `backward`.
    func forwardKeeping(_ x: FeatureMap) -> BottleneckTape {
        let y1 = conv1(x)
        let identity = downsample.map { $0(x) } ?? x
        let y2 = conv2(y1)
        let out = conv3(y2, adding: identity)
        return BottleneckTape(x: x, y1: y1, y2: y2, out: out)
    }

    /// From the gradient of the block's output (after its ReLU), adds the parameter gradients to `store` and
    /// returns the gradient of its input when `inputGradient`.
    func backward(
        _ tape: BottleneckTape, outputGradient: FeatureMap, prefix: String, store: ParameterStore,
        inputGradient: Bool
    ) -> FeatureMap? {
        typealias Keys = TorchvisionKeys.ResNet
        var g = outputGradient
        maskReLU(&g, output: tape.out)
        var g2 = conv3.backward(
            input: tape.y2, outputGradient: g, parameters: ConvolutionParameters(Keys.conv(prefix, 3), store),
            store: store, inputGradient: true)!
        maskReLU(&g2, output: tape.y2)
        var g1 = conv2.backward(
            input: tape.y1, outputGradient: g2, parameters: ConvolutionParameters(Keys.conv(prefix, 2), store),
            store: store, inputGradient: true)!
        maskReLU(&g1, output: tape.y1)
        var dx = conv1.backward(
            input: tape.x, outputGradient: g1, parameters: ConvolutionParameters(Keys.conv(prefix, 1), store),
            store: store, inputGradient: inputGradient)
        if let downsample {
            let di = downsample.backward(
                input: tape.x, outputGradient: g, parameters: ConvolutionParameters(Keys.downsample(prefix), store),
                store: store, inputGradient: inputGradient)
            if inputGradient { addInPlace(&dx!, di!) }
        } else if inputGradient {
            addInPlace(&dx!, g)
        }
        return dx
    }
}

/// The backbone's forward pass in training, with what its backward pass needs: the ResNet body's trainable
/// layers' activations, the FPN's inputs and merged maps.
struct BackboneTape {
    /// The normalised batch (kept only when the stem trains).
    var input: FeatureMap?
    /// The stem's output after its ReLU (kept only when the stem trains).
    var stem: FeatureMap?
    /// Per body layer, per block (empty for frozen layers).
    var blocks: [[BottleneckTape]]
    /// C2...C5.
    var c: [FeatureMap]
    /// The FPN's merged maps (inner_i + upsampled coarser), the inputs of its 3×3 convolutions.
    var merged: [FeatureMap]
    /// P2...P5 and "pool".
    var levels: [FeatureMap]
}

extension ResNet50FPN {
    /// Body modules from the input: 0 = conv1 (and bn1), 1...4 = layer1...layer4. torchvision trains the last
    /// `trainableLayers` of them (`resnet_fpn_backbone`'s `trainable_layers`).
    static func moduleTrains(_ module: Int, trainableLayers: Int) -> Bool { module >= 5 - trainableLayers }

    func forwardKeeping(_ x: FeatureMap, trainableLayers: Int) -> BackboneTape {
        let stemTrains = Self.moduleTrains(0, trainableLayers: trainableLayers)
        let s = body.stem(x)
        var y = body.maxPool(s)
        var tape = BackboneTape(
            input: stemTrains ? x : nil, stem: stemTrains ? s : nil, blocks: [], c: [], merged: [], levels: [])
        for (l, layer) in body.layers.enumerated() {
            var kept = [BottleneckTape]()
            if Self.moduleTrains(l + 1, trainableLayers: trainableLayers) {
                for block in layer {
                    let t = block.forwardKeeping(y)
                    y = t.out
                    kept.append(t)
                }
            } else {
                for block in layer { y = block(y) }
            }
            tape.blocks.append(kept)
            tape.c.append(y)
        }
        // FPN, keeping the merged maps.
        let levels = tape.c.count
        var merged = [FeatureMap?](repeating: nil, count: levels)
        var outputs = [FeatureMap?](repeating: nil, count: levels)
        var last = fpn.inner[levels - 1](tape.c[levels - 1])
        merged[levels - 1] = last
        outputs[levels - 1] = fpn.layer[levels - 1](last)
        for i in stride(from: levels - 2, through: 0, by: -1) {
            var lateral = fpn.inner[i](tape.c[i])
            FeaturePyramidNetwork.addUpsampled(last, into: &lateral)
            last = lateral
            merged[i] = lateral
            outputs[i] = fpn.layer[i](lateral)
        }
        tape.merged = merged.map { $0! }
        tape.levels = outputs.map { $0! }
        tape.levels.append(FeaturePyramidNetwork.subsample(tape.levels[levels - 1]))
        return tape
    }

    /// From the gradients of the five levels (P2...P5, "pool"; nil where nothing reached a level), adds every
    /// trainable tensor's gradient to `store`.
    func backward(
        _ tape: BackboneTape, levelGradients: [FeatureMap?], trainableLayers: Int, store: ParameterStore,
        prefix: String = TorchvisionKeys.backbone
    ) {
        let levels = tape.c.count
        var dp = (0..<levels).map { levelGradients[$0] ?? zeroMap(like: tape.levels[$0]) }
        if let dPool = levelGradients[levels] {
            // "pool" is P5 subsampled: max_pool2d(kernel 1, stride 2) routes each gradient to its source pixel.
            let p5 = tape.levels[levels - 1]
            dPool.data.withUnsafeBufferPointer { g in
                p5.data.withUnsafeBufferPointer { x in
                    dp[levels - 1].data.withUnsafeMutableBufferPointer { d in
                        MaxPool2d.backward(
                            g.baseAddress!, input: x.baseAddress!, planes: p5.batch * p5.channels,
                            height: p5.height, width: p5.width, kernel: 1, stride: 2, padding: 0,
                            into: d.baseAddress!)
                    }
                }
            }
        }
        let fpnPrefix = TorchvisionKeys.Backbone.fpn(prefix)
        // Gradients of the merged maps: each one's 3×3 convolution, then (finest first) what the finer merged map
        // sent up through the nearest upsampling.
        var dm = [FeatureMap]()
        for i in 0..<levels {
            var g = fpn.layer[i].backward(
                input: tape.merged[i], outputGradient: dp[i],
                parameters: ConvolutionParameters(TorchvisionKeys.FPN.output(fpnPrefix, i)), store: store,
                inputGradient: true)!
            if i > 0 {
                let finer = dm[i - 1]
                finer.data.withUnsafeBufferPointer { src in
                    g.data.withUnsafeMutableBufferPointer { dst in
                        Interpolation.nearestBackward(
                            src.baseAddress!, planes: finer.batch * finer.channels, outHeight: finer.height,
                            outWidth: finer.width, height: g.height, width: g.width, into: dst.baseAddress!,
                            accumulate: true)
                    }
                }
            }
            dm.append(g)
        }
        // The lateral 1×1 convolutions, and the gradients of C2...C5 where the body trains.
        var dc = [FeatureMap?]()
        for i in 0..<levels {
            let layerTrains = Self.moduleTrains(i + 1, trainableLayers: trainableLayers)
            dc.append(
                fpn.inner[i].backward(
                    input: tape.c[i], outputGradient: dm[i],
                    parameters: ConvolutionParameters(TorchvisionKeys.FPN.inner(fpnPrefix, i)), store: store,
                    inputGradient: layerTrains))
        }
        // The body, from layer4 down to the lowest trainable module.
        let bodyPrefix = TorchvisionKeys.Backbone.body(prefix)
        var g: FeatureMap? = nil
        for l in stride(from: levels - 1, through: 0, by: -1) {
            guard Self.moduleTrains(l + 1, trainableLayers: trainableLayers) else { break }
            var out = dc[l]!
            if let g { addInPlace(&out, g) }
            let below = Self.moduleTrains(l, trainableLayers: trainableLayers)
            var current: FeatureMap? = out
            for b in stride(from: body.layers[l].count - 1, through: 0, by: -1) {
                current = body.layers[l][b].backward(
                    tape.blocks[l][b], outputGradient: current!,
                    prefix: TorchvisionKeys.ResNet.block(bodyPrefix, layer: l, index: b), store: store,
                    inputGradient: b > 0 || below)
            }
            g = current
        }
        // The stem: max-pool, ReLU and conv1 (its input, the image batch, needs no gradient).
        if let dPooled = g, let s = tape.stem, let x = tape.input {
            var ds = zeroMap(like: s)
            dPooled.data.withUnsafeBufferPointer { gp in
                s.data.withUnsafeBufferPointer { sp in
                    ds.data.withUnsafeMutableBufferPointer { d in
                        MaxPool2d.backward(
                            gp.baseAddress!, input: sp.baseAddress!, planes: s.batch * s.channels, height: s.height,
                            width: s.width, kernel: 3, stride: 2, padding: 1, into: d.baseAddress!)
                    }
                }
            }
            maskReLU(&ds, output: s)
            _ = body.stem.backward(
                input: x, outputGradient: ds,
                parameters: ConvolutionParameters(TorchvisionKeys.ResNet.stem(bodyPrefix), store), store: store,
                inputGradient: false)
        }
    }
}
