import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the py-faster-rcnn conventions (swiftrcnn.h, "py-faster-rcnn conventions"). Box values are not
// checked, except that legacy NMS refuses NaN (its result would be meaningless); non-finite values propagate.

/// `values` checked finite and > 0.
func requirePositiveFinite(_ values: [Double], _ name: String) throws {
    for (i, v) in values.enumerated() {
        try require(v > 0 && v.isFinite, "\(name): expected finite numbers > 0, got \(v) at position \(i)")
    }
}

@_cdecl("srcnn_legacy_generate_anchors")
public func srcnn_legacy_generate_anchors(
    _ baseSize: Double, _ ratios: UnsafePointer<srcnn_array>?, _ scales: UnsafePointer<srcnn_array>?,
    _ anchors: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let out = try ArrayArgument(anchors, "anchors")
        try require(baseSize > 0 && baseSize.isFinite, "base_size: expected a finite number > 0, got \(baseSize)")
        let r = try ArrayArgument(ratios, "ratios").vector(Double.self, .float64)
        let s = try ArrayArgument(scales, "scales").vector(Double.self, .float64)
        try requirePositiveFinite(r, "ratios")
        try requirePositiveFinite(s, "scales")
        let (n, overflow) = r.count.multipliedReportingOverflow(by: s.count)
        guard !overflow, n <= maxElements / 4 else {
            throw SwiftRCNNError.tooLarge("ratios, scales: \(r.count) x \(s.count) anchors are too many")
        }
        try requireOutput(out, dtype: .float64, shape: [n, 4])
        if n == 0 { return }
        Legacy.generateAnchors(
            baseSize: baseSize, ratios: r, count: r.count, scales: s, count: s.count,
            into: out.pointer(Double.self))
    }
}

@_cdecl("srcnn_legacy_bbox_transform")
public func srcnn_legacy_bbox_transform(
    _ exRois: UnsafePointer<srcnn_array>?, _ gtRois: UnsafePointer<srcnn_array>?,
    _ targets: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let e = try ArrayArgument(exRois, "ex_rois"), g = try ArrayArgument(gtRois, "gt_rois")
        let t = try ArrayArgument(targets, "targets")
        let dtype = try requireBoxes(e)
        try requireRowBoxes(g, matching: e)
        try requireOutput(t, dtype: dtype, shape: e.shape)
        func run<T: KernelFloat>(_: T.Type) {
            Legacy.bboxTransform(ex: e.pointer(T.self), gt: g.pointer(T.self), count: e[0], into: t.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_legacy_bbox_transform_inv")
public func srcnn_legacy_bbox_transform_inv(
    _ boxes: UnsafePointer<srcnn_array>?, _ deltas: UnsafePointer<srcnn_array>?,
    _ pred: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), d = try ArrayArgument(deltas, "deltas")
        let o = try ArrayArgument(pred, "pred_boxes")
        let (dtype, k) = try requireBoxGroups(d)
        try requireRowBoxes(b, matching: d)
        try requireOutput(o, dtype: dtype, shape: d.shape)
        func run<T: KernelFloat>(_: T.Type) {
            Legacy.bboxTransformInv(
                boxes: b.pointer(T.self), deltas: d.pointer(T.self), count: d[0], groups: k,
                into: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_legacy_clip_boxes")
public func srcnn_legacy_clip_boxes(
    _ boxes: UnsafePointer<srcnn_array>?, _ imH: Double, _ imW: Double, _ out: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), o = try ArrayArgument(out, "out")
        let (dtype, _) = try requireBoxGroups(b)
        try require(
            imH > 0 && imH.isFinite && imW > 0 && imW.isFinite,
            "im_shape: expected a finite (height, width) > 0, got (\(imH), \(imW))")
        try requireOutput(o, dtype: dtype, shape: b.shape)
        func run<T: KernelFloat>(_: T.Type) {
            Legacy.clipBoxes(
                b.pointer(T.self), values: b.count, maxY: T(imH - 1), maxX: T(imW - 1),
                into: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_legacy_nms")
public func srcnn_legacy_nms(
    _ dets: UnsafePointer<srcnn_array>?, _ threshold: Double, _ keep: UnsafeMutablePointer<srcnn_array>?,
    _ count: UnsafeMutablePointer<Int64>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let d = try ArrayArgument(dets, "dets"), k = try ArrayArgument(keep, "keep")
        let count = try outCount(count, "count")
        try d.expect(shape: [nil, 5], "(N, 5) rows [x1, y1, x2, y2, score]")
        let dtype = try d.floatType()
        try require(!threshold.isNaN, "thresh: expected a number, got NaN")
        try requireOutput(k, dtype: .int64, shape: [d[0]])
        func run<T: KernelFloat>(_: T.Type) throws -> Int {
            try d.requireNoNaN(T.self)
            return Legacy.nms(
                dets: d.pointer(T.self), count: d[0], threshold: T(threshold),
                keep: k.pointer(Int64.self))
        }
        count.pointee = Int64(
            try dispatchFloat(
                dtype, float32: { try run(Float.self) },
                float64: { try run(Double.self) }))
    }
}
