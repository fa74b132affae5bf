import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the box utilities and suppression ops (swiftrcnn.h, "Boxes" and "Suppression").
// Each export validates its arrays once, then runs the Ops kernel for the arrays' float type.

/// Checks `boxes` is a float (N, 4) array and returns its float type.
func requireBoxes(_ boxes: ArrayArgument) throws -> DType {
    try boxes.expect(shape: [nil, 4], "(N, 4)")
    return try boxes.floatType()
}

/// Checks an output array's dtype and exact shape.
func requireOutput(_ out: ArrayArgument, dtype: DType, shape: [Int]) throws {
    try out.expect(dtype: dtype)
    try out.expect(shape: shape, ArrayArgument.describe(shape))
}

@_cdecl("srcnn_box_area")
public func srcnn_box_area(
    _ boxes: UnsafePointer<srcnn_array>?, _ out: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), o = try ArrayArgument(out, "out")
        let dtype = try requireBoxes(b)
        try requireOutput(o, dtype: dtype, shape: [b[0]])
        func run<T: KernelFloat>(_: T.Type) { Boxes.area(b.pointer(T.self), count: b[0], into: o.pointer(T.self)) }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_masks_to_boxes")
public func srcnn_masks_to_boxes(
    _ masks: UnsafePointer<srcnn_array>?, _ boxes: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let m = try ArrayArgument(masks, "masks"), b = try ArrayArgument(boxes, "boxes")
        try m.expect(dtype: .uint8)
        try require(m.rank == 3, "masks: expected shape (N, H, W), got \(ArrayArgument.describe(m.shape))")
        try requireOutput(b, dtype: .float32, shape: [m[0], 4])
        Boxes.masksToBoxes(m.pointer(UInt8.self), count: m[0], height: m[1], width: m[2], into: b.pointer(Float.self))
    }
}

@_cdecl("srcnn_box_iou")
public func srcnn_box_iou(
    _ boxes1: UnsafePointer<srcnn_array>?, _ boxes2: UnsafePointer<srcnn_array>?, _ kind: Int32, _ eps: Double,
    _ out: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let a = try ArrayArgument(boxes1, "boxes1"), b = try ArrayArgument(boxes2, "boxes2")
        let o = try ArrayArgument(out, "out")
        let dtype = try requireBoxes(a)
        _ = try requireBoxes(b)
        try b.expect(sameFloatTypeAs: a)
        guard let kind = Boxes.IoUKind(rawValue: kind) else {
            throw SwiftRCNNError.invalidValue("kind: expected an srcnn_iou_kind (0...3), got \(kind)")
        }
        try require(eps.isFinite, "eps: expected a finite number, got \(eps)")
        try requireOutput(o, dtype: dtype, shape: [a[0], b[0]])
        func run<T: KernelFloat>(_: T.Type) {
            Boxes.pairwiseIoU(
                kind, a.pointer(T.self), count: a[0], b.pointer(T.self), count: b[0], eps: T(eps),
                into: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_box_convert")
public func srcnn_box_convert(
    _ boxes: UnsafePointer<srcnn_array>?, _ inFmt: Int32, _ outFmt: Int32, _ out: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), o = try ArrayArgument(out, "out")
        let dtype = try requireBoxes(b)
        guard let from = Boxes.Format(rawValue: inFmt) else {
            throw SwiftRCNNError.invalidValue("in_fmt: expected an srcnn_box_format (0...2), got \(inFmt)")
        }
        guard let to = Boxes.Format(rawValue: outFmt) else {
            throw SwiftRCNNError.invalidValue("out_fmt: expected an srcnn_box_format (0...2), got \(outFmt)")
        }
        try requireOutput(o, dtype: dtype, shape: b.shape)
        func run<T: KernelFloat>(_: T.Type) {
            Boxes.convert(b.pointer(T.self), count: b[0], from: from, to: to, into: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_clip_boxes_to_image")
public func srcnn_clip_boxes_to_image(
    _ boxes: UnsafePointer<srcnn_array>?, _ height: Int64, _ width: Int64, _ out: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), o = try ArrayArgument(out, "out")
        let dtype = try requireBoxes(b)
        try require(height >= 0 && width >= 0, "size: expected non-negative (height, width), got (\(height), \(width))")
        try requireOutput(o, dtype: dtype, shape: b.shape)
        func run<T: KernelFloat>(_: T.Type) {
            Boxes.clipToImage(
                b.pointer(T.self), count: b[0], height: T(height), width: T(width),
                into: o.pointer(T.self))
        }
        dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) })
    }
}

@_cdecl("srcnn_remove_small_boxes")
public func srcnn_remove_small_boxes(
    _ boxes: UnsafePointer<srcnn_array>?, _ minSize: Double, _ keep: UnsafeMutablePointer<srcnn_array>?,
    _ count: UnsafeMutablePointer<Int64>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let b = try ArrayArgument(boxes, "boxes"), k = try ArrayArgument(keep, "keep")
        let count = try outCount(count, "count")
        let dtype = try requireBoxes(b)
        try require(!minSize.isNaN, "min_size: expected a number, got NaN")
        try requireOutput(k, dtype: .int64, shape: [b[0]])
        func run<T: KernelFloat>(_: T.Type) -> Int {
            Boxes.removeSmall(b.pointer(T.self), count: b[0], minSize: T(minSize), keep: k.pointer(Int64.self))
        }
        count.pointee = Int64(dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) }))
    }
}

/// Validates the common arguments of the suppression ops: boxes (N, 4) and scores (N,) of one float type, no NaN.
/// Any IoU threshold is accepted, NaN included: as in torchvision, no IoU exceeds NaN, 1 or more. Returns the float
/// type and the boxes and scores as checked, copies: pass those to the kernel.
func requireScoredBoxes(
    _ boxes: ArrayArgument, _ scores: ArrayArgument
) throws
    -> (DType, boxes: ArrayArgument, scores: ArrayArgument)
{
    let dtype = try requireBoxes(boxes)
    try scores.expect(shape: [boxes[0]], "(N,) with N = \(boxes[0]) (the number of boxes)")
    try scores.expect(sameFloatTypeAs: boxes)
    let (b, s) = (boxes.copied(), scores.copied())
    func check<T: KernelFloat>(_: T.Type) throws {
        try b.requireNoNaN(T.self)
        try s.requireNoNaN(T.self)
    }
    try dispatchFloat(dtype, float32: { try check(Float.self) }, float64: { try check(Double.self) })
    return (dtype, b, s)
}

@_cdecl("srcnn_nms")
public func srcnn_nms(
    _ boxes: UnsafePointer<srcnn_array>?, _ scores: UnsafePointer<srcnn_array>?, _ iouThreshold: Double,
    _ keep: UnsafeMutablePointer<srcnn_array>?, _ count: UnsafeMutablePointer<Int64>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let givenBoxes = try ArrayArgument(boxes, "boxes"), givenScores = try ArrayArgument(scores, "scores")
        let k = try ArrayArgument(keep, "keep")
        let count = try outCount(count, "count")
        let (dtype, b, s) = try requireScoredBoxes(givenBoxes, givenScores)
        try requireOutput(k, dtype: .int64, shape: [b[0]])
        func run<T: KernelFloat>(_: T.Type) -> Int {
            NMS.nms(
                boxes: b.pointer(T.self), scores: s.pointer(T.self), count: b[0], iouThreshold: iouThreshold,
                keep: k.pointer(Int64.self))
        }
        count.pointee = Int64(dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) }))
    }
}

@_cdecl("srcnn_batched_nms")
public func srcnn_batched_nms(
    _ boxes: UnsafePointer<srcnn_array>?, _ scores: UnsafePointer<srcnn_array>?, _ idxs: UnsafePointer<srcnn_array>?,
    _ iouThreshold: Double, _ keep: UnsafeMutablePointer<srcnn_array>?, _ count: UnsafeMutablePointer<Int64>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let givenBoxes = try ArrayArgument(boxes, "boxes"), givenScores = try ArrayArgument(scores, "scores")
        let c = try ArrayArgument(idxs, "idxs"), k = try ArrayArgument(keep, "keep")
        let count = try outCount(count, "count")
        let (dtype, b, s) = try requireScoredBoxes(givenBoxes, givenScores)
        try c.expect(dtype: .int64)
        try c.expect(shape: [b[0]], "(N,) with N = \(b[0]) (the number of boxes)")
        try requireOutput(k, dtype: .int64, shape: [b[0]])
        func run<T: KernelFloat>(_: T.Type) -> Int {
            NMS.batchedNMS(
                boxes: b.pointer(T.self), scores: s.pointer(T.self), idxs: c.pointer(Int64.self),
                count: b[0], iouThreshold: iouThreshold, keep: k.pointer(Int64.self))
        }
        count.pointee = Int64(dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) }))
    }
}

@_cdecl("srcnn_soft_nms")
public func srcnn_soft_nms(
    _ boxes: UnsafePointer<srcnn_array>?, _ scores: UnsafePointer<srcnn_array>?, _ method: Int32,
    _ iouThreshold: Double, _ sigma: Double, _ scoreThreshold: Double, _ keep: UnsafeMutablePointer<srcnn_array>?,
    _ keptScores: UnsafeMutablePointer<srcnn_array>?, _ count: UnsafeMutablePointer<Int64>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let givenBoxes = try ArrayArgument(boxes, "boxes"), givenScores = try ArrayArgument(scores, "scores")
        let k = try ArrayArgument(keep, "keep"), ks = try ArrayArgument(keptScores, "kept_scores")
        let count = try outCount(count, "count")
        let (dtype, b, s) = try requireScoredBoxes(givenBoxes, givenScores)
        try require(!iouThreshold.isNaN, "iou_threshold: expected a number, got NaN")
        guard let method = SoftNMS.Method(rawValue: method) else {
            throw SwiftRCNNError.invalidValue("method: expected 0 (linear) or 1 (gaussian), got \(method)")
        }
        try require(sigma > 0 && sigma.isFinite, "sigma: expected a finite number > 0, got \(sigma)")
        try require(!scoreThreshold.isNaN, "score_threshold: expected a number, got NaN")
        try requireOutput(k, dtype: .int64, shape: [b[0]])
        try requireOutput(ks, dtype: dtype, shape: [b[0]])
        func run<T: KernelFloat>(_: T.Type) -> Int {
            SoftNMS.run(
                boxes: b.pointer(T.self), scores: s.pointer(T.self), count: b[0], method: method,
                iouThreshold: iouThreshold, sigma: sigma, scoreThreshold: scoreThreshold,
                keep: k.pointer(Int64.self), keptScores: ks.pointer(T.self))
        }
        count.pointee = Int64(dispatchFloat(dtype, float32: { run(Float.self) }, float64: { run(Double.self) }))
    }
}
