import SwiftRCNNOps
import XCTest

/// `Interpolation.nearestBackward` against torch's backward written out, and as the adjoint of `nearest`.
final class NearestBackwardTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// (planes, H, W, Ho, Wo): the FPN's exact doubling and its non-integer factors (25 × 34 -> 50 × 67), shrinking,
    /// one row or column, the same size.
    let sizes = [
        (3, 25, 34, 50, 67), (2, 13, 17, 26, 34), (2, 7, 9, 13, 20), (2, 10, 9, 4, 5), (1, 1, 5, 3, 11),
        (2, 6, 5, 6, 5),
    ]

    func random(_ n: Int, seed: inout UInt64) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(seed >> 11) % 2001 - 1000) / 1000
        }
    }

    /// torch's CPU upsample_nearest2d_backward: a zeroed input gradient, to which each output's gradient is added
    /// at its source pixel, outputs in order; sources floor(o · (in / out)) in float32, clamped.
    func torchBackward(_ g: [Float], planes: Int, h: Int, w: Int, ho: Int, wo: Int) -> [Float] {
        func source(_ o: Int, _ size: Int, _ out: Int) -> Int {
            min(Int((Float(o) * (Float(size) / Float(out))).rounded(.down)), size - 1)
        }
        var gi = [Float](repeating: 0, count: planes * h * w)
        for plane in 0..<planes {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    gi[(plane * h + source(oy, h, ho)) * w + source(ox, w, wo)] += g[(plane * ho + oy) * wo + ox]
                }
            }
        }
        return gi
    }

    func testMatchesTorchSumsExactly() {
        var seed: UInt64 = 21
        for (planes, h, w, ho, wo) in sizes {
            let g = random(planes * ho * wo, seed: &seed)
            let want = torchBackward(g, planes: planes, h: h, w: w, ho: ho, wo: wo)
            for threads in [1, 2, 3] {
                Parallel.numThreads = threads
                var got = [Float](repeating: .nan, count: planes * h * w)
                Interpolation.nearestBackward(
                    g, planes: planes, outHeight: ho, outWidth: wo, height: h, width: w, into: &got, accumulate: false)
                XCTAssertEqual(got, want, "\((planes, h, w, ho, wo)), \(threads) threads")
            }
            // accumulate adds the same sums.
            let start = random(planes * h * w, seed: &seed)
            var sum = start
            Interpolation.nearestBackward(
                g, planes: planes, outHeight: ho, outWidth: wo, height: h, width: w, into: &sum, accumulate: true)
            XCTAssertEqual(sum, zip(start, want).map { $0 + $1 })
        }
    }

    /// ⟨nearest(x), g⟩ = ⟨x, nearestBackward(g)⟩, in Double: the backward uses the forward's index rule.
    func testIsTheAdjointOfNearest() {
        var seed: UInt64 = 23
        for (planes, h, w, ho, wo) in sizes {
            let x = random(planes * h * w, seed: &seed).map(Double.init)
            let g = random(planes * ho * wo, seed: &seed).map(Double.init)
            var y = [Double](repeating: .nan, count: g.count)
            Interpolation.nearest(x, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo, into: &y)
            var gx = [Double](repeating: .nan, count: x.count)
            Interpolation.nearestBackward(
                g, planes: planes, outHeight: ho, outWidth: wo, height: h, width: w, into: &gx, accumulate: false)
            let left = zip(y, g).reduce(0) { $0 + $1.0 * $1.1 }
            let right = zip(x, gx).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(left, right, accuracy: 1e-9, "\((planes, h, w, ho, wo))")
        }
    }
}
