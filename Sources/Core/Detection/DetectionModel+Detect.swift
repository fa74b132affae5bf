import SwiftRCNNOps

extension DetectionModel {
    /// torchvision's eval-mode forward: transform, backbone, region proposals, RoI heads, then the transform's
    /// postprocess — boxes scaled from the resized image back to each original image and, for Mask R-CNN, the
    /// 28 × 28 mask probabilities pasted into (1, H, W) images of the original size.
    /// images: (1, 3, H_i, W_i) maps. Returns one `Detections` per image; `masks` holds (N, 1, H_i, W_i).
    public func detect(_ images: [FeatureMap]) throws -> [Detections] {
        let (batch, sizes) = try transform(images)
        let batchHW = (batch.height, batch.width)
        let levels = try backbone(consume batch)
        let scales = images.map { transform.scale(height: $0.height, width: $0.width) }
        let proposals = rpn(features: levels, batchHW: batchHW, imageSizes: sizes, imageScales: scales)
        var detections = roiHeads(features: levels, proposals: proposals, imageSizes: sizes)
        for (i, image) in images.enumerated() {
            detections[i] = postprocess(
                detections[i], resized: sizes[i], original: (image.height, image.width),
                legacyScale: config.architecture.legacy ? scales[i] : nil)
        }
        return detections
    }

    /// Boxes times original / resized size per axis (computed in float32 as torchvision's resize_boxes), or, in
    /// legacy mode, divided by the resize scale (faster-rcnn.pytorch's `pred_boxes /= im_scale`); masks pasted at
    /// the original size with padding 1 (paste_masks_in_image's default).
    func postprocess(
        _ d: Detections, resized: (Int, Int), original: (Int, Int), legacyScale: Double? = nil
    ) -> Detections {
        var d = d
        var ratioH = Float(original.0) / Float(resized.0), ratioW = Float(original.1) / Float(resized.1)
        if let legacyScale { (ratioH, ratioW) = (1 / Float(legacyScale), 1 / Float(legacyScale)) }
        for i in 0..<(d.boxes.count / 4) {
            d.boxes[4 * i] *= ratioW
            d.boxes[4 * i + 1] *= ratioH
            d.boxes[4 * i + 2] *= ratioW
            d.boxes[4 * i + 3] *= ratioH
        }
        if var points = d.keypoints {
            for i in 0..<(points.count / 3) {
                points[3 * i] *= ratioW
                points[3 * i + 1] *= ratioH
            }
            d.keypoints = points
        }
        if let masks = d.masks {
            let n = d.boxes.count / 4
            let m = n == 0 ? 0 : Int(Double(masks.count / n).squareRoot())
            let (h, w) = original
            d.masks = [Float](unsafeUninitializedCapacity: n * h * w) { out, count in
                // Most of each plane is zero: the pages are given back rather than written (no huge pages, whose
                // first write would zero 2 MiB), so that only the pages the boxes cover are ever touched. On AMD
                // EPYC Zen 3 (2 threads) this took Mask R-CNN's 480 × 640 call from 2.29–2.86 s to 2.04–2.21 s (best
                // of 5, three alternating runs); reading every mask afterwards (`masks > 0.5`) then costs 25 ms
                // instead of 7, for the zero pages mapped on first read.
                if n > 0 {
                    ZeroPages.fill(out)
                    masks.withUnsafeBufferPointer { mp in
                        d.boxes.withUnsafeBufferPointer { bp in
                            PasteMasks.paste(
                                masks: mp.baseAddress!, boxes: bp.baseAddress!, count: n, maskSize: m,
                                padding: 1, height: h, width: w, zeroed: true, into: out.baseAddress!)
                        }
                    }
                }
                count = n * h * w
            }
        }
        return d
    }
}
