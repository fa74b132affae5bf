/// im2col for convolution as a matrix product: the receptive fields of a band of output rows, one per column.
///
/// Layout: `input` is one image's (C, H, W) planes, row-major. The result for output rows `oy0 ..< oy1` is a
/// (C·kh·kw) × ((oy1 - oy0)·Wo) row-major matrix: row (c, ky, kx), column (oy - oy0, ox) holds input
/// (c, oy·stride - pad + ky·dilation, ox·stride - pad + kx·dilation), or 0 outside the image. A convolution is then
/// `weights (O × C·kh·kw) · columns`, and banding the output rows bounds the buffer for large images.
///
/// Threading: rows of the result are split over `Parallel` threads; each writes its own rows.
public enum Im2Col {
    /// Geometry of a 2-D convolution over an (H, W) plane.
    public struct Geometry: Sendable {
        public let height: Int, width: Int
        public let kernelH: Int, kernelW: Int
        public let strideH: Int, strideW: Int
        public let padH: Int, padW: Int
        public let dilationH: Int, dilationW: Int

        public init(height: Int, width: Int, kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padH: Int,
                    padW: Int, dilationH: Int, dilationW: Int) {
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
        let kernelArea = g.kernelH * g.kernelW
        let plane = g.height * g.width
        Parallel.forEachChunk(channels * kernelArea, minItemsPerChunk: max(1, 32768 / max(1, bandWidth))) { rows in
            for r in rows {
                let c = r / kernelArea, ky = (r % kernelArea) / g.kernelW, kx = r % g.kernelW
                let src = input + c * plane
                var dst = columns + r * bandWidth
                // Output columns ox whose input column ix = ox·stride - pad + kx·dilation lies in [0, W).
                let offset = kx * g.dilationW - g.padW
                let firstOx = offset >= 0 ? 0 : min(wo, (-offset + g.strideW - 1) / g.strideW)
                let lastOx = offset >= g.width ? 0 : min(wo, (g.width - 1 - offset) / g.strideW + 1)
                for oy in oy0..<oy1 {
                    let iy = oy * g.strideH - g.padH + ky * g.dilationH
                    if iy < 0 || iy >= g.height || firstOx >= lastOx {
                        dst.update(repeating: 0, count: wo)
                    } else {
                        let row = src + iy * g.width + offset
                        if firstOx > 0 { dst.update(repeating: 0, count: firstOx) }
                        if g.strideW == 1 {
                            (dst + firstOx).update(from: row + firstOx, count: lastOx - firstOx)
                        } else {
                            var ox = firstOx
                            if g.strideW == 2 {
                                // 16 outputs from the even lanes of a 32-column load, while the load stays
                                // inside the input row (columns offset + 2·ox ... + 31 < width).
                                while ox + 16 <= lastOx && offset + 2 * ox + 32 <= g.width {
                                    let v = UnsafeRawPointer(row + 2 * ox).loadUnaligned(as: SIMD32<T>.self)
                                    UnsafeMutableRawPointer(dst + ox).storeBytes(of: v.evenLanes, as: SIMD16<T>.self)
                                    ox += 16
                                }
                            }
                            while ox < lastOx {
                                dst[ox] = row[ox * g.strideW]
                                ox += 1
                            }
                        }
                        if lastOx < wo { (dst + lastOx).update(repeating: 0, count: wo - lastOx) }
                    }
                    dst += wo
                }
            }
        }
    }
}
