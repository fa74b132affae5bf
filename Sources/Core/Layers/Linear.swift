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
    public func callAsFunction(_ x: some ContiguousFloats, rows: Int) -> [Float] {
        precondition(x.count == rows * inFeatures, "Linear: input does not have \(inFeatures) features per row")
        return [Float](unsafeUninitializedCapacity: rows * outFeatures) { out, count in
            let o = out.baseAddress!
            for r in 0..<rows {
                if let bias {
                    (o + r * outFeatures).initialize(from: bias, count: outFeatures)
                } else {
                    (o + r * outFeatures).initialize(repeating: 0, count: outFeatures)
                }
            }
            x.withUnsafeBufferPointer { xs in
                weight.withUnsafeBufferPointer { ws in
                    GEMM.multiply(
                        m: rows, n: outFeatures, k: inFeatures, a: xs.baseAddress!, lda: inFeatures,
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
/// block, so the layer is a product `Wᵀ (4O × C) · x (C × pixels)` followed by a scatter into the blocks. Small maps
/// (Mask R-CNN's 14 × 14, one per detection) are staged side by side, several images per product, so each product is
/// wide enough for the GEMM to run at full speed; `stagedElements` bounds the product buffer.
public struct ConvTranspose2x2: Sendable {
    public let inChannels: Int, outChannels: Int
    public let relu: Bool
    public let weight: [Float]
    public let bias: [Float]?
    /// The bias of each product row (o, i, j): bias[o] (zeros without a bias).
    let rowBias: [Float]

    /// Most elements of the product buffer of one chunk of images (16 MiB of floats).
    public static let stagedElements = 1 << 22

    public init(weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, relu: Bool = false) {
        precondition(weight.count == inChannels * outChannels * 4, "ConvTranspose2x2: weight does not match")
        precondition(bias == nil || bias!.count == outChannels, "ConvTranspose2x2: bias does not match")
        self.inChannels = inChannels; self.outChannels = outChannels
        self.relu = relu
        self.weight = weight
        self.bias = bias
        rowBias = (0..<outChannels * 4).map { bias?[$0 / 4] ?? 0 }
    }

    /// The layer on `x`; `stagedElements` bounds the products of one chunk of images (at least one image).
    public func callAsFunction(_ x: FeatureMap, stagedElements: Int = ConvTranspose2x2.stagedElements) -> FeatureMap {
        precondition(x.channels == inChannels, "ConvTranspose2x2: expected \(inChannels) channels")
        let (h, w, plane) = (x.height, x.width, x.plane)
        return FeatureMap(batch: x.batch, channels: outChannels, height: 2 * h, width: 2 * w) { out in
            let o = out.baseAddress!
            forEachProductChunk(x, stagedElements: stagedElements) { first, images, products, n in
                // Output row 2y + i of channel c interleaves the (i, 0) and (i, 1) products of input row y, 16
                // input columns at a time. Rows go in order, so a whole-vector store of a row's last columns may
                // spill into the following rows (written next); near the plane's end, single elements.
                Parallel.forEachChunk(outChannels * images, minItemsPerChunk: 4) { range in
                    for item in range {
                        let (c, image) = (item / images, item % images)
                        let dst = o + ((first + image) * outChannels + c) * 4 * plane
                        for y in 0..<h {
                            for i in 0..<2 {
                                let even = products + (c * 4 + 2 * i) * n + image * plane + y * w, odd = even + n
                                let start = (2 * y + i) * 2 * w, row = dst + start
                                var xi = 0
                                while xi < w && start + 2 * xi + 32 <= 4 * plane {
                                    let v = SIMD32<Float>(
                                        interleaving: UnsafeRawPointer(even + xi).loadUnaligned(as: SIMD16<Float>.self),
                                        UnsafeRawPointer(odd + xi).loadUnaligned(as: SIMD16<Float>.self))
                                    UnsafeMutableRawPointer(row + 2 * xi).storeBytes(of: v, as: SIMD32<Float>.self)
                                    xi += 16
                                }
                                while xi < w {
                                    row[2 * xi] = even[xi]
                                    row[2 * xi + 1] = odd[xi]
                                    xi += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The layer's products, chunk by chunk of images: `body(first, images, products, n)` for images
    /// `first ..< first + images` (n = images · plane columns), with products(r = (o, i, j), image · plane + p) =
    /// relu?(Σ_c W[c, r] · x(first + image, c, p) + bias[o]) at `products + r · n + image · plane + p` (16 spare
    /// elements after the last row). Output (o, 2y + i, 2x + j) of an image is its product ((o, i, j), y · w + x).
    /// `stagedElements` bounds the products of one chunk (at least one image).
    func forEachProductChunk(
        _ x: FeatureMap, stagedElements: Int = ConvTranspose2x2.stagedElements,
        _ body: (_ first: Int, _ images: Int, _ products: UnsafeMutablePointer<Float>, _ n: Int) -> Void
    ) {
        precondition(x.channels == inChannels, "ConvTranspose2x2: expected \(inChannels) channels")
        let plane = x.plane
        let rows = outChannels * 4
        let chunk = max(1, min(x.batch, stagedElements / max(1, rows * plane)))
        let stagedBuffer = BufferCache.take(Float.self, count: inChannels * chunk * plane)
        // 16 spare elements: the last row's vector loads may read past the last product.
        let productsBuffer = BufferCache.take(Float.self, count: rows * chunk * plane + 16)
        defer { BufferCache.give(stagedBuffer); BufferCache.give(productsBuffer) }
        let (staged, products) = (stagedBuffer.pointer, productsBuffer.pointer)
        var first = 0
        while first < x.batch {
            let images = min(chunk, x.batch - first), n = images * plane
            stage(x, first: first, images: images, into: staged)
            weight.withUnsafeBufferPointer { ws in
                rowBias.withUnsafeBufferPointer { bs in
                    // products(r = (o, i, j), column) = relu?(Σ_c W[c, r] · staged[c, column] + bias[o])
                    GEMM.multiply(
                        m: rows, n: n, k: inChannels, a: ws.baseAddress!, lda: rows, transposeA: true,
                        b: staged, ldb: n, c: products, ldc: n,
                        epilogue: GEMMEpilogue(bias: bs.baseAddress, relu: relu))
                }
            }
            body(first, images, products, n)
            first += images
        }
    }

    /// staged (c, image · plane + p) = x(first + image, c, p) for `images` images: the forward's staging.
    func stage(_ x: FeatureMap, first: Int, images: Int, into staged: UnsafeMutablePointer<Float>) {
        let plane = x.plane, n = images * plane
        x.data.withUnsafeBufferPointer { xs in
            Parallel.forEachChunk(inChannels, minItemsPerChunk: 16) { channels in
                for c in channels {
                    for i in 0..<images {
                        (staged + c * n + i * plane).update(
                            from: xs.baseAddress! + ((first + i) * inChannels + c) * plane, count: plane)
                    }
                }
            }
        }
    }
}
