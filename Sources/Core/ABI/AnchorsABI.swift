import CSwiftRCNN
import SwiftRCNNOps

// C ABI of torchvision's AnchorGenerator (swiftrcnn.h, "Anchors"): validates the level description, the image
// and feature sizes and the output, then fills the output level by level.

/// torchvision computes the shifts `x * stride` in int32; images up to this size keep them exact.
let maxAnchorImageSide = Int64(Int32.max)

/// Reads `count` (≥ 0) numbers at `pointer` for the named argument; `pointer` may be NULL only when `count` is 0.
func scalars<T>(_ pointer: UnsafePointer<T>?, _ count: Int, _ name: String) throws -> UnsafeBufferPointer<T> {
    if count == 0 { return UnsafeBufferPointer(start: nil, count: 0) }
    guard let pointer else { throw SwiftRCNNError.invalidValue("\(name): missing values (NULL)") }
    return UnsafeBufferPointer(start: pointer, count: count)
}

/// Checks the per-level counts and returns them with their (overflow-checked) sum.
func levelCounts(_ pointer: UnsafePointer<Int64>?, levels: Int, _ name: String) throws -> (counts: [Int], total: Int) {
    var counts = [Int]()
    var total = 0
    for (l, c) in try scalars(pointer, levels, name).enumerated() {
        guard c >= 0 && c <= Int64(maxElements) else {
            throw SwiftRCNNError.invalidValue("\(name): level \(l) has \(c) values, expected 0...\(maxElements)")
        }
        counts.append(Int(c))
        total += Int(c)
        guard total <= maxElements else { throw SwiftRCNNError.tooLarge("\(name): too many values in total") }
    }
    return (counts, total)
}

/// `values` (grouped by level as `counts` says) as `Float`, each finite and > 0 as a `Float` (torchvision builds
/// anchors from float32 copies of the sizes and ratios).
func positiveFloat32s(_ values: UnsafeBufferPointer<Double>, counts: [Int], _ name: String) throws -> [Float] {
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
    _ sizes: UnsafePointer<Double>?, _ numSizes: UnsafePointer<Int64>?, _ aspectRatios: UnsafePointer<Double>?,
    _ numRatios: UnsafePointer<Int64>?, _ numLevels: Int64, _ imageH: Int64, _ imageW: Int64,
    _ featureHW: UnsafePointer<Int64>?, _ anchors: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let out = try ArrayArgument(anchors, "anchors")
        try require(numLevels >= 1 && numLevels <= Int64(maxElements),
                    "sizes: expected at least one level (one tuple of sizes per feature map), got \(numLevels)")
        let levels = Int(numLevels)
        let (sizeCounts, sizeTotal) = try levelCounts(numSizes, levels: levels, "sizes")
        let (ratioCounts, ratioTotal) = try levelCounts(numRatios, levels: levels, "aspect_ratios")
        let allSizes = try positiveFloat32s(try scalars(sizes, sizeTotal, "sizes"), counts: sizeCounts, "sizes")
        let allRatios = try positiveFloat32s(try scalars(aspectRatios, ratioTotal, "aspect_ratios"),
                                             counts: ratioCounts, "aspect_ratios")
        try require(imageH >= 1 && imageH <= maxAnchorImageSide && imageW >= 1 && imageW <= maxAnchorImageSide,
                    "batch_hw: expected image sizes in 1...\(maxAnchorImageSide), got (\(imageH), \(imageW))")
        let hw = try scalars(featureHW, 2 * levels, "feature_hw")
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
            Anchors.cellAnchors(sizes: levelSizes, count: levelSizes.count, ratios: levelRatios,
                                count: levelRatios.count, into: &cell)
            let (h, w) = (Int(hw[2 * l]), Int(hw[2 * l + 1]))
            // torchvision's strides: integer division of the padded image size by the feature size (0 when the
            // feature map is larger than the image, which puts every anchor of the level at the origin).
            let strideY = Int(imageH) / h, strideX = Int(imageW) / w
            func run<T: KernelFloat>(_: T.Type) {
                Anchors.grid(cell: cell, count: a, height: h, width: w, strideY: strideY, strideX: strideX,
                             into: out.pointer(T.self) + 4 * row)
            }
            dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
            sizeStart += sizeCounts[l]
            ratioStart += ratioCounts[l]
            row += h * w * a
        }
    }
}
