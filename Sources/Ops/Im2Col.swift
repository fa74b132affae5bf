/// im2col for convolution as a matrix product: the receptive fields of a band of output rows, one per column.
///
/// Layout: `input` is one image's (C, H, W) planes, row-major. The result for output rows `oy0 ..< oy1` is a
/// (C·kh·kw) × ((oy1 - oy0)·Wo) row-major matrix: row (c, ky, kx), column (oy - oy0, ox) holds input
/// (c, oy·stride - pad + ky·dilation, ox·stride - pad + kx·dilation), or 0 outside the image. A convolution is then
/// `weights (O × C·kh·kw) · columns`, and banding the output rows bounds the buffer for large images.
///
/// Threading: rows of the result are split over `Parallel` threads; each writes its own rows, in the current
/// instruction-set path's kernel (`KernelTable.im2colRows`).
public enum Im2Col {
    /// Geometry of a 2-D convolution over an (H, W) plane.
    public struct Geometry: Sendable {
        public let height: Int, width: Int
        public let kernelH: Int, kernelW: Int
        public let strideH: Int, strideW: Int
        public let padH: Int, padW: Int
        public let dilationH: Int, dilationW: Int

        public init(
            height: Int, width: Int, kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padH: Int,
            padW: Int, dilationH: Int, dilationW: Int
        ) {
            self.height = height; self.width = width
            self.kernelH = kernelH; self.kernelW = kernelW
            self.strideH = strideH; self.strideW = strideW
            self.padH = padH; self.padW = padW
            self.dilationH = dilationH; self.dilationW = dilationW
        }

        /// Output height: floor((H + 2·pad - dilation·(k - 1) - 1) / stride) + 1, as torch.
        public var outHeight: Int { (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
        public var outWidth: Int { (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    }

    /// Fills `columns` ((channels·kh·kw) × ((oy1 - oy0)·Wo)) for output rows `oy0 ..< oy1`.
    @inlinable
    public static func fill<T: KernelFloat>(
        _ input: UnsafePointer<T>, channels: Int, geometry g: Geometry, rows oy0: Int, _ oy1: Int,
        into columns: UnsafeMutablePointer<T>
    ) {
        let wo = g.outWidth
        let bandWidth = (oy1 - oy0) * wo
        let kernels = T.kernels
        Parallel.forEachChunk(channels * g.kernelH * g.kernelW, minItemsPerChunk: max(1, 32768 / max(1, bandWidth))) {
            rows in
            kernels.im2colRows(
                input, g.height, g.width, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW,
                g.dilationH, g.dilationW, wo, oy0, oy1, rows.lowerBound, rows.upperBound, columns)
        }
    }
}

extension Im2Col {
    /// col2im, the adjoint of `fill` for the same band: adds each entry of `columns` ((channels·kh·kw) ×
    /// ((oy1 - oy0)·Wo), `fill`'s layout) to the input element `fill` reads it from, so that
    /// `input += columnsᵀ`-scatter; entries `fill` sets to 0 for padding are dropped. With columns = Wᵀ·dy this is a
    /// convolution's input gradient for the band's output rows.
    ///
    /// Threading: channels are split over `Parallel` threads and a channel's plane receives only its own
    /// kh·kw matrix rows, so threads never write the same element. Each element's additions come in one order, row
    /// (ky, kx) by row, then output row and column, whatever the split: the sums do not depend on the thread count.
    @inlinable
    public static func accumulate<T: KernelFloat>(
        _ columns: UnsafePointer<T>, channels: Int, geometry g: Geometry, rows oy0: Int, _ oy1: Int,
        into input: UnsafeMutablePointer<T>
    ) {
        let (h, w, wo) = (g.height, g.width, g.outWidth)
        let bandWidth = (oy1 - oy0) * wo
        let kernelArea = g.kernelH * g.kernelW
        let plane = h * w
        if bandWidth <= 0 || plane == 0 { return }
        Parallel.forEachChunk(channels, minItemsPerChunk: max(1, 32768 / max(1, kernelArea * bandWidth))) { range in
            for c in range {
                let dst = input + c * plane
                for kernelRow in 0..<kernelArea {
                    let ky = kernelRow / g.kernelW, kx = kernelRow % g.kernelW
                    var src = columns + (c * kernelArea + kernelRow) * bandWidth
                    // Output columns ox whose input column ix = ox·stride - pad + kx·dilation lies in [0, W), as
                    // in `fill`.
                    let offset = kx * g.dilationW - g.padW
                    let firstOx = offset >= 0 ? 0 : min(wo, (-offset + g.strideW - 1) / g.strideW)
                    let lastOx = offset >= w ? 0 : min(wo, (w - 1 - offset) / g.strideW + 1)
                    for oy in oy0..<oy1 {
                        let iy = oy * g.strideH - g.padH + ky * g.dilationH
                        if iy >= 0 && iy < h && firstOx < lastOx {
                            let row = dst + iy * w + offset
                            if g.strideW == 1 {
                                for ox in firstOx..<lastOx { row[ox] += src[ox] }
                            } else {
                                for ox in firstOx..<lastOx { row[ox * g.strideW] += src[ox] }
                            }
                        }
                        src += wo
                    }
                }
            }
        }
    }
}
