import SwiftRCNNOps

/// The backward pass of `ConvTranspose2x2`, y(n, o, 2i + a, 2j + b) = Σ_c x(n, c, i, j) · W(c, o, a, b) + bias(o).
///
/// With dY regrouped as dR (4O × pixels), dR((o, a, b), (n, i, j)) = dY(n, o, 2i + a, 2j + b) — the forward's
/// product rows before their scatter into 2 × 2 blocks — the forward is R = Wᵀ · X, so
///
///     dW (C × 4O) += X · dRᵀ,   db(o) += Σ dY(·, o, ·, ·),   dX (C × pixels) = W · dR,
///
/// with X the input staged as (C × pixels). As in the forward, small maps (Mask R-CNN's 14 × 14, one per RoI) are
/// staged several images side by side so each product is wide; `stagedElements` bounds dR's buffer.
///
/// Threading: `GEMM`, the regrouping and staging copies (split over channels and images) and the bias sums use
/// `Parallel`; the gradients do not depend on the thread count.
extension ConvTranspose2x2 {
    /// Adds dL/dW (`weight`'s layout, (C, O, 2, 2)) to `weightGradient` and dL/db to `biasGradient` when non-nil,
    /// and returns dL/dx (N, C, H, W) when `inputGradient`, given the input `x` and `dy` (N, O, 2H, 2W) = dL/d(layer
    /// output) before any fused ReLU (the caller masks it first, `reluBackward`).
    public func backward(
        input x: FeatureMap, outputGradient dy: FeatureMap, weightGradient: UnsafeMutablePointer<Float>?,
        biasGradient: UnsafeMutablePointer<Float>?, inputGradient: Bool
    ) -> FeatureMap? {
        precondition(x.channels == inChannels, "ConvTranspose2x2.backward: expected \(inChannels) channels")
        precondition(
            dy.shape == [x.batch, outChannels, 2 * x.height, 2 * x.width],
            "ConvTranspose2x2.backward: output gradient \(dy.shape) does not match the output")
        if let biasGradient { addChannelSums(dy, into: biasGradient) }
        guard weightGradient != nil || inputGradient else { return nil }
        let (h, w, plane) = (x.height, x.width, x.plane)
        let rows = outChannels * 4
        let chunk = max(1, min(x.batch, ConvTranspose2x2.stagedElements / max(1, rows * plane)))
        let regroupedBuffer = BufferCache.take(Float.self, count: rows * chunk * plane)
        let stagedBuffer = BufferCache.take(Float.self, count: inChannels * chunk * plane)
        defer { BufferCache.give(regroupedBuffer); BufferCache.give(stagedBuffer) }
        let (regrouped, staged) = (regroupedBuffer.pointer, stagedBuffer.pointer)
        let body = { (dxs: UnsafeMutablePointer<Float>?) in
            var first = 0
            while first < x.batch {
                let images = min(chunk, x.batch - first), n = images * plane
                dy.data.withUnsafeBufferPointer { dys in
                    // dR((o, a, b), image · plane + i · w + j) = dY(first + image, o, 2i + a, 2j + b): the even and
                    // odd columns of output row 2i + a.
                    Parallel.forEachChunk(outChannels * images, minItemsPerChunk: 4) { range in
                        for item in range {
                            let (o, image) = (item / images, item % images)
                            let src = dys.baseAddress! + ((first + image) * outChannels + o) * 4 * plane
                            for a in 0..<2 {
                                let even = regrouped + (o * 4 + 2 * a) * n + image * plane, odd = even + n
                                for i in 0..<h {
                                    let row = src + (2 * i + a) * 2 * w
                                    let e = even + i * w, d = odd + i * w
                                    var j = 0
                                    while j + 16 <= w {
                                        let v = UnsafeRawPointer(row + 2 * j).loadUnaligned(as: SIMD32<Float>.self)
                                        UnsafeMutableRawPointer(e + j).storeBytes(
                                            of: v.evenLanes, as: SIMD16<Float>.self)
                                        UnsafeMutableRawPointer(d + j).storeBytes(
                                            of: v.oddLanes, as: SIMD16<Float>.self)
                                        j += 16
                                    }
                                    while j < w {
                                        e[j] = row[2 * j]
                                        d[j] = row[2 * j + 1]
                                        j += 1
                                    }
                                }
                            }
                        }
                    }
                }
                if let weightGradient {
                    stage(x, first: first, images: images, into: staged)
                    // dW (C × 4O) += X (C × n) · dRᵀ
                    GEMM.multiply(
                        m: inChannels, n: rows, k: n, a: staged, lda: n, b: regrouped, ldb: n, transposeB: true,
                        c: weightGradient, ldc: rows, accumulate: true)
                }
                if let dxs {
                    // dX (C × n) = W (C × 4O) · dR, then back to (image, C, plane).
                    weight.withUnsafeBufferPointer { ws in
                        GEMM.multiply(
                            m: inChannels, n: n, k: rows, a: ws.baseAddress!, lda: rows, b: regrouped, ldb: n,
                            c: staged, ldc: n)
                    }
                    Parallel.forEachChunk(inChannels, minItemsPerChunk: 16) { channels in
                        for c in channels {
                            for i in 0..<images {
                                (dxs + ((first + i) * inChannels + c) * plane).update(
                                    from: staged + c * n + i * plane, count: plane)
                            }
                        }
                    }
                }
                first += images
            }
        }
        if inputGradient {
            return FeatureMap(batch: x.batch, channels: inChannels, height: h, width: w) { body($0.baseAddress!) }
        }
        body(nil)
        return nil
    }
}
