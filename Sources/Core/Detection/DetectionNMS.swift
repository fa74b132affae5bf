import SwiftRCNNOps

/// torchvision's `batched_nms` as its CPU path runs it, so that float32 rounding of the IoUs is the same.
///
/// torchvision picks one of two equivalent strategies by size: above `vanillaMinimumElements` box coordinates it runs
/// NMS per category on the boxes as given; at or below it, it shifts each category's boxes by
/// `category * (max coordinate + 1)` (so that categories cannot overlap) and runs a single NMS on the shifted boxes.
/// The shift changes the rounding of the IoUs (a coordinate near 10^5 has an ulp near 0.01), so pairs whose IoU sits
/// within rounding of the threshold can be decided differently by the two strategies; following torchvision's
/// choice decides them the same way. Either way the result is ordered by decreasing score, ties by lower index.
///
/// Boxes and scores must hold no NaN (the detection heads filter NaN boxes and scores out before NMS).
enum DetectionNMS {
    /// torchvision's threshold on `boxes.numel()` (4 per box) above which the CPU path runs NMS per category.
    static let vanillaMinimumElements = 4000

    /// Indices of the kept boxes among `boxes` (n, 4), `scores` (n,), `categories` (n,).
    static func batched(
        boxes: UnsafePointer<Float>, scores: UnsafePointer<Float>, categories: UnsafePointer<Int64>,
        count n: Int, iouThreshold: Double
    ) -> [Int] {
        if n == 0 { return [] }
        var keep = [Int64](repeating: 0, count: n)
        let kept: Int
        if 4 * n > vanillaMinimumElements {
            kept = keep.withUnsafeMutableBufferPointer {
                NMS.batchedNMS(
                    boxes: boxes, scores: scores, idxs: categories, count: n, iouThreshold: iouThreshold,
                    keep: $0.baseAddress!)
            }
        } else {
            var maxCoordinate = boxes[0]
            for i in 1..<(4 * n) where boxes[i] > maxCoordinate { maxCoordinate = boxes[i] }
            let step = maxCoordinate + 1
            var shifted = [Float](repeating: 0, count: 4 * n)
            for i in 0..<n {
                let offset = Float(categories[i]) * step
                for c in 0..<4 { shifted[4 * i + c] = boxes[4 * i + c] + offset }
            }
            kept = shifted.withUnsafeBufferPointer { sb in
                keep.withUnsafeMutableBufferPointer {
                    NMS.nms(
                        boxes: sb.baseAddress!, scores: scores, count: n, iouThreshold: iouThreshold,
                        keep: $0.baseAddress!)
                }
            }
        }
        return keep[0..<kept].map { Int($0) }
    }
}
