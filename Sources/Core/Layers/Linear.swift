import SwiftRCNNOps

/// A fully connected layer (torch.nn.Linear), y = x·Wᵀ + b, with an optional fused ReLU. Weights are (out, in);
/// `x` is (rows, in) row-major. One `GEMM` call with B transposed: no copy of the weights.
public struct Linear: Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let relu: Bool
    public let weight: [Float]
    public let bias: [Float]?

    public init(weight: [Float], bias: [Float]?, inFeatures: Int, outFeatures: Int, relu: Bool = false) {
        precondition(weight.count == inFeatures * outFeatures, "Linear: weight does not match its shape")
        precondition(bias == nil || bias!.count == outFeatures, "Linear: bias does not match out features")
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.relu = relu
        self.weight = weight
        self.bias = bias
    }

    /// `x` (rows × in) -> (rows × out).
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inFeatures, "Linear: input does not have \(inFeatures) features per row")
        return [Float](unsafeUninitializedCapacity: rows * outFeatures) { out, count in
            let o = out.baseAddress!
            for r in 0..<rows {
                if let bias { (o + r * outFeatures).initialize(from: bias, count: outFeatures) }
                else { (o + r * outFeatures).initialize(repeating: 0, count: outFeatures) }
            }
            x.withUnsafeBufferPointer { xs in
                weight.withUnsafeBufferPointer { ws in
                    GEMM.multiply(m: rows, n: outFeatures, k: inFeatures, a: xs.baseAddress!, lda: inFeatures,
                                  b: ws.baseAddress!, ldb: inFeatures, transposeB: true, c: o, ldc: outFeatures,
                                  accumulate: true)
                }
            }
            if relu { applyReLU(o, count: rows * outFeatures) }
            count = rows * outFeatures
        }
    }
}

/// A transposed convolution with kernel 2 and stride 2 (torch.nn.ConvTranspose2d(C, O, 2, 2), Mask R-CNN's
/// upsampling), with an optional fused ReLU. Weights are (C, O, 2, 2). Each input pixel feeds its own 2 × 2 output
/// block, so the layer is one product `Wᵀ (4O × C) · x (C × HW)` followed by a scatter into the blocks.
public struct ConvTranspose2x2: Sendable {
    public let inChannels: Int, outChannels: Int
    public let relu: Bool
    public let weight: [Float]
    public let bias: [Float]?

    public init(weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, relu: Bool = false) {
        precondition(weight.count == inChannels * outChannels * 4, "ConvTranspose2x2: weight does not match")
        precondition(bias == nil || bias!.count == outChannels, "ConvTranspose2x2: bias does not match")
        self.inChannels = inChannels; self.outChannels = outChannels
        self.relu = relu
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        precondition(x.channels == inChannels, "ConvTranspose2x2: expected \(inChannels) channels")
        let (h, w) = (x.height, x.width)
        let rows = outChannels * 4
        let products = UnsafeMutablePointer<Float>.allocate(capacity: rows * h * w)
        defer { products.deallocate() }
        return FeatureMap(batch: x.batch, channels: outChannels, height: 2 * h, width: 2 * w) { out in
            let o = out.baseAddress!
            for n in 0..<x.batch {
                x.data.withUnsafeBufferPointer { xs in
                    weight.withUnsafeBufferPointer { ws in
                        // products(r = (o, i, j), p) = Σ_c W[c, r] · x[c, p]
                        GEMM.multiply(m: rows, n: h * w, k: inChannels, a: ws.baseAddress!, lda: rows,
                                      transposeA: true, b: xs.baseAddress! + n * inChannels * h * w, ldb: h * w,
                                      c: products, ldc: h * w)
                    }
                }
                Parallel.forEachChunk(outChannels, minItemsPerChunk: 4) { channels in
                    for c in channels {
                        let dst = o + (n * outChannels + c) * 4 * h * w
                        let b = bias?[c] ?? 0
                        for i in 0..<2 {
                            for j in 0..<2 {
                                let src = products + ((c * 2 + i) * 2 + j) * h * w
                                for y in 0..<h {
                                    let row = dst + (2 * y + i) * 2 * w + j
                                    for xi in 0..<w {
                                        var v = src[y * w + xi] + b
                                        if relu && v < 0 { v = 0 }
                                        row[2 * xi] = v
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
