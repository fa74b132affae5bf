import CSwiftRCNN
import SwiftRCNNOps

// C ABI of torchvision's BoxCoder (swiftrcnn.h, "Box coding"): shapes, dtypes, weights and the clip are checked
// here; box and code values are not (non-finite values propagate through the arithmetic, as in torchvision).

/// The four weights `(wx, wy, ww, wh)`, each finite and > 0, converted to `T`.
func boxCoderWeights<T: KernelFloat>(_ weights: UnsafePointer<srcnn_array>?, _: T.Type) throws -> (T, T, T, T) {
    let w = try ArrayArgument(weights, "weights").vector(Double.self, .float64)
    try require(w.count == 4, "weights: expected 4 numbers (wx, wy, ww, wh), got \(w.count)")
    for (i, v) in w.enumerated() {
        try require(v > 0 && v.isFinite, "weights: expected 4 finite numbers > 0, got \(v) at position \(i)")
    }
    return (T(w[0]), T(w[1]), T(w[2]), T(w[3]))
}

/// Checks a float (N, 4k) array of box groups and returns its float type and k.
func requireBoxGroups(_ a: ArrayArgument) throws -> (DType, Int) {
    guard a.rank == 2, a[1] % 4 == 0 else {
        throw SwiftRCNNError.invalidValue(
            "\(a.name): expected shape (N, 4k) (groups of 4 per row), got \(ArrayArgument.describe(a.shape))")
    }
    return (try a.floatType(), a[1] / 4)
}

/// Checks `b` is an (N, 4) array with N = the rows of `lead` and the same float type.
func requireRowBoxes(_ b: ArrayArgument, matching lead: ArrayArgument) throws {
    try b.expect(shape: [lead[0], 4], "(N, 4) with N = \(lead[0]) (the rows of \(lead.name))")
    try b.expect(sameFloatTypeAs: lead)
}

@_cdecl("srcnn_box_encode")
public func srcnn_box_encode(
    _ referenceBoxes: UnsafePointer<srcnn_array>?, _ proposals: UnsafePointer<srcnn_array>?,
    _ weights: UnsafePointer<srcnn_array>?, _ targets: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let r = try ArrayArgument(referenceBoxes, "reference_boxes"), p = try ArrayArgument(proposals, "proposals")
        let t = try ArrayArgument(targets, "targets")
        let dtype = try requireBoxes(r)
        try requireRowBoxes(p, matching: r)
        try requireOutput(t, dtype: dtype, shape: r.shape)
        func run<T: KernelFloat>(_: T.Type) throws {
            BoxCoding.encode(
                reference: r.pointer(T.self), proposals: p.pointer(T.self), count: r[0],
                weights: try boxCoderWeights(weights, T.self), into: t.pointer(T.self))
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}

@_cdecl("srcnn_box_decode")
public func srcnn_box_decode(
    _ relCodes: UnsafePointer<srcnn_array>?, _ boxes: UnsafePointer<srcnn_array>?,
    _ weights: UnsafePointer<srcnn_array>?,
    _ bboxXformClip: Double, _ predBoxes: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let c = try ArrayArgument(relCodes, "rel_codes"), b = try ArrayArgument(boxes, "boxes")
        let o = try ArrayArgument(predBoxes, "pred_boxes")
        let (dtype, k) = try requireBoxGroups(c)
        try requireRowBoxes(b, matching: c)
        try require(bboxXformClip.isFinite, "bbox_xform_clip: expected a finite number, got \(bboxXformClip)")
        try requireOutput(o, dtype: dtype, shape: c.shape)
        func run<T: KernelFloat>(_: T.Type) throws {
            BoxCoding.decode(
                codes: c.pointer(T.self), boxes: b.pointer(T.self), count: c[0], groups: k,
                weights: try boxCoderWeights(weights, T.self), xformClip: T(bboxXformClip),
                into: o.pointer(T.self))
        }
        try dispatchFloat(dtype, float32: { try run(Float.self) }, float64: { try run(Double.self) })
    }
}
