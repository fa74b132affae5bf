import CSwiftRCNN
import SwiftRCNNOps

// Test-only C exports of the detector's stages (swiftrcnn.h, "Detection stages"): each builds one component from a
// state dict (the keys under its prefix) and runs it once on caller-given feature maps, so that the parity tests can
// compare a model with torchvision stage by stage. They are not part of the stable API: their arguments follow the
// components' internals and may change with them; applications use srcnn_model_*.

/// Most feature maps a stage takes (an FPN has 4 or 5).
let maxStageLevels = 16
/// Most anchors per location an RPN may have: far above any published configuration (torchvision's FPN models have
/// 3), it keeps the head's weight shapes small whatever the caller passes.
let maxAnchorsPerLocation = 1024
/// Most classes a box predictor may have (LVIS has 1203 plus background).
let maxStageClasses = 1 << 16
/// Largest image side accepted: positions up to 2^24 are exact in float32.
let maxStageImageSide: Int64 = 1 << 24

/// The float32 weights under one prefix of a state dict passed as `names` and `weights` arrays.
struct StageWeights {
    var entries = [String: WeightStore.Entry]()

    init(
        names: UnsafePointer<UnsafePointer<CChar>?>?, weights: UnsafePointer<srcnn_array>?, count: Int64,
        prefix: String
    ) throws {
        try require(count >= 0, "weights: expected a number of weights >= 0, got \(count)")
        if count == 0 { return }
        guard let names, let weights else {
            throw SwiftRCNNError.invalidValue("weights: missing names or arrays (NULL)")
        }
        for i in 0..<Int(count) {
            guard let raw = names[i] else { throw SwiftRCNNError.invalidValue("weights: name \(i) is NULL") }
            let name = String(cString: raw)
            guard name.hasPrefix(prefix) else { continue }
            let a = try ArrayArgument(weights[i], "weights['\(name)']")
            try a.expect(dtype: .float32)
            try require(entries[name] == nil, "weights: the key '\(name)' appears twice")
            let values = Array(UnsafeBufferPointer(start: a.pointer(Float.self), count: a.count))
            entries[name] = WeightStore.Entry(shape: a.shape, values: values)
        }
    }

    /// Fails unless `parameter` is present with its shape. Used for the weights whose shape sets the sizes of the
    /// others, so that a `WeightStore` never stands in zeros for a missing weight much larger than what was passed.
    func requireShape(_ parameter: TorchvisionKeys.Parameter, _ explanation: String) throws {
        let (name, shape) = (parameter.key, parameter.shape)
        guard let e = entries[name] else {
            throw SwiftRCNNError.invalidValue(
                "weights: missing key \(name) (expected shape "
                    + "\(ArrayArgument.describe(shape)), \(explanation))")
        }
        try require(
            e.shape == shape,
            "weights: \(name): expected shape \(ArrayArgument.describe(shape)) "
                + "(\(explanation)), got \(ArrayArgument.describe(e.shape))")
    }

    func shape(_ name: String) -> [Int]? { entries[name]?.shape }

    var store: WeightStore { WeightStore(entries) }
}

/// Checked feature maps: 1...maxStageLevels float32 (N, C, H, W) arrays of one N and C with H, W >= 1.
func stageFeatures(
    _ features: UnsafePointer<srcnn_array>?, _ numLevels: Int64, expectedLevels: String
)
    throws -> [ArrayArgument]
{
    try require(
        numLevels >= 1 && numLevels <= maxStageLevels,
        "features: expected \(expectedLevels) feature maps, got \(numLevels)")
    guard let features else { throw SwiftRCNNError.invalidValue("features: missing array list (NULL)") }
    var maps = [ArrayArgument]()
    for l in 0..<Int(numLevels) {
        let f = try ArrayArgument(features[l], "features[\(l)]")
        try f.expect(dtype: .float32)
        if l == 0 {
            try f.expect(shape: [nil, nil, nil, nil], "(N, C, H, W)")
            try require(
                f[0] >= 1 && f[1] >= 1,
                "features[0]: expected at least one image and one channel, got "
                    + "shape \(ArrayArgument.describe(f.shape))")
        } else {
            try f.expect(
                shape: [maps[0][0], maps[0][1], nil, nil],
                "(\(maps[0][0]), \(maps[0][1]), H, W) (the batch size and channels of features[0])")
        }
        try require(
            f[2] >= 1 && f[3] >= 1,
            "features[\(l)]: expected a map of at least 1 x 1, got shape "
                + ArrayArgument.describe(f.shape))
        maps.append(f)
    }
    return maps
}

/// The maps as `FeatureMap`s (copies).
func featureMaps(_ maps: [ArrayArgument]) -> [FeatureMap] {
    maps.map { f in
        FeatureMap(
            batch: f[0], channels: f[1], height: f[2], width: f[3],
            data: Array(UnsafeBufferPointer(start: f.pointer(Float.self), count: f.count)))
    }
}

/// Checked image sizes: (N, 2) int64 rows (height, width), each in 1...maxStageImageSide.
func stageImageSizes(_ imageSizes: UnsafePointer<srcnn_array>?, images: Int) throws -> [(Int, Int)] {
    let s = try ArrayArgument(imageSizes, "image_sizes")
    try s.expect(dtype: .int64)
    try s.expect(shape: [images, 2], "(\(images), 2) rows (height, width), one per image of features")
    let p = s.pointer(Int64.self)
    var sizes = [(Int, Int)]()
    for i in 0..<images {
        let (h, w) = (p[2 * i], p[2 * i + 1])
        try require(
            h >= 1 && h <= maxStageImageSide && w >= 1 && w <= maxStageImageSide,
            "image_sizes: expected (height, width) in 1...\(maxStageImageSide), got (\(h), \(w)) for image \(i)")
        sizes.append((Int(h), Int(w)))
    }
    return sizes
}

func requireThreshold(_ value: Double, _ name: String) throws {
    try require(!value.isNaN, "\(name): expected a number, got NaN")
}

@_cdecl("srcnn_rpn_proposals")
public func srcnn_rpn_proposals(
    _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ weights: UnsafePointer<srcnn_array>?, _ numWeights: Int64,
    _ features: UnsafePointer<srcnn_array>?, _ numLevels: Int64, _ imageSizes: UnsafePointer<srcnn_array>?,
    _ batchH: Int64, _ batchW: Int64, _ anchorSizes: UnsafePointer<srcnn_array>?,
    _ numSizes: UnsafePointer<srcnn_array>?, _ aspectRatios: UnsafePointer<srcnn_array>?,
    _ numRatios: UnsafePointer<srcnn_array>?, _ preNMSTopN: Int64,
    _ postNMSTopN: Int64, _ nmsThresh: Double, _ scoreThresh: Double, _ boxes: UnsafeMutablePointer<srcnn_array>?,
    _ scores: UnsafeMutablePointer<srcnn_array>?, _ counts: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let maps = try stageFeatures(features, numLevels, expectedLevels: "1...\(maxStageLevels)")
        let (images, channels, levels) = (maps[0][0], maps[0][1], maps.count)
        let sizes = try stageImageSizes(imageSizes, images: images)
        try require(
            batchH >= 1 && batchH <= maxStageImageSide && batchW >= 1 && batchW <= maxStageImageSide,
            "batch_hw: expected sizes in 1...\(maxStageImageSide), got (\(batchH), \(batchW))")
        let (allSizes, sizeCounts, allRatios, ratioCounts) = try anchorLevels(
            sizes: try ArrayArgument(anchorSizes, "anchor_sizes"),
            numSizes: try ArrayArgument(numSizes, "anchor_sizes"),
            aspectRatios: try ArrayArgument(aspectRatios, "aspect_ratios"),
            numRatios: try ArrayArgument(numRatios, "aspect_ratios"), expectedLevels: levels)
        let perLocation = zip(sizeCounts, ratioCounts).map { $0.multipliedReportingOverflow(by: $1) }
        let a = perLocation[0].partialValue
        try require(
            perLocation.allSatisfy { !$0.overflow && $0.partialValue == a } && a >= 1
                && a <= maxAnchorsPerLocation,
            "anchor_sizes, aspect_ratios: every level needs the same number of anchors per location (sizes x "
                + "ratios), between 1 and \(maxAnchorsPerLocation); got "
                + perLocation.map { String($0.partialValue) }.joined(separator: ", "))
        try require(preNMSTopN >= 0, "pre_nms_top_n: expected an int >= 0, got \(preNMSTopN)")
        try require(postNMSTopN >= 0, "post_nms_top_n: expected an int >= 0, got \(postNMSTopN)")
        try requireThreshold(scoreThresh, "score_thresh")
        let post = Int(postNMSTopN)
        let b = try ArrayArgument(boxes, "boxes"), s = try ArrayArgument(scores, "scores")
        let c = try ArrayArgument(counts, "counts")
        try requireOutput(b, dtype: .float32, shape: [images, post, 4])
        try requireOutput(s, dtype: .float32, shape: [images, post])
        try requireOutput(c, dtype: .int64, shape: [images])

        let prefix = TorchvisionKeys.rpn
        let w = try StageWeights(names: names, weights: weights, count: numWeights, prefix: prefix)
        try w.requireShape(
            TorchvisionKeys.RPNHead.conv(prefix).convWeight(in: channels, out: channels, kernel: 3),
            "C = \(channels), the channels of features")
        var sizesPerLevel = [[Float]](), ratiosPerLevel = [[Float]]()
        var (si, ri) = (0, 0)
        for l in 0..<levels {
            sizesPerLevel.append(Array(allSizes[si..<(si + sizeCounts[l])]))
            ratiosPerLevel.append(Array(allRatios[ri..<(ri + ratioCounts[l])]))
            si += sizeCounts[l]
            ri += ratioCounts[l]
        }
        let config = RPNConfig(
            preNMSTopN: Int(preNMSTopN), postNMSTopN: post, nmsThresh: nmsThresh,
            scoreThresh: scoreThresh, anchorSizes: sizesPerLevel, aspectRatios: ratiosPerLevel,
            inChannels: channels)
        var store = w.store
        let rpn = RegionProposalNetwork(weights: &store, config: config, prefix: prefix)
        try store.finish()

        let results = rpn.proposals(
            features: featureMaps(maps), batchHW: (Int(batchH), Int(batchW)),
            imageSizes: sizes)
        let (bp, sp, cp) = (b.pointer(Float.self), s.pointer(Float.self), c.pointer(Int64.self))
        bp.update(repeating: 0, count: b.count)
        sp.update(repeating: 0, count: s.count)
        for (n, r) in results.enumerated() {
            cp[n] = Int64(r.scores.count)
            (bp + n * post * 4).update(from: r.boxes, count: r.boxes.count)
            (sp + n * post).update(from: r.scores, count: r.scores.count)
        }
    }
}

@_cdecl("srcnn_roi_heads_detect")
public func srcnn_roi_heads_detect(
    _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ weights: UnsafePointer<srcnn_array>?, _ numWeights: Int64,
    _ numClasses: Int64, _ masks: Int32, _ features: UnsafePointer<srcnn_array>?, _ numLevels: Int64,
    _ proposals: UnsafePointer<srcnn_array>?, _ proposalCounts: UnsafePointer<srcnn_array>?,
    _ imageSizes: UnsafePointer<srcnn_array>?, _ scoreThresh: Double, _ nmsThresh: Double,
    _ detectionsPerImg: Int64, _ boxes: UnsafeMutablePointer<srcnn_array>?,
    _ scores: UnsafeMutablePointer<srcnn_array>?, _ labels: UnsafeMutablePointer<srcnn_array>?,
    _ masksOut: UnsafeMutablePointer<srcnn_array>?, _ counts: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let maps = try stageFeatures(features, numLevels, expectedLevels: "1...\(maxStageLevels)")
        let (images, channels) = (maps[0][0], maps[0][1])
        let sizes = try stageImageSizes(imageSizes, images: images)
        try require(masks == 0 || masks == 1, "masks: expected 0 or 1, got \(masks)")
        try require(
            numClasses >= 1 && numClasses <= maxStageClasses,
            "num_classes: expected an int in 1...\(maxStageClasses), got \(numClasses)")
        try requireThreshold(scoreThresh, "score_thresh")
        try require(detectionsPerImg >= 0, "detections_per_img: expected an int >= 0, got \(detectionsPerImg)")

        // Proposals, split per image by proposal_counts.
        let p = try ArrayArgument(proposals, "proposals"), pc = try ArrayArgument(proposalCounts, "proposals")
        try p.expect(dtype: .float32)
        try p.expect(shape: [nil, 4], "(P, 4)")
        try pc.expect(dtype: .int64)
        try pc.expect(shape: [images], "(\(images),) proposal counts, one per image of features")
        try p.requireNoNaN(Float.self, allowInfinite: false)
        var perImage = [[Float]]()
        var row = 0
        let pp = p.pointer(Float.self), pcp = pc.pointer(Int64.self)
        for n in 0..<images {
            let k = pcp[n]
            try require(
                k >= 0 && k <= Int64(p[0] - row),
                "proposals: the per-image counts do not add up to the \(p[0]) proposals given")
            perImage.append(Array(UnsafeBufferPointer(start: pp + 4 * row, count: 4 * Int(k))))
            row += Int(k)
        }
        try require(row == p[0], "proposals: the per-image counts do not add up to the \(p[0]) proposals given")

        // The heads pool from every map given, named "0", "1", ... as MultiScaleRoIAlign's featmap_names.
        let mapNames = maps.indices.map(String.init)
        let config = RoIHeadsConfig(
            scoreThresh: scoreThresh, nmsThresh: nmsThresh,
            detectionsPerImage: Int(detectionsPerImg), inChannels: channels, levelNames: mapNames,
            boxPooler: .multiScaleRoIAlign(featmapNames: mapNames, outputSize: 7, samplingRatio: 2),
            maskPooler: .multiScaleRoIAlign(featmapNames: mapNames, outputSize: 14, samplingRatio: 2))
        try requireStageSampling(perImage, maps: maps, imageSizes: sizes, config: config)

        let d = Int(detectionsPerImg)
        let maskSide = 2 * config.maskPoolSize
        let b = try ArrayArgument(boxes, "boxes"), s = try ArrayArgument(scores, "scores")
        let l = try ArrayArgument(labels, "labels"), c = try ArrayArgument(counts, "counts")
        try requireOutput(b, dtype: .float32, shape: [images, d, 4])
        try requireOutput(s, dtype: .float32, shape: [images, d])
        try requireOutput(l, dtype: .int64, shape: [images, d])
        try requireOutput(c, dtype: .int64, shape: [images])
        var m: ArrayArgument?
        if masks == 1 {
            m = try ArrayArgument(masksOut, "masks")
            try requireOutput(m!, dtype: .float32, shape: [images, d, 1, maskSide, maskSide])
        }

        typealias Box = TorchvisionKeys.BoxHead
        typealias Mask = TorchvisionKeys.MaskHead
        let prefix = TorchvisionKeys.roiHeads
        let w = try StageWeights(names: names, weights: weights, count: numWeights, prefix: prefix)
        let pooled = channels * config.boxPoolSize * config.boxPoolSize
        let fc6 = Box.fc6(prefix).weightKey
        guard let fc6Shape = w.shape(fc6), fc6Shape.count == 2, fc6Shape[1] == pooled else {
            throw SwiftRCNNError.invalidValue(
                "weights: \(fc6): expected shape (R, \(pooled)) (C x \(config.boxPoolSize) x \(config.boxPoolSize) with "
                    + "C = \(channels), the channels of features), got "
                    + (w.shape(fc6).map { ArrayArgument.describe($0) } ?? "no such key"))
        }
        var heads = config
        heads.representationSize = fc6Shape[0]
        let r = fc6Shape[0]
        try w.requireShape(Box.fc7(prefix).linearWeight(in: r, out: r), "R = \(r), the rows of fc6.weight")
        try w.requireShape(
            Box.clsScore(prefix).linearWeight(in: r, out: Int(numClasses)),
            "num_classes = \(numClasses) and R = \(r)")
        if masks == 1 {
            var layers = [Int](), inputs = channels
            while let shape = w.shape(Mask.layer(prefix, layers.count).weightKey) {
                let layer = Mask.layer(prefix, layers.count), name = layer.weightKey
                guard shape.count == 4, shape[0] >= 1 else {
                    throw SwiftRCNNError.invalidValue(
                        "weights: \(name): expected shape (M, \(inputs), 3, 3), got "
                            + ArrayArgument.describe(shape))
                }
                try w.requireShape(
                    layer.convWeight(in: inputs, out: shape[0], kernel: 3),
                    "the input channels of this layer")
                layers.append(shape[0])
                inputs = shape[0]
            }
            try require(
                !layers.isEmpty,
                "weights: missing key \(Mask.layer(prefix, 0).weightKey) (expected shape "
                    + "(M, \(channels), 3, 3)) of the mask head")
            let conv5 = Mask.conv5Mask(prefix)
            let reduced = w.shape(conv5.weightKey).flatMap { $0.count == 4 ? $0[1] : nil } ?? inputs
            try w.requireShape(
                conv5.convTransposeWeight(in: inputs, out: reduced, kernel: 2),
                "the channels of the last mask_head layer")
            heads.maskLayers = layers
            heads.maskDimReduced = reduced
        }
        var store = w.store
        let roiHeads = RoIHeads(
            weights: &store, numClasses: Int(numClasses), config: heads, masks: masks == 1,
            prefix: prefix)
        try store.finish()

        let results = roiHeads(features: featureMaps(maps), proposals: perImage, imageSizes: sizes)
        let (bp, sp, lp, cp) = (
            b.pointer(Float.self), s.pointer(Float.self), l.pointer(Int64.self),
            c.pointer(Int64.self)
        )
        bp.update(repeating: 0, count: b.count)
        sp.update(repeating: 0, count: s.count)
        lp.update(repeating: 0, count: l.count)
        m?.pointer(Float.self).update(repeating: 0, count: m!.count)
        let maskSize = maskSide * maskSide
        for (n, r) in results.enumerated() {
            cp[n] = Int64(r.count)
            (bp + n * d * 4).update(from: r.boxes, count: r.boxes.count)
            (sp + n * d).update(from: r.scores, count: r.count)
            (lp + n * d).update(from: r.labels, count: r.count)
            if let m, let mr = r.masks { (m.pointer(Float.self) + n * d * maskSize).update(from: mr, count: mr.count) }
        }
    }
}

/// RoIAlign limits (finite geometry, bounded work) for the box pooling of caller-given proposals; the masks pool
/// the final boxes, which are clipped to the images.
func requireStageSampling(
    _ proposals: [[Float]], maps: [ArrayArgument], imageSizes: [(Int, Int)],
    config: RoIHeadsConfig
) throws {
    var rois = [Float]()
    for (n, b) in proposals.enumerated() {
        for i in 0..<(b.count / 4) { rois += [Float(n), b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]] }
    }
    let k = rois.count / 5
    let maxHeight = imageSizes.map(\.0).max() ?? 1
    let scales = maps.map { MultiScaleRoIAlign.inferScale(featureHeight: $0[2], imageHeight: maxHeight) }
    try rois.withUnsafeMutableBytes { raw in
        var descriptor = srcnn_array()
        descriptor.data = raw.baseAddress
        descriptor.ndim = 2
        descriptor.dtype = Int32(DType.float32.rawValue)
        descriptor.shape.0 = Int64(k)
        descriptor.shape.1 = 5
        let r = try ArrayArgument(descriptor, "proposals")
        let mapper = MultiScaleRoIAlign.LevelMapper(
            scales: scales, canonicalScale: RoIHeads.canonicalScale,
            canonicalLevel: RoIHeads.canonicalLevel)
        let p = r.pointer(Float.self)
        try validateRoIAlignSampling(
            r, channels: maps[0][1], pooledH: config.boxPoolSize,
            pooledW: config.boxPoolSize, samplingRatio: config.samplingRatio,
            aligned: false,
            map: { i -> (scale: Float, width: Int)? in
                let l = maps.count > 1 ? mapper.levelIndex(p + 5 * i, levels: maps.count) : 0
                return l >= 0 ? (Float(scales[l]), maps[l][3]) : nil
            })
    }
}
