import SwiftRCNNOps
import XCTest

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) in Double against the direct 3 x 3 sum (padding 1), where the transforms'
/// rounding is far below the tolerance: checks the tile numbering, borders, lane groups and blocks exactly.
final class WinogradTests: XCTestCase {
    func direct(
        _ x: [Double], batch: Int, c: Int, h: Int, w: Int, _ g: [Double], k: Int, bias: [Double]?
    )
        -> [Double]
    {
        var out = [Double](repeating: 0, count: batch * k * h * w)
        for n in 0..<batch {
            for o in 0..<k {
                for y in 0..<h {
                    for xo in 0..<w {
                        var acc = bias?[o] ?? 0
                        for i in 0..<c {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy = y + ky - 1, ix = xo + kx - 1
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    acc += x[((n * c + i) * h + iy) * w + ix] * g[((o * c + i) * 3 + ky) * 3 + kx]
                                }
                            }
                        }
                        out[((n * k + o) * h + y) * w + xo] = acc
                    }
                }
            }
        }
        return out
    }

    func testMatchesDirectSumInDouble() {
        for tile in [2, 4] {
            forEachISA { _ in checkDirectSumInDouble(tile: tile) }
        }
    }

    func checkDirectSumInDouble(tile: Int) {
        do {
            var state: UInt64 = 5
            func random(_ n: Int) -> [Double] {
                (0..<n).map { _ in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return Double(state >> 11) / Double(1 << 53) * 2 - 1
                }
            }
            // (batch, in, out, H, W): 1 x 1 maps, widths below, at and beyond a lane group (up to 8 Double tiles
            // = 16 columns of F(2x2, 3x3), 32 of F(4x4, 3x3)), heights that leave every remainder of 4, and more
            // tiles than one block (256).
            for (batch, c, k, h, w) in [
                (1, 1, 1, 1, 1), (2, 3, 2, 5, 4), (1, 2, 3, 3, 64), (3, 4, 5, 17, 35),
                (1, 2, 2, 40, 50), (2, 1, 9, 2, 33), (1, 2, 3, 6, 31), (1, 3, 2, 7, 32), (2, 2, 2, 9, 65),
                (1, 1, 3, 66, 130),
            ] {
                let x = random(batch * c * h * w), g = random(k * c * 9), b = random(k)
                var u = [Double](
                    repeating: .nan, count: Winograd.weightCount(outChannels: k, inChannels: c, tile: tile))
                Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u, tile: tile)
                for relu in [false, true] {
                    var y = [Double](repeating: .nan, count: batch * k * h * w)
                    Winograd.convolve(
                        x, batch: batch, channels: c, height: h, width: w, weights: u, outChannels: k,
                        bias: relu ? nil : b, relu: relu, tile: tile, into: &y)
                    let want = direct(x, batch: batch, c: c, h: h, w: w, g, k: k, bias: relu ? nil : b)
                    for (got, e) in zip(y, want) {
                        XCTAssertEqual(
                            got, relu ? max(e, 0) : e, accuracy: 1e-12, "\((tile, batch, c, k, h, w, relu))")
                    }
                }
            }
        }
    }

    /// F(4x4, 3x3) in Float: within its rounding error of the direct sum (in Double) on post-ReLU-like inputs and
    /// many channels, and further from it than F(2x2, 3x3) only by the expected factor.
    func testFloatTile4WithinItsRoundingError() {
        forEachISA { _ in
            var state: UInt64 = 11
            func random(_ n: Int, scale: Double) -> [Double] {
                (0..<n).map { _ in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return (Double(state >> 11) / Double(1 << 53) * 2 - 1) * scale
                }
            }
            let (batch, c, k, h, w) = (1, 64, 8, 13, 37)
            let x = random(batch * c * h * w, scale: 1).map { max($0, 0) }
            let g = random(k * c * 9, scale: (6.0 / Double(9 * c)).squareRoot())
            let want = direct(x, batch: batch, c: c, h: h, w: w, g, k: k, bias: nil)
            let scale = want.map(abs).max()!
            var errors = [Double]()
            for tile in [2, 4] {
                let xf = x.map { Float($0) }, gf = g.map { Float($0) }
                var u = [Float](repeating: .nan, count: Winograd.weightCount(outChannels: k, inChannels: c, tile: tile))
                Winograd.transformWeights(gf, outChannels: k, inChannels: c, into: &u, tile: tile)
                var y = [Float](repeating: .nan, count: batch * k * h * w)
                Winograd.convolve(
                    xf, batch: batch, channels: c, height: h, width: w, weights: u, outChannels: k, bias: nil,
                    relu: false, tile: tile, into: &y)
                errors.append(zip(y, want).map { abs(Double($0) - $1) }.max()! / scale)
            }
            XCTAssertLessThan(errors[0], 2e-6, "F(2x2, 3x3)")
            XCTAssertLessThan(errors[1], 2e-5, "F(4x4, 3x3)")
        }
    }

    /// Block sizes follow the thread count, but every output is summed in the same order: bit-identical results.
    func testResultsDoNotDependOnThreadCount() {
        for tile in [2, 4] {
            forEachISA { _ in checkThreadCountIndependence(tile: tile) }
        }
    }

    func checkThreadCountIndependence(tile: Int) {
        do {
            let saved = Parallel.numThreads
            defer { Parallel.numThreads = saved }
            let (batch, c, k, h, w) = (2, 24, 16, 45, 61)
            let x = (0..<(batch * c * h * w)).map { Float(($0 * 7919) % 1000) / 500 - 1 }
            let g = (0..<(k * c * 9)).map { Float(($0 * 104729) % 1000) / 500 - 1 }
            var u = [Float](repeating: 0, count: Winograd.weightCount(outChannels: k, inChannels: c, tile: tile))
            Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u, tile: tile)
            var results = [[Float]]()
            for threads in [1, 2, 3] {
                Parallel.numThreads = threads
                var y = [Float](repeating: .nan, count: batch * k * h * w)
                Winograd.convolve(
                    x, batch: batch, channels: c, height: h, width: w, weights: u, outChannels: k,
                    bias: nil, relu: false, tile: tile, into: &y)
                results.append(y)
            }
            XCTAssertEqual(results[0], results[1])
            XCTAssertEqual(results[0], results[2])
        }
    }

    func testApplies() {
        XCTAssertTrue(Winograd.applies(kernelH: 3, kernelW: 3, stride: 1, padding: 1, dilation: 1, groups: 1))
        XCTAssertFalse(Winograd.applies(kernelH: 3, kernelW: 3, stride: 2, padding: 1, dilation: 1, groups: 1))
        XCTAssertFalse(Winograd.applies(kernelH: 3, kernelW: 3, stride: 1, padding: 2, dilation: 2, groups: 1))
        XCTAssertFalse(Winograd.applies(kernelH: 3, kernelW: 3, stride: 1, padding: 1, dilation: 1, groups: 2))
        XCTAssertFalse(Winograd.applies(kernelH: 1, kernelW: 1, stride: 1, padding: 1, dilation: 1, groups: 1))
    }
}

/// Max pooling's 16-lane path (kernel 3, stride 2, padding 1) against the windows' maxima, with NaN propagation,
/// on widths around the lane groups.
final class MaxPoolTests: XCTestCase {
    func testVectorPathMatchesWindows() {
        var state: UInt64 = 9
        for (h, w) in [(5, 33), (7, 34), (6, 35), (3, 66), (9, 100), (4, 31)] {
            var x = (0..<(2 * h * w)).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 1000)
            }
            x[w + 20] = .nan
            let ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1
            var out = [Float](repeating: 0, count: 2 * ho * wo)
            MaxPool2d.forward(x, planes: 2, height: h, width: w, kernel: 3, stride: 2, padding: 1, into: &out)
            for p in 0..<2 {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var m = -Float.infinity, nan = false
                        for y in max(0, 2 * oy - 1)..<min(h, 2 * oy + 2) {
                            for xi in max(0, 2 * ox - 1)..<min(w, 2 * ox + 2) {
                                let v = x[(p * h + y) * w + xi]
                                if v.isNaN { nan = true } else { m = max(m, v) }
                            }
                        }
                        let got = out[(p * ho + oy) * wo + ox]
                        if nan { XCTAssertTrue(got.isNaN, "\((h, w, p, oy, ox))") } else { XCTAssertEqual(got, m) }
                    }
                }
            }
        }
    }
}
