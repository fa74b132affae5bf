import CSwiftRCNN
import SwiftRCNNOps

// Checks shared by the RoI exports: the RoI array itself and the pooled output size.

/// Checks `rois` is a (K, 5) array of `dtype` whose rows `[batch_index, x1, y1, x2, y2]` have an integral batch
/// index in `[0, batchSize)` and finite coordinates. Kernels index feature maps with the batch index, so this is
/// what keeps them in bounds.
func validateRoIs(_ rois: ArrayArgument, dtype: DType, batchSize: Int) throws {
    try rois.expect(shape: [nil, 5], "(K, 5) with rows [batch_index, x1, y1, x2, y2]")
    if rois.dtype != dtype {
        throw SwiftRCNNError.invalidType("\(rois.name): expected dtype \(dtype.name) (the dtype of the features), "
                                         + "got \(rois.dtype.name)")
    }
    func check<T: KernelFloat>(_: T.Type) throws {
        let p = rois.pointer(T.self)
        for r in 0..<rois[0] {
            let row = p + 5 * r
            let b = row[0]
            if !(b >= 0 && b < T(batchSize) && b == b.rounded(.towardZero)) {
                throw SwiftRCNNError.invalidValue(
                    "\(rois.name): RoI \(r) has batch index \(b); expected an integer in [0, \(batchSize)) "
                    + "(the batch size of the features)")
            }
            for j in 1..<5 where !row[j].isFinite {
                throw SwiftRCNNError.invalidValue(
                    "\(rois.name): RoI \(r) has a non-finite coordinate \(row[j]) (expected finite x1, y1, x2, y2)")
            }
        }
    }
    try dispatchFloat(dtype, float32: { try check(Float.self) }, float64: { try check(Double.self) })
}

/// Checks a pooled output size: both sides positive, and bins per plane within `maxElements` (so kernels can
/// multiply them even when there is no RoI). `name` is the Python argument that carries it.
func validatePooledSize(_ pooledH: Int64, _ pooledW: Int64, _ name: String) throws {
    try require(pooledH > 0 && pooledW > 0, "\(name): expected positive (height, width), got (\(pooledH), \(pooledW))")
    let (bins, overflow) = pooledH.multipliedReportingOverflow(by: pooledW)
    if overflow || Int(bins) > maxElements {
        throw SwiftRCNNError.tooLarge("\(name): (\(pooledH), \(pooledW)) has too many bins")
    }
}
