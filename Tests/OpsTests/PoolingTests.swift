import SwiftRCNNOps
import XCTest

/// `MaxPool2d.backward` against torch's choice of maximum, written out: ties, NaN, -inf and padding.
final class MaxPool2dBackwardTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// The flat index (y·W + x) torch's CPU max_pool2d returns for each output of one plane.
    func indices(_ x: [Float], h: Int, w: Int, k: Int, s: Int, p: Int) -> [Int] {
        let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
        var result = [Int]()
        for oy in 0..<ho {
            for ox in 0..<wo {
                // torch: maxindex starts at the window's first element inside the input, maxval at -inf, and
                // `if ((val > maxval) || std::isnan(val))` takes over in row-major order.
                var best: Int? = nil
                var bestValue = -Float.infinity
                for y in max(0, oy * s - p)..<min(h, oy * s - p + k) {
                    for xx in max(0, ox * s - p)..<min(w, ox * s - p + k) {
                        let v = x[y * w + xx]
                        if best == nil { best = y * w + xx }
                        if v > bestValue || v.isNaN {
                            bestValue = v
                            best = y * w + xx
                        }
                    }
                }
                result.append(best!)
            }
        }
        return result
    }

    /// Cases printed by torch 2.x (`F.max_pool2d(..., return_indices=True)`): the last NaN wins, a tie goes to
    /// the first maximum, and an all -inf window to its first element inside the input.
    func testTorchIndices() {
        func routed(_ x: [Float], h: Int, w: Int, k: Int, s: Int, p: Int) -> [Float] {
            let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            // Output gradient 2^i at output i, so each input's gradient names the outputs routed to it.
            let g = (0..<(ho * wo)).map { Float(1 << $0) }
            var gi = [Float](repeating: 0, count: h * w)
            MaxPool2d.backward(g, input: x, planes: 1, height: h, width: w, kernel: k, stride: s, padding: p, into: &gi)
            return gi
        }
        let nan = Float.nan
        XCTAssertEqual(
            routed([1, nan, 3, nan, 5, 5, 2, 2, 1], h: 3, w: 3, k: 3, s: 1, p: 0), [0, 0, 0, 1, 0, 0, 0, 0, 0])
        XCTAssertEqual(routed([1, 5, 3, 4, 5, 5, 2, 2, 1], h: 3, w: 3, k: 3, s: 1, p: 0), [0, 1, 0, 0, 0, 0, 0, 0, 0])
        // torch's indices [[0, 0, 1], [0, 0, 1], [3, 3, 4]] for a 3 × 3 all -inf plane, kernel 3, stride 1, padding 1.
        let gi = routed([Float](repeating: -.infinity, count: 9), h: 3, w: 3, k: 3, s: 1, p: 1)
        XCTAssertEqual(gi, [1 + 2 + 8 + 16, 4 + 32, 0, 64 + 128, 256, 0, 0, 0, 0])
    }

    func testMatchesTorchRuleOnTiesNaNAndInfinity() {
        var seed: UInt64 = 17
        // (planes, H, W, kernel, stride, padding): ResNet's 3/2/1 on odd and even sizes and rows wide enough for
        // one or more 16-output vector groups, the FPN's 1/2/0, and others.
        for (planes, h, w, k, s, p) in [
            (3, 9, 11, 3, 2, 1), (2, 10, 12, 3, 2, 1), (2, 7, 70, 3, 2, 1), (2, 6, 99, 3, 2, 1), (2, 5, 100, 3, 2, 1),
            (3, 9, 10, 1, 2, 0), (2, 8, 9, 2, 2, 0),
            (2, 6, 7, 3, 1, 1), (1, 13, 5, 5, 3, 2),
        ] {
            // Few distinct values: many ties; some NaN and ±inf.
            let x: [Float] = (0..<(planes * h * w)).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                switch (seed >> 33) % 16 {
                case 0: return .nan
                case 1: return -.infinity
                case 2: return .infinity
                default: return Float((seed >> 40) % 4)
                }
            }
            let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            let g: [Float] = (0..<(planes * ho * wo)).map { Float($0 % 7) - 3 }
            var want = [Float](repeating: 0.5, count: planes * h * w)
            for plane in 0..<planes {
                let picked = indices(Array(x[plane * h * w..<(plane + 1) * h * w]), h: h, w: w, k: k, s: s, p: p)
                for (o, i) in picked.enumerated() { want[plane * h * w + i] += g[plane * ho * wo + o] }
            }
            for threads in [1, 2, 3] {
                Parallel.numThreads = threads
                var got = [Float](repeating: 0.5, count: planes * h * w)
                MaxPool2d.backward(
                    g, input: x, planes: planes, height: h, width: w, kernel: k, stride: s, padding: p, into: &got)
                XCTAssertEqual(got, want, "\((planes, h, w, k, s, p)), \(threads) threads")
            }
        }
    }
}
