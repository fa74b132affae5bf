import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// `Linear.backward`, `ConvTranspose2x2.backward` and `reluBackward` against gradients summed in Double by direct
/// loops, and for any thread count.
final class LinearBackwardTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    func random(_ n: Int, seed: inout UInt64) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(seed >> 11) % 2001 - 1000) / 1000
        }
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

    func testLinear() {
        var seed: UInt64 = 1
        // (rows, in, out): the box head's shapes in miniature, a single row, widths off the GEMM tiles.
        for (rows, inputs, outputs) in [(37, 45, 29), (1, 16, 5), (64, 7, 91)] {
            let layer = Linear(
                weight: random(outputs * inputs, seed: &seed), bias: random(outputs, seed: &seed), inFeatures: inputs,
                outFeatures: outputs, relu: true)
            let x = random(rows * inputs, seed: &seed), dy = random(rows * outputs, seed: &seed)
            var wantW = [Double](repeating: 1, count: outputs * inputs), wantB = [Double](repeating: 1, count: outputs)
            var wantX = [Double](repeating: 0, count: rows * inputs)
            for r in 0..<rows {
                for o in 0..<outputs {
                    let g = Double(dy[r * outputs + o])
                    wantB[o] += g
                    for i in 0..<inputs {
                        wantW[o * inputs + i] += g * Double(x[r * inputs + i])
                        wantX[r * inputs + i] += g * Double(layer.weight[o * inputs + i])
                    }
                }
            }
            var results = [([Float], [Float], [Float])]()
            for threads in [1, 2, 3] {
                Parallel.numThreads = threads
                // Gradients start at one: they are added to.
                var dw = [Float](repeating: 1, count: outputs * inputs), db = [Float](repeating: 1, count: outputs)
                let dx = dw.withUnsafeMutableBufferPointer { w in
                    db.withUnsafeMutableBufferPointer { b in
                        layer.backward(
                            input: x, rows: rows, outputGradient: dy, weightGradient: w.baseAddress,
                            biasGradient: b.baseAddress, inputGradient: true)
                    }
                }
                results.append((dw, db, dx!))
            }
            let name = "\((rows, inputs, outputs))"
            assertClose(results[0].0, wantW, "\(name): weight")
            assertClose(results[0].1, wantB, "\(name): bias")
            assertClose(results[0].2, wantX, "\(name): input")
            for r in results.dropFirst() {
                XCTAssertEqual(r.0, results[0].0, name)
                XCTAssertEqual(r.1, results[0].1, name)
                XCTAssertEqual(r.2, results[0].2, name)
            }
            XCTAssertNil(
                layer.backward(
                    input: x, rows: rows, outputGradient: dy, weightGradient: nil, biasGradient: nil,
                    inputGradient: false))
        }
    }

    func testTransposedConvolution() {
        var seed: UInt64 = 2
        // (batch, in, out, H, W): Mask R-CNN's 14 × 14 maps, one per RoI; odd sizes and rows wider than the
        // 16-column regrouping.
        for (batch, c, o, h, w) in [(6, 8, 5, 14, 14), (2, 3, 4, 5, 7), (1, 2, 3, 3, 37)] {
            let layer = ConvTranspose2x2(
                weight: random(c * o * 4, seed: &seed), bias: random(o, seed: &seed), inChannels: c, outChannels: o)
            let x = FeatureMap(
                batch: batch, channels: c, height: h, width: w, data: random(batch * c * h * w, seed: &seed))
            let dy = FeatureMap(
                batch: batch, channels: o, height: 2 * h, width: 2 * w, data: random(batch * o * 4 * h * w, seed: &seed)
            )
            // y(n, q, 2i + a, 2j + b) = Σ_p x(n, p, i, j) · W(p, q, a, b) + bias(q)
            var wantW = [Double](repeating: 1, count: c * o * 4), wantB = [Double](repeating: 1, count: o)
            var wantX = [Double](repeating: 0, count: x.data.count)
            for n in 0..<batch {
                for q in 0..<o {
                    for oy in 0..<(2 * h) {
                        for ox in 0..<(2 * w) {
                            let g = Double(dy.data[((n * o + q) * 2 * h + oy) * 2 * w + ox])
                            wantB[q] += g
                            let (i, a, j, b) = (oy / 2, oy % 2, ox / 2, ox % 2)
                            for p in 0..<c {
                                let wi = ((p * o + q) * 2 + a) * 2 + b, xi = ((n * c + p) * h + i) * w + j
                                wantW[wi] += g * Double(x.data[xi])
                                wantX[xi] += g * Double(layer.weight[wi])
                            }
                        }
                    }
                }
            }
            let name = "\((batch, c, o, h, w))"
            var results = [([Float], [Float], [Float])]()
            for threads in [1, 2] {
                Parallel.numThreads = threads
                var dw = [Float](repeating: 1, count: c * o * 4), db = [Float](repeating: 1, count: o)
                let dx = dw.withUnsafeMutableBufferPointer { wp in
                    db.withUnsafeMutableBufferPointer { bp in
                        layer.backward(
                            input: x, outputGradient: dy, weightGradient: wp.baseAddress, biasGradient: bp.baseAddress,
                            inputGradient: true)
                    }
                }
                XCTAssertEqual(dx?.shape, x.shape, name)
                results.append((dw, db, Array(dx!.data)))
            }
            assertClose(results[0].0, wantW, "\(name): weight")
            assertClose(results[0].1, wantB, "\(name): bias")
            assertClose(results[0].2, wantX, "\(name): input")
            XCTAssertEqual(results[1].0, results[0].0, name)
            XCTAssertEqual(results[1].1, results[0].1, name)
            XCTAssertEqual(results[1].2, results[0].2, name)
            // The weight gradient alone, without the input gradient.
            var dw = [Float](repeating: 1, count: c * o * 4)
            let none = dw.withUnsafeMutableBufferPointer {
                layer.backward(
                    input: x, outputGradient: dy, weightGradient: $0.baseAddress, biasGradient: nil,
                    inputGradient: false)
            }
            XCTAssertNil(none)
            XCTAssertEqual(dw, results[0].0, name)
        }
    }

    /// No rows or no images: zero gradients added, empty input gradients.
    func testEmptyBatches() {
        var seed: UInt64 = 3
        let linear = Linear(
            weight: random(6 * 5, seed: &seed), bias: random(6, seed: &seed), inFeatures: 5, outFeatures: 6)
        var dw = [Float](repeating: 1, count: 30), db = [Float](repeating: 1, count: 6)
        let dx = dw.withUnsafeMutableBufferPointer { w in
            db.withUnsafeMutableBufferPointer { b in
                linear.backward(
                    input: [], rows: 0, outputGradient: [], weightGradient: w.baseAddress, biasGradient: b.baseAddress,
                    inputGradient: true)
            }
        }
        XCTAssertEqual(dx, [])
        XCTAssertEqual(Set(dw), [1])
        XCTAssertEqual(Set(db), [1])
        let up = ConvTranspose2x2(
            weight: random(3 * 4 * 4, seed: &seed), bias: random(4, seed: &seed), inChannels: 3, outChannels: 4)
        var dwUp = [Float](repeating: 1, count: 48), dbUp = [Float](repeating: 1, count: 4)
        let dxUp = dwUp.withUnsafeMutableBufferPointer { w in
            dbUp.withUnsafeMutableBufferPointer { b in
                up.backward(
                    input: FeatureMap(batch: 0, channels: 3, height: 14, width: 14, data: []),
                    outputGradient: FeatureMap(batch: 0, channels: 4, height: 28, width: 28, data: []),
                    weightGradient: w.baseAddress, biasGradient: b.baseAddress, inputGradient: true)
            }
        }
        XCTAssertEqual(dxUp?.shape, [0, 3, 14, 14])
        XCTAssertEqual(Set(dwUp), [1])
        XCTAssertEqual(Set(dbUp), [1])
    }

    /// torch's threshold_backward(g, relu(x), 0): the gradient passes where the output is > 0, and where it is NaN.
    func testReLU() {
        let y: [Float] = [-1, 0, 2, .nan, .infinity, -0.0, 1e-30] + [Float](repeating: 3, count: 100_000)
        var g = [Float](repeating: 5, count: y.count)
        g.withUnsafeMutableBufferPointer { reluBackward(output: y, gradient: $0.baseAddress!, count: y.count) }
        XCTAssertEqual(Array(g.prefix(7)), [0, 0, 5, 5, 5, 0, 5])
        XCTAssertEqual(Set(g.dropFirst(7)), [5])
    }
}
