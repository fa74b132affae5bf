import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the position-sensitive RoI ops ps_roi_align and ps_roi_pool (swiftrcnn.h, "RoI ops"): validation of
// every argument, then the PSRoIAlign / PSRoIPool kernels.

/// Forward arguments shared by both ops: input (N, C, H, W) with C a multiple of PH * PW, rois, scale, output
/// (K, C / (PH * PW), PH, PW). Returns the float type, pooled size and the checked copy of the RoIs.
private func requirePSForward(
    _ x: ArrayArgument, _ given: ArrayArgument, _ o: ArrayArgument, _ pooledH: Int64, _ pooledW: Int64,
    _ spatialScale: Double
) throws -> (DType, Int, Int, ArrayArgument) {
    let dtype = try RoIArguments.requireFeatures(x, shapeName: "input")
    let (ph, pw) = try RoIArguments.requirePooledSize(pooledH, pooledW)
    try RoIArguments.requireSpatialScale(spatialScale)
    let outChannels = try RoIArguments.requirePositionSensitive(channels: x[1], ph, pw, name: "input")
    let r = try RoIArguments.requireRoIs(given, like: x, batch: x[0])
    try requireOutput(o, dtype: dtype, shape: [r[0], outChannels, ph, pw])
    return (dtype, ph, pw, r)
}

/// Backward arguments shared by both ops: grad_output (K, C / (PH * PW), PH, PW) with PH, PW > 0, grad_input
/// (N, C, H, W) of the same float type, rois (K, 5). Returns the float type, pooled size and the checked copy of the
/// RoIs.
private func requirePSBackward(
    _ go: ArrayArgument, _ given: ArrayArgument, _ gi: ArrayArgument, _ spatialScale: Double
) throws -> (DType, Int, Int, ArrayArgument) {
    let dtype = try RoIArguments.requireFeatures(go, shapeName: "grad_output")
    _ = try RoIArguments.requireFeatures(gi, shapeName: "input_shape")
    try gi.expect(sameFloatTypeAs: go)
    try require(
        go[2] > 0 && go[3] > 0,
        "grad_output: expected shape (K, C / (PH * PW), PH, PW) with PH, PW > 0, got "
            + ArrayArgument.describe(go.shape))
    let (ph, pw) = (go[2], go[3])
    let (bins, o1) = ph.multipliedReportingOverflow(by: pw)
    let (channels, o2) = go[1].multipliedReportingOverflow(by: bins)
    try require(
        !o1 && !o2 && gi[1] == channels,
        "input_shape: expected \(go[1]) * \(ph) * \(pw) channels (grad_output's channels times PH * PW), "
            + "got \(gi[1])")
    try RoIArguments.requireSpatialScale(spatialScale)
    let r = try RoIArguments.requireRoIs(given, like: go, batch: gi[0], count: go[0])
    return (dtype, ph, pw, r)
}

@_cdecl("srcnn_ps_roi_align")
public func srcnn_ps_roi_align(
    _ input: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ pooledH: Int64, _ pooledW: Int64,
    _ spatialScale: Double, _ samplingRatio: Int64, _ output: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let x = try ArrayArgument(input, "input"), given = try ArrayArgument(rois, "boxes")
        let o = try ArrayArgument(output, "output")
        let (dtype, ph, pw, r) = try requirePSForward(x, given, o, pooledH, pooledW, spatialScale)
        try RoIArguments.requireSamplingGrids(
            r, dtype: dtype, spatialScale: spatialScale, ph, pw,
            samplingRatio: samplingRatio)
        func run<T: KernelFloat>(_: T.Type) {
            PSRoIAlign.forward(
                input: x.pointer(T.self), batch: x[0], channels: x[1], height: x[2], width: x[3],
                rois: r.pointer(T.self), roiCount: r[0], pooledHeight: ph, pooledWidth: pw,
                spatialScale: T(spatialScale), samplingRatio: Int(samplingRatio),
                output: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_ps_roi_align_backward")
public func srcnn_ps_roi_align_backward(
    _ gradOutput: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ spatialScale: Double,
    _ samplingRatio: Int64, _ gradInput: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let go = try ArrayArgument(gradOutput, "grad_output"), given = try ArrayArgument(rois, "boxes")
        let gi = try ArrayArgument(gradInput, "grad_input")
        let (dtype, ph, pw, r) = try requirePSBackward(go, given, gi, spatialScale)
        try RoIArguments.requireSamplingGrids(
            r, dtype: dtype, spatialScale: spatialScale, ph, pw,
            samplingRatio: samplingRatio)
        func run<T: KernelFloat>(_: T.Type) {
            PSRoIAlign.backward(
                gradOutput: go.pointer(T.self), rois: r.pointer(T.self), roiCount: r[0],
                pooledHeight: ph, pooledWidth: pw, spatialScale: T(spatialScale),
                samplingRatio: Int(samplingRatio), batch: gi[0], channels: gi[1], height: gi[2],
                width: gi[3], gradInput: gi.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_ps_roi_pool")
public func srcnn_ps_roi_pool(
    _ input: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ pooledH: Int64, _ pooledW: Int64,
    _ spatialScale: Double, _ output: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let x = try ArrayArgument(input, "input"), given = try ArrayArgument(rois, "boxes")
        let o = try ArrayArgument(output, "output")
        let (dtype, ph, pw, r) = try requirePSForward(x, given, o, pooledH, pooledW, spatialScale)
        func run<T: KernelFloat>(_: T.Type) {
            PSRoIPool.forward(
                input: x.pointer(T.self), batch: x[0], channels: x[1], height: x[2], width: x[3],
                rois: r.pointer(T.self), roiCount: r[0], pooledHeight: ph, pooledWidth: pw,
                spatialScale: T(spatialScale), output: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_ps_roi_pool_backward")
public func srcnn_ps_roi_pool_backward(
    _ gradOutput: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ spatialScale: Double,
    _ gradInput: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let go = try ArrayArgument(gradOutput, "grad_output"), given = try ArrayArgument(rois, "boxes")
        let gi = try ArrayArgument(gradInput, "grad_input")
        let (dtype, ph, pw, r) = try requirePSBackward(go, given, gi, spatialScale)
        func run<T: KernelFloat>(_: T.Type) {
            PSRoIPool.backward(
                gradOutput: go.pointer(T.self), rois: r.pointer(T.self), roiCount: r[0],
                pooledHeight: ph, pooledWidth: pw, spatialScale: T(spatialScale), batch: gi[0],
                channels: gi[1], height: gi[2], width: gi[3], gradInput: gi.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}
