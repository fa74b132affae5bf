import SwiftRCNNOps

/// One image's ground truth, as torchvision's training targets: boxes (G, 4) xyxy in the image's pixels, labels
/// (G,) in 1..<numClasses, and for Mask R-CNN masks (G, H, W) of 0/1 at the image's size. G may be 0.
public struct TrainingTarget: Sendable {
    public var boxes: [Float]
    public var labels: [Int64]
    public var masks: [UInt8]?

    public init(boxes: [Float], labels: [Int64], masks: [UInt8]? = nil) {
        self.boxes = boxes
        self.labels = labels
        self.masks = masks
    }

    public var count: Int { labels.count }
}

/// torchvision's training-mode settings of its detectors, with their defaults.
public struct TrainingConfig: Sendable {
    /// `rpn_pre_nms_top_n_train`, `rpn_post_nms_top_n_train`.
    public var rpnPreNMSTopN = 2000, rpnPostNMSTopN = 2000
    public var rpn = RPNTrainingConfig()
    public var roiHeads = RoIHeadsTrainingConfig()
    /// `trainable_backbone_layers`: how many of the body's modules (from layer4 down to conv1) train.
    public var trainableBackboneLayers = 3
    /// Sizes of the short side to choose from, one at random per batch (torchvision's `min_size` tuple); empty:
    /// the model's `minSize`.
    public var minSizes: [Double] = []
    /// Seeds every random choice (sizes, samples); a seeded run replays exactly whatever the thread count.
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        try require(
            (0...5).contains(trainableBackboneLayers),
            "trainable_backbone_layers: expected an int in [0, 5], got \(trainableBackboneLayers)")
        try require(rpnPreNMSTopN >= 0, "rpn_pre_nms_top_n_train: expected an int >= 0, got \(rpnPreNMSTopN)")
        try require(rpnPostNMSTopN >= 0, "rpn_post_nms_top_n_train: expected an int >= 0, got \(rpnPostNMSTopN)")
        try require(
            minSizes.allSatisfy { $0 >= 1 && $0 <= DetectionModel.Config.maxSide },
            "min_size: expected sizes in [1, \(Int(DetectionModel.Config.maxSide))], got \(minSizes)")
    }
}

/// The losses of one training step, torchvision's loss dict.
public struct TrainingLosses: Sendable {
    public var classifier: Float, boxReg: Float, objectness: Float, rpnBoxReg: Float
    /// Mask R-CNN only.
    public var mask: Float?

    /// Their sum, the value whose gradient a step computes.
    public var total: Float { classifier + boxReg + objectness + rpnBoxReg + (mask ?? 0) }

    /// (name, value) in torchvision's dict order.
    public var named: [(String, Float)] {
        var result = [("loss_classifier", classifier), ("loss_box_reg", boxReg)]
        if let mask { result.append(("loss_mask", mask)) }
        result += [("loss_objectness", objectness), ("loss_rpn_box_reg", rpnBoxReg)]
        return result
    }
}

/// The backbone's forward pass in training.
enum BackboneTapes {
    case resnet50FPN(BackboneTape)
    case sequential(SequentialTape)

    /// The feature levels, in `Architecture.levelNames` order.
    var levels: [FeatureMap] {
        switch self {
        case .resnet50FPN(let t): return t.levels
        case .sequential(let t): return [t.output]
        }
    }
}

/// What a training step chose at random, for tests that replay it in torchvision: the short side, and per image
/// the sampled anchors and proposals.
public struct TrainingChoices: Sendable {
    public var minSize: Double = 0
    public var imageSizes: [(Int, Int)] = []
    public var rpnPositive: [[UInt8]] = [], rpnNegative: [[UInt8]] = []
    /// Per image, the proposals (P_i, 4) the RPN returned, before the ground truth is appended.
    public var proposals: [[Float]] = []
    public var roiSamples: [RoITrainingSamples] = []
}

/// A Faster / Mask R-CNN being trained: torchvision's train-mode forward (losses), the backward pass through every
/// trainable layer, and updates of its parameters.
///
/// Parameters live in `parameters` in torchvision's parameterisation; `model`, the eval-mode detector that computes
/// (batch norms folded, Winograd filters transformed), is rebuilt from them whenever they change. Not thread-safe:
/// one caller at a time.
public final class DetectorTrainer: @unchecked Sendable {
    public let config: DetectionModel.Config
    public var training: TrainingConfig
    public let parameters: ParameterStore
    private var built: DetectionModel?
    /// Steps taken (it seeds each step's random choices).
    public private(set) var steps: UInt64 = 0

    /// Continues a run: SGD's momentum buffers and the step counter as `parameters.momentumBuffers` and `steps`
    /// were when the parameters now in the store were saved.
    public func restore(momentum: [String: [Float]], steps: UInt64) throws {
        try parameters.setMomentumBuffers(momentum)
        pendingBackward = nil
        self.steps = steps
    }
    /// The random choices of the last `losses` call.
    public private(set) var lastChoices = TrainingChoices()

    /// A trainer over a full state dict (`WeightStore.Entry` by torchvision name); the model is built once to check
    /// the keys and shapes as `DetectionModel` does.
    public init(config: DetectionModel.Config, training: TrainingConfig, entries: [String: WeightStore.Entry]) throws {
        try config.validate()
        try training.validate()
        try require(
            config.kind != .keypointRCNN, "kind: training covers Faster and Mask R-CNN so far, not Keypoint R-CNN")
        let a = config.architecture
        try require(!a.legacy, "architecture.legacy: faster-rcnn.pytorch's conventions are for inference only")
        try require(
            a.backbone != .mobileNetV3LargeFPN,
            "architecture.backbone: training covers ResNet-50-FPN and sequential backbones so far (MobileNetV3 runs "
                + "in eval mode)")
        try require(
            a.rpnConvDepth == 1 && !a.fpnNorm && !a.maskHeadNorm,
            "architecture: training covers RPN heads of one convolution and no batch norms in the FPN or the mask "
                + "head so far (the v2 models run in eval mode)")
        self.config = config
        self.training = training
        let layers = training.trainableBackboneLayers
        let frozen = Set(Self.frozenNorms(a))
        parameters = ParameterStore(entries) {
            !frozen.contains($0) && DetectorTrainer.isParameter($0, trainableBackboneLayers: layers, architecture: a)
        }
        var store = WeightStore(entries)
        built = try Winograd.withDefaultTile(2) { try DetectionModel(config: config, weights: &store) }
    }

    /// The batch norms' tensors of the sequential parts (a sequential backbone, a sequential box head), which
    /// train as torchvision's `FrozenBatchNorm2d`: buffers.
    static func frozenNorms(_ architecture: Architecture) -> [String] {
        var names = [String]()
        if case .sequential(let layers) = architecture.backbone {
            names += SequentialNetwork.normTensorNames(layers, prefix: TorchvisionKeys.backbone)
        }
        if case .sequential(let layers) = architecture.boxHead {
            names += SequentialNetwork.normTensorNames(layers, prefix: TorchvisionKeys.roiHeads + "box_head.")
        }
        return names
    }

    /// Whether torchvision's detector with `trainable_backbone_layers` trains the tensor `name`: every
    /// convolution and linear layer outside the ResNet body; in the body, the convolutions of the last
    /// `trainableBackboneLayers` modules (conv1, layer1 ... layer4). Frozen batch norms are buffers. A sequential
    /// backbone trains whole (`trainableBackboneLayers` is ResNet-50-FPN's; freeze its norms with `frozenNorms`).
    static func isParameter(
        _ name: String, trainableBackboneLayers: Int, architecture: Architecture = Architecture()
    ) -> Bool {
        let body = TorchvisionKeys.Backbone.body(TorchvisionKeys.backbone)
        guard name.hasPrefix(body), architecture.backbone == .resnet50FPN else {
            return !name.hasSuffix(TorchvisionKeys.batchNormCounter)
        }
        let parts = name.dropFirst(body.count).split(separator: ".")
        let module: Int
        let isConvolution: Bool
        if parts.first == "conv1" {
            module = 0
            isConvolution = true
        } else if let first = parts.first, first.hasPrefix("layer"),
            let digit = first.dropFirst(5).first?.wholeNumberValue,
            parts.count >= 4
        {
            // Inside a bottleneck only convN and downsample.0 are convolutions; bnN and downsample.1 are norms.
            module = digit
            isConvolution = parts[2].hasPrefix("conv") || (parts[2] == "downsample" && parts[3] == "0")
        } else {
            return false  // bn1
        }
        return isConvolution && ResNet50FPN.moduleTrains(module, trainableLayers: trainableBackboneLayers)
    }

    /// The eval-mode detector of the current parameters.
    public var model: DetectionModel {
        get throws {
            if let built { return built }
            var store = WeightStore(parameters.entries)
            // Training keeps F(2×2, 3×3) even where SWIFTRCNN_WINOGRAD_TILE=4 speeds up inference.
            let m = try Winograd.withDefaultTile(2) { try DetectionModel(config: config, weights: &store) }
            built = m
            return m
        }
    }

    /// Marks the parameters as changed (call after editing `parameters` directly).
    public func parametersChanged() { built = nil }

    /// One SGD update from the current gradients.
    public func step(_ optimizer: SGD) throws {
        try optimizer.validate()
        pendingBackward = nil
        optimizer.step(parameters)
        built = nil
    }

    /// A seed for one random choice of the current step: `stage` names the choice, `image` the image.
    func seed(stage: UInt64, image: Int = 0) -> UInt64 {
        var g = Xoshiro256StarStar(seed: training.seed ^ (steps &* 0x9E37_79B9_7F4A_7C15))
        var s = g.next()
        for part in [stage, UInt64(image)] {
            var mixer = Xoshiro256StarStar(seed: s ^ part)
            s = mixer.next()
        }
        return s
    }

    /// Checks the targets as torchvision's `GeneralizedRCNN.forward` does in training.
    func validate(_ images: [FeatureMap], _ targets: [TrainingTarget]) throws {
        try require(!images.isEmpty, "images: expected at least one image")
        try require(
            targets.count == images.count, "targets: expected one per image (\(images.count)), got \(targets.count)")
        for (i, t) in targets.enumerated() {
            let g = t.labels.count
            try require(
                t.boxes.count == 4 * g,
                "targets[\(i)]['boxes']: expected shape (\(g), 4) to match the labels, got \(t.boxes.count) values")
            for j in 0..<g {
                let b = t.boxes[(4 * j)..<(4 * j + 4)].map { $0 }
                try require(b.allSatisfy(\.isFinite), "targets[\(i)]['boxes'][\(j)]: expected finite coordinates")
                try require(
                    b[2] > b[0] && b[3] > b[1],
                    "targets[\(i)]['boxes'][\(j)]: all bounding boxes should have positive height and width, got \(b)")
                try require(
                    t.labels[j] >= 0 && t.labels[j] < config.numClasses,
                    "targets[\(i)]['labels'][\(j)]: expected a class in [0, \(config.numClasses)), got \(t.labels[j])")
            }
            if config.kind == .maskRCNN {
                let (h, w) = (images[i].height, images[i].width)
                guard let m = t.masks else { throw SwiftRCNNError.invalidValue("targets[\(i)]: missing 'masks'") }
                try require(
                    m.count == g * h * w, "targets[\(i)]['masks']: expected shape (\(g), \(h), \(w))")
            }
        }
    }

    /// torchvision's train-mode forward of `images` (1, 3, H_i, W_i) with `targets`: the losses; when `backward`,
    /// also adds the gradient of their sum to every trainable parameter's gradient (as `losses.backward()` after
    /// `zero_grad()` — gradients accumulate until `parameters.zeroGradients()`). Advances the step counter.
    public func losses(
        _ images: [FeatureMap], _ targets: [TrainingTarget], backward: Bool = true
    ) throws
        -> TrainingLosses
    {
        try validate(images, targets)
        pendingBackward = nil
        let model = try self.model
        defer { steps &+= 1 }
        var choices = TrainingChoices()
        // Transform: one short side for the batch, targets scaled with their image.
        let sizes = training.minSizes.isEmpty ? [config.minSize] : training.minSizes
        var sizeRNG = Xoshiro256StarStar(seed: seed(stage: 1))
        choices.minSize = sizes[Int(sizeRNG.next(below: UInt64(sizes.count)))]
        let transform = GeneralizedRCNNTransform(
            minSize: choices.minSize, maxSize: config.maxSize, imageMean: config.imageMean,
            imageStd: config.imageStd)
        let (batch, imageSizes) = try transform(images)
        choices.imageSizes = imageSizes
        let batchHW = (batch.height, batch.width)
        var gtBoxes = [[Float]](), gtMasks = [[UInt8]]()
        for (i, t) in targets.enumerated() {
            let rh = Float(imageSizes[i].0) / Float(images[i].height)
            let rw = Float(imageSizes[i].1) / Float(images[i].width)
            gtBoxes.append(t.boxes.enumerated().map { j, v in v * (j % 2 == 0 ? rw : rh) })
            if config.kind == .maskRCNN {
                gtMasks.append(
                    Self.resizeMasks(
                        t.masks!, count: t.count, from: (images[i].height, images[i].width), to: imageSizes[i]))
            }
        }

        let layers = training.trainableBackboneLayers
        let backboneTape: BackboneTapes
        switch model.backbone {
        case .resnet50FPN(let b): backboneTape = .resnet50FPN(b.forwardKeeping(batch, trainableLayers: layers))
        case .sequential(let b): backboneTape = .sequential(try b.forwardKeeping(batch))
        case .mobileNetV3LargeFPN: preconditionFailure("DetectorTrainer: refused at init")
        }
        let levels = backboneTape.levels

        // RPN: losses on sampled anchors, proposals from the (detached) predictions.
        var rpn = model.rpn
        rpn.config.preNMSTopN = training.rpnPreNMSTopN
        rpn.config.postNMSTopN = training.rpnPostNMSTopN
        let rpnTape = rpn.forwardKeeping(levels)
        let proposals = rpn.proposals(heads: rpnTape.heads, batchHW: batchHW, imageSizes: imageSizes).map(\.boxes)
        choices.proposals = proposals
        let anchors = rpn.imageAnchors(heads: rpnTape.heads, batchHW: batchHW)
        let (objectness, deltas) = rpn.flattened(rpnTape.heads)
        var labels = [Float](), regressionTargets = [Float](), positive = [UInt8](), negative = [UInt8]()
        for i in images.indices {
            let assigned = RPNTargets.assign(anchors: anchors, gtBoxes: gtBoxes[i], config: training.rpn)
            let sampled = RPNTargets.sample(
                labels: assigned.labels, config: training.rpn, seed: seed(stage: 2, image: i))
            labels += assigned.labels
            regressionTargets += assigned.regressionTargets
            positive += sampled.positive
            negative += sampled.negative
            choices.rpnPositive.append(sampled.positive)
            choices.rpnNegative.append(sampled.negative)
        }
        let rpnLoss = RPNLoss.compute(
            objectness: objectness, deltas: deltas, labels: labels, regressionTargets: regressionTargets,
            positive: positive, negative: negative)

        // RoI heads on sampled proposals.
        let heads = model.roiHeads
        var samples = [RoITrainingSamples]()
        for i in images.indices {
            samples.append(
                RoIHeadsTargets.select(
                    proposals: proposals[i], gtBoxes: gtBoxes[i], gtLabels: targets[i].labels,
                    config: training.roiHeads, seed: seed(stage: 3, image: i)))
        }
        choices.roiSamples = samples
        let boxTape = try heads.boxForwardKeeping(
            levels: levels, proposals: samples.map(\.proposals), imageSizes: imageSizes)
        let boxLoss = RoIHeadsLoss.fastRCNN(
            classLogits: boxTape.classLogits, boxRegression: boxTape.boxRegression, numClasses: heads.numClasses,
            labels: samples.flatMap(\.labels), regressionTargets: samples.flatMap(\.regressionTargets))

        var maskLoss: Float? = nil
        var maskPart: (tape: MaskHeadTape, gradient: [Float])? = nil
        if heads.hasMasks {
            var posBoxes = [[Float]](), posLabels = [[Int64]](), posMatched = [[Int64]]()
            for s in samples {
                let rows = s.labels.indices.filter { s.labels[$0] > 0 }
                posBoxes.append(rows.flatMap { s.proposals[(4 * $0)..<(4 * $0 + 4)] })
                posLabels.append(rows.map { s.labels[$0] })
                posMatched.append(rows.map { s.matchedGT[$0] })
            }
            let (tape, logits) = heads.maskForwardKeeping(
                levels: levels, proposals: posBoxes, labels: posLabels.flatMap { $0 },
                imageSizes: imageSizes)
            let loss = RoIHeadsLoss.maskRCNN(
                maskLogits: logits, numClasses: heads.numClasses, maskSize: tape.upsampled.height,
                proposals: posBoxes, labels: posLabels, matchedGT: posMatched, gtMasks: gtMasks,
                maskHeights: imageSizes.map(\.0), maskWidths: imageSizes.map(\.1))
            maskLoss = loss.loss
            maskPart = (tape, loss.gradient)
        }
        lastChoices = choices
        let result = TrainingLosses(
            classifier: boxLoss.classifier, boxReg: boxLoss.boxReg, objectness: rpnLoss.objectness,
            rpnBoxReg: rpnLoss.boxReg, mask: maskLoss)
        let parameters = self.parameters
        let pass = {
            Self.backward(
                model: model, parameters: parameters, rpn: rpn, rpnTape: rpnTape, rpnLoss: rpnLoss, boxTape: boxTape,
                boxLoss: boxLoss, maskPart: maskPart, backboneTape: backboneTape, layers: layers)
        }
        if backward { pass() } else { pendingBackward = pass }
        return result
    }

    /// The backward pass of the last `losses(…, backward: false)` call, holding its activations until run.
    private var pendingBackward: (() -> Void)?

    /// Whether a forward pass awaits its backward pass.
    public var hasPendingBackward: Bool { pendingBackward != nil }

    /// Runs the backward pass of the last `losses(…, backward: false)`: adds the gradient of its summed losses to
    /// the parameters' gradients (torch's `losses.backward()`), once. The pass uses the parameters of that forward
    /// pass; throws when there is none to run.
    public func backward() throws {
        guard let pass = pendingBackward else {
            throw SwiftRCNNError.invalidValue(
                "backward: no forward pass to differentiate (call the model on images and targets in train mode "
                    + "first; each forward pass can be differentiated once)")
        }
        pendingBackward = nil
        pass()
    }

    static func backward(
        model: DetectionModel, parameters: ParameterStore, rpn: RegionProposalNetwork, rpnTape: RPNTape,
        rpnLoss: (objectness: Float, boxReg: Float, objectnessGradient: [Float], deltasGradient: [Float]),
        boxTape: BoxHeadTape,
        boxLoss: (classifier: Float, boxReg: Float, classLogitsGradient: [Float], boxRegressionGradient: [Float]),
        maskPart: (tape: MaskHeadTape, gradient: [Float])?, backboneTape: BackboneTapes, layers: Int
    ) {
        let levels = backboneTape.levels
        let heads = model.roiHeads
        // Heads, then the backbone.
        var levelGradients = rpn.backward(
            rpnTape,
            headGradients: rpn.unflattened(
                objectness: rpnLoss.objectnessGradient, deltas: rpnLoss.deltasGradient, like: rpnTape.heads),
            levels: levels, store: parameters
        ).map { Optional($0) }
        func add(_ gradients: [FeatureMap?]) {
            for (l, g) in gradients.enumerated() {
                guard let g else { continue }
                if levelGradients[l] == nil { levelGradients[l] = g } else { addInPlace(&levelGradients[l]!, g) }
            }
        }
        add(
            heads.boxBackward(
                boxTape, classLogitsGradient: boxLoss.classLogitsGradient,
                boxRegressionGradient: boxLoss.boxRegressionGradient, levels: levels, store: parameters))
        if let (tape, gradient) = maskPart, !tape.labels.isEmpty {
            add(heads.maskBackward(tape, logitsGradient: gradient, levels: levels, store: parameters))
        }
        switch (model.backbone, backboneTape) {
        case (.resnet50FPN(let b), .resnet50FPN(let tape)):
            b.backward(tape, levelGradients: levelGradients, trainableLayers: layers, store: parameters)
        case (.sequential(let b), .sequential(let tape)):
            _ = b.backward(tape, outputGradient: levelGradients[0]!, store: parameters, inputGradient: false)
        default:
            preconditionFailure("DetectorTrainer.backward: the tape is not of this backbone")
        }
    }

    /// torchvision's target mask resize: nearest interpolation (its index rule) of (G, H, W) 0/1 masks to `to`.
    static func resizeMasks(_ masks: [UInt8], count g: Int, from: (Int, Int), to: (Int, Int)) -> [UInt8] {
        guard g > 0 else { return [] }
        let source = masks.map(Float.init)
        var resized = [Float](repeating: 0, count: g * to.0 * to.1)
        source.withUnsafeBufferPointer { s in
            resized.withUnsafeMutableBufferPointer { d in
                Interpolation.nearest(
                    s.baseAddress!, planes: g, height: from.0, width: from.1, outHeight: to.0, outWidth: to.1,
                    into: d.baseAddress!, accumulate: false)
            }
        }
        return resized.map { UInt8($0) }
    }
}
