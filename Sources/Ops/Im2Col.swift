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
