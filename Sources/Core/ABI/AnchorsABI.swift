import CSwiftRCNN
import SwiftRCNNOps

// C ABI of torchvision's AnchorGenerator (swiftrcnn.h, "Anchors"): validates the level description, the image
// and feature sizes and the output, then fills the output level by level.

/// torchvision computes the shifts `x * stride` in int32; images up to this size keep them exact.
let maxAnchorImageSide = Int64(Int32.max)

/// The per-level counts of `values` (an int64 vector of `levels` entries, each >= 0, adding up to the length of
/// the values they group).
func levelCounts(_ counts: ArrayArgument, levels: Int, of values: [Double], _ name: String) throws -> [Int] {
    let raw = try counts.vector(Int64.self, .int64)
    try require(raw.count == levels, "\(name): expected \(levels) per-level counts, got \(raw.count)")
    var result = [Int](), left = Int64(values.count)
    for c in raw {
        guard c >= 0 && c <= left else { break }
        result.append(Int(c))
        left -= c
    }
    try require(
        result.count == levels && left == 0,
        "\(name): the per-level counts do not match the \(values.count) values given")
    return result
}

/// The anchor sizes and aspect ratios of every level: float64 vectors concatenated over the levels, grouped by the
/// int64 per-level counts (one entry per level, as many levels as `numSizes` has entries, at least one), as the
/// float32 values torchvision builds anchors from.
/// With `expectedLevels`, the levels must be that many (one per feature map).
func anchorLevels(
    sizes: ArrayArgument, numSizes: ArrayArgument, aspectRatios: ArrayArgument, numRatios: ArrayArgument,
    expectedLevels: Int? = nil
) throws -> (sizes: [Float], sizeCounts: [Int], ratios: [Float], ratioCounts: [Int]) {
    let levels = numSizes.rank == 1 ? numSizes[0] : 0
    try require(levels >= 1, "\(sizes.name): expected at least one level (one tuple of sizes per feature map)")
    if let expectedLevels {
        try require(
            levels == expectedLevels,
            "\(sizes.name): expected \(expectedLevels) levels (one per feature map), got \(levels)")
    }
    let sizeValues = try sizes.vector(Double.self, .float64)
    let ratioValues = try aspectRatios.vector(Double.self, .float64)
    let sizeCounts = try levelCounts(numSizes, levels: levels, of: sizeValues, sizes.name)
    let ratioCounts = try levelCounts(numRatios, levels: levels, of: ratioValues, aspectRatios.name)
    return (
        try positiveFloat32s(sizeValues, counts: sizeCounts, sizes.name), sizeCounts,
        try positiveFloat32s(ratioValues, counts: ratioCounts, aspectRatios.name), ratioCounts
    )
}

/// `values` (grouped by level as `counts` says) as `Float`, each finite and > 0 as a `Float` (torchvision builds
/// anchors from float32 copies of the sizes and ratios).
func positiveFloat32s(_ values: [Double], counts: [Int], _ name: String) throws -> [Float] {
    var result = [Float]()
    result.reserveCapacity(values.count)
    for (l, count) in counts.enumerated() {
        for j in 0..<count {
            let v = values[result.count]
            let f = Float(v)
            guard v > 0, f.isFinite, f > 0 else {
                throw SwiftRCNNError.invalidValue(
                    "\(name): expected numbers > 0 that are finite in float32, got \(v) (level \(l), position \(j))")
            }
            result.append(f)
        }
    }
    return result
}

@_cdecl("srcnn_anchor_generator")
public func srcnn_anchor_generator(
    _ sizes: UnsafePointer<srcnn_array>?, _ numSizes: UnsafePointer<srcnn_array>?,
    _ aspectRatios: UnsafePointer<srcnn_array>?, _ numRatios: UnsafePointer<srcnn_array>?, _ imageH: Int64,
    _ imageW: Int64, _ featureHW: UnsafePointer<srcnn_array>?, _ anchors: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let out = try ArrayArgument(anchors, "anchors")
        let (allSizes, sizeCounts, allRatios, ratioCounts) = try anchorLevels(
            sizes: try ArrayArgument(sizes, "sizes"), numSizes: try ArrayArgument(numSizes, "sizes"),
            aspectRatios: try ArrayArgument(aspectRatios, "aspect_ratios"),
            numRatios: try ArrayArgument(numRatios, "aspect_ratios"))
        let levels = sizeCounts.count
        try require(
            imageH >= 1 && imageH <= maxAnchorImageSide && imageW >= 1 && imageW <= maxAnchorImageSide,
            "batch_hw: expected image sizes in 1...\(maxAnchorImageSide), got (\(imageH), \(imageW))")
        let hwArgument = try ArrayArgument(featureHW, "feature_hw")
        try hwArgument.expect(dtype: .int64)
        try hwArgument.expect(shape: [levels, 2], "(\(levels), 2) (one (h, w) pair per level)")
        let hw = Array(UnsafeBufferPointer(start: hwArgument.pointer(Int64.self), count: 2 * levels))
        // Anchors per location and per level, overflow-checked (the output holds 4 values per anchor).
        var perLocation = [Int](), total = 0
        for l in 0..<levels {
            let (h, w) = (Int(hw[2 * l]), Int(hw[2 * l + 1]))
            try require(h >= 1 && w >= 1, "feature_hw: level \(l) has size (\(h), \(w)), expected both >= 1")
            let a = sizeCounts[l].multipliedReportingOverflow(by: ratioCounts[l])
            let cells = h.multipliedReportingOverflow(by: w)
            let n = a.partialValue.multipliedReportingOverflow(by: cells.partialValue)
            guard !a.overflow, !cells.overflow, !n.overflow, n.partialValue <= maxElements / 4 else {
                throw SwiftRCNNError.tooLarge("feature_hw: level \(l) of size (\(h), \(w)) needs too many anchors")
            }
            total += n.partialValue
            guard total <= maxElements / 4 else {
                throw SwiftRCNNError.tooLarge("feature_hw: the levels need too many anchors in total")
            }
            perLocation.append(a.partialValue)
        }
        let dtype = try out.floatType()
        try out.expect(shape: [total, 4], "(\(total), 4) (the number of anchors, 4)")

        var sizeStart = 0, ratioStart = 0, row = 0
        for l in 0..<levels {
            let a = perLocation[l]
            let levelSizes = Array(allSizes[sizeStart..<(sizeStart + sizeCounts[l])])
            let levelRatios = Array(allRatios[ratioStart..<(ratioStart + ratioCounts[l])])
            var cell = [Float](repeating: 0, count: 4 * a)
            Anchors.cellAnchors(
                sizes: levelSizes, count: levelSizes.count, ratios: levelRatios,
                count: levelRatios.count, into: &cell)
            let (h, w) = (Int(hw[2 * l]), Int(hw[2 * l + 1]))
            // torchvision's strides: integer division of the padded image size by the feature size (0 when the
            // feature map is larger than the image, which puts every anchor of the level at the origin).
            let strideY = Int(imageH) / h, strideX = Int(imageW) / w
            func run<T: KernelFloat>(_: T.Type) {
                Anchors.grid(
                    cell: cell, count: a, height: h, width: w, strideY: strideY, strideX: strideX,
                    into: out.pointer(T.self) + 4 * row)
            }
            dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
            sizeStart += sizeCounts[l]
            ratioStart += ratioCounts[l]
            row += h * w * a
        }
    }
}
