import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the detection-head helpers (swiftrcnn.h, "Matching and sampling" and "Masks").
// Each export validates its arguments once, then runs the Ops kernel for the arrays' float type.

@_cdecl("srcnn_matcher")
public func srcnn_matcher(
    _ quality: UnsafePointer<srcnn_array>?, _ highThreshold: Double, _ lowThreshold: Double,
    _ allowLowQualityMatches: Int32, _ matches: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let q = try ArrayArgument(quality, "match_quality_matrix"), o = try ArrayArgument(matches, "matches")
        try q.expect(shape: [nil, nil], "(M, N)")
        let dtype = try q.floatType()
        // torchvision's messages: matching needs at least one ground truth and one prediction.
        try require(
            q[0] > 0,
            "match_quality_matrix: No ground-truth boxes available for one of the images during "
                + "training (shape \(ArrayArgument.describe(q.shape)))")
        try require(
            q[1] > 0,
            "match_quality_matrix: No proposal boxes available for one of the images during "
                + "training (shape \(ArrayArgument.describe(q.shape)))")
        try require(!highThreshold.isNaN, "high_threshold: expected a number, got NaN")
        try require(!lowThreshold.isNaN, "low_threshold: expected a number, got NaN")
        try require(
            lowThreshold <= highThreshold,
            "low_threshold should be <= high_threshold, got \(lowThreshold) > \(highThreshold)")
        try requireOutput(o, dtype: .int64, shape: [q[1]])
        func run<T: KernelFloat>(_: T.Type) throws {
            try q.requireNoNaN(T.self)
            Matching.match(
                quality: q.pointer(T.self), groundTruths: q[0], predictions: q[1],
                highThreshold: T(highThreshold), lowThreshold: T(lowThreshold),
                allowLowQualityMatches: allowLowQualityMatches != 0, matches: o.pointer(Int64.self))
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}

@_cdecl("srcnn_balanced_sampler")
public func srcnn_balanced_sampler(
    _ matchedIdxs: UnsafePointer<srcnn_array>?, _ batchSizePerImage: Int64, _ positiveFraction: Double,
    _ seed: UInt64, _ posMask: UnsafeMutablePointer<srcnn_array>?, _ negMask: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let idx = try ArrayArgument(matchedIdxs, "matched_idxs")
        let pos = try ArrayArgument(posMask, "pos_mask"), neg = try ArrayArgument(negMask, "neg_mask")
        try idx.expect(dtype: .int64)
        try idx.expect(shape: [nil], "(N,)")
        try require(batchSizePerImage >= 0, "batch_size_per_image: expected an int >= 0, got \(batchSizePerImage)")
        try require(
            positiveFraction >= 0 && positiveFraction <= 1,
            "positive_fraction: expected a number in [0, 1], got \(positiveFraction)")
        try requireOutput(pos, dtype: .uint8, shape: idx.shape)
        try requireOutput(neg, dtype: .uint8, shape: idx.shape)
        BalancedSampler.sample(
            matchedIdxs: idx.pointer(Int64.self), count: idx[0],
            batchSizePerImage: Int(batchSizePerImage), positiveFraction: positiveFraction,
            seed: seed, positive: pos.pointer(UInt8.self), negative: neg.pointer(UInt8.self))
    }
}

/// Largest |coordinate| accepted in a box to paste into. Far beyond any image (torchvision would have to allocate
/// a mask of that many pixels squared), it keeps the expanded boxes' integer arithmetic exact and overflow-free.
let maxPasteBoxCoordinate = Double(1 << 32)
/// Largest mask padding accepted: torchvision uses 1; the bound keeps (M + 2·padding) and the box scale
/// (M + 2·padding) / M small enough for the expanded boxes to stay within `Int`.
let maxMaskPadding: Int64 = 1 << 16

@_cdecl("srcnn_paste_masks_in_image")
public func srcnn_paste_masks_in_image(
    _ masks: UnsafePointer<srcnn_array>?, _ boxes: UnsafePointer<srcnn_array>?, _ imgH: Int64, _ imgW: Int64,
    _ padding: Int64, _ out: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let mk = try ArrayArgument(masks, "masks"), given = try ArrayArgument(boxes, "boxes")
        let o = try ArrayArgument(out, "out")
        try mk.expect(shape: [nil, 1, nil, nil], "(N, 1, M, M)")
        try require(
            mk[2] == mk[3],
            "masks: expected square masks (N, 1, M, M), got shape "
                + ArrayArgument.describe(mk.shape))
        try require(mk[3] > 0, "masks: expected a mask size M > 0, got shape \(ArrayArgument.describe(mk.shape))")
        let dtype = try mk.floatType()
        try given.expect(shape: [mk[0], 4], "(N, 4) with N = \(mk[0]) (the number of masks)")
        try given.expect(sameFloatTypeAs: mk)
        let b = given.copied()  // checked below and pasted from
        try require(imgH > 0 && imgW > 0, "img_shape: expected a positive (height, width), got (\(imgH), \(imgW))")
        let (pixels, overflow) = Int(imgH).multipliedReportingOverflow(by: Int(imgW))
        if overflow || pixels > maxElements {
            throw SwiftRCNNError.tooLarge("img_shape: an image of \(imgH) x \(imgW) pixels is too large")
        }
        try require(
            padding >= 0 && padding <= maxMaskPadding,
            "padding: expected an int in [0, \(maxMaskPadding)], got \(padding)")
        try requireOutput(o, dtype: dtype, shape: [mk[0], 1, Int(imgH), Int(imgW)])
        func run<T: KernelFloat>(_: T.Type) throws {
            let p = b.pointer(T.self)
            for i in 0..<b.count where !(Double(p[i]).magnitude <= maxPasteBoxCoordinate) {
                throw SwiftRCNNError.invalidValue(
                    "boxes: expected finite coordinates within ±2^32, got \(p[i]) at flat index \(i)")
            }
            PasteMasks.paste(
                masks: mk.pointer(T.self), boxes: p, count: mk[0], maskSize: mk[3],
                padding: Int(padding), height: Int(imgH), width: Int(imgW), into: o.pointer(T.self))
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}
