import SwiftRCNNOps

/// torchvision's `FasterRCNN` / `MaskRCNN` in eval mode, built from a state dict: `GeneralizedRCNNTransform`, the
/// backbone, the region proposal network and the RoI heads, with the parts `config.architecture` chooses (by default
/// those of `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn`).
///
/// Immutable once built, so one model may serve several threads at once.
public final class DetectionModel: Sendable {
    public enum Kind: Int32, Sendable {
        case fasterRCNN = 0, maskRCNN = 1, keypointRCNN = 2
    }

    /// The eval-mode arguments of torchvision's builders, with their defaults.
    public struct Config: Sendable {
        public var kind: Kind = .fasterRCNN
        public var numClasses = 91
        public var minSize = 800.0, maxSize = 1333.0
        public var imageMean: [Float] = [0.485, 0.456, 0.406]
        public var imageStd: [Float] = [0.229, 0.224, 0.225]
        public var rpnPreNMSTopN = 1000, rpnPostNMSTopN = 1000
        public var rpnNMSThresh = 0.7, rpnScoreThresh = 0.0
        public var boxScoreThresh = 0.05, boxNMSThresh = 0.5
        public var boxDetectionsPerImage = 100
        /// The parts (backbone, anchors, poolers, head sizes); the default is the ResNet-50-FPN model.
        public var architecture = Architecture()

        public init() {}

        /// Largest min_size / max_size accepted: 16x torchvision's default max_size, far beyond any real use.
        static let maxSide = Double(1 << 15)
        /// Largest number of classes accepted (COCO has 91); it bounds the predictor's shapes.
        static let maxClasses = 1 << 20

        /// Throws `invalidValue` naming the first argument out of its range.
        public func validate() throws {
            try require(
                numClasses >= 1 && numClasses <= Self.maxClasses,
                "num_classes: expected an int in [1, \(Self.maxClasses)], got \(numClasses)")
            try require(
                minSize >= 1 && minSize <= Self.maxSide,
                "min_size: expected a number in [1, \(Int(Self.maxSide))], got \(minSize)")
            try require(
                maxSize >= 1 && maxSize <= Self.maxSide,
                "max_size: expected a number in [1, \(Int(Self.maxSide))], got \(maxSize)")
            try require(
                imageMean.count == 3 && imageMean.allSatisfy(\.isFinite),
                "image_mean: expected 3 finite numbers, got \(imageMean)")
            try require(
                imageStd.count == 3 && imageStd.allSatisfy { $0.isFinite && $0 != 0 },
                "image_std: expected 3 finite non-zero numbers, got \(imageStd)")
            try require(
                rpnPreNMSTopN >= 0,
                "rpn_pre_nms_top_n_test: expected an int >= 0, got \(rpnPreNMSTopN)")
            try require(
                rpnPostNMSTopN >= 0,
                "rpn_post_nms_top_n_test: expected an int >= 0, got \(rpnPostNMSTopN)")
            try require(!rpnScoreThresh.isNaN, "rpn_score_thresh: expected a number, got NaN")
            try require(!boxScoreThresh.isNaN, "box_score_thresh: expected a number, got NaN")
            try require(
                boxDetectionsPerImage >= 0,
                "box_detections_per_img: expected an int >= 0, got \(boxDetectionsPerImage)")
            try architecture.validate(masks: kind == .maskRCNN, keypoints: kind == .keypointRCNN)
        }
    }

    public let config: Config
    public let transform: GeneralizedRCNNTransform
    public let backbone: DetectorBackbone
    public let rpn: RegionProposalNetwork
    public let roiHeads: RoIHeads

    /// Builds every part from `weights` (torchvision state-dict names) and checks, like
    /// `load_state_dict(strict=True)`, that each key was used with its expected shape (one error lists them all).
    public init(config: Config, weights: inout WeightStore) throws {
        try config.validate()
        self.config = config
        transform = GeneralizedRCNNTransform(
            minSize: config.minSize, maxSize: config.maxSize,
            imageMean: config.imageMean, imageStd: config.imageStd)
        let a = config.architecture
        backbone = DetectorBackbone(a, weights: &weights, prefix: TorchvisionKeys.backbone)
        rpn = RegionProposalNetwork(
            weights: &weights,
            config: RPNConfig(
                preNMSTopN: config.rpnPreNMSTopN, postNMSTopN: config.rpnPostNMSTopN,
                nmsThresh: config.rpnNMSThresh, scoreThresh: config.rpnScoreThresh,
                anchorSizes: a.resolvedAnchorSizes, aspectRatios: a.resolvedAspectRatios,
                inChannels: a.outChannels, convDepth: a.rpnConvDepth, legacy: a.legacy),
            prefix: TorchvisionKeys.rpn)
        roiHeads = RoIHeads(
            weights: &weights, numClasses: config.numClasses,
            config: RoIHeadsConfig(
                scoreThresh: config.boxScoreThresh, nmsThresh: config.boxNMSThresh,
                detectionsPerImage: config.boxDetectionsPerImage, inChannels: a.outChannels,
                representationSize: a.representationSize, maskLayers: a.maskLayers,
                maskDimReduced: a.maskDimReduced, levelNames: a.levelNames, boxPooler: a.resolved(a.boxRoIPool),
                maskPooler: a.resolved(a.maskRoIPool), boxHead: a.boxHead, maskHeadNorm: a.maskHeadNorm,
                legacy: a.legacy),
            masks: config.kind == .maskRCNN,
            keypoints: config.kind == .keypointRCNN
                ? (pooler: a.resolved(a.keypointRoIPool), layers: a.keypointLayers, count: a.numKeypoints) : nil,
            prefix: TorchvisionKeys.roiHeads)
        try weights.finish()
    }

    /// Builds the model from a `.safetensors` state dict (see `WeightStore.init(safetensorsAt:)`); `config` is
    /// checked before the file is read.
    public convenience init(config: Config, safetensorsAt path: String) throws {
        try config.validate()
        var weights = try WeightStore(safetensorsAt: path)
        try self.init(config: config, weights: &weights)
    }

    /// The transform alone: the padded normalised batch and each image's size after resizing.
    /// images: (1, 3, H_i, W_i) maps.
    public func transformed(_ images: [FeatureMap]) throws -> (batch: FeatureMap, imageSizes: [(Int, Int)]) {
        try transform(images)
    }

    /// The backbone's levels (`config.architecture.levelNames`: the FPN's "0", "1", "2", "3", "pool") of the padded
    /// batch, and each image's size after resizing.
    public func features(_ images: [FeatureMap]) throws -> (levels: [FeatureMap], imageSizes: [(Int, Int)]) {
        let (batch, sizes) = try transform(images)
        return (try backbone(consume batch), sizes)
    }
}
