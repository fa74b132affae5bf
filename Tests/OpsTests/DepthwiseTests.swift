import SwiftRCNNOps
import XCTest

/// Depthwise convolution against a direct sum over each channel's window, for the vector path (Float, stride 1 and
/// 2), the scalar one (Double, stride 3) and maps smaller than the kernel.
final class DepthwiseTests: XCTestCase {
    func reference<T: KernelFloat>(
        _ x: [T], _ w: [T], _ b: [T], n: Int, c: Int, h: Int, wd: Int, k: Int, s: Int, p: Int
    ) -> [T] {
        let ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1
        var out = [T](repeating: 0, count: n * c * ho * wo)
        for i in 0..<(n * c) {
            let ch = i % c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var sum = b[ch]
                    for ky in 0..<k {
                        for kx in 0..<k {
                            let y = oy * s - p + ky, xx = ox * s - p + kx
                            if y >= 0 && y < h && xx >= 0 && xx < wd {
                                sum += w[ch * k * k + ky * k + kx] * x[i * h * wd + y * wd + xx]
                            }
                        }
                    }
                    out[(i * ho + oy) * wo + ox] = sum
                }
            }
        }
        return out
    }

    func check<T: KernelFloat>(_: T.Type, n: Int, c: Int, h: Int, w: Int, k: Int, s: Int, tolerance: T) {
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(n * c * h * w)).map { _ in T(Double.random(in: -1...1, using: &rng)) }
        let wt = (0..<(c * k * k)).map { _ in T(Double.random(in: -1...1, using: &rng)) }
        let b = (0..<c).map { _ in T(Double.random(in: -1...1, using: &rng)) }
        let p = (k - 1) / 2
        let expected = reference(x, wt, b, n: n, c: c, h: h, wd: w, k: k, s: s, p: p)
        var out = [T](repeating: .nan, count: expected.count)
        x.withUnsafeBufferPointer { xp in
            wt.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        Depthwise.forward(
                            xp.baseAddress!, weight: wp.baseAddress!, bias: bp.baseAddress!, batch: n, channels: c,
                            height: h, width: w, kernel: k, stride: s, padding: p, into: op.baseAddress!)
                    }
                }
            }
        }
        for i in expected.indices {
            XCTAssertEqual(out[i], expected[i], accuracy: tolerance, "k \(k) s \(s) \(h)x\(w) at \(i)")
        }
    }

    func testVectorPathMatchesDirectSums() {
        for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            check(Float.self, n: 2, c: 3, h: 13, w: 37, k: k, s: s, tolerance: 1e-5)
            check(Float.self, n: 1, c: 2, h: 9, w: 24, k: k, s: s, tolerance: 1e-5)
        }
    }

    func testScalarPathAndTinyMaps() {
        check(Double.self, n: 1, c: 4, h: 11, w: 19, k: 3, s: 3, tolerance: 1e-12)
        check(Double.self, n: 1, c: 2, h: 2, w: 3, k: 5, s: 1, tolerance: 1e-12)
        check(Float.self, n: 1, c: 2, h: 3, w: 2, k: 5, s: 2, tolerance: 1e-5)
    }
}
