import CSwiftRCNN

// Swift API of the detection utilities: torchvision's Matcher, BalancedPositiveNegativeSampler and
// paste_masks_in_image.

/// torchvision's Matcher: assigns each prediction the ground truth it overlaps best.
public struct Matcher: Sendable {
    /// A prediction whose best quality is below the low threshold.
    public static let belowLowThreshold: Int64 = -1
    /// A prediction whose best quality lies in [low, high).
    public static let betweenThresholds: Int64 = -2

    public let highThreshold: Double
    public let lowThreshold: Double
    public let allowLowQualityMatches: Bool

    public init(highThreshold: Double, lowThreshold: Double, allowLowQualityMatches: Bool = false) {
        self.highThreshold = highThreshold
        self.lowThreshold = lowThreshold
        self.allowLowQualityMatches = allowLowQualityMatches
    }

    /// `quality` (M ground truths, N predictions) -> (N,) ground-truth index or a negative code.
    public func callAsFunction<T: FloatElement>(_ quality: Tensor<T>) throws -> Tensor<Int64> {
        var matches = Tensor<Int64>(zeros: [quality.shape.count == 2 ? quality.shape[1] : 0])
        try check { err in
            quality.withArray { q in
                matches.withMutableArray { m in
                    srcnn_matcher(q, highThreshold, lowThreshold, allowLowQualityMatches ? 1 : 0, m, err)
                }
            }
        }
        return matches
    }
}

/// torchvision's BalancedPositiveNegativeSampler with a seedable generator of its own.
public struct BalancedPositiveNegativeSampler: Sendable {
    public let batchSizePerImage: Int
    public let positiveFraction: Double
    private var generator: Xoshiro256StarStar

    public init(batchSizePerImage: Int, positiveFraction: Double, seed: UInt64) {
        self.batchSizePerImage = batchSizePerImage
        self.positiveFraction = positiveFraction
        self.generator = Xoshiro256StarStar(seed: seed)
    }

    /// For each image's matched indices (>= 1 positive, 0 negative, < 0 ignored): masks of the sampled
    /// positives and negatives. Successive calls draw new samples; a sampler built with the same seed replays.
    public mutating func sample(
        _ matchedIdxs: [Tensor<Int64>]
    ) throws
        -> (positive: [Tensor<UInt8>], negative: [Tensor<UInt8>])
    {
        var positive = [Tensor<UInt8>](), negative = [Tensor<UInt8>]()
        for matched in matchedIdxs {
            let n = matched.shape.first ?? 0
            var pos = Tensor<UInt8>(zeros: [n]), neg = Tensor<UInt8>(zeros: [n])
            let seed = generator.next()
            try check { err in
                matched.withArray { m in
                    pos.withMutableArray { p in
                        neg.withMutableArray { q in
                            srcnn_balanced_sampler(m, Int64(batchSizePerImage), positiveFraction, seed, p, q, err)
                        }
                    }
                }
            }
            positive.append(pos)
            negative.append(neg)
        }
        return (positive, negative)
    }
}

/// Pastes `masks` (N, 1, M, M) into (N, 1, height, width) images at `boxes` (N, 4), as Mask R-CNN's
/// post-processing: each mask is padded by `padding`, resized bilinearly to its box and clipped to the image.
public func pasteMasksInImage<T: FloatElement>(
    _ masks: Tensor<T>, boxes: Tensor<T>, height: Int, width: Int, padding: Int = 1
) throws -> Tensor<T> {
    let n = masks.shape.first ?? 0
    guard height > 0, width > 0 else {
        throw SwiftRCNNError.invalidValue("img_shape: expected positive (height, width), got (\(height), \(width))")
    }
    let (pixels, overflow) = height.multipliedReportingOverflow(by: width)
    guard !overflow, pixels <= maxElements, n <= maxElements / pixels else {
        throw SwiftRCNNError.tooLarge("img_shape: (\(height), \(width)) for \(n) masks is too large")
    }
    var out = Tensor<T>(zeros: [n, 1, height, width])
    try check { err in
        masks.withArray { m in
            boxes.withArray { b in
                out.withMutableArray { o in
                    srcnn_paste_masks_in_image(m, b, Int64(height), Int64(width), Int64(padding), o, err)
                }
            }
        }
    }
    return out
}
