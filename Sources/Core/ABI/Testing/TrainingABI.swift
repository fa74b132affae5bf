import CSwiftRCNN
import SwiftRCNNOps

// Test-only C exports of the training steps (swiftrcnn.h, "Detection stages"): the targets, samplers and losses of
// Sources/Core/Training one at a time, so that the parity tests can compare each with torchvision's function of the
// same name. Each validates its arrays, copies them into the Swift API's arrays and calls it.

/// The elements of a float32 argument (copied).
private func floats(_ a: ArrayArgument) -> [Float] {
    Array(UnsafeBufferPointer(start: a.pointer(Float.self), count: a.count))
}

/// The elements of a uint8 argument (copied).
private func bytes(_ a: ArrayArgument) -> [UInt8] {
    Array(UnsafeBufferPointer(start: a.pointer(UInt8.self), count: a.count))
}

/// A float32 (N, 4) box argument.
private func boxArgument(_ pointer: UnsafePointer<srcnn_array>?, _ name: String) throws -> ArrayArgument {
    let a = try ArrayArgument(pointer, name)
    try a.expect(dtype: .float32)
    try a.expect(shape: [nil, 4], "(N, 4)")
    return a
}

/// A float32 or uint8 argument of exactly `shape`.
private func inputArgument(
    _ pointer: UnsafePointer<srcnn_array>?, _ name: String, dtype: DType, shape: [Int]
) throws -> ArrayArgument {
    let a = try ArrayArgument(pointer, name)
    try a.expect(dtype: dtype)
    try a.expect(shape: shape, ArrayArgument.describe(shape))
    return a
}

/// The Matcher's thresholds, checked as torchvision's `Matcher` checks them.
private func requireThresholds(fg: Double, bg: Double) throws {
    try require(!fg.isNaN, "fg_iou_thresh: expected a number, got NaN")
    try require(!bg.isNaN, "bg_iou_thresh: expected a number, got NaN")
    try require(bg <= fg, "low_threshold should be <= high_threshold, got \(bg) > \(fg)")
}

/// The sampler's arguments, checked as `srcnn_balanced_sampler` checks them.
private func requireSampling(batchSizePerImage: Int64, positiveFraction: Double) throws {
    try require(batchSizePerImage >= 0, "batch_size_per_image: expected an int >= 0, got \(batchSizePerImage)")
    try require(
        positiveFraction >= 0 && positiveFraction <= 1,
        "positive_fraction: expected a number in [0, 1], got \(positiveFraction)")
}

/// Class indices of a (n,) int64 argument, each in `0..<numClasses` (copied, then checked).
private func classLabels(_ a: ArrayArgument, count n: Int, numClasses k: Int) throws -> [Int64] {
    try a.expect(dtype: .int64)
    try a.expect(shape: [n], "(\(n),)")
    let labels = try a.vector(Int64.self, .int64)
    if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= k }) {
        throw SwiftRCNNError.invalidValue(
            "\(a.name): expected class indices in 0...\(k - 1), got \(labels[bad]) at index \(bad)")
    }
    return labels
}

/// Writes `values` into a float32 output.
private func write(_ values: [Float], to out: ArrayArgument) {
    out.pointer(Float.self).update(from: values, count: values.count)
}

@_cdecl("srcnn_rpn_assign_targets")
public func srcnn_rpn_assign_targets(
    _ anchors: UnsafePointer<srcnn_array>?, _ gtBoxes: UnsafePointer<srcnn_array>?, _ fgIoUThresh: Double,
    _ bgIoUThresh: Double, _ labels: UnsafeMutablePointer<srcnn_array>?,
    _ regressionTargets: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let a = try boxArgument(anchors, "anchors"), g = try boxArgument(gtBoxes, "gt_boxes")
        try requireThresholds(fg: fgIoUThresh, bg: bgIoUThresh)
        // torchvision's Matcher: an image with boxes needs anchors.
        try require(
            g[0] == 0 || a[0] > 0, "anchors: No proposal boxes available for one of the images during training")
        let l = try ArrayArgument(labels, "labels"), t = try ArrayArgument(regressionTargets, "regression_targets")
        try requireOutput(l, dtype: .float32, shape: [a[0]])
        try requireOutput(t, dtype: .float32, shape: [a[0], 4])
        let config = RPNTrainingConfig(fgIoUThresh: fgIoUThresh, bgIoUThresh: bgIoUThresh)
        let result = RPNTargets.assign(anchors: floats(a), gtBoxes: floats(g), config: config)
        write(result.labels, to: l)
        write(result.regressionTargets, to: t)
    }
}

@_cdecl("srcnn_rpn_sample")
public func srcnn_rpn_sample(
    _ labels: UnsafePointer<srcnn_array>?, _ batchSizePerImage: Int64, _ positiveFraction: Double, _ seed: UInt64,
    _ positive: UnsafeMutablePointer<srcnn_array>?, _ negative: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let l = try ArrayArgument(labels, "labels")
        try l.expect(dtype: .float32)
        try l.expect(shape: [nil], "(A,)")
        try requireSampling(batchSizePerImage: batchSizePerImage, positiveFraction: positiveFraction)
        let p = try ArrayArgument(positive, "positive"), n = try ArrayArgument(negative, "negative")
        try requireOutput(p, dtype: .uint8, shape: l.shape)
        try requireOutput(n, dtype: .uint8, shape: l.shape)
        let config = RPNTrainingConfig(
            batchSizePerImage: Int(batchSizePerImage), positiveFraction: positiveFraction)
        let masks = RPNTargets.sample(labels: floats(l), config: config, seed: seed)
        p.pointer(UInt8.self).update(from: masks.positive, count: masks.positive.count)
        n.pointer(UInt8.self).update(from: masks.negative, count: masks.negative.count)
    }
}

@_cdecl("srcnn_rpn_loss")
public func srcnn_rpn_loss(
    _ objectness: UnsafePointer<srcnn_array>?, _ predBBoxDeltas: UnsafePointer<srcnn_array>?,
    _ labels: UnsafePointer<srcnn_array>?, _ regressionTargets: UnsafePointer<srcnn_array>?,
    _ positive: UnsafePointer<srcnn_array>?, _ negative: UnsafePointer<srcnn_array>?,
    _ losses: UnsafeMutablePointer<srcnn_array>?, _ objectnessGrad: UnsafeMutablePointer<srcnn_array>?,
    _ deltasGrad: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let o = try ArrayArgument(objectness, "objectness")
        try o.expect(dtype: .float32)
        try o.expect(shape: [nil], "(A,)")
        let count = o[0]
        let d = try inputArgument(predBBoxDeltas, "pred_bbox_deltas", dtype: .float32, shape: [count, 4])
        let l = try inputArgument(labels, "labels", dtype: .float32, shape: [count])
        let t = try inputArgument(regressionTargets, "regression_targets", dtype: .float32, shape: [count, 4])
        let p = try inputArgument(positive, "positive", dtype: .uint8, shape: [count])
        let n = try inputArgument(negative, "negative", dtype: .uint8, shape: [count])
        let out = try ArrayArgument(losses, "losses")
        let og = try ArrayArgument(objectnessGrad, "objectness_grad")
        let dg = try ArrayArgument(deltasGrad, "deltas_grad")
        try requireOutput(out, dtype: .float32, shape: [2])
        try requireOutput(og, dtype: .float32, shape: [count])
        try requireOutput(dg, dtype: .float32, shape: [count, 4])
        let r = RPNLoss.compute(
            objectness: floats(o), deltas: floats(d), labels: floats(l), regressionTargets: floats(t),
            positive: bytes(p), negative: bytes(n))
        write([r.objectness, r.boxReg], to: out)
        write(r.objectnessGradient, to: og)
        write(r.deltasGradient, to: dg)
    }
}

@_cdecl("srcnn_roi_heads_select_training_samples")
public func srcnn_roi_heads_select_training_samples(
    _ proposals: UnsafePointer<srcnn_array>?, _ gtBoxes: UnsafePointer<srcnn_array>?,
    _ gtLabels: UnsafePointer<srcnn_array>?, _ fgIoUThresh: Double, _ bgIoUThresh: Double,
    _ batchSizePerImage: Int64, _ positiveFraction: Double, _ weightX: Double, _ weightY: Double,
    _ weightW: Double, _ weightH: Double, _ seed: UInt64, _ sampledProposals: UnsafeMutablePointer<srcnn_array>?,
    _ labels: UnsafeMutablePointer<srcnn_array>?, _ regressionTargets: UnsafeMutablePointer<srcnn_array>?,
    _ matchedIdxs: UnsafeMutablePointer<srcnn_array>?, _ sampledIdxs: UnsafeMutablePointer<srcnn_array>?,
    _ count: UnsafeMutablePointer<Int64>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let p = try boxArgument(proposals, "proposals"), g = try boxArgument(gtBoxes, "gt_boxes")
        let gl = try ArrayArgument(gtLabels, "gt_labels")
        try gl.expect(dtype: .int64)
        try gl.expect(shape: [g[0]], "(\(g[0]),) (one label per row of gt_boxes)")
        try requireThresholds(fg: fgIoUThresh, bg: bgIoUThresh)
        try requireSampling(batchSizePerImage: batchSizePerImage, positiveFraction: positiveFraction)
        let rows = p[0] + g[0]
        let sp = try ArrayArgument(sampledProposals, "sampled_proposals"), l = try ArrayArgument(labels, "labels")
        let t = try ArrayArgument(regressionTargets, "regression_targets")
        let m = try ArrayArgument(matchedIdxs, "matched_idxs"), s = try ArrayArgument(sampledIdxs, "sampled_idxs")
        try requireOutput(sp, dtype: .float32, shape: [rows, 4])
        try requireOutput(l, dtype: .int64, shape: [rows])
        try requireOutput(t, dtype: .float32, shape: [rows, 4])
        try requireOutput(m, dtype: .int64, shape: [rows])
        try requireOutput(s, dtype: .int64, shape: [rows])
        let c = try outCount(count, "count")
        let config = RoIHeadsTrainingConfig(
            fgIoUThresh: fgIoUThresh, bgIoUThresh: bgIoUThresh, batchSizePerImage: Int(batchSizePerImage),
            positiveFraction: positiveFraction,
            boxWeights: (Float(weightX), Float(weightY), Float(weightW), Float(weightH)))
        let r = RoIHeadsTargets.select(
            proposals: floats(p), gtBoxes: floats(g), gtLabels: try gl.vector(Int64.self, .int64), config: config,
            seed: seed)
        for out in [sp, t] { out.pointer(Float.self).update(repeating: 0, count: out.count) }
        for out in [l, m, s] { out.pointer(Int64.self).update(repeating: 0, count: out.count) }
        write(r.proposals, to: sp)
        write(r.regressionTargets, to: t)
        l.pointer(Int64.self).update(from: r.labels, count: r.count)
        m.pointer(Int64.self).update(from: r.matchedGT, count: r.count)
        s.pointer(Int64.self).update(from: r.sampledIndices, count: r.count)
        c.pointee = Int64(r.count)
    }
}

@_cdecl("srcnn_fastrcnn_loss")
public func srcnn_fastrcnn_loss(
    _ classLogits: UnsafePointer<srcnn_array>?, _ boxRegression: UnsafePointer<srcnn_array>?,
    _ labels: UnsafePointer<srcnn_array>?, _ regressionTargets: UnsafePointer<srcnn_array>?,
    _ losses: UnsafeMutablePointer<srcnn_array>?, _ classLogitsGrad: UnsafeMutablePointer<srcnn_array>?,
    _ boxRegressionGrad: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let cl = try ArrayArgument(classLogits, "class_logits")
        try cl.expect(dtype: .float32)
        try cl.expect(shape: [nil, nil], "(S, K)")
        let (s, k) = (cl[0], cl[1])
        try require(k >= 1, "class_logits: expected at least one class, got shape \(ArrayArgument.describe(cl.shape))")
        let br = try inputArgument(boxRegression, "box_regression", dtype: .float32, shape: [s, 4 * k])
        let l = try classLabels(try ArrayArgument(labels, "labels"), count: s, numClasses: k)
        let t = try inputArgument(regressionTargets, "regression_targets", dtype: .float32, shape: [s, 4])
        let out = try ArrayArgument(losses, "losses")
        let cg = try ArrayArgument(classLogitsGrad, "class_logits_grad")
        let bg = try ArrayArgument(boxRegressionGrad, "box_regression_grad")
        try requireOutput(out, dtype: .float32, shape: [2])
        try requireOutput(cg, dtype: .float32, shape: [s, k])
        try requireOutput(bg, dtype: .float32, shape: [s, 4 * k])
        let r = RoIHeadsLoss.fastRCNN(
            classLogits: floats(cl), boxRegression: floats(br), numClasses: k, labels: l,
            regressionTargets: floats(t))
        write([r.classifier, r.boxReg], to: out)
        write(r.classLogitsGradient, to: cg)
        write(r.boxRegressionGradient, to: bg)
    }
}

@_cdecl("srcnn_maskrcnn_loss")
public func srcnn_maskrcnn_loss(
    _ maskLogits: UnsafePointer<srcnn_array>?, _ proposalCounts: UnsafePointer<srcnn_array>?,
    _ proposals: UnsafePointer<srcnn_array>?, _ labels: UnsafePointer<srcnn_array>?,
    _ matchedIdxs: UnsafePointer<srcnn_array>?, _ gtMasks: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ loss: UnsafeMutablePointer<srcnn_array>?, _ maskLogitsGrad: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let ml = try ArrayArgument(maskLogits, "mask_logits")
        try ml.expect(dtype: .float32)
        try ml.expect(shape: [nil, nil, nil, nil], "(P, K, M, M)")
        let (p, k, m) = (ml[0], ml[1], ml[2])
        try require(
            k >= 1 && m >= 1 && ml[3] == m,
            "mask_logits: expected shape (P, K, M, M) with K, M >= 1, got \(ArrayArgument.describe(ml.shape))")
        try require(numImages >= 0, "gt_masks: expected a list of arrays, got \(numImages) of them")
        let images = Int(numImages)
        let pc = try ArrayArgument(proposalCounts, "proposal_counts")
        try pc.expect(shape: [images], "(\(images),) (one count per image of gt_masks)")
        let counts = try pc.vector(Int64.self, .int64)
        var remaining = Int64(p)
        for c in counts {
            try require(c >= 0 && c <= remaining, "proposal_counts: expected counts >= 0 adding up to P = \(p)")
            remaining -= c
        }
        try require(remaining == 0, "proposal_counts: expected counts >= 0 adding up to P = \(p)")
        let b = try inputArgument(proposals, "proposals", dtype: .float32, shape: [p, 4])
        try b.requireNoNaN(Float.self, allowInfinite: false)
        let allLabels = try classLabels(try ArrayArgument(labels, "labels"), count: p, numClasses: k)
        let mi = try ArrayArgument(matchedIdxs, "matched_idxs")
        try mi.expect(dtype: .int64)
        try mi.expect(shape: [p], "(\(p),)")
        let matched = try mi.vector(Int64.self, .int64)
        guard images == 0 || gtMasks != nil else {
            throw SwiftRCNNError.invalidValue("gt_masks: missing array list (NULL)")
        }
        var masks = [[UInt8]](), heights = [Int](), widths = [Int](), widthOfRoI = [Int]()
        var boxes = [[Float]](), perImageLabels = [[Int64]](), perImageMatched = [[Int64]]()
        let allBoxes = floats(b)
        var first = 0
        for i in 0..<images {
            let g = try ArrayArgument(gtMasks![i], "gt_masks[\(i)]")
            try g.expect(dtype: .uint8)
            try g.expect(shape: [nil, nil, nil], "(G, H, W)")
            let rows = first..<(first + Int(counts[i]))
            if !rows.isEmpty {
                try require(
                    g[1] >= 1 && g[2] >= 1,
                    "gt_masks[\(i)]: expected masks of at least 1 x 1, got shape \(ArrayArgument.describe(g.shape))")
            }
            if let bad = rows.first(where: { matched[$0] < 0 || matched[$0] >= g[0] }) {
                throw SwiftRCNNError.invalidValue(
                    "matched_idxs: \(matched[bad]) at index \(bad) is not a mask of gt_masks[\(i)] (\(g[0]) masks)")
            }
            masks.append(bytes(g))
            heights.append(g[1])
            widths.append(g[2])
            widthOfRoI += Array(repeating: g[2], count: rows.count)
            boxes.append(Array(allBoxes[(4 * rows.lowerBound)..<(4 * rows.upperBound)]))
            perImageLabels.append(Array(allLabels[rows]))
            perImageMatched.append(Array(matched[rows]))
            first = rows.upperBound
        }
        // The projection's RoIAlign must not run away on boxes far larger than the masks.
        var rois = [Float]()
        rois.reserveCapacity(5 * p)
        for r in 0..<p { rois += [0] + allBoxes[(4 * r)..<(4 * r + 4)] }
        try rois.withUnsafeMutableBytes { raw in
            var descriptor = srcnn_array()
            descriptor.data = raw.baseAddress
            descriptor.ndim = 2
            descriptor.dtype = Int32(DType.float32.rawValue)
            descriptor.shape.0 = Int64(p)
            descriptor.shape.1 = 5
            try validateRoIAlignSampling(
                try ArrayArgument(descriptor, "proposals"), channels: 1, pooledH: m, pooledW: m,
                samplingRatio: RoIHeadsTargets.maskSamplingRatio, aligned: false,
                map: { r -> (scale: Float, width: Int)? in (1, widthOfRoI[r]) })
        }
        let out = try ArrayArgument(loss, "loss"), grad = try ArrayArgument(maskLogitsGrad, "mask_logits_grad")
        try requireOutput(out, dtype: .float32, shape: [1])
        try requireOutput(grad, dtype: .float32, shape: ml.shape)
        let r = RoIHeadsLoss.maskRCNN(
            maskLogits: floats(ml), numClasses: k, maskSize: m, proposals: boxes, labels: perImageLabels,
            matchedGT: perImageMatched, gtMasks: masks, maskHeights: heights, maskWidths: widths)
        write([r.loss], to: out)
        write(r.gradient, to: grad)
    }
}
