import SwiftRCNNOps

/// The RPN head's forward pass in training: per level the shared convolution's output (after ReLU) and the
/// predictor's (N, 5A, H, W) map.
struct RPNTape {
    var hidden: [FeatureMap]
    var heads: [FeatureMap]
}

extension RegionProposalNetwork {
    func forwardKeeping(_ levels: [FeatureMap]) -> RPNTape {
        precondition(moreConvs.isEmpty, "RPN training: one head convolution (conv_depth 1)")
        let hidden = levels.map { conv($0) }
        return RPNTape(hidden: hidden, heads: hidden.map { predictor($0) })
    }

    /// Every image's anchors, levels in order (torchvision's anchor order): (sum_l H_l W_l A, 4) flat, the same
    /// for every image of a batch.
    func imageAnchors(heads: [FeatureMap], batchHW: (Int, Int)) -> [Float] {
        heads.indices.flatMap { levelAnchors(level: $0, map: heads[$0], batchHW: batchHW) }
    }

    /// The head's predictions in torchvision's flattened order (`concat_box_prediction_layers`): image-major, then
    /// level, location (row, column) and anchor. objectness (N · Σ H_l W_l A,), deltas (…, 4).
    func flattened(_ heads: [FeatureMap]) -> (objectness: [Float], deltas: [Float]) {
        let a = numAnchors, images = heads[0].batch
        let perImage = heads.reduce(0) { $0 + $1.plane * a }
        var objectness = [Float](repeating: 0, count: images * perImage)
        var deltas = [Float](repeating: 0, count: 4 * images * perImage)
        for n in 0..<images {
            var row = n * perImage
            for h in heads {
                let plane = h.plane, base = n * 5 * a * plane
                for p in 0..<plane {
                    for anchor in 0..<a {
                        objectness[row] = h.data[base + anchor * plane + p]
                        for k in 0..<4 { deltas[4 * row + k] = h.data[base + (a + 4 * anchor + k) * plane + p] }
                        row += 1
                    }
                }
            }
        }
        return (objectness, deltas)
    }

    /// The inverse of `flattened`: gradients in the flattened order back into per-level (N, 5A, H, W) maps.
    func unflattened(objectness: [Float], deltas: [Float], like heads: [FeatureMap]) -> [FeatureMap] {
        let a = numAnchors, images = heads[0].batch
        let perImage = heads.reduce(0) { $0 + $1.plane * a }
        var maps = heads.map(zeroMap(like:))
        for n in 0..<images {
            var row = n * perImage
            for l in maps.indices {
                let plane = maps[l].plane, base = n * 5 * a * plane
                maps[l].data.withUnsafeMutableBufferPointer { d in
                    for p in 0..<plane {
                        for anchor in 0..<a {
                            d[base + anchor * plane + p] = objectness[row]
                            for k in 0..<4 { d[base + (a + 4 * anchor + k) * plane + p] = deltas[4 * row + k] }
                            row += 1
                        }
                    }
                }
            }
        }
        return maps
    }

    /// From the gradients of the head maps, adds the head's parameter gradients to `store` and returns the
    /// gradient of each level. The predictor is cls_logits (A rows) over bbox_pred (4A rows) in one 1×1
    /// convolution; its weight gradient is split back into the two.
    func backward(
        _ tape: RPNTape, headGradients: [FeatureMap], levels: [FeatureMap], store: ParameterStore,
        prefix: String = TorchvisionKeys.rpn
    ) -> [FeatureMap] {
        typealias Keys = TorchvisionKeys.RPNHead
        let a = numAnchors, c = predictor.inChannels
        var dw = [Float](repeating: 0, count: predictor.weight.count)
        var db = [Float](repeating: 0, count: predictor.outChannels)
        var result = [FeatureMap]()
        for l in levels.indices {
            var dh = dw.withUnsafeMutableBufferPointer { w in
                db.withUnsafeMutableBufferPointer { b in
                    predictor.backward(
                        input: tape.hidden[l], outputGradient: headGradients[l], weightGradient: w.baseAddress,
                        biasGradient: b.baseAddress, inputGradient: true)!
                }
            }
            maskReLU(&dh, output: tape.hidden[l])
            result.append(
                conv.backward(
                    input: levels[l], outputGradient: dh, parameters: ConvolutionParameters(Keys.conv(prefix)),
                    store: store, inputGradient: true)!)
        }
        let logits = Keys.clsLogits(prefix), deltas = Keys.bboxPred(prefix)
        dw.withUnsafeBufferPointer { w in
            store.accumulate(logits.weightKey, w.baseAddress!, count: a * c)
            store.accumulate(deltas.weightKey, w.baseAddress! + a * c, count: 4 * a * c)
        }
        db.withUnsafeBufferPointer { b in
            store.accumulate(logits.biasKey, b.baseAddress!, count: a)
            store.accumulate(deltas.biasKey, b.baseAddress! + a, count: 4 * a)
        }
        return result
    }
}

/// Where each RoI of a MultiScaleRoIAlign call is pooled from: the (K, 5) rows [image, x1, y1, x2, y2], each
/// RoI's level (-1: none) and the levels' scales; `RoIHeads.pool` pools by it and `backward` reverses it.
struct PoolingPlan {
    let rois: [Float]
    let levelOfRoI: [Int]
    let scales: [Double]

    init(features: [FeatureMap], boxes: [[Float]], imageSizes: [(Int, Int)]) {
        let rois = PoolingPlan.roiRows(boxes)
        let k = rois.count / 5
        let maxHeight = imageSizes.map(\.0).max() ?? 1
        let scales = features.map { MultiScaleRoIAlign.inferScale(featureHeight: $0.height, imageHeight: maxHeight) }
        var levelOfRoI = [Int](repeating: 0, count: k)
        if features.count > 1 {
            let mapper = MultiScaleRoIAlign.LevelMapper(
                scales: scales, canonicalScale: RoIHeads.canonicalScale, canonicalLevel: RoIHeads.canonicalLevel)
            rois.withUnsafeBufferPointer { r in
                for i in 0..<k { levelOfRoI[i] = mapper.levelIndex(r.baseAddress! + 5 * i, levels: features.count) }
            }
        }
        self.rois = rois
        self.levelOfRoI = levelOfRoI
        self.scales = scales
    }

    /// The (K, 5) RoI rows (image index, x1, y1, x2, y2) of `boxes`, (P_i, 4) flat per image, images in order.
    static func roiRows(_ boxes: [[Float]]) -> [Float] {
        var rois = [Float]()
        rois.reserveCapacity(boxes.reduce(0) { $0 + $1.count / 4 * 5 })
        for (n, b) in boxes.enumerated() {
            for i in 0..<(b.count / 4) { rois += [Float(n), b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]] }
        }
        return rois
    }

    /// The gradient of `RoIHeads.pool` (aligned = false): `gradient` (K, C, size, size) -> one map per level of
    /// `features`' shapes.
    func backward(_ gradient: FeatureMap, features: [FeatureMap], samplingRatio: Int) -> [FeatureMap] {
        let size = gradient.height, bins = size * size, channels = gradient.channels
        return features.indices.map { l in
            let f = features[l]
            let chosen = levelOfRoI.indices.filter { levelOfRoI[$0] == l }
            guard !chosen.isEmpty else { return zeroMap(like: f) }
            var levelRoIs = [Float](), levelGradient = [Float]()
            levelRoIs.reserveCapacity(5 * chosen.count)
            levelGradient.reserveCapacity(chosen.count * channels * bins)
            for i in chosen {
                levelRoIs += rois[(5 * i)..<(5 * i + 5)]
                levelGradient += gradient.data[(i * channels * bins)..<((i + 1) * channels * bins)]
            }
            return FeatureMap(batch: f.batch, channels: f.channels, height: f.height, width: f.width) { out in
                levelGradient.withUnsafeBufferPointer { g in
                    levelRoIs.withUnsafeBufferPointer { r in
                        RoIAlign.backward(
                            gradOutput: g.baseAddress!, rois: r.baseAddress!, count: chosen.count,
                            spatialScale: Float(scales[l]), pooledH: size, pooledW: size,
                            samplingRatio: samplingRatio, aligned: false, gradInput: out.baseAddress!,
                            batch: f.batch, channels: f.channels, height: f.height, width: f.width)
                    }
                }
            }
        }
    }
}

/// What a pooler's backward pass needs from its forward pass: for MultiScaleRoIAlign the plan and the backbone
/// levels it pooled from, for RoIPool the RoI rows, each output's argmax and the level.
enum PoolerTape {
    case align(PoolingPlan, levels: [Int], samplingRatio: Int)
    case roiPool(rois: [Float], argmax: [Int64], level: Int)
}

/// The box branch's forward pass in training.
struct BoxHeadTape {
    enum Hidden {
        /// TwoMLPHead: fc6's and fc7's outputs (after their ReLUs).
        case twoMLP(fc6: [Float], fc7: [Float])
        case network(SequentialTape)
    }
    let pooler: PoolerTape
    let pooled: FeatureMap
    let hidden: Hidden
    /// The box head's output, the predictor's input: (rows, representation size).
    let representation: [Float]
    let classLogits: [Float], boxRegression: [Float]
    var rows: Int { pooled.batch }
}

/// The mask branch's forward pass in training (positive samples only).
struct MaskHeadTape {
    let pooler: PoolerTape
    /// The pooled maps, then each 3×3 convolution's output (after ReLU): inputs[i] is conv i's input.
    let inputs: [FeatureMap]
    /// conv5_mask's output after ReLU (the 1×1 logits' input).
    let upsampled: FeatureMap
    let labels: [Int64]
}

extension RoIHeads {
    /// The index of the backbone level `name` in `config.levelNames`.
    func levelIndex(_ name: String) -> Int {
        guard let i = config.levelNames.firstIndex(of: name) else {
            preconditionFailure("RoIHeads: no feature map named \(name)")
        }
        return i
    }

    /// `pooler` on `boxes` ((P_i, 4) flat per image) over the backbone's `levels`, as `pool` computes it, with
    /// the tape its backward pass needs.
    func poolKeeping(
        _ levels: [FeatureMap], boxes: [[Float]], imageSizes: [(Int, Int)], with pooler: Architecture.Pooler
    ) -> (pooled: FeatureMap, tape: PoolerTape) {
        switch pooler {
        case .multiScaleRoIAlign(let names, let size, let ratio):
            let chosen = names.map(levelIndex)
            let features = chosen.map { levels[$0] }
            let plan = PoolingPlan(features: features, boxes: boxes, imageSizes: imageSizes)
            let pooled = RoIHeads.pool(features, plan: plan, size: size, samplingRatio: ratio)
            return (pooled, .align(plan, levels: chosen, samplingRatio: ratio))
        case .roiPool(let name, let size, let scale):
            let level = levelIndex(name)
            let f = levels[level]
            let rois = PoolingPlan.roiRows(boxes)
            let k = rois.count / 5
            var argmax = [Int64](repeating: -1, count: k * f.channels * size * size)
            let pooled = FeatureMap(batch: k, channels: f.channels, height: size, width: size) { out in
                guard k > 0 else { return }
                f.data.withUnsafeBufferPointer { fp in
                    rois.withUnsafeBufferPointer { r in
                        argmax.withUnsafeMutableBufferPointer { a in
                            RoIPool.forward(
                                input: fp.baseAddress!, batch: f.batch, channels: f.channels, height: f.height,
                                width: f.width, rois: r.baseAddress!, roiCount: k, pooledHeight: size,
                                pooledWidth: size, spatialScale: Float(scale), output: out.baseAddress!,
                                argmax: a.baseAddress!)
                        }
                    }
                }
            }
            return (pooled, .roiPool(rois: rois, argmax: argmax, level: level))
        }
    }

    /// The gradient of `poolKeeping`: `gradient` (K, C, size, size) -> per backbone level its gradient, nil for
    /// the levels the pooler does not read.
    func poolBackward(_ tape: PoolerTape, gradient: FeatureMap, levels: [FeatureMap]) -> [FeatureMap?] {
        var result = [FeatureMap?](repeating: nil, count: levels.count)
        switch tape {
        case .align(let plan, let chosen, let ratio):
            let grads = plan.backward(gradient, features: chosen.map { levels[$0] }, samplingRatio: ratio)
            for (g, l) in zip(grads, chosen) {
                if result[l] == nil { result[l] = g } else { addInPlace(&result[l]!, g) }
            }
        case .roiPool(let rois, let argmax, let level):
            let f = levels[level], k = rois.count / 5
            result[level] = FeatureMap(batch: f.batch, channels: f.channels, height: f.height, width: f.width) { out in
                guard k > 0 else {
                    out.update(repeating: 0)
                    return
                }
                gradient.data.withUnsafeBufferPointer { g in
                    argmax.withUnsafeBufferPointer { a in
                        rois.withUnsafeBufferPointer { r in
                            RoIPool.backward(
                                gradOutput: g.baseAddress!, argmax: a.baseAddress!, rois: r.baseAddress!,
                                roiCount: k, pooledHeight: gradient.height, pooledWidth: gradient.width,
                                batch: f.batch, channels: f.channels, height: f.height, width: f.width,
                                gradInput: out.baseAddress!)
                        }
                    }
                }
            }
        }
        return result
    }

    func boxForwardKeeping(
        levels: [FeatureMap], proposals: [[Float]], imageSizes: [(Int, Int)]
    ) throws
        -> BoxHeadTape
    {
        let (pooled, pooler) = poolKeeping(levels, boxes: proposals, imageSizes: imageSizes, with: config.boxPooler)
        let rows = pooled.batch
        let hidden: BoxHeadTape.Hidden
        let representation: [Float]
        switch boxLayers {
        case .twoMLP(let fc6, let fc7):
            let h6 = fc6(pooled.data, rows: rows)
            let h7 = fc7(h6, rows: rows)
            hidden = .twoMLP(fc6: h6, fc7: h7)
            representation = h7
        case .network(let network):
            let tape = try network.forwardKeeping(pooled)
            hidden = .network(tape)
            representation = Array(tape.output.data)
        }
        return BoxHeadTape(
            pooler: pooler, pooled: pooled, hidden: hidden, representation: representation,
            classLogits: clsScore(representation, rows: rows), boxRegression: bboxPred(representation, rows: rows))
    }

    /// From the gradients of the class logits and box regressions, adds the box branch's parameter gradients to
    /// `store` and returns the gradient of each backbone level (nil for those the pooler does not read).
    func boxBackward(
        _ tape: BoxHeadTape, classLogitsGradient: [Float], boxRegressionGradient: [Float], levels: [FeatureMap],
        store: ParameterStore, prefix: String = TorchvisionKeys.roiHeads
    ) -> [FeatureMap?] {
        typealias Keys = TorchvisionKeys.BoxHead
        let rows = tape.rows
        var dr = clsScore.backward(
            input: tape.representation, rows: rows, outputGradient: classLogitsGradient,
            parameters: ConvolutionParameters(Keys.clsScore(prefix)), store: store, inputGradient: true)!
        let fromBoxes = bboxPred.backward(
            input: tape.representation, rows: rows, outputGradient: boxRegressionGradient,
            parameters: ConvolutionParameters(Keys.bboxPred(prefix)), store: store, inputGradient: true)!
        for i in dr.indices { dr[i] += fromBoxes[i] }
        let p = tape.pooled
        let dPooled: [Float]
        switch (boxLayers, tape.hidden) {
        case (.twoMLP(let fc6, let fc7), .twoMLP(let h6, let h7)):
            h7.withUnsafeBufferPointer { y in
                dr.withUnsafeMutableBufferPointer {
                    reluBackward(output: y.baseAddress!, gradient: $0.baseAddress!, count: $0.count)
                }
            }
            var d6 = fc7.backward(
                input: h6, rows: rows, outputGradient: dr, parameters: ConvolutionParameters(Keys.fc7(prefix)),
                store: store, inputGradient: true)!
            h6.withUnsafeBufferPointer { y in
                d6.withUnsafeMutableBufferPointer {
                    reluBackward(output: y.baseAddress!, gradient: $0.baseAddress!, count: $0.count)
                }
            }
            dPooled = fc6.backward(
                input: p.data, rows: rows, outputGradient: d6, parameters: ConvolutionParameters(Keys.fc6(prefix)),
                store: store, inputGradient: true)!
        case (.network(let network), .network(let hidden)):
            let out = hidden.output
            let g = FeatureMap(batch: out.batch, channels: out.channels, height: out.height, width: out.width, data: dr)
            dPooled = Array(network.backward(hidden, outputGradient: g, store: store, inputGradient: true)!.data)
        default:
            preconditionFailure("RoIHeads.boxBackward: the tape is not of this box head")
        }
        return poolBackward(
            tape.pooler,
            gradient: FeatureMap(batch: p.batch, channels: p.channels, height: p.height, width: p.width, data: dPooled),
            levels: levels)
    }

    /// The mask branch on the positive samples `proposals` with their `labels`; returns the tape and the
    /// (P, K, M, M) logits with only each sample's label channel filled (the only one the loss reads).
    func maskForwardKeeping(
        levels: [FeatureMap], proposals: [[Float]], labels: [Int64], imageSizes: [(Int, Int)]
    ) -> (tape: MaskHeadTape, logits: [Float]) {
        var (x, pooler) = poolKeeping(levels, boxes: proposals, imageSizes: imageSizes, with: config.maskPooler)
        var inputs = [FeatureMap]()
        for conv in maskConvs {
            inputs.append(x)
            x = conv.winogradWeights != nil ? conv(x) : RoIHeads.convolveSmallMaps(conv, x)
        }
        inputs.append(x)
        let u = maskUpsample!(x)
        let total = labels.count, channels = u.channels, plane = u.plane, k = numClasses
        var logits = [Float](repeating: 0, count: total * k * plane)
        u.data.withUnsafeBufferPointer { ub in
            maskLogitsWeight.withUnsafeBufferPointer { wb in
                logits.withUnsafeMutableBufferPointer { lb in
                    let (up, wp, lp) = (ub.baseAddress!, wb.baseAddress!, lb.baseAddress!)
                    Parallel.forEachChunk(total) { range in
                        for d in range {
                            let label = Int(labels[d])
                            let w = wp + label * channels, src = up + d * channels * plane
                            let dst = lp + (d * k + label) * plane
                            dst.update(repeating: maskLogitsBias[label], count: plane)
                            for c in 0..<channels {
                                let wc = w[c], row = src + c * plane
                                for p in 0..<plane { dst[p] += wc * row[p] }
                            }
                        }
                    }
                }
            }
        }
        return (MaskHeadTape(pooler: pooler, inputs: inputs, upsampled: u, labels: labels), logits)
    }

    /// From the gradient of the (P, K, M, M) mask logits (zero off each sample's label channel), adds the mask
    /// branch's parameter gradients to `store` and returns the gradient of each backbone level (nil for those the
    /// pooler does not read).
    func maskBackward(
        _ tape: MaskHeadTape, logitsGradient: [Float], levels: [FeatureMap], store: ParameterStore,
        prefix: String = TorchvisionKeys.roiHeads
    ) -> [FeatureMap?] {
        typealias Keys = TorchvisionKeys.MaskHead
        let u = tape.upsampled
        let total = tape.labels.count, channels = u.channels, plane = u.plane, k = numClasses
        // mask_fcn_logits (1×1): only each sample's label row has a gradient.
        var du = zeroMap(like: u)
        var dw = [Float](repeating: 0, count: maskLogitsWeight.count)
        var db = [Float](repeating: 0, count: k)
        for d in 0..<total {
            let label = Int(tape.labels[d])
            let g = (d * k + label) * plane
            var sum: Float = 0
            for p in 0..<plane { sum += logitsGradient[g + p] }
            db[label] += sum
        }
        u.data.withUnsafeBufferPointer { ub in
            du.data.withUnsafeMutableBufferPointer { dub in
                logitsGradient.withUnsafeBufferPointer { gb in
                    maskLogitsWeight.withUnsafeBufferPointer { wb in
                        let (up, dp, gp, wp) = (ub.baseAddress!, dub.baseAddress!, gb.baseAddress!, wb.baseAddress!)
                        Parallel.forEachChunk(total) { range in
                            for d in range {
                                let label = Int(tape.labels[d])
                                let g = gp + (d * k + label) * plane
                                for c in 0..<channels {
                                    let wc = wp[label * channels + c], row = dp + (d * channels + c) * plane
                                    for p in 0..<plane { row[p] = wc * g[p] }
                                }
                            }
                        }
                        // Weight rows per class, summed over that class's samples in order (one thread per class).
                        dw.withUnsafeMutableBufferPointer { dwb in
                            let dwp = dwb.baseAddress!
                            Parallel.forEachChunk(k) { classes in
                                for cls in classes {
                                    for d in 0..<total where Int(tape.labels[d]) == cls {
                                        let g = gp + (d * k + cls) * plane
                                        for c in 0..<channels {
                                            let row = up + (d * channels + c) * plane
                                            var s: Float = 0
                                            for p in 0..<plane { s += g[p] * row[p] }
                                            dwp[cls * channels + c] += s
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let logitKeys = Keys.logits(prefix)
        store.accumulate(logitKeys.weightKey, dw, count: dw.count)
        store.accumulate(logitKeys.biasKey, db, count: db.count)
        maskReLU(&du, output: u)
        let upsampleParameters = ConvolutionParameters(Keys.conv5Mask(prefix))
        var g = upsampleParameters.accumulate(
            into: store, weightCount: maskUpsample!.weight.count, biasCount: maskUpsample!.outChannels
        ) { w, b in
            maskUpsample!.backward(
                input: tape.inputs[maskConvs.count], outputGradient: du, weightGradient: w, biasGradient: b,
                inputGradient: true)!
        }
        for i in stride(from: maskConvs.count - 1, through: 0, by: -1) {
            maskReLU(&g, output: tape.inputs[i + 1])
            g = maskConvs[i].backward(
                input: tape.inputs[i], outputGradient: g, parameters: ConvolutionParameters(Keys.layer(prefix, i)),
                store: store, inputGradient: true)!
        }
        return poolBackward(tape.pooler, gradient: g, levels: levels)
    }
}
