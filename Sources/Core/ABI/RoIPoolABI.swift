import CSwiftRCNN
import SwiftRCNNOps

// C ABI of roi_pool (swiftrcnn.h, "RoI ops"): validation of every argument, then the RoIPool kernels.

@_cdecl("srcnn_roi_pool")
public func srcnn_roi_pool(
    _ input: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?, _ pooledH: Int64, _ pooledW: Int64,
    _ spatialScale: Double, _ output: UnsafeMutablePointer<srcnn_array>?, _ argmax: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let x = try ArrayArgument(input, "input"), given = try ArrayArgument(rois, "boxes")
        let o = try ArrayArgument(output, "output"), a = try argmax.map { try ArrayArgument($0, "argmax") }
        let dtype = try RoIArguments.requireFeatures(x, shapeName: "input")
        let (ph, pw) = try RoIArguments.requirePooledSize(pooledH, pooledW)
        try RoIArguments.requireSpatialScale(spatialScale)
        let r = try RoIArguments.requireRoIs(given, like: x, batch: x[0])
        let shape = [r[0], x[1], ph, pw]
        try requireOutput(o, dtype: dtype, shape: shape)
        if let a { try requireOutput(a, dtype: .int64, shape: shape) }
        func run<T: KernelFloat>(_: T.Type) {
            RoIPool.forward(
                input: x.pointer(T.self), batch: x[0], channels: x[1], height: x[2], width: x[3],
                rois: r.pointer(T.self), roiCount: r[0], pooledHeight: ph, pooledWidth: pw,
                spatialScale: T(spatialScale), output: o.pointer(T.self),
                argmax: a?.pointer(Int64.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_roi_pool_backward")
public func srcnn_roi_pool_backward(
    _ gradOutput: UnsafePointer<srcnn_array>?, _ rois: UnsafePointer<srcnn_array>?,
    _ argmax: UnsafePointer<srcnn_array>?, _ gradInput: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let go = try ArrayArgument(gradOutput, "grad_output"), given = try ArrayArgument(argmax, "argmax")
        let gi = try ArrayArgument(gradInput, "grad_input")
        let givenRoIs = try rois.map { try ArrayArgument($0, "boxes") }
        let dtype = try RoIArguments.requireFeatures(go, shapeName: "grad_output")
        _ = try RoIArguments.requireFeatures(gi, shapeName: "input_shape")
        try gi.expect(sameFloatTypeAs: go)
        let (k, n, c, h, w) = (go[0], gi[0], gi[1], gi[2], gi[3])
        try require(
            go[1] == c,
            "grad_output: expected shape (K, C, PH, PW) with C = \(c) (the channels of input_shape), got "
                + ArrayArgument.describe(go.shape))
        try given.expect(dtype: .int64)
        try given.expect(shape: go.shape, "\(ArrayArgument.describe(go.shape)) (the shape of grad_output)")
        let a = given.copied()  // checked below and read by the kernel
        let r = try givenRoIs.map { try RoIArguments.requireRoIs($0, like: go, batch: n, count: k) }
        if r == nil {
            try require(
                n == 1 || (n == 0 && k == 0),
                "boxes: required when input_shape[0] != 1 (argmax does not say which image a RoI is from), "
                    + "got input_shape[0] = \(n)")
        }
        // H * W can only overflow when input_shape has no elements; then argmax has none either.
        let (plane, overflow) = h.multipliedReportingOverflow(by: w)
        let end = overflow ? Int64.max : Int64(plane)
        let idx = a.pointer(Int64.self)
        for i in 0..<a.count where !(idx[i] >= -1 && idx[i] < end) {
            throw SwiftRCNNError.invalidValue(
                "argmax: value \(idx[i]) at flat index \(i) is outside [-1, \(end)) (-1 or an index into the "
                    + "H * W = \(h) * \(w) plane)")
        }
        func run<T: KernelFloat>(_: T.Type) {
            let boxes = r.map { UnsafePointer($0.pointer(T.self)) }
            RoIPool.backward(
                gradOutput: go.pointer(T.self), argmax: idx, rois: boxes, roiCount: k,
                pooledHeight: go[2], pooledWidth: go[3], batch: n, channels: c, height: h, width: w,
                gradInput: gi.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}
