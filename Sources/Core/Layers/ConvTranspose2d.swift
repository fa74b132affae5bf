import SwiftRCNNOps

/// A transposed 2-D convolution (torch.nn.ConvTranspose2d: one group, no dilation or output padding) on float32
/// NCHW maps, e.g. the keypoint predictor's 4 × 4, stride 2, padding 1 upsampling: the adjoint of the convolution
/// with the same kernel, stride and padding from the output's size to the input's. Per image, the columns
/// Wᵀ (O·k·k × I) · X (I × H·W) are scattered into the output with `Im2Col.accumulate` (col2im), then the bias is added.
/// Output size (H - 1)·stride - 2·padding + k.
public struct ConvTranspose2d: Sendable {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    /// (in, out, k, k), torch's layout.
    public let weight: [Float]
    public let bias: [Float]?

    public init(
        weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    ) {
        precondition(weight.count == inChannels * outChannels * kernel * kernel, "ConvTranspose2d: weight shape")
        precondition(bias == nil || bias!.count == outChannels, "ConvTranspose2d: bias shape")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.weight = weight
        self.bias = bias
    }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h - 1) * stride - 2 * padding + kernel, (w - 1) * stride - 2 * padding + kernel)
    }

    public func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        precondition(x.channels == inChannels, "ConvTranspose2d: expected \(inChannels) channels, got \(x.channels)")
        let (ho, wo) = outputSize(x.height, x.width)
        precondition(ho >= 1 && wo >= 1, "ConvTranspose2d: empty output")
        let plane = x.plane, rows = outChannels * kernel * kernel
        // The convolution this is the adjoint of: from the output (ho, wo) to the input's (h, w).
        let g = Im2Col.Geometry(
            height: ho, width: wo, kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
            padH: padding, padW: padding, dilationH: 1, dilationW: 1)
        precondition(g.outHeight == x.height && g.outWidth == x.width, "ConvTranspose2d: geometry")
        let columnsBuffer = BufferCache.take(Float.self, count: rows * plane)
        defer { BufferCache.give(columnsBuffer) }
        let columns = columnsBuffer.pointer
        var out = FeatureMap(batch: x.batch, channels: outChannels, height: ho, width: wo) { o in
            o.update(repeating: 0)
        }
        x.data.withUnsafeBufferPointer { xs in
            weight.withUnsafeBufferPointer { ws in
                out.data.withUnsafeMutableBufferPointer { os in
                    for n in 0..<x.batch {
                        GEMM.multiply(
                            m: rows, n: plane, k: inChannels, a: ws.baseAddress!, lda: rows, transposeA: true,
                            b: xs.baseAddress! + n * inChannels * plane, ldb: plane, c: columns, ldc: plane)
                        Im2Col.accumulate(
                            columns, channels: outChannels, geometry: g, rows: 0, x.height,
                            into: os.baseAddress! + n * outChannels * ho * wo)
                    }
                    if let bias {
                        let planeOut = ho * wo
                        Parallel.forEachChunk(x.batch * outChannels, minItemsPerChunk: 16) { range in
                            for q in range {
                                let b = bias[q % outChannels], p = os.baseAddress! + q * planeOut
                                for i in 0..<planeOut { p[i] += b }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
