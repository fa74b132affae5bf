import CSwiftRCNN
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Swift API of anchor generation and box coding: torchvision's AnchorGenerator and BoxCoder, and the
// py-faster-rcnn conventions under `Legacy`.

/// torchvision's AnchorGenerator: per feature map l, `sizes[l].count * aspectRatios[l].count` anchors per location.
public struct AnchorGenerator: Sendable {
    public let sizes: [[Double]]
    public let aspectRatios: [[Double]]

    public init(sizes: [[Double]] = [[128, 256, 512]], aspectRatios: [[Double]] = [[0.5, 1.0, 2.0]]) {
        self.sizes = sizes
        self.aspectRatios = aspectRatios
    }

    public func numAnchorsPerLocation() -> [Int] { zip(sizes, aspectRatios).map { $0.count * $1.count } }

    /// Anchors (sum_l h_l * w_l * A_l, 4) for one image of a padded batch of `imageSize` (h, w), with feature
    /// maps of `featureSizes` (h_l, w_l); identical for every image of the batch.
    public func anchors<T: FloatElement>(
        imageSize: (height: Int, width: Int), featureSizes: [(height: Int, width: Int)], as _: T.Type = Float.self
    ) throws -> Tensor<T> {
        guard featureSizes.count == sizes.count, aspectRatios.count == sizes.count else {
            throw SwiftRCNNError.invalidValue(
                "feature_hw: expected \(sizes.count) feature maps (one per sizes entry), got \(featureSizes.count)")
        }
        var rows = 0
        for (f, a) in zip(featureSizes, numAnchorsPerLocation()) {
            let (p, o) = max(f.height, 0).multipliedReportingOverflow(by: max(f.width, 0) * a)
            guard !o && p <= maxElements / 4 - rows else {
                throw SwiftRCNNError.tooLarge("feature_hw: too many anchors")
            }
            rows += p
        }
        var out = Tensor<T>(zeros: [rows, 4])
        let flatSizes = Tensor(sizes.flatMap { $0 }), numSizes = Tensor(sizes.map { Int64($0.count) })
        let flatRatios = Tensor(aspectRatios.flatMap { $0 }), numRatios = Tensor(aspectRatios.map { Int64($0.count) })
        let hw = Tensor(featureSizes.flatMap { [Int64($0.height), Int64($0.width)] }, shape: [featureSizes.count, 2])
        try check { err in
            flatSizes.withArray { s in
                numSizes.withArray { ns in
                    flatRatios.withArray { r in
                        numRatios.withArray { nr in
                            hw.withArray { f in
                                out.withMutableArray { o in
                                    srcnn_anchor_generator(
                                        s, ns, r, nr, Int64(imageSize.height), Int64(imageSize.width), f, o, err)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// torchvision's BoxCoder: boxes to regression targets (dx, dy, dw, dh) and back.
public struct BoxCoder: Sendable {
    /// The largest log-ratio of a decoded box's size to its reference box's: log(1000 / 16), from Detectron, so a
    /// decoded side is at most 62.5x its anchor's.
    public static let defaultBBoxXformClip = log(1000.0 / 16.0)

    public let weights: (Double, Double, Double, Double)
    public let bboxXformClip: Double

    public init(weights: (Double, Double, Double, Double), bboxXformClip: Double = BoxCoder.defaultBBoxXformClip) {
        self.weights = weights
        self.bboxXformClip = bboxXformClip
    }

    private var weightArray: [Double] { [weights.0, weights.1, weights.2, weights.3] }

    /// Targets (N, 4) encoding `referenceBoxes` (N, 4) relative to `proposals` (N, 4).
    public func encode<T: FloatElement>(referenceBoxes: Tensor<T>, proposals: Tensor<T>) throws -> Tensor<T> {
        var out = Tensor<T>(zeros: [referenceBoxes.shape.first ?? 0, 4])
        let w = Tensor(weightArray)
        try check { err in
            referenceBoxes.withArray { r in
                proposals.withArray { p in
                    w.withArray { w in
                        out.withMutableArray { o in srcnn_box_encode(r, p, w, o, err) }
                    }
                }
            }
        }
        return out
    }

    /// Boxes (N, 4k) decoded from `relCodes` (N, 4k) relative to `boxes` (N, 4).
    public func decode<T: FloatElement>(relCodes: Tensor<T>, boxes: Tensor<T>) throws -> Tensor<T> {
        var out = Tensor<T>(zeros: relCodes.shape)
        let w = Tensor(weightArray)
        let clip = bboxXformClip
        try check { err in
            relCodes.withArray { c in
                boxes.withArray { b in
                    w.withArray { w in
                        out.withMutableArray { o in srcnn_box_decode(c, b, w, clip, o, err) }
                    }
                }
            }
        }
        return out
    }
}
