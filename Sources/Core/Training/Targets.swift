import SwiftRCNNOps

// Training targets of torchvision's two-stage detectors (`torchvision.models.detection.rpn` and `.roi_heads`): which
// anchors and proposals are foreground, background or ignored, which of them a balanced sampler keeps, and the box
// codes they regress to. Boxes are flat row-major (n, 4) `Float` arrays of (x1, y1, x2, y2) in pixels of the resized
// image; one call handles one image.

/// The RPN's training hyper-parameters: `RegionProposalNetwork`'s `fg_iou_thresh`, `bg_iou_thresh`,
/// `batch_size_per_image` and `positive_fraction`, with the defaults of torchvision's `fasterrcnn_resnet50_fpn`.
public struct RPNTrainingConfig: Sendable {
    /// Anchors whose best IoU with a ground-truth box is at least this are foreground (compared in `Float`, as
    /// torch compares a float32 tensor with a Python float).
    public var fgIoUThresh: Double
    /// Anchors whose best IoU is below this are background; those in between are ignored.
    public var bgIoUThresh: Double
    /// Anchors sampled per image for the loss.
    public var batchSizePerImage: Int
    /// Most foreground anchors per sample, as a fraction of `batchSizePerImage`.
    public var positiveFraction: Double

    public init(
        fgIoUThresh: Double = 0.7, bgIoUThresh: Double = 0.3, batchSizePerImage: Int = 256,
        positiveFraction: Double = 0.5
    ) {
        self.fgIoUThresh = fgIoUThresh
        self.bgIoUThresh = bgIoUThresh
        self.batchSizePerImage = batchSizePerImage
        self.positiveFraction = positiveFraction
    }
}

/// The box heads' training hyper-parameters: `RoIHeads`'s `fg_iou_thresh`, `bg_iou_thresh`, `batch_size_per_image`,
/// `positive_fraction` and `bbox_reg_weights`, with the defaults of torchvision's `fasterrcnn_resnet50_fpn`.
public struct RoIHeadsTrainingConfig: Sendable {
    /// Proposals whose best IoU with a ground-truth box is at least this are foreground.
    public var fgIoUThresh: Double
    /// Proposals whose best IoU is below this are background (with the defaults, no proposal is ignored).
    public var bgIoUThresh: Double
    /// Proposals sampled per image for the loss.
    public var batchSizePerImage: Int
    /// Most foreground proposals per sample, as a fraction of `batchSizePerImage`.
    public var positiveFraction: Double
    /// `BoxCoder` weights (wx, wy, ww, wh) of the regression targets; torchvision's `RoIHeads` default
    /// `(10, 10, 5, 5)` scales the codes to about unit variance (Girshick, "Fast R-CNN", 2015).
    public var boxWeights: (Float, Float, Float, Float)

    public init(
        fgIoUThresh: Double = 0.5, bgIoUThresh: Double = 0.5, batchSizePerImage: Int = 512,
        positiveFraction: Double = 0.25, boxWeights: (Float, Float, Float, Float) = (10, 10, 5, 5)
    ) {
        self.fgIoUThresh = fgIoUThresh
        self.bgIoUThresh = bgIoUThresh
        self.batchSizePerImage = batchSizePerImage
        self.positiveFraction = positiveFraction
        self.boxWeights = boxWeights
    }
}

/// The RPN's anchor targets (`RegionProposalNetwork.assign_targets_to_anchors`, then `box_coder.encode`) and its
/// anchor sampler (`fg_bg_sampler`).
public enum RPNTargets {
    /// `BoxCoder` weights of the RPN: torchvision builds its box coder with `(1, 1, 1, 1)`.
    public static let boxWeights: (Float, Float, Float, Float) = (1, 1, 1, 1)

    /// Labels and regression targets of one image's anchors (A, 4) against its ground-truth boxes (G, 4).
    ///
    /// The `Matcher(fgIoUThresh, bgIoUThresh, allow_low_quality_matches=True)` gives each anchor the box of highest
    /// IoU; labels are 1 when that IoU is >= `fgIoUThresh`, 0 below `bgIoUThresh`, -1 (ignored) in between, except
    /// that every anchor tying for a box's best IoU is foreground whatever that IoU, matched to its own best box (so
    /// each box has an anchor; a box of zero area has IoU 0 with every anchor, so all anchors tie and every anchor of
    /// the image is foreground, those overlapping no box matched to box 0 — torchvision's behaviour, which its model
    /// avoids by rejecting such boxes).
    ///
    /// Regression targets (A, 4) encode each anchor's matched box (the highest-IoU box, also for background and
    /// ignored anchors) relative to the anchor, `BoxCoder` weights (1, 1, 1, 1). An image without boxes has all
    /// labels 0 and, as torchvision, targets encoding a zero box, whose log-sizes are -inf; only foreground rows are
    /// ever read by the loss.
    ///
    /// Threading: the IoU matrix and the matching are split over anchors (`Parallel`); results do not depend on
    /// the thread count.
    public static func assign(
        anchors: [Float], gtBoxes: [Float], config: RPNTrainingConfig
    ) -> (labels: [Float], regressionTargets: [Float]) {
        precondition(anchors.count % 4 == 0 && gtBoxes.count % 4 == 0, "boxes are (n, 4)")
        let a = anchors.count / 4, g = gtBoxes.count / 4
        var labels = [Float](repeating: 0, count: a)
        var matched = [Float](repeating: 0, count: 4 * a)
        if g > 0 && a > 0 {
            let matches = TrainingMatch.matches(
                gtBoxes: gtBoxes, boxes: anchors, high: config.fgIoUThresh, low: config.bgIoUThresh,
                allowLowQualityMatches: true)
            for i in 0..<a {
                let m = matches[i]
                labels[i] = m >= 0 ? 1 : (m == Matching.betweenThresholds ? -1 : 0)
                let box = 4 * Int(max(m, 0))
                for c in 0..<4 { matched[4 * i + c] = gtBoxes[box + c] }
            }
        }
        return (labels, TrainingMatch.encode(reference: matched, proposals: anchors, weights: boxWeights))
    }

    /// `BalancedPositiveNegativeSampler(batchSizePerImage, positiveFraction)` on one image's anchor `labels` (A,):
    /// of the foreground (label >= 1) anchors `min(#foreground, Int(batch * fraction))`, of the background (label 0)
    /// ones `min(#background, batch - #positives)`, drawn uniformly without replacement from `seed`
    /// (`BalancedSampler`). Returns 0/1 masks (A,) of the chosen anchors; the same seed chooses the same anchors.
    public static func sample(
        labels: [Float], config: RPNTrainingConfig, seed: UInt64
    ) -> (positive: [UInt8], negative: [UInt8]) {
        // The sampler's classes: >= 1 foreground, 0 background, anything else (-1, NaN) ignored.
        let classes = labels.map { $0 >= 1 ? Int64(1) : ($0 == 0 ? 0 : -1) }
        return TrainingMatch.sample(
            classes, batchSizePerImage: config.batchSizePerImage,
            positiveFraction: config.positiveFraction, seed: seed)
    }
}

/// One image's training samples of the box heads (`RoIHeads.select_training_samples`): the sampled proposals in
/// ascending index order, S of them.
public struct RoITrainingSamples: Sendable {
    /// (S, 4) the sampled boxes, taken from the proposals followed by the ground-truth boxes.
    public var proposals: [Float]
    /// (S,) the class of each sample's matched box, 0 for background.
    public var labels: [Int64]
    /// (S, 4) each sample's matched box encoded relative to the sample with the config's `boxWeights`.
    public var regressionTargets: [Float]
    /// (S,) index of each sample's matched ground-truth box; 0 for background samples (torchvision clamps the
    /// matcher's negative codes to 0).
    public var matchedGT: [Int64]
    /// (S,) ascending indices of the samples into the proposals followed by the ground-truth boxes.
    public var sampledIndices: [Int64]

    public init(
        proposals: [Float], labels: [Int64], regressionTargets: [Float], matchedGT: [Int64], sampledIndices: [Int64]
    ) {
        self.proposals = proposals
        self.labels = labels
        self.regressionTargets = regressionTargets
        self.matchedGT = matchedGT
        self.sampledIndices = sampledIndices
    }

    /// Number of samples S.
    public var count: Int { labels.count }
}

/// The box heads' proposal targets and sampling (`RoIHeads.select_training_samples`).
public enum RoIHeadsTargets {
    /// Samples one image's proposals (P, 4) for training the box heads, given its ground-truth boxes (G, 4) and
    /// their classes (G,), as torchvision:
    /// - the ground-truth boxes are appended to the proposals (so each box has at least itself as a proposal);
    /// - `Matcher(fgIoUThresh, bgIoUThresh, allow_low_quality_matches=False)` gives each of the P + G boxes the
    ///   ground truth of highest IoU; its label is that box's class when the IoU is >= `fgIoUThresh`, 0
    ///   (background) below `bgIoUThresh`, -1 (ignored) in between;
    /// - the balanced sampler (`BalancedSampler`, seeded) keeps up to `batchSizePerImage` of them, at most a
    ///   `positiveFraction` of which foreground (label >= 1), the others background (label 0);
    /// - the kept boxes come in ascending index order (`torch.where(pos | neg)`), with their labels, matched
    ///   ground-truth index (0 where none) and regression targets: the matched box encoded with `boxWeights`.
    ///
    /// Without ground-truth boxes every proposal is background and the targets encode a zero box (torchvision's
    /// stand-in), whose log-sizes are -inf; `fastRCNN` reads only foreground rows.
    public static func select(
        proposals: [Float], gtBoxes: [Float], gtLabels: [Int64], config: RoIHeadsTrainingConfig, seed: UInt64
    ) -> RoITrainingSamples {
        precondition(proposals.count % 4 == 0 && gtBoxes.count % 4 == 0, "boxes are (n, 4)")
        precondition(gtLabels.count == gtBoxes.count / 4, "one label per ground-truth box")
        let boxes = proposals + gtBoxes
        let n = boxes.count / 4, g = gtLabels.count
        var matchedGT = [Int64](repeating: 0, count: n)
        var labels = [Int64](repeating: 0, count: n)
        if g > 0 {
            let matches = TrainingMatch.matches(
                gtBoxes: gtBoxes, boxes: boxes, high: config.fgIoUThresh, low: config.bgIoUThresh,
                allowLowQualityMatches: false)
            for i in 0..<n {
                let m = matches[i]
                matchedGT[i] = max(m, 0)
                labels[i] = m >= 0 ? gtLabels[Int(m)] : (m == Matching.betweenThresholds ? -1 : 0)
            }
        }
        let (positive, negative) = TrainingMatch.sample(
            labels, batchSizePerImage: config.batchSizePerImage, positiveFraction: config.positiveFraction,
            seed: seed)
        var samples = RoITrainingSamples(
            proposals: [], labels: [], regressionTargets: [], matchedGT: [], sampledIndices: [])
        var matchedBoxes = [Float]()
        // torchvision encodes against a (1, 4) zero box when the image has no ground truth.
        let reference = g > 0 ? gtBoxes : [0, 0, 0, 0]
        for i in 0..<n where positive[i] != 0 || negative[i] != 0 {
            let m = Int(matchedGT[i])
            samples.sampledIndices.append(Int64(i))
            samples.labels.append(labels[i])
            samples.matchedGT.append(matchedGT[i])
            samples.proposals += boxes[(4 * i)..<(4 * i + 4)]
            matchedBoxes += reference[(4 * m)..<(4 * m + 4)]
        }
        samples.regressionTargets = TrainingMatch.encode(
            reference: matchedBoxes, proposals: samples.proposals, weights: config.boxWeights)
        return samples
    }

    /// Mask R-CNN's mask targets for one image (`roi_heads.project_masks_on_boxes`): the ground-truth mask
    /// `matchedGT[p]` of `gtMasks` (G, height, width) (0 / 1) cropped to box p of `boxes` (P, 4) and resampled to
    /// `maskSize` x `maskSize` by `roi_align(masks, rois, (M, M), spatial_scale=1)` with torchvision's defaults
    /// `sampling_ratio=-1` (adaptive: about one bilinear sample per mask pixel) and `aligned=False`. Returns
    /// (P, M, M) values in [0, 1].
    ///
    /// Only the masks some box uses are converted to `Float` (torchvision converts all of them). Threading: the
    /// conversion splits mask rows, the pooling `RoIAlign`'s work items, over `Parallel` threads.
    public static func projectMasks(
        _ gtMasks: [UInt8], height: Int, width: Int, boxes: [Float], matchedGT: [Int64], maskSize m: Int
    ) -> [Float] {
        let p = matchedGT.count, plane = height * width
        precondition(boxes.count == 4 * p, "projectMasks: boxes are (P, 4)")
        var out = [Float](repeating: 0, count: p * m * m)
        guard p > 0 else { return out }
        precondition(plane > 0 && gtMasks.count % plane == 0, "projectMasks: gtMasks is not (G, height, width)")
        precondition(matchedGT.allSatisfy { $0 >= 0 && Int($0) < gtMasks.count / plane }, "matchedGT out of range")
        // The used masks, in ascending order, become the batch of the RoIAlign input.
        let used = Array(Set(matchedGT.map { Int($0) })).sorted()
        var slot = [Int: Int]()
        for (s, g) in used.enumerated() { slot[g] = s }
        var planes = [Float](repeating: 0, count: used.count * plane)
        gtMasks.withUnsafeBufferPointer { masks in
            planes.withUnsafeMutableBufferPointer { planes in
                Parallel.forEachChunk(used.count * height, minItemsPerChunk: max(1, 65536 / width)) { rows in
                    for r in rows {
                        let (s, y) = r.quotientAndRemainder(dividingBy: height)
                        let src = masks.baseAddress! + used[s] * plane + y * width
                        let dst = planes.baseAddress! + s * plane + y * width
                        for x in 0..<width { dst[x] = Float(src[x]) }
                    }
                }
            }
        }
        var rois = [Float](repeating: 0, count: 5 * p)
        for r in 0..<p {
            rois[5 * r] = Float(slot[Int(matchedGT[r])]!)
            for c in 0..<4 { rois[5 * r + 1 + c] = boxes[4 * r + c] }
        }
        RoIAlign.forward(
            input: planes, batch: used.count, channels: 1, height: height, width: width, rois: rois, count: p,
            spatialScale: 1, pooledH: m, pooledW: m, samplingRatio: maskSamplingRatio, aligned: false, output: &out)
        return out
    }

    /// `roi_align`'s default `sampling_ratio`, which `project_masks_on_boxes` keeps: -1, adaptive.
    static let maskSamplingRatio = -1
}

/// The steps the RPN and the box heads share: IoU matching, sampling, encoding.
enum TrainingMatch {
    /// Anchors per chunk of the IoU matrix below which a parallel split does not pay off (with G boxes, about
    /// 16384 IoUs per chunk, as `Boxes.pairwiseIoU` splits its rows).
    static let iouEntriesPerChunk = 16384

    /// `Matcher(high, low, allowLowQualityMatches)` of `boxes` (n, 4) against `gtBoxes` (G, 4), G, n >= 1: each
    /// box's matched ground-truth index or `Matching.belowLowThreshold` / `.betweenThresholds`.
    ///
    /// The (G, n) IoU matrix is `torchvision.ops.box_iou(gt_boxes, boxes)`, computed in column blocks so that the
    /// work splits over the n boxes (the few ground-truth rows would not feed the threads).
    static func matches(
        gtBoxes: [Float], boxes: [Float], high: Double, low: Double, allowLowQualityMatches: Bool
    ) -> [Int64] {
        let g = gtBoxes.count / 4, n = boxes.count / 4
        var iou = [Float](repeating: 0, count: g * n)
        gtBoxes.withUnsafeBufferPointer { gt in
            boxes.withUnsafeBufferPointer { b in
                iou.withUnsafeMutableBufferPointer { out in
                    let (gt, b, out) = (gt.baseAddress!, b.baseAddress!, out.baseAddress!)
                    Parallel.forEachChunk(n, minItemsPerChunk: max(1, iouEntriesPerChunk / g)) { columns in
                        let width = columns.count
                        let block = UnsafeMutablePointer<Float>.allocate(capacity: g * width)
                        defer { block.deallocate() }
                        // IoU is symmetric to the bit (the union adds two areas, which commutes), so the (G, width)
                        // block is box_iou(gt_boxes, boxes[columns]) whichever argument comes first.
                        Boxes.pairwiseIoU(
                            .iou, gt, count: g, b + 4 * columns.lowerBound, count: width, eps: 0, into: block)
                        for i in 0..<g {
                            (out + i * n + columns.lowerBound).update(from: block + i * width, count: width)
                        }
                    }
                }
            }
        }
        var matches = [Int64](repeating: 0, count: n)
        Matching.match(
            quality: iou, groundTruths: g, predictions: n, highThreshold: Float(high), lowThreshold: Float(low),
            allowLowQualityMatches: allowLowQualityMatches, matches: &matches)
        return matches
    }

    /// The balanced sampler's masks for one image's `classes` (>= 1 foreground, 0 background, < 0 ignored).
    static func sample(
        _ classes: [Int64], batchSizePerImage: Int, positiveFraction: Double, seed: UInt64
    ) -> (positive: [UInt8], negative: [UInt8]) {
        var positive = [UInt8](repeating: 0, count: classes.count)
        var negative = [UInt8](repeating: 0, count: classes.count)
        BalancedSampler.sample(
            matchedIdxs: classes, count: classes.count, batchSizePerImage: batchSizePerImage,
            positiveFraction: positiveFraction, seed: seed, positive: &positive, negative: &negative)
        return (positive, negative)
    }

    /// `BoxCoder(weights).encode`: `reference` (n, 4) relative to `proposals` (n, 4).
    static func encode(reference: [Float], proposals: [Float], weights: (Float, Float, Float, Float)) -> [Float] {
        var targets = [Float](repeating: 0, count: proposals.count)
        BoxCoding.encode(
            reference: reference, proposals: proposals, count: proposals.count / 4, weights: weights, into: &targets)
        return targets
    }
}
