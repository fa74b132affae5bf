import SwiftRCNNOps
import XCTest

/// `Winograd.weightGradient` in Double against the direct sum, where the transforms' rounding is far below the
/// tolerance: checks the tile numbering, the edges, lane groups and blocks exactly; and its thread-count
/// independence in Float.
final class WinogradWeightGradientTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// dW(o, i, ky, kx) = Σ_{n, y, x} dY(n, o, y, x) · X(n, i, y + ky - 1, x + kx - 1), padding 1.
    func direct(_ x: [Double], _ dy: [Double], batch: Int, c: Int, k: Int, h: Int, w: Int) -> [Double] {
        var dw = [Double](repeating: 0, count: k * c * 9)
        for n in 0..<batch {
            for o in 0..<k {
                for y in 0..<h {
                    for xo in 0..<w {
                        let g = dy[((n * k + o) * h + y) * w + xo]
                        for i in 0..<c {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy = y + ky - 1, ix = xo + kx - 1
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    dw[((o * c + i) * 3 + ky) * 3 + kx] += g * x[((n * c + i) * h + iy) * w + ix]
                                }
                            }
                        }
                    }
                }
            }
        }
        return dw
    }

    func random(_ n: Int, state: inout UInt64) -> [Double] {
        (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    func testMatchesDirectSumInDouble() {
        forEachISA { isa in
            var state: UInt64 = 7
            // (batch, in, out, H, W, tiles per block): 1 × 1 maps, odd sizes (a half tile of zeros), widths
            // below, at and beyond a lane group (2·lanes columns), tiles across image boundaries, one block or many.
            for (batch, c, k, h, w, blockTiles) in [
                (1, 1, 1, 1, 1, 0), (2, 3, 2, 5, 4, 0), (1, 2, 3, 3, 64, 16), (3, 4, 5, 17, 35, 16),
                (1, 2, 2, 40, 50, 64), (2, 1, 9, 2, 33, 32), (2, 3, 2, 14, 14, 0),
            ] {
                let x = random(batch * c * h * w, state: &state), dy = random(batch * k * h * w, state: &state)
                let start = random(k * c * 9, state: &state)
                var dw = start
                Winograd.weightGradient(
                    x, batch: batch, channels: c, height: h, width: w, outputGradient: dy, outChannels: k, into: &dw,
                    blockElements: blockTiles > 0 ? 16 * (c + k) * blockTiles : Winograd.weightGradientBlockElements)
                let want = direct(x, dy, batch: batch, c: c, k: k, h: h, w: w)
                for (got, (s, e)) in zip(dw, zip(start, want)) {
                    XCTAssertEqual(got, s + e, accuracy: 1e-12, "\((isa, batch, c, k, h, w, blockTiles))")
                }
            }
        }
    }

    /// Bit-identical for 1, 2 and 3 threads (transforms split over channels, products over the 16 elements; two
    /// blocks, of 256 and 74 tiles), and in float32 within 1e-5 of the largest entry of the exact gradient.
    func testFloatAndThreadCounts() {
        var state: UInt64 = 8
        let (batch, c, k, h, w) = (2, 24, 16, 21, 30)
        let x = random(batch * c * h * w, state: &state), dy = random(batch * k * h * w, state: &state)
        let want = direct(x, dy, batch: batch, c: c, k: k, h: h, w: w)
        let scale = want.map(abs).max()!
        var results = [[Float]]()
        for threads in [1, 2, 3] {
            Parallel.numThreads = threads
            var dw = [Float](repeating: 0, count: k * c * 9)
            Winograd.weightGradient(
                x.map(Float.init), batch: batch, channels: c, height: h, width: w, outputGradient: dy.map(Float.init),
                outChannels: k, into: &dw, blockElements: 16 * (c + k) * 256)
            results.append(dw)
        }
        XCTAssertEqual(results[1], results[0])
        XCTAssertEqual(results[2], results[0])
        let worst = zip(results[0], want).map { abs(Double($0) - $1) }.max()!
        XCTAssertLessThan(worst / scale, 1e-5)
    }
}
