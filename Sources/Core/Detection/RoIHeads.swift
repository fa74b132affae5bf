import SwiftRCNNOps

/// Settings of torchvision's `RoIHeads` in eval mode (the `box_*` arguments of its detectors) and the sizes of the
/// heads of `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn`.
public struct RoIHeadsConfig: Sendable {
    /// Class probability a detection needs (kept when > it; `box_score_thresh`).
    public var scoreThresh: Double
    /// IoU above which NMS, per class, suppresses a detection (`box_nms_thresh`).
    public var nmsThresh: Double
    /// Detections kept per image (`box_detections_per_img`).
    public var detectionsPerImage: Int
    /// BoxCoder weights (wx, wy, ww, wh) of the box regression.
    public var boxWeights: (Float, Float, Float, Float)
    /// Channels of the feature maps (the FPN's out_channels).
    public var inChannels: Int
    /// Width of TwoMLPHead's fc6 and fc7 (the predictor's input; for a sequential box head, its output features).
    public var representationSize: Int
    /// The box head's layers (`representationSize` must match a sequential head's output).
    public var boxHead: Architecture.BoxHead
    /// How the box and the mask branch pool their regions (`box_roi_pool`, `mask_roi_pool`), from the maps named
    /// `levelNames`.
    public var boxPooler: Architecture.Pooler, maskPooler: Architecture.Pooler
    /// Names of the feature maps the heads are given, in order (the backbone's levels).
    public var levelNames: [String]
    /// Channels of each of MaskRCNNHeads' 3x3 convolutions.
    public var maskLayers: [Int]
    /// Channels of MaskRCNNPredictor's conv5_mask (`dim_reduced`).
    public var maskDimReduced: Int
    /// Whether MaskRCNNHeads' convolutions are followed by batch norms (the v2 models; folded in).
    public var maskHeadNorm = false
    /// faster-rcnn.pytorch's test-time postprocessing (`legacyDetect`).
    public var legacy = false

    /// Output size of the box and mask poolers.
    public var boxPoolSize: Int { boxPooler.outputSize }
    public var maskPoolSize: Int { maskPooler.outputSize }
    /// The box pooler's sampling ratio (2 for RoIPool, which has none).
    public var samplingRatio: Int {
        if case .multiScaleRoIAlign(_, _, let r) = boxPooler { return r }
        return 2
    }

    public init(
        scoreThresh: Double = 0.05, nmsThresh: Double = 0.5, detectionsPerImage: Int = 100,
        boxWeights: (Float, Float, Float, Float) = (10, 10, 5, 5), inChannels: Int = 256,
        representationSize: Int = 1024, boxPoolSize: Int = 7, maskPoolSize: Int = 14, samplingRatio: Int = 2,
        maskLayers: [Int] = [256, 256, 256, 256], maskDimReduced: Int = 256,
        levelNames: [String] = ResNet50FPN.levelNames, boxPooler: Architecture.Pooler? = nil,
        maskPooler: Architecture.Pooler? = nil, boxHead: Architecture.BoxHead? = nil, maskHeadNorm: Bool = false,
        legacy: Bool = false
    ) {
        self.legacy = legacy
        self.maskHeadNorm = maskHeadNorm
        self.scoreThresh = scoreThresh
        self.nmsThresh = nmsThresh
        self.detectionsPerImage = detectionsPerImage
        self.boxWeights = boxWeights
        self.inChannels = inChannels
        self.representationSize = representationSize
        self.boxHead = boxHead ?? .twoMLPHead(representationSize: representationSize)
        let fpn = ["0", "1", "2", "3"]
        self.boxPooler =
            boxPooler ?? .multiScaleRoIAlign(featmapNames: fpn, outputSize: boxPoolSize, samplingRatio: samplingRatio)
        self.maskPooler =
            maskPooler ?? .multiScaleRoIAlign(featmapNames: fpn, outputSize: maskPoolSize, samplingRatio: samplingRatio)
        self.levelNames = levelNames
        self.maskLayers = maskLayers
        self.maskDimReduced = maskDimReduced
    }
}

/// torchvision's `RoIHeads` in eval mode for Faster R-CNN and Mask R-CNN.
///
/// Boxes: MultiScaleRoIAlign (7 x 7, sampling ratio 2, FPN level mapping with canonical scale 224 and level 4)
/// -> TwoMLPHead (flatten in (C, H, W) order, fc6 + ReLU, fc7 + ReLU) -> FastRCNNPredictor (cls_score, bbox_pred)
/// -> `postprocess`. Masks (when `masks`): MultiScaleRoIAlign (14 x 14) of the final boxes -> MaskRCNNHeads (3x3
/// convolutions + ReLU) -> MaskRCNNPredictor (conv5_mask 2x2 transposed convolution + ReLU, then the 1x1
/// mask_fcn_logits) -> sigmoid of each detection's own class channel. Only that channel is computed: the 1x1
/// convolution is independent per output channel, so the others would be discarded unused.
///
/// Threading: pooling, the layers and the per-detection mask logits are multi-threaded.
public struct RoIHeads: Sendable {
    public let config: RoIHeadsConfig
    public let numClasses: Int
    public let hasMasks: Bool
    /// TwoMLPHead's layers, or a sequential head.
    let boxLayers: BoxLayers
    enum BoxLayers: Sendable {
        case twoMLP(fc6: Linear, fc7: Linear)
        case network(SequentialNetwork)
    }
    /// TwoMLPHead's fc6 and fc7 (the trainer's models have them).
    var fc6: Linear {
        guard case .twoMLP(let fc6, _) = boxLayers else { preconditionFailure("RoIHeads: no TwoMLPHead") }
        return fc6
    }
    var fc7: Linear {
        guard case .twoMLP(_, let fc7) = boxLayers else { preconditionFailure("RoIHeads: no TwoMLPHead") }
        return fc7
    }
    let clsScore: Linear, bboxPred: Linear
    let maskConvs: [Conv2d]
    let maskUpsample: ConvTranspose2x2?
    /// Keypoint R-CNN's branch: pooler, KeypointRCNNHeads' convolutions, kps_score_lowres, keypoint count.
    let keypointPooler: Architecture.Pooler?
    let keypointConvs: [Conv2d]
    let keypointUpsample: ConvTranspose2d?
    public let numKeypoints: Int
    /// mask_fcn_logits: (numClasses, maskChannels) weights and (numClasses,) bias.
    let maskLogitsWeight: [Float], maskLogitsBias: [Float]

    /// torchvision's `MultiScaleRoIAlign` level mapping constants (`LevelMapper` defaults).
    static let canonicalScale = 224, canonicalLevel = 4
    /// Detections need width and height >= this (torchvision's `remove_small_boxes(boxes, min_size=1e-2)`).
    static let minSize: Float = 1e-2
    /// torchvision's `BoxCoder` clamp on dw and dh: log(1000 / 16).
    static let boxXformClip = Float(Double.log(1000.0 / 16))

    public init(
        weights: inout WeightStore, numClasses: Int, config: RoIHeadsConfig, masks: Bool,
        keypoints: (pooler: Architecture.Pooler, layers: [Int], count: Int)? = nil,
        prefix: String = TorchvisionKeys.roiHeads
    ) {
        precondition(numClasses >= 1, "RoIHeads: numClasses must be >= 1")
        self.config = config
        self.numClasses = numClasses
        hasMasks = masks
        let c = config.inChannels, r = config.representationSize
        let pooled = c * config.boxPoolSize * config.boxPoolSize
        typealias Box = TorchvisionKeys.BoxHead
        typealias Mask = TorchvisionKeys.MaskHead
        let fc6Keys = Box.fc6(prefix), fc7Keys = Box.fc7(prefix)
        let clsKeys = Box.clsScore(prefix), bboxKeys = Box.bboxPred(prefix)
        switch config.boxHead {
        case .twoMLPHead:
            boxLayers = .twoMLP(
                fc6: Linear(
                    weight: weights.take(fc6Keys.linearWeight(in: pooled, out: r)),
                    bias: weights.take(fc6Keys.bias(r)), inFeatures: pooled, outFeatures: r, relu: true),
                fc7: Linear(
                    weight: weights.take(fc7Keys.linearWeight(in: r, out: r)),
                    bias: weights.take(fc7Keys.bias(r)), inFeatures: r, outFeatures: r, relu: true))
        case .sequential(let layers):
            boxLayers = .network(SequentialNetwork(layers: layers, weights: &weights, prefix: prefix + "box_head."))
        }
        clsScore = Linear(
            weight: weights.take(clsKeys.linearWeight(in: r, out: numClasses)),
            bias: weights.take(clsKeys.bias(numClasses)), inFeatures: r, outFeatures: numClasses)
        bboxPred = Linear(
            weight: weights.take(bboxKeys.linearWeight(in: r, out: 4 * numClasses)),
            bias: weights.take(bboxKeys.bias(4 * numClasses)), inFeatures: r,
            outFeatures: 4 * numClasses)
        if let keypoints {
            var convs = [Conv2d]()
            var channels = c
            for (i, out) in keypoints.layers.enumerated() {
                let keys = TorchvisionKeys.LayerKeys(prefix: "\(prefix)keypoint_head.\(2 * i).")
                convs.append(
                    Conv2d(
                        weight: weights.take(keys.convWeight(in: channels, out: out, kernel: 3)),
                        bias: weights.take(keys.bias(out)), inChannels: channels, outChannels: out,
                        kernel: (3, 3), padding: 1, relu: true))
                channels = out
            }
            let keys = TorchvisionKeys.LayerKeys(prefix: prefix + "keypoint_predictor.kps_score_lowres.")
            let k = keypoints.count
            keypointPooler = keypoints.pooler
            keypointConvs = convs
            keypointUpsample = ConvTranspose2d(
                weight: weights.take(keys.convTransposeWeight(in: channels, out: k, kernel: 4)),
                bias: weights.take(keys.bias(k)), inChannels: channels, outChannels: k, kernel: 4, stride: 2,
                padding: 1)
            numKeypoints = k
        } else {
            keypointPooler = nil
            keypointConvs = []
            keypointUpsample = nil
            numKeypoints = 0
        }
        guard masks else {
            maskConvs = []
            maskUpsample = nil
            maskLogitsWeight = []
            maskLogitsBias = []
            return
        }
        var convs = [Conv2d]()
        var channels = c
        for (i, out) in config.maskLayers.enumerated() {
            let keys = Mask.layer(prefix, i)
            convs.append(
                config.maskHeadNorm
                    ? convolutionWithBatchNorm(
                        &weights, Mask.layerNorm(prefix, i), inChannels: channels, outChannels: out, kernel: 3,
                        padding: 1, relu: true)
                    : Conv2d(
                        weight: weights.take(keys.convWeight(in: channels, out: out, kernel: 3)),
                        bias: weights.take(keys.bias(out)), inChannels: channels,
                        outChannels: out, kernel: (3, 3), padding: 1, relu: true))
            channels = out
        }
        maskConvs = convs
        let upsampleKeys = Mask.conv5Mask(prefix), logitKeys = Mask.logits(prefix)
        let reduced = config.maskDimReduced
        maskUpsample = ConvTranspose2x2(
            weight: weights.take(upsampleKeys.convTransposeWeight(in: channels, out: reduced, kernel: 2)),
            bias: weights.take(upsampleKeys.bias(reduced)), inChannels: channels, outChannels: reduced, relu: true)
        maskLogitsWeight = weights.take(logitKeys.convWeight(in: reduced, out: numClasses, kernel: 1))
        maskLogitsBias = weights.take(logitKeys.bias(numClasses))
    }

    /// Detections per image in the coordinates of `imageSizes` (masks (N, 1, 28, 28) probabilities when `masks`).
    ///
    /// `features`: the backbone's maps (N, C, H_l, W_l) named by `config.levelNames` (a prefix of them is enough
    /// when the poolers use no later one; torchvision's FPN poolers use "0" ... "3");
    /// `proposals`: (P_i, 4) flat per image; `imageSizes`: each image's (height, width) after resizing, which also
    /// give the levels' scales (as torchvision, from the largest image height).
    public func callAsFunction(
        features: [FeatureMap], proposals: [[Float]], imageSizes: [(Int, Int)]
    )
        -> [Detections]
    {
        precondition(proposals.count == imageSizes.count, "RoIHeads: one proposal list per image")
        precondition(proposals.allSatisfy { $0.count % 4 == 0 }, "RoIHeads: proposals are (P, 4)")
        let rows = proposals.reduce(0) { $0 + $1.count / 4 }
        var classLogits = [Float](), boxRegression = [Float]()
        if rows > 0 {
            let pooled = pool(features, boxes: proposals, imageSizes: imageSizes, with: config.boxPooler)
            let x: [Float]
            switch boxLayers {
            case .twoMLP(let fc6, let fc7): x = fc7(fc6(pooled.data, rows: rows), rows: rows)
            case .network(let network):
                // Validated to fit the pooled size (Architecture.validate), so it cannot throw here.
                let y = try! network(pooled)
                precondition(y.channels * y.plane == config.representationSize, "RoIHeads: box head output size")
                x = Array(y.data)
            }
            classLogits = clsScore(x, rows: rows)
            boxRegression = bboxPred(x, rows: rows)
        }
        var detections = RoIHeads.postprocess(
            classLogits: classLogits, boxRegression: boxRegression,
            proposals: proposals, imageSizes: imageSizes, numClasses: numClasses,
            config: config)
        if hasMasks { addMasks(to: &detections, features: features, imageSizes: imageSizes) }
        if keypointPooler != nil { addKeypoints(to: &detections, features: features, imageSizes: imageSizes) }
        return detections
    }

    /// torchvision's `postprocess_detections` for one batch: `classLogits` (K, numClasses) and `boxRegression`
    /// (K, 4 numClasses) of the K proposals of all images (in image order).
    ///
    /// Per image: class probabilities by softmax; every (proposal, class >= 1) pair in that order is a candidate with
    /// the proposal decoded by its class's deltas (BoxCoder `config.boxWeights`) and clipped to the image; candidates
    /// need probability > `scoreThresh` and width and height >= 1e-2; NMS per class at `nmsThresh`; the first
    /// `detectionsPerImage` by decreasing score are kept. Only candidates above the threshold are decoded (decoding
    /// is per box, so this is what decoding all of them gives).
    public static func postprocess(
        classLogits: [Float], boxRegression: [Float], proposals: [[Float]],
        imageSizes: [(Int, Int)], numClasses: Int, config: RoIHeadsConfig
    ) -> [Detections] {
        let rows = proposals.reduce(0) { $0 + $1.count / 4 }
        precondition(
            classLogits.count == rows * numClasses && boxRegression.count == 4 * rows * numClasses,
            "RoIHeads.postprocess: predictions do not match the proposals")
        let scores = softmax(classLogits, rows: rows, columns: numClasses)
        var detections = [Detections](
            repeating: Detections(boxes: [], scores: [], labels: []),
            count: proposals.count)
        var first = 0
        var firstRow = [Int]()
        for p in proposals {
            firstRow.append(first)
            first += p.count / 4
        }
        detections.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forEachChunk(proposals.count) { images in
                for n in images {
                    let detectOne = config.legacy ? legacyDetect : detect
                    out[n] = detectOne(
                        scores, boxRegression, firstRow[n], proposals[n], imageSizes[n], numClasses, config)
                }
            }
        }
        return detections
    }

    /// Row-wise softmax as torch computes it: exp(x - row max), then times 1 / (row sum).
    static func softmax(_ x: [Float], rows: Int, columns: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { out, initialized in
            let o = out.baseAddress!
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!
                Parallel.forEachChunk(rows, minItemsPerChunk: max(1, 16384 / max(1, columns))) { range in
                    for r in range {
                        let src = xp + r * columns, dst = o + r * columns
                        var m = -Float.infinity
                        for j in 0..<columns where !(src[j] <= m) { m = src[j] }
                        var sum: Float = 0
                        for j in 0..<columns {
                            dst[j] = Float.exp(src[j] - m)
                            sum += dst[j]
                        }
                        let scale = 1 / sum
                        for j in 0..<columns { dst[j] *= scale }
                    }
                }
            }
            initialized = x.count
        }
    }

    /// `postprocess` for one image whose proposals are rows `firstRow ..< firstRow + P` of the predictions.
    static func detect(
        scores: [Float], boxRegression: [Float], firstRow: Int, proposals: [Float],
        imageSize: (Int, Int), numClasses: Int, config: RoIHeadsConfig
    ) -> Detections {
        let p = proposals.count / 4
        let threshold = Float(config.scoreThresh)
        // Candidates above the threshold, in (proposal, class) order; NaN scores fail the test.
        var rowOf = [Int](), labels = [Int64](), candidateScores = [Float]()
        for i in 0..<p {
            let s = (firstRow + i) * numClasses
            for j in 1..<max(1, numClasses) where scores[s + j] > threshold {
                rowOf.append(i)
                labels.append(Int64(j))
                candidateScores.append(scores[s + j])
            }
        }
        let m = rowOf.count
        var codes = [Float](repeating: 0, count: 4 * m), references = [Float](repeating: 0, count: 4 * m)
        for q in 0..<m {
            let i = rowOf[q], j = Int(labels[q])
            let code = 4 * ((firstRow + i) * numClasses + j)
            for c in 0..<4 {
                codes[4 * q + c] = boxRegression[code + c]
                references[4 * q + c] = proposals[4 * i + c]
            }
        }
        var decoded = [Float](repeating: 0, count: 4 * m)
        var boxes = [Float](repeating: 0, count: 4 * m)
        codes.withUnsafeBufferPointer { cb in
            references.withUnsafeBufferPointer { rb in
                decoded.withUnsafeMutableBufferPointer { db in
                    if m > 0 {
                        BoxCoding.decode(
                            codes: cb.baseAddress!, boxes: rb.baseAddress!, count: m, groups: 1,
                            weights: config.boxWeights, xformClip: boxXformClip, into: db.baseAddress!)
                    }
                }
            }
        }
        decoded.withUnsafeBufferPointer { db in
            boxes.withUnsafeMutableBufferPointer { bb in
                if m > 0 {
                    Boxes.clipToImage(
                        db.baseAddress!, count: m, height: Float(imageSize.0),
                        width: Float(imageSize.1), into: bb.baseAddress!)
                }
            }
        }
        // Small (and NaN) boxes out, compacting in place.
        var kept = 0
        for q in 0..<m {
            let w = boxes[4 * q + 2] - boxes[4 * q], h = boxes[4 * q + 3] - boxes[4 * q + 1]
            guard w >= minSize && h >= minSize else { continue }
            for c in 0..<4 { boxes[4 * kept + c] = boxes[4 * q + c] }
            labels[kept] = labels[q]
            candidateScores[kept] = candidateScores[q]
            kept += 1
        }
        let order = boxes.withUnsafeBufferPointer { b in
            candidateScores.withUnsafeBufferPointer { s in
                labels.withUnsafeBufferPointer { l in
                    DetectionNMS.batched(
                        boxes: b.baseAddress!, scores: s.baseAddress!, categories: l.baseAddress!,
                        count: kept, iouThreshold: config.nmsThresh)
                }
            }
        }
        let final = order.prefix(max(0, config.detectionsPerImage))
        var result = Detections(boxes: [], scores: [], labels: [])
        result.boxes.reserveCapacity(4 * final.count)
        for q in final {
            result.boxes += boxes[(4 * q)..<(4 * q + 4)]
            result.scores.append(candidateScores[q])
            result.labels.append(labels[q])
        }
        return result
    }

    /// `pooler` on `boxes` ((P_i, 4) flat per image) over the maps it names in `features`: (sum P_i, C, size, size).
    func pool(
        _ features: [FeatureMap], boxes: [[Float]], imageSizes: [(Int, Int)], with pooler: Architecture.Pooler
    ) -> FeatureMap {
        func level(_ name: String) -> FeatureMap {
            guard let i = config.levelNames.firstIndex(of: name), i < features.count else {
                preconditionFailure("RoIHeads: no feature map named \(name)")
            }
            return features[i]
        }
        switch pooler {
        case .multiScaleRoIAlign(let names, let size, let ratio):
            return RoIHeads.pool(
                names.map(level), boxes: boxes, imageSizes: imageSizes, size: size, samplingRatio: ratio)
        case .roiPool(let name, let size, let scale):
            return RoIHeads.roiPool(level(name), boxes: boxes, size: size, spatialScale: Float(scale))
        }
    }

    /// torchvision.ops.roi_pool of `boxes` ((P_i, 4) flat per image) over `feature`: (sum P_i, C, size, size).
    static func roiPool(_ feature: FeatureMap, boxes: [[Float]], size: Int, spatialScale: Float) -> FeatureMap {
        precondition(boxes.count <= feature.batch, "RoIHeads: more proposal lists than images")
        let rois = PoolingPlan.roiRows(boxes)
        let k = rois.count / 5
        return FeatureMap(batch: k, channels: feature.channels, height: size, width: size) { out in
            guard k > 0 else { return }
            feature.data.withUnsafeBufferPointer { f in
                rois.withUnsafeBufferPointer { r in
                    RoIPool.forward(
                        input: f.baseAddress!, batch: feature.batch, channels: feature.channels,
                        height: feature.height, width: feature.width, rois: r.baseAddress!, roiCount: k,
                        pooledHeight: size, pooledWidth: size, spatialScale: spatialScale,
                        output: out.baseAddress!, argmax: nil)
                }
            }
        }
    }

    /// MultiScaleRoIAlign of `boxes` ((P_i, 4) flat per image) over `features`: (sum P_i, C, size, size).
    static func pool(
        _ features: [FeatureMap], boxes: [[Float]], imageSizes: [(Int, Int)], size: Int,
        samplingRatio: Int
    ) -> FeatureMap {
        precondition(!features.isEmpty, "RoIHeads: no feature maps to pool from")
        let (batch, channels) = (features[0].batch, features[0].channels)
        precondition(
            features.allSatisfy { $0.batch == batch && $0.channels == channels && $0.height > 0 },
            "RoIHeads: feature maps of one batch size and channel count")
        precondition(boxes.count <= batch, "RoIHeads: more proposal lists than images")
        return pool(
            features, plan: PoolingPlan(features: features, boxes: boxes, imageSizes: imageSizes), size: size,
            samplingRatio: samplingRatio)
    }

    /// `pool` with the RoIs, their levels and the levels' scales already worked out.
    static func pool(_ features: [FeatureMap], plan: PoolingPlan, size: Int, samplingRatio: Int) -> FeatureMap {
        let (batch, channels) = (features[0].batch, features[0].channels)
        let (rois, levelOfRoI, scales) = (plan.rois, plan.levelOfRoI, plan.scales)
        let k = rois.count / 5
        return FeatureMap(batch: k, channels: channels, height: size, width: size) { out in
            guard k > 0 else { return }
            withFeaturePointers(features) { data in
                var levels = [RoIAlign.Level<Float>]()
                for (l, f) in features.enumerated() {
                    levels.append(
                        RoIAlign.Level(
                            data: data[l], height: f.height, width: f.width,
                            spatialScale: Float(scales[l])))
                }
                levels.withUnsafeBufferPointer { lv in
                    levelOfRoI.withUnsafeBufferPointer { lr in
                        rois.withUnsafeBufferPointer { r in
                            RoIAlign.forward(
                                levels: lv.baseAddress!, count: lv.count, levelOfRoI: lr.baseAddress,
                                batch: batch, channels: channels, rois: r.baseAddress!, count: k,
                                pooledH: size, pooledW: size, samplingRatio: samplingRatio,
                                aligned: false, output: out.baseAddress!)
                        }
                    }
                }
            }
        }
    }
}

/// Calls `body` with a base pointer to each map's data, valid during the call.
func withFeaturePointers<R>(_ maps: [FeatureMap], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func nest(_ i: Int, _ acc: [UnsafePointer<Float>]) -> R {
        if i == maps.count { return body(acc) }
        return maps[i].data.withUnsafeBufferPointer { buffer in
            // An empty map is never read; any aligned pointer stands in for its missing base address.
            nest(i + 1, acc + [buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!])
        }
    }
    return nest(0, [])
}
