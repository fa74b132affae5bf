import SwiftRCNNOps
import XCTest

/// Depthwise convolution against a direct sum over each channel's window, on every instruction-set path: the vector
/// loops (stride 1 and 2, Float and Double), the scalar one (stride 3), borders, and maps smaller than the kernel.
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

    func run<T: KernelFloat>(
        _ x: UnsafePointer<T>, _ wt: [T], _ b: [T], n: Int, c: Int, h: Int, w: Int, k: Int, s: Int, p: Int,
        into out: UnsafeMutablePointer<T>
    ) {
        wt.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                Depthwise.forward(
                    x, weight: wp.baseAddress!, bias: bp.baseAddress!, batch: n, channels: c, height: h, width: w,
                    kernel: k, stride: s, padding: p, into: out)
            }
        }
    }

    /// On every path: against the direct sum, and the same bit for bit on guarded buffers (a vector load or store
    /// past the input or output row faults) and on one thread.
    func check<T: KernelFloat>(
        _: T.Type, n: Int, c: Int, h: Int, w: Int, k: Int, s: Int, p: Int? = nil, tolerance: T
    ) {
        let x: [T] = guardValues(n * c * h * w, seed: 3)
        let wt: [T] = guardValues(c * k * k, seed: 11)
        let b: [T] = guardValues(c, seed: 5)
        let p = p ?? (k - 1) / 2
        let expected = reference(x, wt, b, n: n, c: c, h: h, wd: w, k: k, s: s, p: p)
        forEachISA { isa in
            var out = [T](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    run(xp.baseAddress!, wt, b, n: n, c: c, h: h, w: w, k: k, s: s, p: p, into: op.baseAddress!)
                }
            }
            for i in expected.indices {
                XCTAssertEqual(out[i], expected[i], accuracy: tolerance, "\(isa) k \(k) s \(s) \(h)x\(w) at \(i)")
            }
            for guardAfter in [true, false] {
                let input = GuardedBuffer(x, guardAfter: guardAfter)
                let output = GuardedBuffer([T](repeating: .nan, count: expected.count), guardAfter: guardAfter)
                run(input.pointer, wt, b, n: n, c: c, h: h, w: w, k: k, s: s, p: p, into: output.pointer)
                XCTAssertTrue(sameValues(output.array, out), "\(isa) k \(k) s \(s) \(h)x\(w) guarded")
            }
            let threads = Parallel.numThreads
            Parallel.numThreads = 1
            defer { Parallel.numThreads = threads }
            var single = [T](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xp in
                single.withUnsafeMutableBufferPointer { op in
                    run(xp.baseAddress!, wt, b, n: n, c: c, h: h, w: w, k: k, s: s, p: p, into: op.baseAddress!)
                }
            }
            XCTAssertTrue(sameValues(single, out), "\(isa) k \(k) s \(s) \(h)x\(w) one thread")
        }
    }

    func testVectorPathMatchesDirectSums() {
        for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            check(Float.self, n: 2, c: 3, h: 13, w: 37, k: k, s: s, tolerance: 1e-5)
            check(Float.self, n: 1, c: 2, h: 9, w: 24, k: k, s: s, tolerance: 1e-5)
            check(Double.self, n: 1, c: 2, h: 7, w: 29, k: k, s: s, tolerance: 1e-12)
        }
    }

    /// Rows wide enough for the blocks of four vectors on every path (64 Floats on AVX-512), with every remainder
    /// of a lane group, so the overlapping last vector and the stride-2 pair bound are reached.
    func testWideRowsEveryRemainder() {
        for w in [64, 65, 70, 79, 80, 131, 150] {
            for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
                check(Float.self, n: 1, c: 2, h: 11, w: w, k: k, s: s, tolerance: 1e-5)
            }
        }
        check(Double.self, n: 1, c: 1, h: 5, w: 67, k: 3, s: 2, tolerance: 1e-12)
        check(Double.self, n: 1, c: 1, h: 5, w: 35, k: 5, s: 1, tolerance: 1e-12)
    }

    func testScalarPathAndTinyMaps() {
        check(Double.self, n: 1, c: 4, h: 11, w: 19, k: 3, s: 3, tolerance: 1e-12)
        check(Double.self, n: 1, c: 2, h: 2, w: 3, k: 5, s: 1, tolerance: 1e-12)
        check(Float.self, n: 1, c: 2, h: 3, w: 2, k: 5, s: 2, tolerance: 1e-5)
        // Padding wider than the map and no padding at all.
        check(Float.self, n: 1, c: 2, h: 4, w: 20, k: 3, s: 1, p: 0, tolerance: 1e-5)
        check(Float.self, n: 1, c: 2, h: 3, w: 40, k: 5, s: 2, p: 4, tolerance: 1e-5)
        check(Float.self, n: 1, c: 1, h: 1, w: 1, k: 3, s: 1, tolerance: 1e-5)
    }
}
