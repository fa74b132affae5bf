import SwiftRCNNOps

extension RoIHeads {
    /// Keypoint R-CNN's branch on the final detections (torchvision's `keypointrcnn_inference`): the detected boxes
    /// pooled (14 x 14), KeypointRCNNHeads' 3x3 convolutions + ReLU, kps_score_lowres (4 x 4 transposed
    /// convolution, stride 2: 28 x 28), bilinear upsampling x2 (56 x 56 heat maps, align_corners=False), then per
    /// detection and keypoint `heatmapsToKeypoints`.
    func addKeypoints(to detections: inout [Detections], features: [FeatureMap], imageSizes: [(Int, Int)]) {
        let total = detections.reduce(0) { $0 + $1.count }
        let k = numKeypoints
        guard total > 0, let keypointPooler, let keypointUpsample else {
            for i in detections.indices {
                detections[i].keypoints = []
                detections[i].keypointScores = []
            }
            return
        }
        var x = pool(features, boxes: detections.map(\.boxes), imageSizes: imageSizes, with: keypointPooler)
        for conv in keypointConvs { x = conv(x) }
        let low = keypointUpsample(x)
        let (h, w) = (2 * low.height, 2 * low.width)
        let maps = low.data.withUnsafeBufferPointer { src in
            FeatureMap(batch: low.batch, channels: k, height: h, width: w) { out in
                Interpolation.bilinear(
                    src.baseAddress!, planes: low.batch * k, height: low.height, width: low.width, outHeight: h,
                    outWidth: w, into: out.baseAddress!)
            }
        }
        var first = 0
        for i in detections.indices {
            let n = detections[i].count
            var points = [Float](repeating: 0, count: n * k * 3), scores = [Float](repeating: 0, count: n * k)
            points.withUnsafeMutableBufferPointer { pp in
                scores.withUnsafeMutableBufferPointer { sp in
                    let (pp, sp) = (pp, sp)
                    let boxes = detections[i].boxes
                    maps.data.withUnsafeBufferPointer { mp in
                        Parallel.forEachChunk(n) { range in
                            for d in range {
                                RoIHeads.heatmapsToKeypoints(
                                    mp.baseAddress! + (first + d) * k * h * w, keypoints: k, height: h, width: w,
                                    box: (boxes[4 * d], boxes[4 * d + 1], boxes[4 * d + 2], boxes[4 * d + 3]),
                                    points: pp.baseAddress! + d * k * 3, scores: sp.baseAddress! + d * k)
                            }
                        }
                    }
                }
            }
            detections[i].keypoints = points
            detections[i].keypointScores = scores
            first += n
        }
    }

    /// torchvision's `heatmaps_to_keypoints` for one box: each (h, w) heat map resized by bicubic interpolation
    /// (align_corners=False) to the box's size rounded up (width and height at least 1), its first maximum taken
    /// (NaN counts as the maximum, as torch.argmax), and mapped back: x = x1 + (column + 0.5) · width / ⌈width⌉,
    /// y likewise; the score is the resized map's value there. Writes (x, y, 1) per keypoint and the scores.
    static func heatmapsToKeypoints(
        _ maps: UnsafePointer<Float>, keypoints k: Int, height h: Int, width w: Int,
        box: (Float, Float, Float, Float), points: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>
    ) {
        let width = max(box.2 - box.0, 1), height = max(box.3 - box.1, 1)
        // Bounded: boxes are clipped to the image, whose sides are at most 2^15.
        let mapW = Int(min(width.rounded(.up), Float(1 << 16))), mapH = Int(min(height.rounded(.up), Float(1 << 16)))
        let widthCorrection = width / Float(mapW), heightCorrection = height / Float(mapH)
        var resized = [Float](repeating: 0, count: mapH * mapW)
        resized.withUnsafeMutableBufferPointer { r in
            for j in 0..<k {
                Interpolation.bicubic(
                    maps + j * h * w, planes: 1, height: h, width: w, outHeight: mapH, outWidth: mapW,
                    into: r.baseAddress!)
                var best = 0
                for q in 1..<(mapH * mapW) where !r[best].isNaN && (r[q] > r[best] || r[q].isNaN) { best = q }
                let xi = best % mapW, yi = best / mapW
                points[3 * j] = (Float(xi) + 0.5) * widthCorrection + box.0
                points[3 * j + 1] = (Float(yi) + 0.5) * heightCorrection + box.1
                points[3 * j + 2] = 1
                scores[j] = r[best]
            }
        }
    }
}
