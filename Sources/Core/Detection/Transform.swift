import SwiftRCNNOps

/// torchvision's `GeneralizedRCNNTransform` in eval mode: each image is normalised, resized so its short side is
/// `minSize` unless that would make its long side exceed `maxSize`, and the images are stacked top-left aligned in a
/// zero-padded batch whose height and width are multiples of `sizeDivisible`.
///
/// Per image (3, H, W), in torchvision's order:
/// 1. normalise: (x - mean[c]) / std[c] in float32;
/// 2. resize: scale = min(minSize / min(H, W), maxSize / max(H, W)) in double precision (the sizes may have
///    fractions, as torchvision's), output
///    (floor(H·scale), floor(W·scale)) as `interpolate(scale_factor=scale, recompute_scale_factor=True)` computes
///    it, resampled bilinearly (align_corners=False) with `Interpolation.bilinear`.
/// Threading: the resampling runs on `Parallel` threads.
public struct GeneralizedRCNNTransform: Sendable {
    public let minSize: Double, maxSize: Double
    public let imageMean: [Float], imageStd: [Float]
    /// Most pixels (N·H·W) of one padded batch: 16 images at the default 800 x 1333. The backbone's largest maps
    /// hold 16 floats per batch pixel (64 channels at stride 2, 256 at stride 4), so this caps one map at 1 GiB.
    public static let maxBatchPixels = 1 << 24
    /// torchvision's default `size_divisible`: the padded batch is a multiple of the backbone's total stride.
    public static let sizeDivisible = 32

    public init(minSize: Double, maxSize: Double, imageMean: [Float], imageStd: [Float]) {
        precondition(minSize > 0 && maxSize > 0, "GeneralizedRCNNTransform: sizes must be positive")
        precondition(imageMean.count == 3 && imageStd.count == 3, "GeneralizedRCNNTransform: 3 channels")
        self.minSize = minSize; self.maxSize = maxSize
        self.imageMean = imageMean; self.imageStd = imageStd
    }

    /// The size an (h, w) image is resized to.
    public func resizedSize(height h: Int, width w: Int) -> (Int, Int) {
        let scale = self.scale(height: h, width: w)
        return (Int((Double(h) * scale).rounded(.down)), Int((Double(w) * scale).rounded(.down)))
    }

    /// `n` rounded up to a multiple of `sizeDivisible`.
    /// The resize factor of an image of `h` × `w`: min(minSize / min(h, w), maxSize / max(h, w)).
    public func scale(height h: Int, width w: Int) -> Double {
        min(minSize / Double(min(h, w)), maxSize / Double(max(h, w)))
    }

    static func padded(_ n: Int) -> Int {
        (n + sizeDivisible - 1) / sizeDivisible * sizeDivisible
    }

    /// The padded batch shape (height, width) for images of the given resized sizes.
    public static func batchSize(_ imageSizes: [(Int, Int)]) -> (Int, Int) {
        (padded(imageSizes.map(\.0).max() ?? 0), padded(imageSizes.map(\.1).max() ?? 0))
    }

    /// images: (1, 3, H_i, W_i) maps -> the padded normalised batch (N, 3, H, W) and each image's resized size.
    /// Throws `invalidValue` for an image that is not 3-channel or would be resized to nothing, `tooLarge` for a
    /// batch of more than `maxBatchPixels`.
    public func callAsFunction(_ images: [FeatureMap]) throws -> (batch: FeatureMap, imageSizes: [(Int, Int)]) {
        try require(!images.isEmpty, "images: expected at least one image")
        var sizes = [(Int, Int)]()
        for (i, image) in images.enumerated() {
            try require(
                image.batch == 1 && image.channels == 3 && image.height > 0 && image.width > 0,
                "images[\(i)]: expected shape (3, H, W) with H, W >= 1, got "
                    + "(\(image.channels), \(image.height), \(image.width))")
            let size = resizedSize(height: image.height, width: image.width)
            try require(
                size.0 > 0 && size.1 > 0,
                "images[\(i)]: a \(image.height) x \(image.width) image resizes to \(size.0) x \(size.1) "
                    + "with min_size \(minSize), max_size \(maxSize)")
            sizes.append(size)
        }
        let (bh, bw) = Self.batchSize(sizes)
        guard bh * bw <= Self.maxBatchPixels / images.count else {
            throw SwiftRCNNError.tooLarge(
                "images: a batch of \(images.count) images padded to \(bh) x \(bw) exceeds \(Self.maxBatchPixels) "
                    + "pixels; pass fewer images per call")
        }
        var batch = FeatureMap(
            batch: images.count, channels: 3, height: bh, width: bw,
            data: [Float](repeating: 0, count: images.count * 3 * bh * bw))
        let normalized = UnsafeMutablePointer<Float>.allocate(capacity: images.map { 3 * $0.plane }.max()!)
        defer { normalized.deallocate() }
        let resized = UnsafeMutablePointer<Float>.allocate(capacity: sizes.map { 3 * $0.0 * $0.1 }.max()!)
        defer { resized.deallocate() }
        batch.data.withUnsafeMutableBufferPointer { out in
            for (i, image) in images.enumerated() {
                let plane = image.plane
                image.data.withUnsafeBufferPointer { x in
                    for c in 0..<3 {
                        let m = imageMean[c], s = imageStd[c]
                        let src = x.baseAddress! + c * plane, dst = normalized + c * plane
                        for j in 0..<plane { dst[j] = (src[j] - m) / s }
                    }
                }
                let (h, w) = sizes[i]
                Interpolation.bilinear(
                    normalized, planes: 3, height: image.height, width: image.width,
                    outHeight: h, outWidth: w, into: resized)
                for c in 0..<3 {
                    let dst = out.baseAddress! + ((i * 3 + c) * bh) * bw
                    for y in 0..<h { (dst + y * bw).update(from: resized + (c * h + y) * w, count: w) }
                }
            }
        }
        return (batch, sizes)
    }
}
