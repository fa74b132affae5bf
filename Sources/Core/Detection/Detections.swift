/// One image's detections in the coordinates of the image given to the model (after postprocess).
public struct Detections: Sendable {
    /// (N, 4) boxes (x1, y1, x2, y2), row-major.
    public var boxes: [Float]
    /// (N,) scores, in decreasing order.
    public var scores: [Float]
    /// (N,) class labels (1 ..< num_classes; 0 is the background and never appears).
    public var labels: [Int64]
    /// Mask R-CNN's mask probabilities, else nil: (N, 1, H, W) pasted into the original image in the results of
    /// `DetectionModel.detect`; (N, 1, 28, 28) per box, before pasting, in those of `RoIHeads`.
    public var masks: [Float]?
    /// Keypoint R-CNN's keypoints, else nil: (N, K, 3) rows (x, y, 1) in the image's pixels, and their (N, K)
    /// heat-map scores.
    public var keypoints: [Float]?
    public var keypointScores: [Float]?

    public init(boxes: [Float], scores: [Float], labels: [Int64], masks: [Float]? = nil) {
        precondition(boxes.count == 4 * scores.count && labels.count == scores.count, "Detections: sizes differ")
        self.boxes = boxes
        self.scores = scores
        self.labels = labels
        self.masks = masks
    }

    /// Number of detections.
    public var count: Int { scores.count }
}
