import SwiftRCNNOps
import XCTest

/// `Im2Col.accumulate` (col2im) against the scatter written from `fill`'s definition, and as `fill`'s adjoint.
final class Im2ColAccumulateTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// Values in [-1, 1) from a linear congruential generator.
    func random(_ n: Int, seed: inout UInt64) -> [Double] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Double(seed >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    /// input(c, iy, ix) += columns((c, ky, kx), (oy - oy0, ox)) wherever `fill` reads that input element.
    func scatter(
        _ columns: [Double], channels: Int, _ g: Im2Col.Geometry, rows oy0: Int, _ oy1: Int, into input: inout [Double]
    ) {
        let wo = g.outWidth, bandWidth = (oy1 - oy0) * wo
        for c in 0..<channels {
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = (c * g.kernelH + ky) * g.kernelW + kx
                    for oy in oy0..<oy1 {
                        for ox in 0..<wo {
                            let iy = oy * g.strideH - g.padH + ky * g.dilationH
                            let ix = ox * g.strideW - g.padW + kx * g.dilationW
                            guard iy >= 0 && iy < g.height && ix >= 0 && ix < g.width else { continue }
                            input[(c * g.height + iy) * g.width + ix] += columns[row * bandWidth + (oy - oy0) * wo + ox]
                        }
                    }
                }
            }
        }
    }

    /// (channels, H, W, kernel (h, w), stride (h, w), padding (h, w), dilation (h, w)): the detectors' 3 × 3 s1 p1,
    /// 3 × 3 s2 p1, 7 × 7 s2 p3 and 1 × 1 s2; dilation 2; unequal strides, kernels and paddings; odd sizes.
    let geometries: [(Int, Int, Int, (Int, Int), (Int, Int), (Int, Int), (Int, Int))] = [
        (3, 9, 14, (3, 3), (1, 1), (1, 1), (1, 1)), (2, 15, 13, (3, 3), (2, 2), (1, 1), (1, 1)),
        (3, 23, 19, (7, 7), (2, 2), (3, 3), (1, 1)), (4, 10, 13, (1, 1), (2, 2), (0, 0), (1, 1)),
        (2, 9, 8, (3, 3), (1, 1), (2, 2), (2, 2)), (3, 8, 41, (1, 3), (1, 2), (0, 1), (1, 1)),
        (2, 11, 7, (2, 3), (3, 1), (1, 0), (2, 1)),
    ]

    func geometry(_ c: (Int, Int, Int, (Int, Int), (Int, Int), (Int, Int), (Int, Int))) -> Im2Col.Geometry {
        Im2Col.Geometry(
            height: c.1, width: c.2, kernelH: c.3.0, kernelW: c.3.1, strideH: c.4.0, strideW: c.4.1, padH: c.5.0,
            padW: c.5.1, dilationH: c.6.0, dilationW: c.6.1)
    }

    func testMatchesScatterForEveryBand() {
        var seed: UInt64 = 3
        for geometryCase in geometries {
            let g = geometry(geometryCase), channels = geometryCase.0
            let k = channels * g.kernelH * g.kernelW
            // The whole output, and a band of rows in the middle.
            for (oy0, oy1) in [(0, g.outHeight), (g.outHeight / 3, g.outHeight / 3 + 2)] {
                let columns = random(k * (oy1 - oy0) * g.outWidth, seed: &seed)
                let start = random(channels * g.height * g.width, seed: &seed)
                var want = start
                scatter(columns, channels: channels, g, rows: oy0, oy1, into: &want)
                var got = start
                Im2Col.accumulate(columns, channels: channels, geometry: g, rows: oy0, oy1, into: &got)
                for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-12, "\(geometryCase)") }
                // Float: the same additions in the same order as in Double, each rounded.
                var gotFloat = start.map(Float.init)
                Im2Col.accumulate(
                    columns.map(Float.init), channels: channels, geometry: g, rows: oy0, oy1, into: &gotFloat)
                for (a, b) in zip(gotFloat, want) { XCTAssertEqual(Double(a), b, accuracy: 1e-5, "\(geometryCase)") }
            }
        }
    }

    /// ⟨fill(x), c⟩ = ⟨x, accumulate(c)⟩: col2im is the adjoint of im2col.
    func testIsTheAdjointOfFill() {
        var seed: UInt64 = 5
        for geometryCase in geometries {
            let g = geometry(geometryCase), channels = geometryCase.0
            let k = channels * g.kernelH * g.kernelW
            let (oy0, oy1) = (1, g.outHeight)
            let count = k * (oy1 - oy0) * g.outWidth
            let x = random(channels * g.height * g.width, seed: &seed), c = random(count, seed: &seed)
            var columns = [Double](repeating: .nan, count: count)
            Im2Col.fill(x, channels: channels, geometry: g, rows: oy0, oy1, into: &columns)
            var back = [Double](repeating: 0, count: x.count)
            Im2Col.accumulate(c, channels: channels, geometry: g, rows: oy0, oy1, into: &back)
            let left = zip(columns, c).reduce(0) { $0 + $1.0 * $1.1 }
            let right = zip(x, back).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(left, right, accuracy: 1e-10, "\(geometryCase)")
        }
    }

    func testResultsDoNotDependOnThreadCount() {
        var seed: UInt64 = 9
        let g = Im2Col.Geometry(
            height: 30, width: 37, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1,
            dilationW: 1)
        // 32768 / (9 · 285) = 12 channels or more per thread (`accumulate`'s minimum): 48 channels split in 3.
        let channels = 48
        let columns = random(channels * 9 * g.outHeight * g.outWidth, seed: &seed).map(Float.init)
        var results = [[Float]]()
        for threads in [1, 2, 3] {
            Parallel.numThreads = threads
            var input = [Float](repeating: 0.25, count: channels * g.height * g.width)
            Im2Col.accumulate(columns, channels: channels, geometry: g, rows: 0, g.outHeight, into: &input)
            results.append(input)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }
}
