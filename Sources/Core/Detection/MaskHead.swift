import SwiftRCNNOps

extension RoIHeads {
    /// Mask R-CNN's mask branch on the final detections: each detection gets the (1, 28, 28) sigmoid of its own
    /// class's mask logits (torchvision's `maskrcnn_inference`).
    ///
    /// The detected boxes of all images are pooled together (14 x 14), run through the 3x3 convolutions (several
    /// detections per matrix product, `convolveSmallMaps`) and the transposed convolution as one batch, and each
    /// detection's mask logits are the 1x1 mask_fcn_logits row of its label applied to its (C, 28, 28) map:
    /// bias + Σ_c w[c] · x[c, ·], computed per detection in parallel from the transposed convolution's products
    /// (`ConvTranspose2x2.forEachProductChunk`) without assembling the upsampled maps.
    func addMasks(to detections: inout [Detections], features: [FeatureMap], imageSizes: [(Int, Int)]) {
        let total = detections.reduce(0) { $0 + $1.count }
        guard total > 0, let maskUpsample else {
            for i in detections.indices { detections[i].masks = [] }
            return
        }
        var x = pool(features, boxes: detections.map(\.boxes), imageSizes: imageSizes, with: config.maskPooler)
        for conv in maskConvs {
            x = conv.winogradWeights != nil ? conv(x) : RoIHeads.convolveSmallMaps(conv, x)
        }
        // Each detection's logits of its own class (the 1 × 1 mask_fcn_logits convolution, one output channel per
        // detection) straight from the upsampling's products, chunk by chunk, so the upsampled maps (256 × 28 × 28
        // per detection, 80 MB for 100) are never written. The same sums in the same order as that convolution on
        // the upsampled map: the bias, then + w[c] · value for c = 0, 1, ... (no fused multiply-add).
        let (h, w) = (x.height, x.width)
        let channels = maskUpsample.outChannels, small = h * w, plane = 4 * small
        let labels = detections.flatMap(\.labels)
        let probabilities = [Float](unsafeUninitializedCapacity: total * plane) { out, initialized in
            let o = out.baseAddress!
            maskLogitsWeight.withUnsafeBufferPointer { wb in
                maskUpsample.forEachProductChunk(x) { first, images, products, n in
                    Parallel.forEachChunk(images) { range in
                        let sums = UnsafeMutablePointer<Float>.allocate(capacity: small)
                        defer { sums.deallocate() }
                        for image in range {
                            let d = first + image, label = Int(labels[d])
                            let weights = wb.baseAddress! + label * channels, dst = o + d * plane
                            // Product row (c, i, j) holds output (c, 2y + i, 2x + j) at column y · w + x.
                            for i in 0..<2 {
                                for j in 0..<2 {
                                    sums.initialize(repeating: maskLogitsBias[label], count: small)
                                    for c in 0..<channels {
                                        let wc = weights[c], row = products + (4 * c + 2 * i + j) * n + image * small
                                        for p in 0..<small { sums[p] += wc * row[p] }
                                    }
                                    for y in 0..<h {
                                        let line = dst + (2 * y + i) * 2 * w + j
                                        for xx in 0..<w { line[2 * xx] = sums[y * w + xx] }
                                    }
                                }
                            }
                            for p in 0..<plane { dst[p] = 1 / (1 + Float.exp(-dst[p])) }
                        }
                    }
                }
            }
            initialized = total * plane
        }
        var start = 0
        for i in detections.indices {
            let n = detections[i].count * plane
            detections[i].masks = Array(probabilities[start..<(start + n)])
            start += n
        }
    }
}

extension RoIHeads {
    /// Most elements of the im2col buffer of `convolveSmallMaps` (16 MiB of floats): for the mask head's 14 x 14
    /// maps and 2304-long receptive fields, 9 detections per product.
    public static let smallMapColumnElements = 1 << 22

    /// A 3x3, stride 1, padding 1 convolution of a batch of small maps: the receptive fields of several images side
    /// by side form one (C·9) × (images·H·W) matrix, so each product is wide enough for the GEMM to run at full
    /// speed (one image of 14 x 14 gives only 196 columns). Same values as `conv(x)`, up to summation order.
    /// `columnElements` bounds the im2col buffer (at least one image is done at a time).
    public static func convolveSmallMaps(
        _ conv: Conv2d, _ x: FeatureMap,
        columnElements: Int = smallMapColumnElements
    ) -> FeatureMap {
        precondition(
            conv.kernelH == 3 && conv.kernelW == 3 && conv.stride == 1 && conv.padding == 1
                && conv.dilation == 1 && conv.groups == 1 && conv.inChannels == x.channels,
            "convolveSmallMaps: expects a 3x3, stride 1, padding 1 convolution of the input's channels")
        let (h, w, plane) = (x.height, x.width, x.plane)
        let k = x.channels * 9, outChannels = conv.outChannels
        let chunk = max(1, min(x.batch, columnElements / max(1, k * plane)))
        let columnsBuffer = BufferCache.take(Float.self, count: k * chunk * plane)
        let productsBuffer = BufferCache.take(Float.self, count: outChannels * chunk * plane)
        defer { BufferCache.give(columnsBuffer); BufferCache.give(productsBuffer) }
        let (columns, products) = (columnsBuffer.pointer, productsBuffer.pointer)
        return FeatureMap(batch: x.batch, channels: outChannels, height: h, width: w) { out in
            let o = out.baseAddress!
            x.data.withUnsafeBufferPointer { xb in
                conv.weight.withUnsafeBufferPointer { wb in
                    var first = 0
                    while first < x.batch {
                        let images = min(chunk, x.batch - first), n = images * plane
                        // Row (c, ky, kx), column (image, y, x): input (c, y + ky - 1, x + kx - 1), 0 outside.
                        Parallel.forEachChunk(k, minItemsPerChunk: max(1, 32768 / max(1, n))) { rows in
                            for r in rows {
                                let (c, ky, kx) = (r / 9, (r % 9) / 3, r % 3)
                                for i in 0..<images {
                                    let src = xb.baseAddress! + ((first + i) * x.channels + c) * plane
                                    let dst = columns + r * n + i * plane
                                    for y in 0..<h {
                                        let iy = y + ky - 1, row = dst + y * w
                                        guard iy >= 0 && iy < h else {
                                            row.update(repeating: 0, count: w)
                                            continue
                                        }
                                        for xo in 0..<w {
                                            let ix = xo + kx - 1
                                            row[xo] = ix >= 0 && ix < w ? src[iy * w + ix] : 0
                                        }
                                    }
                                }
                            }
                        }
                        for oc in 0..<outChannels {
                            (products + oc * n).update(repeating: conv.bias?[oc] ?? 0, count: n)
                        }
                        GEMM.multiply(
                            m: outChannels, n: n, k: k, a: wb.baseAddress!, lda: k, b: columns, ldb: n,
                            c: products, ldc: n, accumulate: true)
                        // (out channel, image, pixel) -> (image, out channel, pixel), with the fused ReLU.
                        let relu = conv.relu
                        Parallel.forEachChunk(outChannels, minItemsPerChunk: 8) { channels in
                            for oc in channels {
                                for i in 0..<images {
                                    let src = products + oc * n + i * plane
                                    let dst = o + ((first + i) * outChannels + oc) * plane
                                    for p in 0..<plane { dst[p] = relu && src[p] < 0 ? 0 : src[p] }
                                }
                            }
                        }
                        first += images
                    }
                }
            }
        }
    }
}
