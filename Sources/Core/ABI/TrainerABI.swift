import CSwiftRCNN
import Synchronization

// C ABI of training (swiftrcnn.h, "Training"): `srcnn_trainer` is a retained `TrainerHandle`.

/// A trainer and the flag that turns a second concurrent call into an error instead of a data race.
final class TrainerHandle {
    let trainer: DetectorTrainer
    let busy = Atomic<Bool>(false)

    init(_ trainer: DetectorTrainer) { self.trainer = trainer }

    /// Runs `body` unless another call is running on this trainer.
    func exclusive<R>(_ body: (DetectorTrainer) throws -> R) throws -> R {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw SwiftRCNNError.invalidValue(
                "trainer: in use by another thread (calls on one trainer must not overlap)")
        }
        defer { busy.store(false, ordering: .releasing) }
        return try body(trainer)
    }
}

func trainerHandle(_ p: OpaquePointer?) throws -> TrainerHandle {
    guard let p else { throw SwiftRCNNError.invalidValue("trainer: NULL") }
    return Unmanaged<TrainerHandle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

/// The training config as the Swift trainer takes it (ranges checked here and in `TrainingConfig.validate`).
func trainingConfig(_ c: srcnn_training_config) throws -> TrainingConfig {
    func int(_ v: Int64) -> Int { Int(max(min(v, Int64(Int32.max)), Int64(Int32.min))) }
    func fraction(_ v: Double, _ name: String) throws -> Double {
        try require(v >= 0 && v <= 1, "\(name): expected a number in [0, 1], got \(v)")
        return v
    }
    func threshold(_ v: Double, _ name: String) throws -> Double {
        try require(!v.isNaN, "\(name): expected a number, got NaN")
        return v
    }
    var t = TrainingConfig()
    t.rpnPreNMSTopN = int(c.rpn_pre_nms_top_n_train)
    t.rpnPostNMSTopN = int(c.rpn_post_nms_top_n_train)
    t.rpn.fgIoUThresh = try threshold(c.rpn_fg_iou_thresh, "rpn_fg_iou_thresh")
    t.rpn.bgIoUThresh = try threshold(c.rpn_bg_iou_thresh, "rpn_bg_iou_thresh")
    try require(
        c.rpn_batch_size_per_image >= 0 && c.rpn_batch_size_per_image <= Int64(Int32.max),
        "rpn_batch_size_per_image: expected an int >= 0, got \(c.rpn_batch_size_per_image)")
    t.rpn.batchSizePerImage = Int(c.rpn_batch_size_per_image)
    t.rpn.positiveFraction = try fraction(c.rpn_positive_fraction, "rpn_positive_fraction")
    t.roiHeads.fgIoUThresh = try threshold(c.box_fg_iou_thresh, "box_fg_iou_thresh")
    t.roiHeads.bgIoUThresh = try threshold(c.box_bg_iou_thresh, "box_bg_iou_thresh")
    try require(
        c.box_batch_size_per_image >= 0 && c.box_batch_size_per_image <= Int64(Int32.max),
        "box_batch_size_per_image: expected an int >= 0, got \(c.box_batch_size_per_image)")
    t.roiHeads.batchSizePerImage = Int(c.box_batch_size_per_image)
    t.roiHeads.positiveFraction = try fraction(c.box_positive_fraction, "box_positive_fraction")
    let w = withUnsafeBytes(of: c.bbox_reg_weights) { Array($0.bindMemory(to: Double.self)) }
    try require(
        w.allSatisfy { $0.isFinite && $0 > 0 }, "bbox_reg_weights: expected 4 finite positive numbers, got \(w)")
    t.roiHeads.boxWeights = (Float(w[0]), Float(w[1]), Float(w[2]), Float(w[3]))
    t.trainableBackboneLayers = Int(c.trainable_backbone_layers)
    try require(
        c.num_min_sizes >= 0 && c.num_min_sizes <= Int64(SRCNN_MAX_MIN_SIZES),
        "min_size: expected 1 ... \(SRCNN_MAX_MIN_SIZES) sizes, got \(c.num_min_sizes)")
    let sizes = withUnsafeBytes(of: c.min_sizes) { Array($0.bindMemory(to: Double.self)) }
    t.minSizes = Array(sizes.prefix(Int(c.num_min_sizes)))
    t.seed = c.seed
    return t
}

@_cdecl("srcnn_trainer_create")
public func srcnn_trainer_create(
    _ config: UnsafePointer<srcnn_model_config>?, _ training: UnsafePointer<srcnn_training_config>?,
    _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ arrays: UnsafePointer<srcnn_array>?, _ count: Int64,
    _ trainer: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        guard let config else { throw SwiftRCNNError.invalidValue("config: NULL") }
        guard let training else { throw SwiftRCNNError.invalidValue("training: NULL") }
        guard let trainer else { throw SwiftRCNNError.invalidValue("trainer: missing output pointer (NULL)") }
        let c = try modelConfig(config.pointee)
        try c.validate()
        let t = try trainingConfig(training.pointee)
        try t.validate()
        let weights = try weightStore(names, arrays, count: count)
        let built = try DetectorTrainer(config: c, training: t, entries: weights.allEntries)
        trainer.pointee = OpaquePointer(Unmanaged.passRetained(TrainerHandle(built)).toOpaque())
    }
}

@_cdecl("srcnn_trainer_free")
public func srcnn_trainer_free(_ trainer: OpaquePointer?) {
    guard let trainer else { return }
    Unmanaged<TrainerHandle>.fromOpaque(UnsafeRawPointer(trainer)).release()
}

/// targets of `count` images: boxes (G, 4) float32, labels (G,) int64, masks (G, H_i, W_i) uint8 when `masks`.
func trainingTargets(
    boxes: UnsafePointer<srcnn_array>?, labels: UnsafePointer<srcnn_array>?, masks: UnsafePointer<srcnn_array>?,
    images: [FeatureMap], needMasks: Bool
) throws -> [TrainingTarget] {
    guard let boxes, let labels else { throw SwiftRCNNError.invalidValue("targets: boxes or labels is NULL") }
    if needMasks && masks == nil {
        throw SwiftRCNNError.invalidValue("targets: Mask R-CNN needs 'masks' in every target")
    }
    return try images.indices.map { i in
        let b = try ArrayArgument(boxes + i, "targets[\(i)]['boxes']")
        try b.expect(dtype: .float32)
        try b.expect(shape: [nil, 4], "(N, 4)")
        let l = try ArrayArgument(labels + i, "targets[\(i)]['labels']")
        try l.expect(dtype: .int64)
        try l.expect(shape: [b[0]], "(\(b[0]),) to match the boxes")
        var target = TrainingTarget(
            boxes: Array(UnsafeBufferPointer(start: b.pointer(Float.self), count: b.count)),
            labels: Array(UnsafeBufferPointer(start: l.pointer(Int64.self), count: l.count)))
        if needMasks, let masks {
            let m = try ArrayArgument(masks + i, "targets[\(i)]['masks']")
            try m.expect(dtype: .uint8)
            try m.expect(
                shape: [b[0], images[i].height, images[i].width],
                "(\(b[0]), \(images[i].height), \(images[i].width)): one mask per box at the image's size")
            target.masks = Array(UnsafeBufferPointer(start: m.pointer(UInt8.self), count: m.count))
        }
        return target
    }
}

@_cdecl("srcnn_trainer_forward")
public func srcnn_trainer_forward(
    _ trainerPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ boxes: UnsafePointer<srcnn_array>?, _ labels: UnsafePointer<srcnn_array>?,
    _ masks: UnsafePointer<srcnn_array>?, _ backward: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let handle = try trainerHandle(trainerPointer)
        let out = try outPointer(out)
        let inputs = try modelImages(images, count: numImages)
        let result = NamedArrays()
        try handle.exclusive { trainer in
            let targets = try trainingTargets(
                boxes: boxes, labels: labels, masks: masks, images: inputs,
                needMasks: trainer.config.kind == .maskRCNN)
            let losses = try trainer.losses(inputs, targets, backward: backward != 0)
            for (name, value) in losses.named { result.append(name, shape: [], .float32([value])) }
            let choices = trainer.lastChoices
            result.append("min_size", shape: [], .float32([Float(choices.minSize)]))
            result.appendImageSizes(choices.imageSizes)
            func indices(_ mask: [UInt8]) -> [Int64] { mask.indices.filter { mask[$0] != 0 }.map(Int64.init) }
            for i in inputs.indices {
                let p = choices.proposals[i]
                result.append("proposals.\(i)", shape: [p.count / 4, 4], .float32(p))
                for (name, mask) in [
                    ("rpn_positive", choices.rpnPositive[i]), ("rpn_negative", choices.rpnNegative[i]),
                ] {
                    let chosen = indices(mask)
                    result.append("\(name).\(i)", shape: [chosen.count], .int64(chosen))
                }
                let s = choices.roiSamples[i]
                let positive = s.labels.indices.filter { s.labels[$0] > 0 }.map { s.sampledIndices[$0] }
                let negative = s.labels.indices.filter { s.labels[$0] == 0 }.map { s.sampledIndices[$0] }
                result.append("roi_positive.\(i)", shape: [positive.count], .int64(positive))
                result.append("roi_negative.\(i)", shape: [negative.count], .int64(negative))
            }
        }
        publish(result, out)
    }
}

@_cdecl("srcnn_trainer_backward")
public func srcnn_trainer_backward(_ trainerPointer: OpaquePointer?, _ err: UnsafeMutablePointer<CChar>?) -> Int32 {
    abiCall(err) { try trainerHandle(trainerPointer).exclusive { try $0.backward() } }
}

@_cdecl("srcnn_trainer_zero_grad")
public func srcnn_trainer_zero_grad(_ trainerPointer: OpaquePointer?, _ err: UnsafeMutablePointer<CChar>?) -> Int32 {
    abiCall(err) { try trainerHandle(trainerPointer).exclusive { $0.parameters.zeroGradients() } }
}

@_cdecl("srcnn_trainer_sgd_step")
public func srcnn_trainer_sgd_step(
    _ trainerPointer: OpaquePointer?, _ lr: Double, _ momentum: Double, _ weightDecay: Double,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        try trainerHandle(trainerPointer).exclusive {
            try $0.step(SGD(learningRate: lr, momentum: momentum, weightDecay: weightDecay))
        }
    }
}

@_cdecl("srcnn_trainer_state")
public func srcnn_trainer_state(
    _ trainerPointer: OpaquePointer?, _ which: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let out = try outPointer(out)
        try require(
            (0...2).contains(which), "which: expected 0 (values), 1 (gradients) or 2 (momentum and steps), got \(which)"
        )
        let result = NamedArrays()
        try trainerHandle(trainerPointer).exclusive { trainer in
            let store = trainer.parameters
            if which == 2 {
                let buffers = store.momentumBuffers
                for (i, name) in store.names.enumerated() {
                    if let m = buffers[name] { result.append(name, shape: store.shapes[i], .float32(m)) }
                }
                result.append("steps", shape: [], .int64([Int64(bitPattern: trainer.steps)]))
                return
            }
            for (i, name) in store.names.enumerated() {
                if which == 0 {
                    result.append(name, shape: store.shapes[i], .float32(store.values[i]))
                } else if !store.gradients[i].isEmpty {
                    result.append(name, shape: store.shapes[i], .float32(store.gradients[i]))
                }
            }
        }
        publish(result, out)
    }
}

@_cdecl("srcnn_trainer_restore")
public func srcnn_trainer_restore(
    _ trainerPointer: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
    _ momentum: UnsafePointer<srcnn_array>?, _ count: Int64, _ steps: Int64, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        try require(steps >= 0, "steps: expected an int >= 0, got \(steps)")
        let buffers = try weightStore(names, momentum, count: count).allEntries.mapValues(\.values)
        try trainerHandle(trainerPointer).exclusive { try $0.restore(momentum: buffers, steps: UInt64(steps)) }
    }
}

@_cdecl("srcnn_trainer_detect")
public func srcnn_trainer_detect(
    _ trainerPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let handle = try trainerHandle(trainerPointer)
        let out = try outPointer(out)
        let inputs = try modelImages(images, count: numImages)
        let result = NamedArrays()
        let model = try handle.exclusive { try $0.model }
        appendDetections(try model.detect(inputs), images: inputs, to: result)
        publish(result, out)
    }
}
