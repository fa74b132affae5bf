import SwiftRCNNOps

/// The backward pass of `Linear`, y = x·Wᵀ + b with x (rows × in) and W (out × in):
///
///     dW += dYᵀ · x,   db += Σ_rows dY,   dX = dY · W,
///
/// each product one `GEMM` call on the arrays as they are (transposes absorbed by its packing). Threading: `GEMM`
/// and the bias sums (split over columns, rows added in order) use `Parallel`; neither depends on the thread count.
extension Linear {
    /// Adds dL/dW (`weight`'s layout, (out, in)) to `weightGradient` and dL/db to `biasGradient` when non-nil, and
    /// returns dL/dx (rows × in) when `inputGradient`, given the input `x` (rows × in) and `dy` (rows × out) =
    /// dL/d(layer output) before any fused ReLU (the caller masks it first, `reluBackward`).
    public func backward(
        input x: some ContiguousFloats, rows: Int, outputGradient dy: some ContiguousFloats,
        weightGradient: UnsafeMutablePointer<Float>?,
        biasGradient: UnsafeMutablePointer<Float>?, inputGradient: Bool
    ) -> [Float]? {
        precondition(
            x.count == rows * inFeatures, "Linear.backward: input does not have \(inFeatures) features per row")
        precondition(dy.count == rows * outFeatures, "Linear.backward: output gradient does not match the output")
        let (inputs, outputs) = (inFeatures, outFeatures)
        return dy.withUnsafeBufferPointer { dys in
            let g = dys.baseAddress!
            if let weightGradient {
                x.withUnsafeBufferPointer { xs in
                    GEMM.multiply(
                        m: outputs, n: inputs, k: rows, a: g, lda: outputs, transposeA: true, b: xs.baseAddress!,
                        ldb: inputs, c: weightGradient, ldc: inputs, accumulate: true)
                }
            }
            if let biasGradient {
                Parallel.forEachChunk(outputs, minItemsPerChunk: max(1, 65536 / max(1, rows))) { columns in
                    let sums = UnsafeMutablePointer<Float>.allocate(capacity: columns.count)
                    defer { sums.deallocate() }
                    sums.initialize(repeating: 0, count: columns.count)
                    for r in 0..<rows {
                        let row = g + r * outputs + columns.lowerBound
                        for j in 0..<columns.count { sums[j] += row[j] }
                    }
                    for j in 0..<columns.count { biasGradient[columns.lowerBound + j] += sums[j] }
                }
            }
            guard inputGradient else { return nil }
            return [Float](unsafeUninitializedCapacity: rows * inputs) { dx, count in
                weight.withUnsafeBufferPointer { ws in
                    GEMM.multiply(
                        m: rows, n: inputs, k: outputs, a: g, lda: outputs, b: ws.baseAddress!, ldb: inputs,
                        c: dx.baseAddress!, ldc: inputs)
                }
                count = rows * inputs
            }
        }
    }
}

/// The gradient through a ReLU, in place: g[i] = 0 where the ReLU's output y[i] <= 0, else unchanged — torch's
/// threshold_backward(g, y, 0) as relu's backward calls it, so a NaN output (NaN <= 0 is false) passes its
/// gradient. Split over `Parallel` threads.
public func reluBackward(output y: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEachChunk(count, minItemsPerChunk: 1 << 16) { range in
        for i in range { g[i] = y[i] <= 0 ? 0 : g[i] }
    }
}
