import SwiftRCNNOps

extension RoIHeads {
    /// Mask R-CNN's mask branch on the final detections: each detection gets the (1, 28, 28) sigmoid of its own
    /// class's mask logits (torchvision's `maskrcnn_inference`).
    ///
    /// The detected boxes of all images are pooled together (14 x 14), run through the 3x3 convolutions and the
    /// transposed convolution as one batch, and each detection's mask logits are the 1x1 mask_fcn_logits row of its
    /// label applied to its (C, 28, 28) map: bias + Σ_c w[c] · x[c, ·], computed per detection in parallel.
    func addMasks(to detections: inout [Detections], features: [FeatureMap], imageSizes: [(Int, Int)]) {
        let total = detections.reduce(0) { $0 + $1.count }
        guard total > 0, let maskUpsample else {
            for i in detections.indices { detections[i].masks = [] }
            return
        }
        var x = RoIHeads.pool(features, boxes: detections.map(\.boxes), imageSizes: imageSizes,
                              size: config.maskPoolSize, samplingRatio: config.samplingRatio)
        for conv in maskConvs { x = conv(x) }
        x = maskUpsample(x)
        let channels = x.channels, plane = x.plane
        let labels = detections.flatMap(\.labels)
        let probabilities = [Float](unsafeUninitializedCapacity: total * plane) { out, initialized in
            let o = out.baseAddress!
            x.data.withUnsafeBufferPointer { xb in
                maskLogitsWeight.withUnsafeBufferPointer { wb in
                    Parallel.forEachChunk(total) { range in
                        for d in range {
                            let label = Int(labels[d])
                            let w = wb.baseAddress! + label * channels
                            let src = xb.baseAddress! + d * channels * plane, dst = o + d * plane
                            dst.initialize(repeating: maskLogitsBias[label], count: plane)
                            for c in 0..<channels {
                                let wc = w[c], row = src + c * plane
                                for p in 0..<plane { dst[p] += wc * row[p] }
                            }
                            for p in 0..<plane { dst[p] = 1 / (1 + Float.exp(-dst[p])) }
                        }
                    }
                }
            }
            initialized = total * plane
        }
        var start = 0
        for i in detections.indices {
            let n = detections[i].count * plane
            detections[i].masks = Array(probabilities[start..<(start + n)])
            start += n
        }
    }
}
