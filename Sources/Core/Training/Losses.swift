import SwiftRCNNOps

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Training losses of torchvision's two-stage detectors with their gradients: the RPN's
// (`RegionProposalNetwork.compute_loss`) and the box and mask heads' (`roi_heads.fastrcnn_loss`,
// `roi_heads.maskrcnn_loss`). Arrays are flat row-major `Float`; the loss of each element is computed in `Double`
// from torch's float32 operands, and sums are taken in `Double` in a fixed order, so the results do not depend on the
// thread count and lie within float32 rounding of torch's. Each gradient is that of the returned loss (of the sum of
// the two losses where a function returns two) with respect to the predictions.

/// The parts of the losses shared by the RPN and the heads.
enum LossTerms {
    /// Smooth-L1's `beta` in the RPN and box-head losses: 1/9, as torchvision passes it; torch's kernel converts
    /// it to the element type, float32.
    static let smoothL1Beta = Double(Float(1.0 / 9.0))

    /// `F.smooth_l1_loss(x, y, beta)` of one element from its float32 difference `d = x - y`: `0.5 d² / beta` where
    /// `|d| < beta`, else `|d| - 0.5 beta`; and its derivative in `x`, which torch's backward takes as `d / beta`
    /// strictly inside `(-beta, beta)`, else the sign of `d`.
    @inline(__always)
    static func smoothL1(_ difference: Float) -> (loss: Double, gradient: Double) {
        let d = Double(difference), z = abs(d), beta = smoothL1Beta
        let loss = z < beta ? 0.5 * z * z / beta : z - 0.5 * beta
        return (loss, d <= -beta ? -1 : (d >= beta ? 1 : d / beta))
    }

    /// `F.binary_cross_entropy_with_logits(x, y)` of one element in its stable form, `(1 - y) x - log σ(x)` with
    /// `log σ(x) = min(x, 0) - log1p(exp(-|x|))` (no overflow for any finite `x`); and its derivative in `x`,
    /// `σ(x) - y`.
    @inline(__always)
    static func binaryCrossEntropyWithLogits(_ logit: Float, _ target: Float) -> (loss: Double, gradient: Double) {
        let x = Double(logit), y = Double(target)
        let e = exp(-abs(x))  // in (0, 1]
        let logSigmoid = min(x, 0) - log1p(e)
        let sigmoid = x >= 0 ? 1 / (1 + e) : e / (1 + e)
        return ((1 - y) * x - logSigmoid, sigmoid - y)
    }
}

/// The RPN's losses (`RegionProposalNetwork.compute_loss`).
public enum RPNLoss {
    /// The RPN's objectness and box losses over all images' sampled anchors, and their gradients.
    ///
    /// All arrays cover the images' anchors concatenated in torchvision's order (image-major, then each image's
    /// anchors in its anchor order): `objectness` (A,) logits, `deltas` (A, 4) predicted box codes, `labels` (A,)
    /// and `regressionTargets` (A, 4) of `RPNTargets.assign`, `positive` and `negative` (A,) the sampler's masks
    /// (non-zero = sampled). With N the number of sampled anchors (positives plus negatives):
    /// - `objectness` = mean over the sampled anchors of `binary_cross_entropy_with_logits(logit, label)`;
    /// - `boxReg` = sum over the positives of `smooth_l1(delta - target, beta = 1/9)` over the 4 codes, divided by
    ///   N (not by the positives: torchvision's normalisation);
    /// - `objectnessGradient` (A,) and `deltasGradient` (A, 4): d(objectness + boxReg) / d(input), zero where not
    ///   sampled.
    ///
    /// With no sampled anchor (every anchor ignored, or a batch size of 0) torchvision's losses are 0 / 0 = NaN;
    /// here they are 0 with zero gradients, so that a training step stays finite.
    public static func compute(
        objectness: [Float], deltas: [Float], labels: [Float], regressionTargets: [Float], positive: [UInt8],
        negative: [UInt8]
    ) -> (objectness: Float, boxReg: Float, objectnessGradient: [Float], deltasGradient: [Float]) {
        let a = objectness.count
        precondition(
            deltas.count == 4 * a && labels.count == a && regressionTargets.count == 4 * a && positive.count == a
                && negative.count == a, "RPNLoss: inconsistent sizes")
        var objectnessGradient = [Float](repeating: 0, count: a)
        var deltasGradient = [Float](repeating: 0, count: 4 * a)
        // torchvision concatenates the positive and the negative indices, so an anchor in both masks counts twice.
        let sampled = positive.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } + negative.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
        guard sampled > 0 else { return (0, 0, objectnessGradient, deltasGradient) }
        let scale = 1 / Double(sampled)
        var objectnessSum = 0.0, boxSum = 0.0
        var objectnessGradientSum = [Double](repeating: 0, count: a)
        for mask in [positive, negative] {
            for i in 0..<a where mask[i] != 0 {
                let (loss, gradient) = LossTerms.binaryCrossEntropyWithLogits(objectness[i], labels[i])
                objectnessSum += loss
                objectnessGradientSum[i] += gradient
            }
        }
        for i in 0..<a where positive[i] != 0 {
            for c in (4 * i)..<(4 * i + 4) {
                let (loss, gradient) = LossTerms.smoothL1(deltas[c] - regressionTargets[c])
                boxSum += loss
                deltasGradient[c] = Float(gradient * scale)
            }
        }
        for i in 0..<a where objectnessGradientSum[i] != 0 {
            objectnessGradient[i] = Float(objectnessGradientSum[i] * scale)
        }
        return (Float(objectnessSum * scale), Float(boxSum * scale), objectnessGradient, deltasGradient)
    }
}

/// The box and mask heads' losses (`roi_heads.fastrcnn_loss`, `roi_heads.maskrcnn_loss`).
public enum RoIHeadsLoss {
    /// Samples per chunk of the per-sample loss loops (their sums are formed per sample, then added in order, so
    /// the chunking does not change the result).
    static let samplesPerChunk = 64

    /// Faster R-CNN's box-head losses over all images' samples (`RoIHeadsTargets.select`, concatenated), and their
    /// gradients.
    ///
    /// `classLogits` (S, K) and `boxRegression` (S, 4K) are the predictor's outputs, `labels` (S,) the samples'
    /// classes in `0..<K` (0 background) and `regressionTargets` (S, 4) their box codes.
    /// - `classifier` = `cross_entropy(classLogits, labels)`, the mean over samples of `logsumexp(row) - row[label]`;
    /// - `boxReg` = sum over the foreground samples (label > 0) of `smooth_l1(code - target, beta = 1/9)` over the
    ///   4 codes of the sample's own class (columns `4 label ..< 4 label + 4`), divided by S (all samples);
    /// - `classLogitsGradient` (S, K) = (softmax(row) - one_hot(label)) / S, `boxRegressionGradient` (S, 4K) zero
    ///   off the foreground samples' own class columns.
    ///
    /// With no sample torchvision's losses are NaN (mean of nothing); here they are 0.
    ///
    /// Threading: samples are split over `Parallel` threads (rows of K exponentials each).
    public static func fastRCNN(
        classLogits: [Float], boxRegression: [Float], numClasses k: Int, labels: [Int64], regressionTargets: [Float]
    ) -> (classifier: Float, boxReg: Float, classLogitsGradient: [Float], boxRegressionGradient: [Float]) {
        let s = labels.count
        precondition(
            k >= 1 && classLogits.count == s * k && boxRegression.count == 4 * s * k
                && regressionTargets.count == 4 * s, "fastRCNN: inconsistent sizes")
        precondition(labels.allSatisfy { $0 >= 0 && $0 < k }, "fastRCNN: labels must lie in 0..<numClasses")
        var classGradient = [Float](repeating: 0, count: s * k)
        var boxGradient = [Float](repeating: 0, count: 4 * s * k)
        guard s > 0 else { return (0, 0, classGradient, boxGradient) }
        let scale = 1 / Double(s)
        var classLoss = [Double](repeating: 0, count: s), boxLoss = [Double](repeating: 0, count: s)
        classLogits.withUnsafeBufferPointer { logits in
            boxRegression.withUnsafeBufferPointer { codes in
                regressionTargets.withUnsafeBufferPointer { targets in
                    classGradient.withUnsafeMutableBufferPointer { cg in
                        boxGradient.withUnsafeMutableBufferPointer { bg in
                            classLoss.withUnsafeMutableBufferPointer { cl in
                                boxLoss.withUnsafeMutableBufferPointer { bl in
                                    Parallel.forEachChunk(s, minItemsPerChunk: samplesPerChunk) { rows in
                                        for i in rows {
                                            let label = Int(labels[i])
                                            let row = logits.baseAddress! + i * k
                                            // log-softmax about the row's maximum.
                                            var top = Double(row[0])
                                            for j in 1..<k { top = max(top, Double(row[j])) }
                                            var total = 0.0
                                            for j in 0..<k { total += exp(Double(row[j]) - top) }
                                            let logSum = top + log(total)
                                            cl[i] = logSum - Double(row[label])
                                            for j in 0..<k {
                                                let p = exp(Double(row[j]) - logSum)
                                                cg[i * k + j] = Float((p - (j == label ? 1 : 0)) * scale)
                                            }
                                            guard label > 0 else { continue }
                                            var sum = 0.0
                                            for c in 0..<4 {
                                                let column = 4 * (i * k + label) + c
                                                let (loss, gradient) = LossTerms.smoothL1(
                                                    codes[column] - targets[4 * i + c])
                                                sum += loss
                                                bg[column] = Float(gradient * scale)
                                            }
                                            bl[i] = sum
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (
            Float(classLoss.reduce(0, +) * scale), Float(boxLoss.reduce(0, +) * scale), classGradient, boxGradient
        )
    }

    /// Mask R-CNN's mask loss over all images' foreground samples, and its gradient.
    ///
    /// `maskLogits` (P, K, M, M) are the mask predictor's outputs for the foreground samples of all images in turn
    /// (M = `maskSize`); per image i: `proposals[i]` (P_i, 4) its foreground samples' boxes, `labels[i]` (P_i,)
    /// their classes in `0..<K`, `matchedGT[i]` (P_i,) their ground-truth indices, and `gtMasks[i]` (G_i,
    /// `maskHeights[i]`, `maskWidths[i]`) its ground-truth masks (0 / 1), at the resized image's size.
    ///
    /// The targets are `project_masks_on_boxes` (`RoIHeadsTargets.projectMasks`): each sample's ground-truth mask
    /// cropped to its box and resampled to M x M. The loss is the mean over the P M² pixels of
    /// `binary_cross_entropy_with_logits` of the logits of the sample's own class channel against the target; the
    /// gradient (P, K, M, M) is `(σ(logit) - target) / (P M²)` on that channel, zero on the others. Without any
    /// foreground sample the loss is 0 with a zero gradient (torchvision's `mask_logits.sum() * 0`).
    ///
    /// Threading: the projection as `projectMasks`; the loss splits samples over `Parallel` threads.
    public static func maskRCNN(
        maskLogits: [Float], numClasses k: Int, maskSize m: Int, proposals: [[Float]], labels: [[Int64]],
        matchedGT: [[Int64]], gtMasks: [[UInt8]], maskHeights: [Int], maskWidths: [Int]
    ) -> (loss: Float, gradient: [Float]) {
        let images = labels.count
        precondition(
            proposals.count == images && matchedGT.count == images && gtMasks.count == images
                && maskHeights.count == images && maskWidths.count == images, "maskRCNN: one entry per image")
        let p = labels.reduce(0) { $0 + $1.count }, plane = m * m
        precondition(k >= 1 && m >= 1 && maskLogits.count == p * k * plane, "maskRCNN: maskLogits is not (P, K, M, M)")
        var gradient = [Float](repeating: 0, count: maskLogits.count)
        guard p > 0 else { return (0, gradient) }
        var targets = [Float]()
        targets.reserveCapacity(p * plane)
        var allLabels = [Int64]()
        for i in 0..<images {
            precondition(labels[i].allSatisfy { $0 >= 0 && $0 < k }, "maskRCNN: labels must lie in 0..<numClasses")
            targets += RoIHeadsTargets.projectMasks(
                gtMasks[i], height: maskHeights[i], width: maskWidths[i], boxes: proposals[i],
                matchedGT: matchedGT[i], maskSize: m)
            allLabels += labels[i]
        }
        let scale = 1 / Double(p * plane)
        var perSample = [Double](repeating: 0, count: p)
        maskLogits.withUnsafeBufferPointer { logits in
            targets.withUnsafeBufferPointer { targets in
                gradient.withUnsafeMutableBufferPointer { g in
                    perSample.withUnsafeMutableBufferPointer { sums in
                        Parallel.forEachChunk(p, minItemsPerChunk: max(1, samplesPerChunk * 1024 / plane)) { range in
                            for s in range {
                                let offset = (s * k + Int(allLabels[s])) * plane
                                var sum = 0.0
                                for j in 0..<plane {
                                    let (loss, d) = LossTerms.binaryCrossEntropyWithLogits(
                                        logits[offset + j], targets[s * plane + j])
                                    sum += loss
                                    g[offset + j] = Float(d * scale)
                                }
                                sums[s] = sum
                            }
                        }
                    }
                }
            }
        }
        return (Float(perSample.reduce(0, +) * scale), gradient)
    }
}
