import SwiftRCNNOps

/// Validation shared by the exports of the RoI ops (RoIAlignABI.swift, RoIPoolABI.swift, PSRoIABI.swift).
///
/// Messages name arguments as the Python API does: `input`, `boxes`, `output_size`, `spatial_scale`,
/// `sampling_ratio`, `grad_output`, `argmax`, `input_shape` (the shape of the gradient being computed).
enum RoIArguments {
    /// A feature map (N, C, H, W) of float32 or float64; returns its float type.
    static func requireFeatures(_ a: ArrayArgument, shapeName: String) throws -> DType {
        if a.rank != 4 {
            throw SwiftRCNNError.invalidValue(
                "\(shapeName): expected 4 dimensions (N, C, H, W), got shape \(ArrayArgument.describe(a.shape))")
        }
        return try a.floatType()
    }

    /// `rois` (K, 5) rows [batch_index, x1, y1, x2, y2] of `dtype` with K = `count` when given: every value finite,
    /// every batch index an integer in [0, batch). Returns the RoIs as checked, a copy: pass it to the kernel.
    static func requireRoIs(
        _ original: ArrayArgument, like features: ArrayArgument, batch: Int, count: Int? = nil
    )
        throws -> ArrayArgument
    {
        try original.expect(shape: [count, 5], count.map { "(K, 5) with K = \($0)" } ?? "(K, 5)")
        try original.expect(sameFloatTypeAs: features)
        let rois = original.copied()
        func check<T: KernelFloat>(_: T.Type) throws {
            let p = rois.pointer(T.self)
            for r in 0..<rois[0] {
                let row = p + 5 * r
                for i in 1..<5 where !row[i].isFinite {
                    throw SwiftRCNNError.invalidValue(
                        "\(rois.name): row \(r) has a non-finite coordinate (\(row[i])); boxes must be finite")
                }
                let b = row[0]
                if !(b >= 0 && b < T(batch) && b == b.rounded(.towardZero)) {
                    throw SwiftRCNNError.invalidValue(
                        "\(rois.name): row \(r) has batch index \(b); expected an integer in [0, \(batch)) "
                            + "(the batch size)")
                }
            }
        }
        try dispatchFloat(rois.dtype, float32: { try check(Float.self) }, float64: { try check(Double.self) })
        return rois
    }

    /// A pooled size (pooled_h, pooled_w) carried by argument `name`: both > 0 with a product that fits.
    @discardableResult
    static func requirePooledSize(_ ph: Int64, _ pw: Int64, name: String = "output_size") throws -> (Int, Int) {
        try require(ph > 0 && pw > 0, "\(name): expected positive (height, width), got (\(ph), \(pw))")
        let (bins, overflow) = ph.multipliedReportingOverflow(by: pw)
        if overflow || bins > maxElements {
            throw SwiftRCNNError.tooLarge("\(name): (\(ph), \(pw)) has too many bins")
        }
        return (Int(ph), Int(pw))
    }

    static func requireSpatialScale(_ s: Double) throws {
        try require(s.isFinite && s > 0, "spatial_scale: expected a finite number > 0, got \(s)")
    }

    /// The position-sensitive channel rule: `channels` must be a multiple of pooled_h * pooled_w. Returns the
    /// number of output channels.
    static func requirePositionSensitive(channels: Int, _ ph: Int, _ pw: Int, name: String) throws -> Int {
        let bins = ph * pw
        try require(
            channels % bins == 0,
            "\(name): \(channels) channels is not a multiple of output_size height * width = \(ph) * \(pw)")
        return channels / bins
    }

    /// ps_roi_align's sampling grids: `sampling_ratio` at most sqrt(maxSamplesPerBin), every scaled coordinate
    /// finite, and every adaptive grid with both sides positive within `PSRoIAlign.maxSamplesPerBin` points.
    static func requireSamplingGrids(
        _ rois: ArrayArgument, dtype: DType, spatialScale: Double, _ ph: Int, _ pw: Int, samplingRatio: Int64
    ) throws {
        let cap = PSRoIAlign.maxSamplesPerBin
        if samplingRatio > 0 {
            try require(
                samplingRatio <= Int64(cap) && samplingRatio * samplingRatio <= Int64(cap),
                "sampling_ratio: at most \(cap) sampling points per bin are supported, got "
                    + "\(samplingRatio) x \(samplingRatio)")
        }
        func check<T: KernelFloat>(_: T.Type) throws {
            let p = rois.pointer(T.self)
            let scale = T(spatialScale)
            for r in 0..<rois[0] {
                let row = p + 5 * r
                for i in 1..<5 where !(row[i] * scale - T(0.5)).isFinite {
                    throw SwiftRCNNError.invalidValue(
                        "\(rois.name): row \(r) coordinate \(row[i]) times spatial_scale overflows \(dtype.name)")
                }
                if samplingRatio > 0 { continue }
                let gh = PSRoIAlign.axis(from: row[2], to: row[4], scale: scale, pooled: ph, samplingRatio: 0).grid
                let gw = PSRoIAlign.axis(from: row[1], to: row[3], scale: scale, pooled: pw, samplingRatio: 0).grid
                if gh > 0 && gw > 0 && !(gh <= T(cap) && gw <= T(cap) && gh * gw <= T(cap)) {
                    throw SwiftRCNNError.invalidValue(
                        "\(rois.name): row \(r) needs an adaptive sampling grid of \(gh) x \(gw) points per bin; "
                            + "at most \(cap) are supported (pass a positive sampling_ratio)")
                }
            }
        }
        try dispatchFloat(dtype, float32: { try check(Float.self) }, float64: { try check(Double.self) })
    }
}
