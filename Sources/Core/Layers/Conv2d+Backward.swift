import SwiftRCNNOps

/// The backward pass of `Conv2d`: the gradients of the weights, the bias and the input from the gradient of the
/// output.
///
/// Per image and group the forward is Y = W (O/g × K) · cols (K × P) + b, with cols the im2col matrix of the input
/// (K = I/g·kh·kw, P output pixels), so
///
///     dW += dY · colsᵀ,   db += Σ_P dY,   dcols = Wᵀ · dY  and  dX = col2im(dcols),
///
/// col2im (`Im2Col.accumulate`) being the adjoint of im2col. Both products run band by band of output rows, one
/// column buffer of the forward's size (`bandRows`) serving as cols and then as dcols; a 1 × 1 stride-1 unpadded
/// convolution multiplies the planes directly. A convolution that runs by `Winograd` (3 × 3, stride 1, padding 1,
/// `winogradWeights` set) uses it backward too, with 2.25 times fewer multiply-adds: dW by
/// `Winograd.weightGradient`, and dX as the forward pass of a 3 × 3 padding-1 convolution of dY
/// (`inputGradientLayer`).
///
/// Threading: the products (`GEMM`), `Im2Col`, `Winograd` and the bias sums (split over channels) use `Parallel`,
/// each summing every element in one order whatever the thread count, so the gradients do not depend on it.
extension Conv2d {
    /// The convolution whose forward pass is this one's input gradient, or nil unless this one runs by Winograd
    /// (`winogradWeights`: 3 × 3, stride 1, padding 1, dilation 1, one group, Winograd allowed at creation).
    ///
    /// For such a convolution dX(c, y, x) = Σ_{o, ky, kx} W(o, c, ky, kx) · dY(o, y + 1 - ky, x + 1 - kx); with
    /// ky' = 2 - ky this is Σ W'(c, o, ky', kx') · dY(o, y + ky' - 1, x + kx' - 1): a padding-1 convolution of dY by
    /// W'(c, o, ky', kx') = W(o, c, 2 - ky', 2 - kx'), the filters flipped and with in and out channels swapped,
    /// without bias or ReLU. Building it transforms the filters for Winograd (a few ms for 256 × 256 channels), so
    /// a training loop builds it once per weight update and passes it to `backward(…, using:)`.
    public func inputGradientLayer() -> Conv2d? {
        guard winogradWeights != nil else { return nil }
        let (o, c) = (outChannels, inChannels)
        // Tiles of 16 × 16 filters: reads and writes in runs of 16 filters rather than one filter per page.
        let tile = 16
        let flipped = [Float](unsafeUninitializedCapacity: weight.count) { w, count in
            weight.withUnsafeBufferPointer { source in
                Parallel.forEachChunk((o + tile - 1) / tile, minItemsPerChunk: max(1, 256 / max(1, c))) { blocks in
                    for block in blocks {
                        for ic0 in Swift.stride(from: 0, to: c, by: tile) {
                            for oc in block * tile..<min(o, (block + 1) * tile) {
                                for ic in ic0..<min(c, ic0 + tile) {
                                    let from = source.baseAddress! + (oc * c + ic) * 9
                                    let to = w.baseAddress! + (ic * o + oc) * 9
                                    for t in 0..<9 { to[8 - t] = from[t] }
                                }
                            }
                        }
                    }
                }
            }
            count = weight.count
        }
        return Conv2d(
            weight: flipped, bias: nil, inChannels: o, outChannels: c, kernel: (3, 3), padding: 1, winograd: true,
            winogradTile: winogradTile)
    }

    /// Adds dL/dW and dL/db to `weightGradient` and `biasGradient` (when non-nil), and returns dL/dx when
    /// `inputGradient` (else nil), given the layer's input `x` and `dy` = dL/d(convolution output).
    ///
    /// - Parameters:
    ///   - x: the input the forward pass saw (needed for dW; for dX only its shape is read).
    ///   - dy: the gradient of the convolution's output before any fused ReLU: the caller masks it first
    ///     (`reluBackward`). Shape (N, O, Ho, Wo).
    ///   - weightGradient: `weight.count` floats in `weight`'s layout (O, I/g, kh, kw), added to (+=).
    ///   - biasGradient: `outChannels` floats, added to (+=).
    ///   - inputGradient: whether to compute dX, (N, I, H, W).
    ///
    /// The gradients are those of the weights as stored (`weight`), e.g. of a folded batch norm's scaled filters.
    /// A Winograd convolution's dX runs through a gradient layer built for this call; `backward(…, using:)` reuses
    /// one instead.
    public func backward(
        input x: FeatureMap, outputGradient dy: FeatureMap, weightGradient: UnsafeMutablePointer<Float>?,
        biasGradient: UnsafeMutablePointer<Float>?, inputGradient: Bool
    ) -> FeatureMap? {
        backward(
            input: x, outputGradient: dy, weightGradient: weightGradient, biasGradient: biasGradient,
            inputGradient: inputGradient, using: inputGradient ? inputGradientLayer() : nil)
    }

    /// `backward(input:outputGradient:weightGradient:biasGradient:inputGradient:)` with dX computed as
    /// `gradientLayer(dy)` when a gradient layer is given — it must be this layer's current `inputGradientLayer()`
    /// — or by GEMM and col2im when it is nil.
    public func backward(
        input x: FeatureMap, outputGradient dy: FeatureMap, weightGradient: UnsafeMutablePointer<Float>?,
        biasGradient: UnsafeMutablePointer<Float>?, inputGradient: Bool, using gradientLayer: Conv2d?
    ) -> FeatureMap? {
        precondition(x.channels == inChannels, "Conv2d.backward: expected \(inChannels) channels, got \(x.channels)")
        let g = geometry(x)
        precondition(
            dy.shape == [x.batch, outChannels, g.outHeight, g.outWidth],
            "Conv2d.backward: output gradient \(dy.shape) does not match the output")
        if let gradientLayer {
            precondition(
                gradientLayer.inChannels == outChannels && gradientLayer.outChannels == inChannels
                    && gradientLayer.bias == nil && !gradientLayer.relu
                    && winogradWeights != nil
                    && Winograd.applies(
                        kernelH: gradientLayer.kernelH, kernelW: gradientLayer.kernelW,
                        stride: gradientLayer.stride, padding: gradientLayer.padding,
                        dilation: gradientLayer.dilation, groups: gradientLayer.groups),
                "Conv2d.backward: the gradient layer is not this layer's inputGradientLayer()")
        }
        if let biasGradient { addChannelSums(dy, into: biasGradient) }
        var weightGradient = weightGradient
        if let dw = weightGradient, winogradWeights != nil {
            x.data.withUnsafeBufferPointer { xs in
                dy.data.withUnsafeBufferPointer { dys in
                    Winograd.weightGradient(
                        xs.baseAddress!, batch: x.batch, channels: inChannels, height: x.height, width: x.width,
                        outputGradient: dys.baseAddress!, outChannels: outChannels, into: dw)
                }
            }
            weightGradient = nil
        }
        let viaLayer = inputGradient ? gradientLayer : nil
        if inputGradient && viaLayer == nil {
            return FeatureMap(batch: x.batch, channels: inChannels, height: x.height, width: x.width) { dx in
                let p = dx.baseAddress!
                if !multipliesPlanes {
                    Parallel.forEachChunk(dx.count, minItemsPerChunk: 1 << 18) { range in
                        (p + range.lowerBound).update(repeating: 0, count: range.count)
                    }
                }
                products(x, dy, geometry: g, weightGradient: weightGradient, inputGradient: p)
            }
        }
        if weightGradient != nil {
            products(x, dy, geometry: g, weightGradient: weightGradient, inputGradient: nil)
        }
        return viaLayer.map { $0(dy) }
    }

    /// dW += dY · colsᵀ when `weightGradient` is non-nil, and dX = col2im(Wᵀ · dY) into `inputGradient` when that
    /// is non-nil: overwritten for `multipliesPlanes` convolutions, else added to (the caller zeroes it).
    func products(
        _ x: FeatureMap, _ dy: FeatureMap, geometry g: Im2Col.Geometry, weightGradient: UnsafeMutablePointer<Float>?,
        inputGradient dx: UnsafeMutablePointer<Float>?
    ) {
        let (ho, wo) = (g.outHeight, g.outWidth)
        let plane = ho * wo
        let inPerGroup = inChannels / groups, outPerGroup = outChannels / groups
        let k = inPerGroup * kernelH * kernelW
        let direct = multipliesPlanes
        let bandRows = Conv2d.bandRows(depth: k, outHeight: ho, outWidth: wo)
        let columnsBuffer = direct ? nil : BufferCache.take(Float.self, count: k * bandRows * wo)
        defer { if let columnsBuffer { BufferCache.give(columnsBuffer) } }
        let columns = columnsBuffer?.pointer
        x.data.withUnsafeBufferPointer { xs in
            dy.data.withUnsafeBufferPointer { dys in
                weight.withUnsafeBufferPointer { ws in
                    for n in 0..<x.batch {
                        for grp in 0..<groups {
                            let inputOffset = (n * inChannels + grp * inPerGroup) * x.plane
                            let input = xs.baseAddress! + inputOffset
                            let gradient = dys.baseAddress! + (n * outChannels + grp * outPerGroup) * plane
                            let w = ws.baseAddress! + grp * outPerGroup * k
                            let dw = weightGradient.map { $0 + grp * outPerGroup * k }
                            if direct {
                                // dW (O/g × I/g) += dY (O/g × P) · Xᵀ;  dX (I/g × P) = Wᵀ · dY.
                                if let dw {
                                    GEMM.multiply(
                                        m: outPerGroup, n: k, k: plane, a: gradient, lda: plane, b: input,
                                        ldb: plane, transposeB: true, c: dw, ldc: k, accumulate: true)
                                }
                                if let dx {
                                    GEMM.multiply(
                                        m: k, n: plane, k: outPerGroup, a: w, lda: k, transposeA: true,
                                        b: gradient, ldb: plane, c: dx + inputOffset, ldc: plane)
                                }
                                continue
                            }
                            var oy = 0
                            while oy < ho {
                                let end = min(ho, oy + bandRows)
                                let width = (end - oy) * wo
                                let band = gradient + oy * wo
                                if let dw {
                                    Im2Col.fill(input, channels: inPerGroup, geometry: g, rows: oy, end, into: columns!)
                                    GEMM.multiply(
                                        m: outPerGroup, n: k, k: width, a: band, lda: plane, b: columns!,
                                        ldb: width, transposeB: true, c: dw, ldc: k, accumulate: true)
                                }
                                if let dx {
                                    GEMM.multiply(
                                        m: k, n: width, k: outPerGroup, a: w, lda: k, transposeA: true, b: band,
                                        ldb: plane, c: columns!, ldc: width)
                                    Im2Col.accumulate(
                                        columns!, channels: inPerGroup, geometry: g, rows: oy, end,
                                        into: dx + inputOffset)
                                }
                                oy = end
                            }
                        }
                    }
                }
            }
        }
    }
}

/// gradient[c] += Σ over images and pixels of map(n, c, ·): a bias gradient. Channels are split over `Parallel`
/// threads; each channel is summed in one order (`sum`), so the result does not depend on the thread count.
func addChannelSums(_ map: FeatureMap, into gradient: UnsafeMutablePointer<Float>) {
    let plane = map.plane
    map.data.withUnsafeBufferPointer { m in
        Parallel.forEachChunk(map.channels, minItemsPerChunk: max(1, 65536 / max(1, map.batch * plane))) { range in
            for c in range {
                var total = 0.0
                for n in 0..<map.batch { total += sum(m.baseAddress! + (n * map.channels + c) * plane, count: plane) }
                gradient[c] += Float(total)
            }
        }
    }
}

/// Σ p[0 ..< count]: in float32 vectors over blocks of `sumBlock` elements (a few ulps each), the blocks added in
/// Double, so that sums over whole feature maps keep float32 precision.
func sum(_ p: UnsafePointer<Float>, count: Int) -> Double {
    var total = 0.0
    var i = 0
    while i < count {
        let end = min(count, i + sumBlock)
        var lanes = SIMD16<Float>()
        while i + 16 <= end {
            lanes += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var tail: Float = 0
        while i < end {
            tail += p[i]
            i += 1
        }
        total += Double(lanes.sum()) + Double(tail)
    }
    return total
}

/// Elements per float32 block of `sum`: 64 per lane.
let sumBlock = 1024
