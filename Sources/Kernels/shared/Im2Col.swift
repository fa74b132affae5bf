// im2col rows for one thread; the layout is documented on `SwiftRCNNOps.Im2Col`, which splits rows over threads.

extension Kernels {
    /// Rows `r0 ..< r1` (row r = (c, ky, kx)) of the im2col matrix for output rows `oy0 ..< oy1` of one image's
    /// (C, H, W) planes; row r starts at `columns + r · (oy1 - oy0) · wo`.
    @inline(__always)
    static func fillIm2Col<T: KernelScalar>(
        _ input: UnsafePointer<T>, height: Int, width: Int, kernelH: Int, kernelW: Int, strideH: Int,
        strideW: Int, padH: Int, padW: Int, dilationH: Int, dilationW: Int, outWidth wo: Int,
        outputRows oy0: Int, _ oy1: Int, matrixRows r0: Int, _ r1: Int, into columns: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let lanes = V.scalarCount
        let bandWidth = (oy1 - oy0) * wo
        let kernelArea = kernelH * kernelW
        let plane = height * width
        for r in r0..<r1 {
            let c = r / kernelArea, ky = (r % kernelArea) / kernelW, kx = r % kernelW
            let src = input + c * plane
            var dst = columns + r * bandWidth
            // Output columns ox whose input column ix = ox·stride - pad + kx·dilation lies in [0, W).
            let offset = kx * dilationW - padW
            let firstOx = offset >= 0 ? 0 : min(wo, (-offset + strideW - 1) / strideW)
            let lastOx = offset >= width ? 0 : min(wo, (width - 1 - offset) / strideW + 1)
            for oy in oy0..<oy1 {
                let iy = oy * strideH - padH + ky * dilationH
                if iy < 0 || iy >= height || firstOx >= lastOx {
                    dst.update(repeating: 0, count: wo)
                } else {
                    let row = src + iy * width + offset
                    if firstOx > 0 { dst.update(repeating: 0, count: firstOx) }
                    if strideW == 1 {
                        (dst + firstOx).update(from: row + firstOx, count: lastOx - firstOx)
                    } else {
                        var ox = firstOx
                        if strideW == 2 {
                            // `lanes` outputs from the even lanes of a 2·lanes-column load, while the load stays
                            // inside the input row (columns offset + 2·ox ... + 2·lanes - 1 < width).
                            while ox + lanes <= lastOx && offset + 2 * ox + 2 * lanes <= width {
                                let p = row + 2 * ox
                                V.deinterleave(V.load(p), V.load(p + lanes)).even.store(to: dst + ox)
                                ox += lanes
                            }
                        }
                        while ox < lastOx {
                            dst[ox] = row[ox * strideW]
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
