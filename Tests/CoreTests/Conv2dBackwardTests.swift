import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// `Conv2d.backward` against the gradients summed in Double by direct loops, over the geometries the detectors
/// use, by GEMM and col2im, by Winograd, banded, and for any thread count.
final class Conv2dBackwardTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    func random(_ n: Int, seed: inout UInt64) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(seed >> 11) % 2001 - 1000) / 1000
        }
    }

    struct Gradients {
        var weight: [Double], bias: [Double], input: [Double]
    }

    /// dW, db and dX of y(n, o, oy, ox) = Σ W(o, c, ky, kx) · x(n, g·I/g + c, oy·s - p + ky·d, ox·s - p + kx·d) + b(o)
    /// for the output gradient dy, each term of the forward sum visited once.
    func reference(_ conv: Conv2d, _ x: FeatureMap, _ dy: FeatureMap) -> Gradients {
        let (k0, k1, s, p, d) = (conv.kernelH, conv.kernelW, conv.stride, conv.padding, conv.dilation)
        let ipg = conv.inChannels / conv.groups, opg = conv.outChannels / conv.groups
        let (h, w, ho, wo) = (x.height, x.width, dy.height, dy.width)
        var result = Gradients(
            weight: .init(repeating: 0, count: conv.weight.count), bias: .init(repeating: 0, count: conv.outChannels),
            input: .init(repeating: 0, count: x.data.count))
        x.data.withUnsafeBufferPointer { xs in
            dy.data.withUnsafeBufferPointer { gs in
                conv.weight.withUnsafeBufferPointer { ws in
                    result.weight.withUnsafeMutableBufferPointer { dw in
                        result.input.withUnsafeMutableBufferPointer { dx in
                            for n in 0..<x.batch {
                                for o in 0..<conv.outChannels {
                                    let grp = o / opg
                                    for oy in 0..<ho {
                                        for ox in 0..<wo {
                                            let g = Double(gs[((n * conv.outChannels + o) * ho + oy) * wo + ox])
                                            result.bias[o] += g
                                            for c in 0..<ipg {
                                                let plane = (n * x.channels + grp * ipg + c) * h
                                                for ky in 0..<k0 {
                                                    let iy = oy * s - p + ky * d
                                                    if iy < 0 || iy >= h { continue }
                                                    for kx in 0..<k1 {
                                                        let ix = ox * s - p + kx * d
                                                        if ix < 0 || ix >= w { continue }
                                                        let wi = ((o * ipg + c) * k0 + ky) * k1 + kx
                                                        let xi = (plane + iy) * w + ix
                                                        dw[wi] += g * Double(xs[xi])
                                                        dx[xi] += g * Double(ws[wi])
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// `got` within `relative` of the largest entry of `want`.
    func assertClose(
        _ got: [Float], _ want: [Double], relative: Double = 1e-5, _ message: String, line: UInt = #line
    ) {
        XCTAssertEqual(got.count, want.count, message, line: line)
        let scale = max(want.map(abs).max() ?? 0, 1e-30)
        var worst = 0.0
        for (a, b) in zip(got, want) { worst = max(worst, abs(Double(a) - b) / scale) }
        XCTAssertLessThanOrEqual(worst, relative, message, line: line)
    }

    /// Runs `backward` (starting the parameter gradients from ones, to check they are added to) and compares.
    func check(
        _ conv: Conv2d, _ x: FeatureMap, _ dy: FeatureMap, using gradientLayer: Conv2d?? = nil,
        _ message: String, line: UInt = #line
    ) {
        var dw = [Float](repeating: 1, count: conv.weight.count)
        var db = [Float](repeating: 1, count: conv.outChannels)
        let dx = dw.withUnsafeMutableBufferPointer { w in
            db.withUnsafeMutableBufferPointer { b in
                if let gradientLayer {
                    return conv.backward(
                        input: x, outputGradient: dy, weightGradient: w.baseAddress, biasGradient: b.baseAddress,
                        inputGradient: true, using: gradientLayer)
                }
                return conv.backward(
                    input: x, outputGradient: dy, weightGradient: w.baseAddress, biasGradient: b.baseAddress,
                    inputGradient: true)
            }
        }
        let want = reference(conv, x, dy)
        assertClose(dw, want.weight.map { $0 + 1 }, "\(message): weight", line: line)
        assertClose(db, want.bias.map { $0 + 1 }, "\(message): bias", line: line)
        XCTAssertEqual(dx?.shape, x.shape, message, line: line)
        assertClose(dx.map { Array($0.data) } ?? [], want.input, "\(message): input", line: line)
    }

    func testGeometries() {
        var seed: UInt64 = 1
        // (in, out, kernel, stride, padding, dilation, groups, H, W, batch): 1 × 1 stride 1 (planes multiplied
        // directly, also with groups) and stride 2, 3 × 3 stride 1 (Winograd) and stride 2, the 7 × 7 / 2 stem,
        // dilation 2, groups 2, odd sizes.
        let cases = [
            (16, 8, 1, 1, 0, 1, 1, 9, 11, 2), (8, 6, 1, 1, 0, 1, 2, 5, 7, 1), (8, 12, 1, 2, 0, 1, 1, 10, 13, 2),
            (8, 16, 3, 1, 1, 1, 1, 13, 17, 2), (8, 8, 3, 2, 1, 1, 1, 15, 14, 2), (3, 8, 7, 2, 3, 1, 1, 23, 19, 1),
            (4, 6, 3, 1, 2, 2, 1, 9, 8, 2), (8, 8, 3, 2, 1, 1, 2, 11, 8, 2), (6, 4, 3, 1, 1, 1, 2, 7, 9, 2),
            (5, 7, 1, 2, 0, 1, 1, 9, 9, 1),
        ]
        for (i, o, kk, s, p, d, g, h, w, batch) in cases {
            let conv = Conv2d(
                weight: random(o * (i / g) * kk * kk, seed: &seed), bias: random(o, seed: &seed), inChannels: i,
                outChannels: o, kernel: (kk, kk), stride: s, padding: p, dilation: d, groups: g)
            let x = FeatureMap(
                batch: batch, channels: i, height: h, width: w, data: random(batch * i * h * w, seed: &seed))
            let (ho, wo) = ((h + 2 * p - d * (kk - 1) - 1) / s + 1, (w + 2 * p - d * (kk - 1) - 1) / s + 1)
            let dy = FeatureMap(
                batch: batch, channels: o, height: ho, width: wo, data: random(batch * o * ho * wo, seed: &seed))
            let name = "\((i, o, kk, s, p, d, g, h, w, batch))"
            check(conv, x, dy, name)
            if conv.inputGradientLayer() != nil {
                // dX by GEMM and col2im instead of Winograd; then all of the backward pass without Winograd.
                check(conv, x, dy, using: .some(nil), "\(name) without Winograd for dX")
                let plain = Conv2d(
                    weight: conv.weight, bias: conv.bias, inChannels: i, outChannels: o, kernel: (kk, kk), stride: s,
                    padding: p, dilation: d, groups: g, winograd: false)
                XCTAssertNil(plain.inputGradientLayer())
                check(plain, x, dy, "\(name) without Winograd")
            }
        }
    }

    /// Mask R-CNN's mask head: many 14 × 14 maps (one per RoI), 3 × 3 stride 1 convolutions whose gradients run
    /// by Winograd, the input gradient through a gradient layer built once.
    func testManySmallMapsWithReusedGradientLayer() {
        var seed: UInt64 = 2
        let (batch, c, o) = (12, 8, 8)
        let conv = Conv2d(
            weight: random(o * c * 9, seed: &seed), bias: random(o, seed: &seed), inChannels: c, outChannels: o,
            kernel: (3, 3), padding: 1, relu: true)
        let gradientLayer = conv.inputGradientLayer()
        XCTAssertNotNil(gradientLayer?.winogradWeights)
        let x = FeatureMap(batch: batch, channels: c, height: 14, width: 14, data: random(batch * c * 196, seed: &seed))
        let dy = FeatureMap(
            batch: batch, channels: o, height: 14, width: 14, data: random(batch * o * 196, seed: &seed))
        check(conv, x, dy, using: gradientLayer, "14 x 14 maps")
        XCTAssertNil(
            Conv2d(weight: random(o * c, seed: &seed), bias: nil, inChannels: c, outChannels: o, kernel: (1, 1))
                .inputGradientLayer())
    }

    /// An output taller than one im2col band (K·Wo·rows > `bandElements`, 2²² elements): two bands of 79 and 13
    /// rows add up.
    func testBandedProducts() {
        var seed: UInt64 = 3
        let (c, o, h, w) = (64, 1, 92, 92)
        let conv = Conv2d(
            weight: random(o * c * 9, seed: &seed), bias: nil, inChannels: c, outChannels: o, kernel: (3, 3),
            padding: 1, winograd: false)
        let x = FeatureMap(batch: 1, channels: c, height: h, width: w, data: random(c * h * w, seed: &seed))
        let dy = FeatureMap(batch: 1, channels: o, height: h, width: w, data: random(o * h * w, seed: &seed))
        var dw = [Float](repeating: 0, count: conv.weight.count)
        let dx = dw.withUnsafeMutableBufferPointer {
            conv.backward(
                input: x, outputGradient: dy, weightGradient: $0.baseAddress, biasGradient: nil, inputGradient: true,
                using: nil)
        }
        let want = reference(conv, x, dy)
        assertClose(dw, want.weight, "banded weight")
        assertClose(Array(dx!.data), want.input, "banded input")
    }

    /// No images (Mask R-CNN's mask head when no proposal is positive): zero gradients added, an empty dX.
    func testEmptyBatch() {
        var seed: UInt64 = 7
        for (k, s, p, winograd) in [(3, 1, 1, true), (3, 1, 1, false), (1, 1, 0, true), (3, 2, 1, true)] {
            let conv = Conv2d(
                weight: random(4 * 3 * k * k, seed: &seed), bias: random(4, seed: &seed), inChannels: 3,
                outChannels: 4, kernel: (k, k), stride: s, padding: p, winograd: winograd)
            let x = FeatureMap(batch: 0, channels: 3, height: 14, width: 14, data: [])
            let side = (14 + 2 * p - k) / s + 1
            let dy = FeatureMap(batch: 0, channels: 4, height: side, width: side, data: [])
            var dw = [Float](repeating: 1, count: conv.weight.count), db = [Float](repeating: 1, count: 4)
            let dx = dw.withUnsafeMutableBufferPointer { w in
                db.withUnsafeMutableBufferPointer { b in
                    conv.backward(
                        input: x, outputGradient: dy, weightGradient: w.baseAddress, biasGradient: b.baseAddress,
                        inputGradient: true)
                }
            }
            XCTAssertEqual(dx?.shape, [0, 3, 14, 14])
            XCTAssertEqual(Set(dw), [1])
            XCTAssertEqual(db, [1, 1, 1, 1])
        }
    }

    /// Only what is asked for is computed: no input gradient, or only the input gradient.
    func testPartialRequests() {
        var seed: UInt64 = 4
        let conv = Conv2d(
            weight: random(6 * 4 * 9, seed: &seed), bias: random(6, seed: &seed), inChannels: 4, outChannels: 6,
            kernel: (3, 3), stride: 2, padding: 1)
        let x = FeatureMap(batch: 2, channels: 4, height: 9, width: 10, data: random(2 * 4 * 90, seed: &seed))
        let dy = FeatureMap(batch: 2, channels: 6, height: 5, width: 5, data: random(2 * 6 * 25, seed: &seed))
        let want = reference(conv, x, dy)
        var dw = [Float](repeating: 0, count: conv.weight.count)
        let none = dw.withUnsafeMutableBufferPointer {
            conv.backward(
                input: x, outputGradient: dy, weightGradient: $0.baseAddress, biasGradient: nil, inputGradient: false)
        }
        XCTAssertNil(none)
        assertClose(dw, want.weight, "weight only")
        let dx = conv.backward(
            input: x, outputGradient: dy, weightGradient: nil, biasGradient: nil, inputGradient: true)
        assertClose(Array(dx!.data), want.input, "input only")
    }

    /// Bit-identical gradients for 1 and 2 threads: the products (`GEMM`, split here), col2im (split over channels)
    /// and the bias sums each add in one order. (Winograd's independence is `WinogradTests`'; sizes are kept small
    /// because the kernels of a debug build run at a few million multiply-adds per second.)
    func testResultsDoNotDependOnThreadCount() {
        var seed: UInt64 = 5
        let (c, o) = (48, 48)
        let x = FeatureMap(batch: 1, channels: c, height: 30, width: 30, data: random(c * 900, seed: &seed))
        let conv = Conv2d(
            weight: random(o * c * 9, seed: &seed), bias: random(o, seed: &seed), inChannels: c, outChannels: o,
            kernel: (3, 3), stride: 2, padding: 1)
        let dy = FeatureMap(batch: 1, channels: o, height: 15, width: 15, data: random(o * 225, seed: &seed))
        var results = [([Float], [Float], [Float])]()
        for threads in [1, 2] {
            Parallel.numThreads = threads
            var dw = [Float](repeating: 0, count: conv.weight.count), db = [Float](repeating: 0, count: o)
            let dx = dw.withUnsafeMutableBufferPointer { w in
                db.withUnsafeMutableBufferPointer { b in
                    conv.backward(
                        input: x, outputGradient: dy, weightGradient: w.baseAddress, biasGradient: b.baseAddress,
                        inputGradient: true)
                }
            }
            results.append((dw, db, Array(dx!.data)))
        }
        XCTAssertEqual(results[1].0, results[0].0, "weight")
        XCTAssertEqual(results[1].1, results[0].1, "bias")
        XCTAssertEqual(results[1].2, results[0].2, "input")
    }

    /// The gradients against central differences of the forward pass itself (Winograd and im2col), for a loss
    /// L = Σ y · r, which is linear in the weights and the input, so the differences are exact up to rounding.
    func testFiniteDifferences() {
        var seed: UInt64 = 6
        for (s, winograd) in [(1, true), (2, false)] {
            let (c, o) = (3, 4)
            let w = random(o * c * 9, seed: &seed), b = random(o, seed: &seed)
            let x = FeatureMap(batch: 1, channels: c, height: 8, width: 7, data: random(c * 56, seed: &seed))
            func layer(_ w: [Float]) -> Conv2d {
                Conv2d(
                    weight: w, bias: b, inChannels: c, outChannels: o, kernel: (3, 3), stride: s, padding: 1,
                    winograd: winograd)
            }
            let y = layer(w)(x)
            let r = random(y.data.count, seed: &seed)
            func loss(_ w: [Float], _ x: FeatureMap) -> Double {
                zip(layer(w)(x).data, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            let dy = FeatureMap(batch: 1, channels: o, height: y.height, width: y.width, data: r)
            var dw = [Float](repeating: 0, count: w.count)
            let dx = dw.withUnsafeMutableBufferPointer {
                layer(w).backward(
                    input: x, outputGradient: dy, weightGradient: $0.baseAddress, biasGradient: nil,
                    inputGradient: true)
            }!
            let eps: Float = 0.05
            for i in stride(from: 0, to: w.count, by: 7) {
                var plus = w, minus = w
                plus[i] += eps
                minus[i] -= eps
                let difference = (loss(plus, x) - loss(minus, x)) / Double(2 * eps)
                XCTAssertEqual(Double(dw[i]), difference, accuracy: 1e-3, "stride \(s): weight \(i)")
            }
            for i in stride(from: 0, to: x.data.count, by: 5) {
                var plus = x, minus = x
                plus.data[i] += eps
                minus.data[i] -= eps
                let difference = (loss(w, plus) - loss(w, minus)) / Double(2 * eps)
                XCTAssertEqual(Double(dx.data[i]), difference, accuracy: 1e-3, "stride \(s): input \(i)")
            }
        }
    }
}
