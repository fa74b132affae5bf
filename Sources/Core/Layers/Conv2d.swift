import SwiftRCNNOps

/// A 2-D convolution (torch.nn.Conv2d) with an optional fused ReLU, on float32 NCHW maps.
///
/// Weights are (O, I/groups, kh, kw). Each image and group is a matrix product `W (O/g × K) · columns (K × P)` with
/// K = I/g·kh·kw: a 1×1 stride-1 unpadded convolution multiplies the input planes directly; otherwise the columns
/// come from `Im2Col` in bands of output rows sized so a band stays in cache (`bandElements`). Bias, residual and
/// ReLU are applied by the GEMM's epilogue as each output tile is finished. 3 × 3 stride-1 convolutions (padding 1,
/// one group, no residual) run by `Winograd` instead, on filters transformed once at creation.
/// Threading: `GEMM`, `Im2Col` and `Winograd` use `Parallel` internally.
public struct Conv2d: Sendable {
    public let inChannels: Int, outChannels: Int
    public let kernelH: Int, kernelW: Int
    public let stride: Int, padding: Int, dilation: Int, groups: Int
    public let relu: Bool
    public private(set) var weight: [Float]
    public private(set) var bias: [Float]?
    /// The filters transformed for `Winograd.convolve` (`Winograd.weightCount` elements) when the convolution is
    /// 3 × 3 with stride 1 and padding 1 and `winograd` was allowed at creation; such convolutions (without a
    /// residual) run there.
    public let winogradWeights: [Float]?
    /// The instruction-set path whose GEMM layout `winogradWeights` are packed in (the current one at creation).
    public let winogradPath: ISA
    /// The Winograd output tile `winogradWeights` are transformed for: 2 (F(2×2, 3×3)) or 4 (F(4×4, 3×3)); the
    /// initializer's `winogradTile`, else `Winograd.defaultTile` at creation. Layers derived from this one (batch
    /// norm folded, ReLU, the input-gradient layer) keep it.
    public let winogradTile: Int

    /// Target elements of one im2col band (16 MiB of floats): bounds the column buffer on 800 × 1333 inputs.
    static let bandElements = 1 << 22
    /// Fewest output columns a band holds (unless the map is smaller): narrower products than this lose GEMM
    /// throughput to packing and thread start-up, e.g. one-row bands of 272 columns for 3 × 3 × 256 convolutions.
    static let bandMinimumColumns = 2048

    public init(
        weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, kernel: (Int, Int),
        stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, relu: Bool = false,
        winograd: Bool = true, winogradTile: Int? = nil
    ) {
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0, "Conv2d: bad groups")
        precondition(
            weight.count == outChannels * (inChannels / groups) * kernel.0 * kernel.1,
            "Conv2d: weight does not match its shape")
        precondition(bias == nil || bias!.count == outChannels, "Conv2d: bias does not match out channels")
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelH = kernel.0; self.kernelW = kernel.1
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        self.relu = relu
        self.weight = weight
        self.bias = bias
        let path = ISA.current, tile = winogradTile ?? Winograd.defaultTile
        precondition(tile == 2 || tile == 4, "Conv2d: winogradTile must be 2 or 4")
        winogradPath = path
        self.winogradTile = tile
        if winograd
            && Winograd.applies(
                kernelH: kernel.0, kernelW: kernel.1, stride: stride, padding: padding,
                dilation: dilation, groups: groups)
        {
            let count = Winograd.weightCount(outChannels: outChannels, inChannels: inChannels, tile: tile, for: path)
            winogradWeights = [Float](unsafeUninitializedCapacity: count) { u, n in
                weight.withUnsafeBufferPointer {
                    Winograd.transformWeights(
                        $0.baseAddress!, outChannels: outChannels, inChannels: inChannels,
                        into: u.baseAddress!, tile: tile, for: path)
                }
                n = u.count
            }
        } else {
            winogradWeights = nil
        }
    }

    /// A frozen batch norm's per-channel scale γ · rsqrt(var + eps), as `foldingBatchNorm` multiplies the weights
    /// by it (the trainer scales gradients back with the same values).
    static func batchNormScale(gamma: [Float], variance: [Float], eps: Float) -> [Float] {
        zip(gamma, variance).map { $0 * (1 / ($1 + eps).squareRoot()) }
    }

    /// Folds a frozen batch norm that follows this convolution into its weights and bias:
    /// y = (conv(x) - mean) · γ / sqrt(var + eps) + β = conv'(x) + β', with conv' scaled per output channel.
    /// `winograd` says whether the folded convolution may run by Winograd (default: as this one).
    public func foldingBatchNorm(
        gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Float,
        winograd: Bool? = nil
    ) -> Conv2d {
        var w = weight
        var b = bias ?? [Float](repeating: 0, count: outChannels)
        let perOut = w.count / outChannels
        let scales = Conv2d.batchNormScale(gamma: gamma, variance: variance, eps: eps)
        for o in 0..<outChannels {
            // torchvision's FrozenBatchNorm2d: scale = γ · rsqrt(var + eps), shift = β - mean · scale.
            let scale = scales[o]
            for i in 0..<perOut { w[o * perOut + i] *= scale }
            b[o] = beta[o] + (b[o] - mean[o]) * scale
        }
        return Conv2d(
            weight: w, bias: b, inChannels: inChannels, outChannels: outChannels,
            kernel: (kernelH, kernelW), stride: stride, padding: padding, dilation: dilation,
            groups: groups, relu: relu, winograd: winograd ?? (winogradWeights != nil), winogradTile: winogradTile)
    }

    /// The same convolution with ReLU fused or not.
    public func withReLU(_ on: Bool) -> Conv2d {
        Conv2d(
            weight: weight, bias: bias, inChannels: inChannels, outChannels: outChannels,
            kernel: (kernelH, kernelW), stride: stride, padding: padding, dilation: dilation, groups: groups,
            relu: on, winograd: winogradWeights != nil, winogradTile: winogradTile)
    }

    /// Whether the im2col matrix is the input planes themselves (1 × 1, stride 1, no padding), so products read the
    /// planes directly.
    var multipliesPlanes: Bool { kernelH == 1 && kernelW == 1 && stride == 1 && padding == 0 }

    /// Output rows of one im2col band for a product of depth `k` (= I/g·kh·kw): `bandElements` of columns, but at
    /// least `bandMinimumColumns` wide.
    static func bandRows(depth k: Int, outHeight ho: Int, outWidth wo: Int) -> Int {
        max(1, min(ho, max(bandElements / max(1, k * wo), (bandMinimumColumns + wo - 1) / max(1, wo))))
    }

    func geometry(_ x: FeatureMap) -> Im2Col.Geometry {
        Im2Col.Geometry(
            height: x.height, width: x.width, kernelH: kernelH, kernelW: kernelW, strideH: stride,
            strideW: stride, padH: padding, padW: padding, dilationH: dilation, dilationW: dilation)
    }

    public func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        run(x, residual: nil)
    }

    /// relu?(conv(x) + residual): a ResNet block's last convolution, its residual add and ReLU in one output pass
    /// (the products accumulate onto residual + bias). `residual` has the output's shape.
    public func callAsFunction(_ x: FeatureMap, adding residual: FeatureMap) -> FeatureMap {
        run(x, residual: residual)
    }

    /// Output planes smaller than this, in batches of several images, run by `runSmallMaps`.
    static let smallPlane = 256

    func run(_ x: FeatureMap, residual: FeatureMap?) -> FeatureMap {
        precondition(x.channels == inChannels, "Conv2d: expected \(inChannels) channels, got \(x.channels)")
        let g0 = geometry(x)
        // 3 × 3 stride-1 convolutions keep Winograd (fewer multiplications, even with padded tiles on 7 × 7 maps).
        if groups == 1 && x.batch > 1 && g0.outHeight * g0.outWidth < Conv2d.smallPlane
            && (winogradWeights == nil || residual != nil)
        {
            return runSmallMaps(x, residual: residual)
        }
        if residual == nil, let winogradWeights {
            return FeatureMap(batch: x.batch, channels: outChannels, height: x.height, width: x.width) { out in
                x.data.withUnsafeBufferPointer { xs in
                    winogradWeights.withUnsafeBufferPointer { u in
                        withOptionalPointer(bias) { b in
                            Winograd.convolve(
                                xs.baseAddress!, batch: x.batch, channels: inChannels, height: x.height,
                                width: x.width, weights: u.baseAddress!, packedFor: winogradPath,
                                outChannels: outChannels,
                                bias: b, relu: relu, tile: winogradTile, into: out.baseAddress!)
                        }
                    }
                }
            }
        }
        let g = geometry(x)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let inPerGroup = inChannels / groups, outPerGroup = outChannels / groups
        let k = inPerGroup * kernelH * kernelW
        let direct = multipliesPlanes
        let bandRows = Conv2d.bandRows(depth: k, outHeight: ho, outWidth: wo)
        let columnsBuffer = direct ? nil : BufferCache.take(Float.self, count: k * bandRows * wo)
        defer { if let columnsBuffer { BufferCache.give(columnsBuffer) } }
        let columns = columnsBuffer?.pointer
        let out = FeatureMap(batch: x.batch, channels: outChannels, height: ho, width: wo) { out in
            let o = out.baseAddress!
            let plane = ho * wo
            if let residual {
                precondition(
                    residual.shape == [x.batch, outChannels, ho, wo],
                    "Conv2d: residual \(residual.shape) does not match the output")
            }
            // Each product is written once, with bias, residual and ReLU applied as its tiles finish.
            withOptionalPointer(bias) { biasPointer in
                withOptionalPointer(residual?.data) { residualPointer in
                    x.data.withUnsafeBufferPointer { xs in
                        weight.withUnsafeBufferPointer { ws in
                            for n in 0..<x.batch {
                                for grp in 0..<groups {
                                    let input = xs.baseAddress! + (n * inChannels + grp * inPerGroup) * x.plane
                                    let w = ws.baseAddress! + grp * outPerGroup * k
                                    let first = (n * outChannels + grp * outPerGroup) * plane
                                    let c = o + first
                                    var epilogue = GEMMEpilogue<Float>(
                                        bias: biasPointer.map { $0 + grp * outPerGroup },
                                        addend: residualPointer.map { $0 + first }, relu: relu)
                                    if direct {
                                        GEMM.multiply(
                                            m: outPerGroup, n: plane, k: k, a: w, lda: k, b: input,
                                            ldb: plane, c: c, ldc: plane, epilogue: epilogue)
                                        continue
                                    }
                                    var oy = 0
                                    while oy < ho {
                                        let end = min(ho, oy + bandRows)
                                        Im2Col.fill(
                                            input, channels: inPerGroup, geometry: g, rows: oy, end,
                                            into: columns!)
                                        let width = (end - oy) * wo
                                        epilogue.addend = residualPointer.map { $0 + first + oy * wo }
                                        GEMM.multiply(
                                            m: outPerGroup, n: width, k: k, a: w, lda: k, b: columns!,
                                            ldb: width, c: c + oy * wo, ldc: plane, epilogue: epilogue)
                                        oy = end
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension Conv2d {
    /// The convolution of a batch of small maps (RoI features: e.g. ResNet's layer4 on 14 × 14 regions, the mask
    /// head on 14 × 14, FastRCNNConvFCHead on 7 × 7): one image's receptive fields give only H·W columns, too few for
    /// the GEMM to run at speed (and Winograd tiles would mostly pad), so the columns of several images stand side by
    /// side in one K × (images·H·W) product, whose rows are then scattered to each image with residual and ReLU.
    /// Same values as the per-image path up to summation order.
    func runSmallMaps(_ x: FeatureMap, residual: FeatureMap?) -> FeatureMap {
        let g = geometry(x)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let plane = ho * wo, k = inChannels * kernelH * kernelW
        let chunk = max(1, min(x.batch, Conv2d.bandElements / max(1, k * plane)))
        let direct = multipliesPlanes
        let columnsBuffer = BufferCache.take(Float.self, count: k * chunk * plane)
        let productsBuffer = BufferCache.take(Float.self, count: outChannels * chunk * plane)
        let singleBuffer = direct ? nil : BufferCache.take(Float.self, count: k * plane)
        defer {
            BufferCache.give(columnsBuffer)
            BufferCache.give(productsBuffer)
            if let singleBuffer { BufferCache.give(singleBuffer) }
        }
        let (columns, products, single) = (columnsBuffer.pointer, productsBuffer.pointer, singleBuffer?.pointer)
        if let residual {
            precondition(
                residual.shape == [x.batch, outChannels, ho, wo],
                "Conv2d: residual \(residual.shape) does not match the output")
        }
        return FeatureMap(batch: x.batch, channels: outChannels, height: ho, width: wo) { out in
            let o = out.baseAddress!
            let relu = self.relu, outChannels = self.outChannels, inPlane = x.plane
            withOptionalPointer(bias) { biasPointer in
                withOptionalPointer(residual?.data) { residualPointer in
                    x.data.withUnsafeBufferPointer { xs in
                        weight.withUnsafeBufferPointer { ws in
                            var first = 0
                            while first < x.batch {
                                let images = min(chunk, x.batch - first), n = images * plane
                                for i in 0..<images {
                                    let input = xs.baseAddress! + (first + i) * inChannels * inPlane
                                    let source = direct ? input : UnsafePointer(single!)
                                    if let single {
                                        Im2Col.fill(input, channels: inChannels, geometry: g, rows: 0, ho, into: single)
                                    }
                                    Parallel.forEachChunk(k, minItemsPerChunk: max(1, 32768 / plane)) { rows in
                                        for r in rows {
                                            (columns + r * n + i * plane).update(from: source + r * plane, count: plane)
                                        }
                                    }
                                }
                                GEMM.multiply(
                                    m: outChannels, n: n, k: k, a: ws.baseAddress!, lda: k, b: columns, ldb: n,
                                    c: products, ldc: n, epilogue: GEMMEpilogue(bias: biasPointer))
                                // (out channel, image, pixel) -> (image, out channel, pixel), + residual, ReLU.
                                let done = first
                                Parallel.forEachChunk(outChannels, minItemsPerChunk: 8) { channels in
                                    for oc in channels {
                                        for i in 0..<images {
                                            let src = products + oc * n + i * plane
                                            let at = ((done + i) * outChannels + oc) * plane
                                            let dst = o + at
                                            if let residualPointer {
                                                let add = residualPointer + at
                                                for p in 0..<plane {
                                                    let v = src[p] + add[p]
                                                    dst[p] = relu && v < 0 ? 0 : v
                                                }
                                            } else {
                                                for p in 0..<plane { dst[p] = relu && src[p] < 0 ? 0 : src[p] }
                                            }
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
    }
}

/// `body` with the array's base address, or nil for a nil (or empty) array.
func withOptionalPointer<A: ContiguousFloats, R>(_ array: A?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// In-place max(x, 0) (NaN stays NaN, as torch.relu), split over threads, in the instruction-set path's vectors
/// (`VectorMath.relu`).
func applyReLU(_ p: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEachChunk(count, minItemsPerChunk: 1 << 16) { range in
        VectorMath.relu(p + range.lowerBound, count: range.count)
    }
}
