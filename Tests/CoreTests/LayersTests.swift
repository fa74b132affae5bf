import SwiftRCNN
import XCTest

/// Layers against direct loops written from their definitions.
final class LayersTests: XCTestCase {
    func randomArray(_ n: Int, seed: inout UInt64) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
        }
    }

    func naiveConv(
        _ x: FeatureMap, _ w: [Float], _ b: [Float]?, o: Int, k: (Int, Int), s: Int, p: Int, d: Int,
        g: Int
    ) -> [Float] {
        let ho = (x.height + 2 * p - d * (k.0 - 1) - 1) / s + 1, wo = (x.width + 2 * p - d * (k.1 - 1) - 1) / s + 1
        let ipg = x.channels / g, opg = o / g
        var out = [Float](repeating: 0, count: x.batch * o * ho * wo)
        for n in 0..<x.batch {
            for oc in 0..<o {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var acc = Double(b?[oc] ?? 0)
                        let grp = oc / opg
                        for ic in 0..<ipg {
                            for ky in 0..<k.0 {
                                for kx in 0..<k.1 {
                                    let iy = oy * s - p + ky * d, ix = ox * s - p + kx * d
                                    if iy < 0 || iy >= x.height || ix < 0 || ix >= x.width { continue }
                                    let xv = x.data[((n * x.channels + grp * ipg + ic) * x.height + iy) * x.width + ix]
                                    acc += Double(xv) * Double(w[((oc * ipg + ic) * k.0 + ky) * k.1 + kx])
                                }
                            }
                        }
                        out[((n * o + oc) * ho + oy) * wo + ox] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    func testConvolutionShapes() {
        var seed: UInt64 = 1
        // (in, out, kernel, stride, padding, dilation, groups, H, W)
        let cases = [
            (3, 8, 7, 2, 3, 1, 1, 19, 23), (8, 16, 3, 1, 1, 1, 1, 9, 14), (16, 4, 1, 1, 0, 1, 1, 5, 6),
            (8, 8, 3, 2, 1, 1, 2, 11, 8), (4, 6, 3, 1, 2, 2, 1, 7, 7), (5, 7, 1, 2, 0, 1, 1, 9, 9),
            // Stride 2 on rows wide enough for the 16-lane im2col copies, odd and even widths.
            (3, 4, 7, 2, 3, 1, 1, 6, 81), (2, 3, 3, 2, 1, 1, 1, 5, 70), (2, 3, 1, 2, 0, 1, 1, 4, 97),
        ]
        for (i, o, kk, s, p, d, g, h, w) in cases {
            let x = FeatureMap(
                batch: 2, channels: i, height: h, width: w, data: randomArray(2 * i * h * w, seed: &seed))
            let weights = randomArray(o * (i / g) * kk * kk, seed: &seed)
            let bias = randomArray(o, seed: &seed)
            let conv = Conv2d(
                weight: weights, bias: bias, inChannels: i, outChannels: o, kernel: (kk, kk), stride: s,
                padding: p, dilation: d, groups: g)
            let got = conv(x).data
            let want = naiveConv(x, weights, bias, o: o, k: (kk, kk), s: s, p: p, d: d, g: g)
            XCTAssertEqual(got.count, want.count)
            for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            let relu = conv.withReLU(true)(x).data
            for (a, b) in zip(relu, want) { XCTAssertEqual(a, max(b, 0), accuracy: 1e-4) }
        }
    }

    func testBandedConvolutionMatchesUnbanded() {
        // An output taller than one band (K·Wo·rows > bandElements) must give the same result as the direct loops.
        var seed: UInt64 = 7
        let x = FeatureMap(
            batch: 1, channels: 64, height: 130, width: 140,
            data: randomArray(64 * 130 * 140, seed: &seed))
        let weights = randomArray(2 * 64 * 9, seed: &seed)
        let conv = Conv2d(
            weight: weights, bias: nil, inChannels: 64, outChannels: 2, kernel: (3, 3), padding: 1,
            winograd: false)
        XCTAssertNil(conv.winogradWeights)
        let got = conv(x).data
        let want = naiveConv(x, weights, nil, o: 2, k: (3, 3), s: 1, p: 1, d: 1, g: 1)
        for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-3) }
    }

    func testWinogradMatchesDirectSums() {
        // 3 x 3 / stride 1 / padding 1 convolutions run by Winograd F(2x2, 3x3): odd and even sizes, maps narrower
        // than a lane group, widths around the 34-column fast path, several tile blocks, with and without bias/ReLU.
        var seed: UInt64 = 11
        let cases = [
            (1, 5, 3, 1, 1), (2, 7, 6, 14, 14), (3, 9, 4, 33, 34), (1, 16, 8, 35, 37), (2, 4, 5, 40, 70),
            (1, 3, 40, 2, 3), (4, 6, 2, 13, 31),
        ]
        for (batch, i, o, h, w) in cases {
            let x = FeatureMap(
                batch: batch, channels: i, height: h, width: w,
                data: randomArray(batch * i * h * w, seed: &seed))
            let weights = randomArray(o * i * 9, seed: &seed)
            let bias = randomArray(o, seed: &seed)
            for (b, relu) in [(bias, false), (nil, true)] as [([Float]?, Bool)] {
                let conv = Conv2d(
                    weight: weights, bias: b, inChannels: i, outChannels: o, kernel: (3, 3), padding: 1,
                    relu: relu)
                XCTAssertNotNil(conv.winogradWeights)
                let got = conv(x)
                XCTAssertEqual(got.shape, [batch, o, h, w])
                let want = naiveConv(x, weights, b, o: o, k: (3, 3), s: 1, p: 1, d: 1, g: 1)
                for (a, e) in zip(got.data, want) {
                    XCTAssertEqual(a, relu ? max(e, 0) : e, accuracy: 2e-5 * Float(i * 9), "\((batch, i, o, h, w))")
                }
            }
        }
        // A NaN input poisons exactly the outputs whose 3 x 3 window holds it, as in the direct sum.
        var data = randomArray(2 * 10 * 10, seed: &seed)
        data[100 + 4 * 10 + 6] = .nan
        let x = FeatureMap(batch: 1, channels: 2, height: 10, width: 10, data: data)
        let conv = Conv2d(
            weight: randomArray(3 * 2 * 9, seed: &seed), bias: nil, inChannels: 2, outChannels: 3,
            kernel: (3, 3), padding: 1, relu: true)
        let y = conv(x).data
        for oc in 0..<3 {
            for oy in 0..<10 {
                for ox in 0..<10 {
                    let near = abs(oy - 4) <= 1 && abs(ox - 6) <= 1
                    XCTAssertEqual(y[(oc * 10 + oy) * 10 + ox].isNaN, near, "(\(oc), \(oy), \(ox))")
                }
            }
        }
    }

    func testBatchNormFolding() {
        var seed: UInt64 = 3
        let x = FeatureMap(batch: 1, channels: 3, height: 5, width: 5, data: randomArray(75, seed: &seed))
        let conv = Conv2d(
            weight: randomArray(2 * 27, seed: &seed), bias: nil, inChannels: 3, outChannels: 2,
            kernel: (3, 3), padding: 1)
        let (gamma, beta, mean, variance): ([Float], [Float], [Float], [Float]) = (
            [1.5, 0.5], [0.1, -0.2],
            [0.3, -0.4], [2, 0.25]
        )
        let folded = conv.foldingBatchNorm(gamma: gamma, beta: beta, mean: mean, variance: variance, eps: 1e-5)(x)
        let plain = conv(x)
        for c in 0..<2 {
            for i in 0..<25 {
                let want = (plain.data[c * 25 + i] - mean[c]) / (variance[c] + 1e-5).squareRoot() * gamma[c] + beta[c]
                XCTAssertEqual(folded.data[c * 25 + i], want, accuracy: 1e-5)
            }
        }
    }

    func testLinearAndTransposedConvolution() {
        var seed: UInt64 = 5
        let x = randomArray(3 * 10, seed: &seed), w = randomArray(4 * 10, seed: &seed), b = randomArray(4, seed: &seed)
        let y = Linear(weight: w, bias: b, inFeatures: 10, outFeatures: 4)(x, rows: 3)
        for r in 0..<3 {
            for o in 0..<4 {
                var acc = b[o]
                for i in 0..<10 { acc += x[r * 10 + i] * w[o * 10 + i] }
                XCTAssertEqual(y[r * 4 + o], acc, accuracy: 1e-5)
            }
        }
        // Widths below and above a 16-lane group; with bias, and without bias but with ReLU.
        for (h, w, withBias) in [(2, 3, true), (3, 19, false)] {
            let m = FeatureMap(
                batch: 3, channels: 3, height: h, width: w,
                data: randomArray(9 * h * w, seed: &seed))
            let tw = randomArray(3 * 2 * 4, seed: &seed), tb = randomArray(2, seed: &seed)
            let up = ConvTranspose2x2(
                weight: tw, bias: withBias ? tb : nil, inChannels: 3, outChannels: 2,
                relu: !withBias)(m)
            XCTAssertEqual(up.shape, [3, 2, 2 * h, 2 * w])
            // One image per chunk of products (the mask head's path through several chunks): the same values.
            let chunked = ConvTranspose2x2(
                weight: tw, bias: withBias ? tb : nil, inChannels: 3, outChannels: 2,
                relu: !withBias)(m, stagedElements: 1)
            XCTAssertEqual(chunked.data, up.data)
            for n in 0..<3 {
                for o in 0..<2 {
                    for y in 0..<2 * h {
                        for xx in 0..<2 * w {
                            var acc = withBias ? tb[o] : 0
                            for c in 0..<3 {
                                acc +=
                                    m.data[((n * 3 + c) * h + y / 2) * w + xx / 2]
                                    * tw[((c * 2 + o) * 2 + y % 2) * 2 + xx % 2]
                            }
                            XCTAssertEqual(
                                up.data[((n * 2 + o) * 2 * h + y) * 2 * w + xx], withBias ? acc : max(acc, 0),
                                accuracy: 1e-5)
                        }
                    }
                }
            }
        }
    }

    func testPoolingAndInterpolation() {
        let x: [Float] = (0..<20).map(Float.init)  // 4 x 5
        var out = [Float](repeating: 0, count: 6)
        MaxPool2d.forward(x, planes: 1, height: 4, width: 5, kernel: 3, stride: 2, padding: 1, into: &out)
        XCTAssertEqual(out, [6, 8, 9, 16, 18, 19])
        var up = [Float](repeating: 0, count: 40)
        Interpolation.nearest(x, planes: 1, height: 4, width: 5, outHeight: 8, outWidth: 5, into: &up)
        XCTAssertEqual(Array(up[0..<10]), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
        var half = [Float](repeating: 0, count: 4)
        let sq: [Float] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        Interpolation.bilinear(sq, planes: 1, height: 4, width: 4, outHeight: 2, outWidth: 2, into: &half)
        // align_corners=False halving samples the centre of each 2 x 2 block.
        XCTAssertEqual(half, [2.5, 4.5, 10.5, 12.5])
        // At the same size bilinear copies (as torch), so a non-finite pixel does not spread to its neighbours.
        var same = [Float](repeating: 0, count: 16)
        var spiky = sq
        spiky[5] = .infinity
        Interpolation.bilinear(spiky, planes: 1, height: 4, width: 4, outHeight: 4, outWidth: 4, into: &same)
        XCTAssertEqual(same, spiky)
        // An empty input has nothing to sample: zeros, and no read.
        var fromEmpty = [Float](repeating: 7, count: 6)
        Interpolation.bilinear([Float](), planes: 1, height: 0, width: 3, outHeight: 2, outWidth: 3, into: &fromEmpty)
        XCTAssertEqual(fromEmpty, [Float](repeating: 0, count: 6))
        fromEmpty = [Float](repeating: 7, count: 6)
        Interpolation.nearest([Float](), planes: 1, height: 2, width: 0, outHeight: 2, outWidth: 3, into: &fromEmpty)
        XCTAssertEqual(fromEmpty, [Float](repeating: 0, count: 6))
    }
}
