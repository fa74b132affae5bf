import SwiftRCNNOps
import XCTest

/// Choosing the instruction-set path, and what every path must agree on.
final class ISATests: XCTestCase {
    func testSupportedPathsAndDefault() {
        XCTAssertEqual(ISA.supported.first, .generic, "the portable path runs everywhere")
        XCTAssertTrue(ISA.supported.contains(ISA.best))
        XCTAssertTrue(ISA.current.isSupported)
        #if arch(x86_64)
            XCTAssertFalse(CPU.model.isEmpty, "x86-64 CPUs report a brand string")
            XCTAssertTrue(CPU.features.contains(.sse42) || ISA.best == .generic)
            if CPU.features.isSuperset(of: [.avx2, .fma]) { XCTAssertNotEqual(ISA.best, .generic) }
        #endif
        for isa in ISA.allCases {
            XCTAssertEqual(isa.isSupported, ISA.supported.contains(isa))
            XCTAssertTrue(isa.requiredFeatures.isSuperset(of: ISA.generic.requiredFeatures))
        }
    }

    /// A test build with the avx512 path compiled for AVX2 (`SWIFTRCNN_AVX512_AS_AVX2`) runs that path wherever
    /// avx2 runs, and says what it was compiled for; a normal build asks for AVX-512.
    func testAVX512PathBuiltForAVX2() {
        #if arch(x86_64)
            if ISA.avx512AsAVX2 {
                XCTAssertEqual(ISA.avx512.compilerTargetCPU, "haswell")
                XCTAssertEqual(ISA.avx512.isSupported, ISA.avx2.isSupported)
                XCTAssertTrue(ISA.avx512.requiredFeatures == ISA.avx2.requiredFeatures)
            } else {
                XCTAssertEqual(ISA.avx512.compilerTargetCPU, "skylake-avx512")
                XCTAssertTrue(ISA.avx512.requiredFeatures.contains(.avx512f))
            }
        #endif
    }

    func testSelectingNamesWhatIsWrong() throws {
        XCTAssertThrowsError(try ISA(validating: "sse9")) {
            XCTAssertTrue(($0 as! ISAError).message.contains("unknown instruction-set path 'sse9'"))
        }
        for isa in ISA.allCases where !isa.isSupported {
            XCTAssertThrowsError(try ISA(validating: isa.rawValue)) {
                let message = ($0 as! ISAError).message
                XCTAssertTrue(message.contains("supported: generic"), message)
                if isa.isBuilt { XCTAssertTrue(message.contains("lacks"), message) }
            }
        }
        let saved = ISA.current
        defer { try! ISA.select(saved) }
        for isa in ISA.supported {
            try ISA.select(isa.rawValue.uppercased())
            XCTAssertEqual(ISA.current, isa)
        }
    }

    /// Float products of random values: every path within float32 rounding of a Double reference, and each path
    /// bit-identical run to run.
    func testPathsAgreeWithinRounding() {
        let (m, n, k) = (70, 300, 900)
        var state: UInt64 = 11
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        let a = (0..<m * k).map { _ in random() }, b = (0..<k * n).map { _ in random() }
        var reference = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let x = Double(a[i * k + p])
                for j in 0..<n { reference[i * n + j] += x * Double(b[p * n + j]) }
            }
        }
        forEachISA { isa in
            var c = [Float](repeating: .nan, count: m * n), again = c
            GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
            GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &again, ldc: n)
            XCTAssertEqual(c, again, "\(isa): not deterministic")
            let worst = zip(c, reference).map { abs(Double($0) - $1) }.max() ?? .infinity
            // Sums of 900 products of magnitude < 1: float32 rounding stays far below 1e-3.
            XCTAssertLessThan(worst, 1e-3, "\(isa)")
        }
    }

    /// The RoI kernels' channel tiles (RoIAlign and RoIPool forward) run in each path's kernels with the same
    /// arithmetic in the same order (no fused multiply-adds): every path gives the generic path's results bit for
    /// bit, on channel counts around the 16-lane tiles, Float and Double.
    func testRoITilesAgreeOnEveryPath() {
        func check<T: KernelFloat>(_: T.Type) {
            let (n, h, w) = (2, 9, 21)
            for c in [1, 16, 21] {
                let x: [T] = (0..<n * c * h * w).map { T(($0 * 7919) % 1009) / 500 - 1 }
                let rois: [T] = [
                    0, 0, 0, 40, 18, 1, 3.5, 2.25, 30.75, 15.5, 0, -4, -3, 9, 7, 1, 35, 10, 50, 30, 0, 12, 6, 12.5, 6.2,
                ]
                let k = rois.count / 5
                func run() -> ([T], [T], [Int64]) {
                    var align = [T](repeating: .nan, count: k * c * 7 * 7)
                    RoIAlign.forward(
                        input: x, batch: n, channels: c, height: h, width: w, rois: rois, count: k,
                        spatialScale: 0.5, pooledH: 7, pooledW: 7, samplingRatio: 0, aligned: true, output: &align)
                    var pool = [T](repeating: .nan, count: k * c * 3 * 2)
                    var argmax = [Int64](repeating: -7, count: pool.count)
                    RoIPool.forward(
                        input: x, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                        pooledHeight: 3, pooledWidth: 2, spatialScale: 0.5, output: &pool, argmax: &argmax)
                    return (align, pool, argmax)
                }
                let want = onISA(.generic, run)
                forEachISA { isa in
                    let got = run()
                    XCTAssertTrue(sameValues(got.0, want.0), "\(T.self) \(isa) RoIAlign, \(c) channels")
                    XCTAssertTrue(sameValues(got.1, want.1), "\(T.self) \(isa) RoIPool, \(c) channels")
                    XCTAssertEqual(got.2, want.2, "\(T.self) \(isa) RoIPool argmax, \(c) channels")
                }
            }
        }
        check(Float.self)
        check(Double.self)
    }

    /// Winograd filters packed for one path and run on another are re-packed: the results are those of filters
    /// packed for the running path.
    func testWinogradFiltersMoveBetweenPaths() {
        let (batch, c, k, h, w) = (1, 13, 11, 9, 21)
        let x = (0..<(batch * c * h * w)).map { Float(($0 * 7919) % 1000) / 500 - 1 }
        let g = (0..<(k * c * 9)).map { Float(($0 * 104729) % 1000) / 500 - 1 }
        for source in ISA.supported {
            var u = [Float](repeating: 0, count: Winograd.weightCount(outChannels: k, inChannels: c, for: source))
            Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u, for: source)
            forEachISA { isa in
                var native = [Float](repeating: 0, count: Winograd.weightCount(outChannels: k, inChannels: c))
                Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &native)
                var want = [Float](repeating: .nan, count: batch * k * h * w), got = want
                Winograd.convolve(
                    x, batch: batch, channels: c, height: h, width: w, weights: native,
                    outChannels: k, bias: nil, relu: false, into: &want)
                Winograd.convolve(
                    x, batch: batch, channels: c, height: h, width: w, weights: u, packedFor: source,
                    outChannels: k, bias: nil, relu: false, into: &got)
                XCTAssertEqual(got, want, "packed for \(source), run on \(isa)")
            }
        }
    }
}
