import SwiftRCNNOps

/// Settings of torchvision's `RegionProposalNetwork` in eval mode (the `rpn_*_test` arguments of its detectors).
public struct RPNConfig: Sendable {
    /// Proposals kept per image and level before NMS, by objectness (`rpn_pre_nms_top_n_test`).
    public var preNMSTopN: Int
    /// Proposals kept per image after NMS (`rpn_post_nms_top_n_test`).
    public var postNMSTopN: Int
    /// IoU above which NMS suppresses a proposal (`rpn_nms_thresh`).
    public var nmsThresh: Double
    /// Objectness probability a proposal needs (kept when >= it; `rpn_score_thresh`).
    public var scoreThresh: Double
    /// Anchor sizes of each level (AnchorGenerator's `sizes`); every level has as many anchors per location.
    public var anchorSizes: [[Float]]
    /// Anchor aspect ratios (height / width) of each level.
    public var aspectRatios: [[Float]]
    /// Channels of the feature maps (the FPN's out_channels).
    public var inChannels: Int
    /// The head's 3x3 convolutions + ReLU before the predictors (RPNHead's `conv_depth`: 2 in the v2 models).
    public var convDepth = 1
    /// faster-rcnn.pytorch's proposal layer (`legacyProposals`) and anchors (py-faster-rcnn's table).
    public var legacy = false
    /// The legacy proposal layer's minimum box side at the original image's scale (`RPN_MIN_SIZE`, 16 pixels: one
    /// cell of a stride-16 map); times each image's resize scale.
    public var legacyMinSize: Float = 16

    public init(
        preNMSTopN: Int = 1000, postNMSTopN: Int = 1000, nmsThresh: Double = 0.7, scoreThresh: Double = 0.0,
        anchorSizes: [[Float]] = [[32], [64], [128], [256], [512]],
        aspectRatios: [[Float]] = Array(repeating: [0.5, 1, 2], count: 5), inChannels: Int = 256,
        convDepth: Int = 1, legacy: Bool = false
    ) {
        self.legacy = legacy
        self.convDepth = convDepth
        self.preNMSTopN = preNMSTopN
        self.postNMSTopN = postNMSTopN
        self.nmsThresh = nmsThresh
        self.scoreThresh = scoreThresh
        self.anchorSizes = anchorSizes
        self.aspectRatios = aspectRatios
        self.inChannels = inChannels
    }
}

/// torchvision's `RegionProposalNetwork` in eval mode: RPNHead on every level, anchors, decoding, and
/// `filter_proposals`.
///
/// Per level the head is a shared 3x3 convolution + ReLU, then 1x1 convolutions giving A objectness logits and 4A box
/// deltas per location (run here as one 1x1 convolution of 5A outputs). torchvision flattens a level's predictions
/// location-major (row, column), then anchor, which is also the order of its anchors; anchor `a` of location `p`
/// has flat index `p * A + a`, logit in channel `a` and deltas in channels `4a ..< 4a + 4` of `bbox_pred`.
///
/// Per image and level the `preNMSTopN` largest logits are selected (ties to the lower flat index, NaN first as in
/// torch.topk), and only those anchors are decoded (BoxCoder weights (1, 1, 1, 1); decoding is per anchor, so this
/// is what decoding everything and gathering gives). Then per image over all levels, in level order: sigmoid,
/// clip to the image, drop boxes narrower or lower than 1e-3, drop probabilities below `scoreThresh`, NMS per level,
/// and keep the first `postNMSTopN` by decreasing probability.
///
/// Threading: the convolutions are multi-threaded; selection and decoding run per (image, level) in parallel, the
/// filtering per image in parallel.
public struct RegionProposalNetwork: Sendable {
    public internal(set) var config: RPNConfig
    /// Anchors per location (the same on every level).
    public let numAnchors: Int
    let conv: Conv2d
    /// The head's further convolutions (`convDepth` > 1).
    let moreConvs: [Conv2d]
    /// cls_logits (A rows) stacked over bbox_pred (4A rows).
    let predictor: Conv2d
    /// Per level, the (A, 4) zero-centred cell anchors.
    let cellAnchors: [[Float]]

    /// torchvision's `RegionProposalNetwork.min_size`: proposals need width and height >= this.
    static let minSize: Float = 1e-3
    /// torchvision's `BoxCoder` clamp on dw and dh: log(1000 / 16).
    static let boxXformClip = Float(Double.log(1000.0 / 16))

    public init(weights: inout WeightStore, config: RPNConfig, prefix: String = TorchvisionKeys.rpn) {
        precondition(
            config.anchorSizes.count == config.aspectRatios.count && !config.anchorSizes.isEmpty,
            "RPNConfig: one list of sizes and one of aspect ratios per level")
        let counts = zip(config.anchorSizes, config.aspectRatios).map { $0.count * $1.count }
        precondition(
            counts.allSatisfy { $0 == counts[0] && $0 > 0 },
            "RPNConfig: every level needs the same (positive) number of anchors per location")
        self.config = config
        let c = config.inChannels, a = counts[0]
        numAnchors = a
        typealias Keys = TorchvisionKeys.RPNHead
        let convKeys = Keys.conv(prefix), logitKeys = Keys.clsLogits(prefix), deltaKeys = Keys.bboxPred(prefix)
        conv = Conv2d(
            weight: weights.take(convKeys.convWeight(in: c, out: c, kernel: 3)),
            bias: weights.take(convKeys.bias(c)), inChannels: c, outChannels: c,
            kernel: (3, 3), padding: 1, relu: true)
        moreConvs = (1..<max(1, config.convDepth)).map { i in
            let keys = Keys.conv(prefix, i)
            return Conv2d(
                weight: weights.take(keys.convWeight(in: c, out: c, kernel: 3)),
                bias: weights.take(keys.bias(c)), inChannels: c, outChannels: c,
                kernel: (3, 3), padding: 1, relu: true)
        }
        let w =
            weights.take(logitKeys.convWeight(in: c, out: a, kernel: 1))
            + weights.take(deltaKeys.convWeight(in: c, out: 4 * a, kernel: 1))
        let b = weights.take(logitKeys.bias(a)) + weights.take(deltaKeys.bias(4 * a))
        predictor = Conv2d(weight: w, bias: b, inChannels: c, outChannels: 5 * a, kernel: (1, 1))
        cellAnchors = zip(config.anchorSizes, config.aspectRatios).map { sizes, ratios in
            if config.legacy { return RegionProposalNetwork.legacyCellAnchors(sizes: sizes, ratios: ratios) }
            var cell = [Float](repeating: 0, count: 4 * a)
            sizes.withUnsafeBufferPointer { s in
                ratios.withUnsafeBufferPointer { r in
                    cell.withUnsafeMutableBufferPointer { o in
                        Anchors.cellAnchors(
                            sizes: s.baseAddress!, count: s.count, ratios: r.baseAddress!,
                            count: r.count, into: o.baseAddress!)
                    }
                }
            }
            return cell
        }
    }

    /// Proposals (P_i, 4) flat per image, P_i <= `postNMSTopN`. `imageScales`: each image's resize factor (the
    /// legacy proposal layer's minimum size scales with it; 1 when nil).
    public func callAsFunction(
        features: [FeatureMap], batchHW: (Int, Int), imageSizes: [(Int, Int)], imageScales: [Double]? = nil
    ) -> [[Float]] {
        proposals(features: features, batchHW: batchHW, imageSizes: imageSizes, imageScales: imageScales).map(\.boxes)
    }

    /// Proposals with their objectness probabilities, per image: boxes (P_i, 4) flat and scores (P_i,), by
    /// decreasing score (torchvision's `filter_proposals` result).
    ///
    /// `features`: one map (N, C, H_l, W_l) per level; `batchHW`: the padded batch's (height, width), from which the
    /// anchor strides are `batchHW / (H_l, W_l)` (integer division); `imageSizes`: each image's (height, width).
    public func proposals(
        features: [FeatureMap], batchHW: (Int, Int), imageSizes: [(Int, Int)], imageScales: [Double]? = nil
    )
        -> [(boxes: [Float], scores: [Float])]
    {
        precondition(features.count == cellAnchors.count, "RPN: expected \(cellAnchors.count) feature levels")
        precondition(
            features.allSatisfy { $0.batch == imageSizes.count }, "RPN: one image size per image of the batch")
        let heads = features.map { predictor(hidden($0)) }
        if config.legacy {
            return legacyProposals(
                heads: heads, batchHW: batchHW, imageSizes: imageSizes,
                imageScales: imageScales ?? Array(repeating: 1, count: imageSizes.count))
        }
        return proposals(heads: heads, batchHW: batchHW, imageSizes: imageSizes)
    }

    /// The head's convolutions on one level.
    func hidden(_ level: FeatureMap) -> FeatureMap {
        var x = conv(level)
        for c in moreConvs { x = c(x) }
        return x
    }

    /// `proposals(features:...)` from the head's outputs: per level the (N, 5A, H_l, W_l) map of A objectness
    /// logits over 4A box deltas (`predictor(conv(level))`).
    func proposals(
        heads: [FeatureMap], batchHW: (Int, Int), imageSizes: [(Int, Int)]
    )
        -> [(boxes: [Float], scores: [Float])]
    {
        let images = imageSizes.count
        let a = numAnchors
        let levels = heads.count
        // Top-n per level and image, and where each image's candidates of a level go.
        let topN = heads.map { min(config.preNMSTopN, $0.plane * a) }
        var levelStart = [0]
        for n in topN { levelStart.append(levelStart[levelStart.count - 1] + n) }
        let perImage = levelStart[levels]
        let anchors = (0..<levels).map { l in levelAnchors(level: l, map: heads[l], batchHW: batchHW) }

        var boxes = [Float](repeating: 0, count: images * perImage * 4)
        var logits = [Float](repeating: 0, count: images * perImage)
        boxes.withUnsafeMutableBufferPointer { boxesBuffer in
            logits.withUnsafeMutableBufferPointer { logitsBuffer in
                let (bp, lp) = (boxesBuffer.baseAddress!, logitsBuffer.baseAddress!)
                Parallel.forEachChunk(images * levels) { items in
                    for item in items {
                        let (n, l) = (item / levels, item % levels)
                        let slot = n * perImage + levelStart[l]
                        selectAndDecode(
                            head: heads[l], image: n, anchors: anchors[l], count: topN[l],
                            boxes: bp + 4 * slot, logits: lp + slot)
                    }
                }
            }
        }
        var levelOf = [Int64](repeating: 0, count: perImage)
        for l in 0..<levels { for i in levelStart[l]..<levelStart[l + 1] { levelOf[i] = Int64(l) } }

        var results = [(boxes: [Float], scores: [Float])](repeating: ([], []), count: images)
        results.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forEachChunk(images) { range in
                for n in range {
                    out[n] = filter(
                        boxes: Array(boxes[(4 * n * perImage)..<(4 * (n + 1) * perImage)]),
                        logits: Array(logits[(n * perImage)..<((n + 1) * perImage)]),
                        levels: levelOf, imageSize: imageSizes[n])
                }
            }
        }
        return results
    }

    /// All anchors of level `l` for a (5A, H, W) head map: (H * W * A, 4), location-major.
    func levelAnchors(level l: Int, map: FeatureMap, batchHW: (Int, Int)) -> [Float] {
        let count = map.plane * numAnchors * 4
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            cellAnchors[l].withUnsafeBufferPointer { cell in
                Anchors.grid(
                    cell: cell.baseAddress!, count: numAnchors, height: map.height, width: map.width,
                    strideY: batchHW.0 / map.height, strideX: batchHW.1 / map.width,
                    into: out.baseAddress!)
            }
            initialized = count
        }
    }

    /// The `count` largest logits of image `n` in `head` (5A, H, W), in decreasing order, with their decoded boxes.
    func selectAndDecode(
        head: FeatureMap, image n: Int, anchors: [Float], count k: Int,
        boxes: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>
    ) {
        if k == 0 { return }
        let a = numAnchors, plane = head.plane
        head.data.withUnsafeBufferPointer { hb in
            let base = hb.baseAddress! + n * 5 * a * plane
            let selected = TopK.indices(count: plane * a, k: k) { i in base[(i % a) * plane + i / a] }
            let codes = UnsafeMutablePointer<Float>.allocate(capacity: 4 * k)
            let chosen = UnsafeMutablePointer<Float>.allocate(capacity: 4 * k)
            defer { codes.deallocate(); chosen.deallocate() }
            for (j, i) in selected.enumerated() {
                let (p, anchor) = (i / a, i % a)
                logits[j] = base[anchor * plane + p]
                for c in 0..<4 {
                    codes[4 * j + c] = base[(a + 4 * anchor + c) * plane + p]
                    chosen[4 * j + c] = anchors[4 * i + c]
                }
            }
            BoxCoding.decode(
                codes: codes, boxes: chosen, count: k, groups: 1, weights: (1, 1, 1, 1),
                xformClip: RegionProposalNetwork.boxXformClip, into: boxes)
        }
    }

    /// One image's `filter_proposals` after the top-n selection: `boxes` (M, 4), `logits` (M,), `levels` (M,).
    func filter(
        boxes: [Float], logits: [Float], levels: [Int64], imageSize: (Int, Int)
    )
        -> (boxes: [Float], scores: [Float])
    {
        let m = logits.count
        var clipped = [Float](repeating: 0, count: 4 * m)
        boxes.withUnsafeBufferPointer { b in
            clipped.withUnsafeMutableBufferPointer { o in
                Boxes.clipToImage(
                    b.baseAddress!, count: m, height: Float(imageSize.0), width: Float(imageSize.1),
                    into: o.baseAddress!)
            }
        }
        // Small boxes, then low scores (NaN boxes and NaN scores fail both tests, as in torch).
        let threshold = Float(config.scoreThresh)
        var kept = [Int]()
        kept.reserveCapacity(m)
        for i in 0..<m {
            let w = clipped[4 * i + 2] - clipped[4 * i], h = clipped[4 * i + 3] - clipped[4 * i + 1]
            if w >= RegionProposalNetwork.minSize && h >= RegionProposalNetwork.minSize { kept.append(i) }
        }
        var keptBoxes = [Float](), keptScores = [Float](), keptLevels = [Int64]()
        keptBoxes.reserveCapacity(4 * kept.count); keptScores.reserveCapacity(kept.count)
        keptLevels.reserveCapacity(kept.count)
        for i in kept {
            let score = 1 / (1 + Float.exp(-logits[i]))
            if score >= threshold {
                keptBoxes += clipped[(4 * i)..<(4 * i + 4)]
                keptScores.append(score)
                keptLevels.append(levels[i])
            }
        }
        let order = keptBoxes.withUnsafeBufferPointer { b in
            keptScores.withUnsafeBufferPointer { s in
                keptLevels.withUnsafeBufferPointer { c in
                    DetectionNMS.batched(
                        boxes: b.baseAddress!, scores: s.baseAddress!, categories: c.baseAddress!,
                        count: keptScores.count, iouThreshold: config.nmsThresh)
                }
            }
        }
        let final = order.prefix(max(0, config.postNMSTopN))
        var outBoxes = [Float](), outScores = [Float]()
        outBoxes.reserveCapacity(4 * final.count); outScores.reserveCapacity(final.count)
        for i in final {
            outBoxes += keptBoxes[(4 * i)..<(4 * i + 4)]
            outScores.append(keptScores[i])
        }
        return (outBoxes, outScores)
    }
}

/// Partial selection: the indices of the `k` largest of `count` values, in torch.topk's order (decreasing; NaN
/// counts as the largest). Ties go to the lower index. A size-k heap of the current best is kept, so a value below
/// the heap's worst costs one comparison: O(count + k log k) for typical data.
enum TopK {
    /// Whether value `x` at index `i` comes before value `y` at index `j`.
    @inline(__always)
    static func precedes(_ x: Float, _ i: Int, _ y: Float, _ j: Int) -> Bool {
        if x.isNaN { return !y.isNaN || i < j }
        if y.isNaN { return false }
        return x > y || (x == y && i < j)
    }

    static func indices(count n: Int, k: Int, value: (Int) -> Float) -> [Int] {
        let k = min(k, n)
        if k <= 0 { return [] }
        // Min-heap by `precedes`: the root is the worst of the best k so far.
        var heap = [Int](), values = [Float]()
        heap.reserveCapacity(k); values.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count && precedes(values[worst], heap[worst], values[l], heap[l]) { worst = l }
                if r < heap.count && precedes(values[worst], heap[worst], values[r], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst); values.swapAt(i, worst)
                i = worst
            }
        }
        for i in 0..<k {
            heap.append(i); values.append(value(i))
            var c = i
            while c > 0 {
                let parent = (c - 1) / 2
                if !precedes(values[parent], heap[parent], values[c], heap[c]) { break }
                heap.swapAt(c, parent); values.swapAt(c, parent)
                c = parent
            }
        }
        for i in k..<n {
            let v = value(i)
            if precedes(v, i, values[0], heap[0]) {
                heap[0] = i; values[0] = v
                siftDown(0)
            }
        }
        var order = Array(0..<k)
        order.sort { precedes(values[$0], heap[$0], values[$1], heap[$1]) }
        return order.map { heap[$0] }
    }
}
