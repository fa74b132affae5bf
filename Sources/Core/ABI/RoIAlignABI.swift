import CSwiftRCNN
import SwiftRCNNOps

// C ABI of RoIAlign (swiftrcnn.h, "RoI ops"): roi_align, its backward, and MultiScaleRoIAlign. Each export checks
// shapes, dtypes and every RoI, bounds the sampling work, then runs the Ops kernel for the arrays' float type.

/// The most feature maps `srcnn_multiscale_roi_align` takes: an FPN has 4 or 5; 16 leaves room for any pyramid.
let maxMultiScaleLevels = 16

/// Checks that RoIAlign's sampling stays within `RoIAlign`'s limits: per-RoI sample rows, columns and samples,
/// every RoI's geometry finite at its spatial scale, and the total work (`Geometry.cost` times channels) of the
/// call. `map(r)` is the spatial scale and map width RoI `r` is pooled at, or nil when it is not pooled at all.
func validateRoIAlignSampling<T: KernelFloat>(
    _ rois: ArrayArgument, channels: Int, pooledH: Int, pooledW: Int, samplingRatio: Int, aligned: Bool,
    map: (Int) -> (scale: T, width: Int)?
) throws {
    let axisLimit = Double(RoIAlign.maxSamplesPerAxis), roiLimit = Double(RoIAlign.maxSamplesPerRoI)
    if samplingRatio > 0 {
        let rows = Double(pooledH) * Double(samplingRatio), columns = Double(pooledW) * Double(samplingRatio)
        try require(
            rows <= axisLimit && columns <= axisLimit && rows * columns <= roiLimit,
            "sampling_ratio: \(samplingRatio) with output size (\(pooledH), \(pooledW)) needs "
                + "\(rows) x \(columns) samples per RoI; the limit is \(RoIAlign.maxSamplesPerAxis) per axis "
                + "and \(RoIAlign.maxSamplesPerRoI) in all")
    }
    let p = rois.pointer(T.self)
    var total = 0.0
    for r in 0..<rois[0] {
        guard let (s, width) = map(r) else { continue }
        let g = RoIAlign.geometry(
            p + 5 * r, spatialScale: s, pooledH: pooledH, pooledW: pooledW,
            samplingRatio: samplingRatio, aligned: aligned)
        try require(
            g.isFinite,
            "\(rois.name): RoI \(r) overflows \(T.self) once multiplied by spatial_scale \(s)")
        let (rows, columns) = g.sampleRowsAndColumns(pooledH: pooledH, pooledW: pooledW)
        try require(
            rows <= axisLimit && columns <= axisLimit && rows * columns <= roiLimit,
            "\(rois.name): RoI \(r) would take \(rows) x \(columns) bilinear samples with adaptive "
                + "sampling_ratio (\(samplingRatio)); the limit is \(RoIAlign.maxSamplesPerAxis) per axis and "
                + "\(RoIAlign.maxSamplesPerRoI) per RoI. Are the boxes in the wrong units? A positive "
                + "sampling_ratio bounds the work")
        total += g.cost(pooledH: pooledH, pooledW: pooledW, width: width)
    }
    try require(
        total * Double(channels) <= Double(RoIAlign.maxTotalWork),
        "\(rois.name): the RoIs need \(total) map reads per channel, which times \(channels) channels "
            + "exceeds the limit of \(RoIAlign.maxTotalWork) per call; use fewer or smaller boxes or a smaller "
            + "sampling_ratio")
}

/// Checks spatial_scale: finite and positive in the element type.
func validateSpatialScale<T: KernelFloat>(_ spatialScale: Double, _: T.Type) throws -> T {
    let s = T(spatialScale)
    try require(s.isFinite && s > 0, "spatial_scale: expected a finite number > 0 (in \(T.self)), got \(spatialScale)")
    return s
}

@_cdecl("srcnn_roi_align")
public func srcnn_roi_align(
    _ input: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ pooledH: Int64, _ pooledW: Int64,
    _ spatialScale: Double, _ samplingRatio: Int64, _ aligned: Int32, _ output: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let x = try ArrayArgument(input, "input"), given = try ArrayArgument(rois, "boxes")
        let o = try ArrayArgument(output, "output")
        try x.expect(shape: [nil, nil, nil, nil], "(N, C, H, W)")
        let dtype = try x.floatType()
        try RoIArguments.requirePooledSize(pooledH, pooledW)
        let b = try RoIArguments.requireRoIs(given, like: x, batch: x[0])
        let (ph, pw, sr) = (Int(pooledH), Int(pooledW), Int(samplingRatio))
        try requireOutput(o, dtype: dtype, shape: [b[0], x[1], ph, pw])
        func run<T: KernelFloat>(_: T.Type) throws {
            let s = try validateSpatialScale(spatialScale, T.self)
            try validateRoIAlignSampling(
                b, channels: x[1], pooledH: ph, pooledW: pw, samplingRatio: sr,
                aligned: aligned != 0, map: { _ in (s, x[3]) })
            RoIAlign.forward(
                input: x.pointer(T.self), batch: x[0], channels: x[1], height: x[2], width: x[3],
                rois: b.pointer(T.self), count: b[0], spatialScale: s, pooledH: ph, pooledW: pw,
                samplingRatio: sr, aligned: aligned != 0, output: o.pointer(T.self))
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}

@_cdecl("srcnn_roi_align_backward")
public func srcnn_roi_align_backward(
    _ gradOutput: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ spatialScale: Double,
    _ samplingRatio: Int64, _ aligned: Int32, _ gradInput: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let go = try ArrayArgument(gradOutput, "grad_output"), given = try ArrayArgument(rois, "boxes")
        let gi = try ArrayArgument(gradInput, "grad_input")
        try go.expect(shape: [nil, nil, nil, nil], "(K, C, PH, PW)")
        let dtype = try go.floatType()
        try RoIArguments.requirePooledSize(Int64(go[2]), Int64(go[3]), name: "grad_output (its output size PH, PW)")
        try gi.expect(shape: [nil, go[1], nil, nil], "(N, C, H, W) with C = \(go[1]) (the channels of grad_output)")
        try gi.expect(sameFloatTypeAs: go)
        let b = try RoIArguments.requireRoIs(given, like: go, batch: gi[0])
        try require(b[0] == go[0], "boxes: \(b[0]) RoIs for \(go[0]) rows of grad_output (expected equal)")
        let (ph, pw, sr) = (go[2], go[3], Int(samplingRatio))
        func run<T: KernelFloat>(_: T.Type) throws {
            let s = try validateSpatialScale(spatialScale, T.self)
            try validateRoIAlignSampling(
                b, channels: go[1], pooledH: ph, pooledW: pw, samplingRatio: sr,
                aligned: aligned != 0, map: { _ in (s, gi[3]) })
            RoIAlign.backward(
                gradOutput: go.pointer(T.self), rois: b.pointer(T.self), count: b[0], spatialScale: s,
                pooledH: ph, pooledW: pw, samplingRatio: sr, aligned: aligned != 0,
                gradInput: gi.pointer(T.self), batch: gi[0], channels: gi[1], height: gi[2],
                width: gi[3])
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}

@_cdecl("srcnn_multiscale_roi_align")
public func srcnn_multiscale_roi_align(
    _ features: UnsafePointer<srcnn_array>?, _ numLevels: Int64, _ rois: UnsafePointer<srcnn_array>?,
    _ imageShapes: UnsafePointer<srcnn_array>?, _ pooledH: Int64, _ pooledW: Int64, _ samplingRatio: Int64,
    _ canonicalScale: Int64, _ canonicalLevel: Int64, _ output: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        try require(
            numLevels >= 1 && numLevels <= maxMultiScaleLevels,
            "features: expected 1...\(maxMultiScaleLevels) feature maps, got \(numLevels)")
        guard let features else { throw SwiftRCNNError.invalidValue("features: missing array list (NULL)") }
        var maps = [ArrayArgument]()
        for l in 0..<Int(numLevels) {
            let f = try ArrayArgument(features[l], "features[\(l)]")
            try f.expect(shape: [nil, nil, nil, nil], "(N, C, H, W)")
            if l == 0 {
                _ = try f.floatType()
            } else {
                try f.expect(sameFloatTypeAs: maps[0])
                try f.expect(
                    shape: [maps[0][0], maps[0][1], nil, nil],
                    "(\(maps[0][0]), \(maps[0][1]), H, W) (the batch size and channels of features[0])")
            }
            try require(f[2] > 0, "features[\(l)]: has height 0; its scale cannot be inferred")
            maps.append(f)
        }
        let dtype = maps[0].dtype, (batch, channels) = (maps[0][0], maps[0][1])
        let given = try ArrayArgument(rois, "boxes"), shapes = try ArrayArgument(imageShapes, "image_shapes")
        let o = try ArrayArgument(output, "output")
        let b = try RoIArguments.requireRoIs(given, like: maps[0], batch: batch)
        try shapes.expect(dtype: .int64)
        try shapes.expect(shape: [nil, 2], "(num_images, 2) rows (height, width)")
        try require(shapes[0] > 0, "image_shapes: expected at least one image size")
        let sp = shapes.pointer(Int64.self)
        var maxHeight = 0
        for i in 0..<(2 * shapes[0]) {
            let size = sp[i]  // read once: the caller's array may change meanwhile
            try require(size > 0, "image_shapes: expected positive (height, width), got \(size) in row \(i / 2)")
            if i % 2 == 0 { maxHeight = max(maxHeight, Int(size)) }
        }
        try RoIArguments.requirePooledSize(pooledH, pooledW)
        try require(canonicalScale > 0, "canonical_scale: expected a positive size, got \(canonicalScale)")
        let (ph, pw, sr) = (Int(pooledH), Int(pooledW), Int(samplingRatio))
        try requireOutput(o, dtype: dtype, shape: [b[0], channels, ph, pw])

        let scales = maps.map { MultiScaleRoIAlign.inferScale(featureHeight: $0[2], imageHeight: maxHeight) }
        func run<T: KernelFloat>(_: T.Type) throws {
            var levelOfRoI = [Int](repeating: 0, count: b[0])
            if maps.count > 1 {
                let mapper = MultiScaleRoIAlign.LevelMapper(
                    scales: scales, canonicalScale: Int(canonicalScale),
                    canonicalLevel: Int(canonicalLevel))
                let p = b.pointer(T.self)
                for r in 0..<b[0] { levelOfRoI[r] = mapper.levelIndex(p + 5 * r, levels: maps.count) }
            }
            var levels = [RoIAlign.Level<T>]()
            for (l, f) in maps.enumerated() {
                let s = T(scales[l])
                try require(
                    s.isFinite && s > 0,
                    "features[\(l)]: inferred scale \(scales[l]) is not usable in \(T.self)")
                levels.append(RoIAlign.Level(data: f.pointer(T.self), height: f[2], width: f[3], spatialScale: s))
            }
            try validateRoIAlignSampling(
                b, channels: channels, pooledH: ph, pooledW: pw, samplingRatio: sr,
                aligned: false,
                map: { r in
                    let l = levelOfRoI[r]
                    return l >= 0 ? (levels[l].spatialScale, levels[l].width) : nil
                })
            levels.withUnsafeBufferPointer { lv in
                levelOfRoI.withUnsafeBufferPointer { lr in
                    RoIAlign.forward(
                        levels: lv.baseAddress!, count: lv.count, levelOfRoI: lr.baseAddress,
                        batch: batch, channels: channels, rois: b.pointer(T.self), count: b[0],
                        pooledH: ph, pooledW: pw, samplingRatio: sr, aligned: false,
                        output: o.pointer(T.self))
                }
            }
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}
