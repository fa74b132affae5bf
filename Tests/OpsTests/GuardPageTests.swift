#if canImport(Glibc)
import Glibc
#endif
import SwiftRCNNOps
import XCTest

/// Values placed directly against an inaccessible page (after their last element, or before their first), so that a
/// kernel's vector load or store one element out of bounds faults instead of passing silently.
final class GuardedBuffer<T> {
    private let base: UnsafeMutableRawPointer
    private let total: Int
    let pointer: UnsafeMutablePointer<T>
    let count: Int

    init(_ values: [T], guardAfter: Bool) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = max(1, values.count) * MemoryLayout<T>.stride
        let dataPages = (bytes + page - 1) / page
        total = (dataPages + 2) * page
        base = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        precondition(base != MAP_FAILED)
        mprotect(base, page, PROT_NONE)
        mprotect(base + (dataPages + 1) * page, page, PROT_NONE)
        let start = guardAfter ? base + (dataPages + 1) * page - values.count * MemoryLayout<T>.stride : base + page
        pointer = start.bindMemory(to: T.self, capacity: values.count)
        pointer.initialize(from: values, count: values.count)
        count = values.count
    }

    var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    deinit { munmap(base, total) }
}

/// `n` values in [-1, 1) with few repeats (a period of 997), shifted by `seed`.
func guardValues<T: BinaryFloatingPoint>(_ n: Int, seed: Int = 0) -> [T] {
    let period = (0..<min(n, 997)).map { T((($0 + seed) * 7919) % 997) / 500 - 1 }
    var values = [T]()
    values.reserveCapacity(n)
    while values.count < n { values.append(contentsOf: period.prefix(n - values.count)) }
    return values
}

/// Equal element by element, NaN equal to NaN. Bitwise equal arrays are recognised first (a debug build compares
/// large arrays element by element slowly).
func sameValues<T: FloatingPoint>(_ a: [T], _ b: [T]) -> Bool {
    if a.count != b.count { return false }
    if a.isEmpty { return true }
    let bitwise = a.withUnsafeBytes { x in
        b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
    }
    return bitwise || zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
}

/// The kernels with vector fast paths read and write only inside their buffers, on sizes around their lane groups:
/// run on guarded copies, they must give what they give on ordinary arrays (and not fault).
final class GuardPageTests: XCTestCase {
    func values(_ n: Int) -> [Float] { (0..<n).map { Float(($0 * 7919) % 997) / 500 - 1 } }

    func testMaxPool() {
        for (h, w) in [(3, 33), (4, 34), (5, 35), (2, 64), (6, 66), (1, 1), (3, 17)] {
            let x = values(2 * h * w), ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1
            var want = [Float](repeating: 0, count: 2 * ho * wo)
            MaxPool2d.forward(x, planes: 2, height: h, width: w, kernel: 3, stride: 2, padding: 1, into: &want)
            for guardAfter in [true, false] {
                let input = GuardedBuffer(x, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0, count: want.count), guardAfter: guardAfter)
                MaxPool2d.forward(input.pointer, planes: 2, height: h, width: w, kernel: 3, stride: 2, padding: 1,
                                  into: output.pointer)
                XCTAssertEqual(output.array, want, "\((h, w))")
            }
        }
    }

    func testIm2Col() {
        for (h, w, k, s, p) in [(5, 64, 3, 2, 1), (4, 66, 7, 2, 3), (3, 33, 1, 2, 0), (6, 40, 3, 1, 1), (2, 31, 3, 2, 1)] {
            let g = Im2Col.Geometry(height: h, width: w, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p,
                                    padW: p, dilationH: 1, dilationW: 1)
            let x = values(2 * h * w), n = 2 * k * k * g.outHeight * g.outWidth
            var want = [Float](repeating: 0, count: n)
            Im2Col.fill(x, channels: 2, geometry: g, rows: 0, g.outHeight, into: &want)
            for guardAfter in [true, false] {
                let input = GuardedBuffer(x, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0, count: n), guardAfter: guardAfter)
                Im2Col.fill(input.pointer, channels: 2, geometry: g, rows: 0, g.outHeight, into: output.pointer)
                XCTAssertEqual(output.array, want, "\((h, w, k, s, p))")
            }
        }
    }

    func testWinograd() {
        for (n, c, k, h, w) in [(1, 3, 4, 14, 14), (2, 2, 3, 5, 34), (1, 2, 2, 7, 35), (1, 1, 9, 3, 64), (3, 2, 2, 1, 1)] {
            let x = values(n * c * h * w), g = values(k * c * 9)
            var u = [Float](repeating: 0, count: Winograd.weightCount(outChannels: k, inChannels: c))
            Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u)
            var want = [Float](repeating: 0, count: n * k * h * w)
            Winograd.convolve(x, batch: n, channels: c, height: h, width: w, weights: u, outChannels: k, bias: nil,
                              relu: true, into: &want)
            for guardAfter in [true, false] {
                let input = GuardedBuffer(x, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0, count: want.count), guardAfter: guardAfter)
                Winograd.convolve(input.pointer, batch: n, channels: c, height: h, width: w, weights: u,
                                  outChannels: k, bias: nil, relu: true, into: output.pointer)
                XCTAssertEqual(output.array, want, "\((n, c, k, h, w))")
            }
        }
    }

    func testGEMM() {
        for (m, n, k) in [(9, 33, 5), (8, 64, 129), (3, 31, 700), (17, 65, 2)] {
            let a = values(m * k), b = values(k * n)
            var want = [Float](repeating: 0, count: m * n)
            GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &want, ldc: n)
            for guardAfter in [true, false] {
                let ga = GuardedBuffer(a, guardAfter: guardAfter), gb = GuardedBuffer(b, guardAfter: guardAfter)
                let gc = GuardedBuffer([Float](repeating: 0, count: m * n), guardAfter: guardAfter)
                GEMM.multiply(m: m, n: n, k: k, a: ga.pointer, lda: k, b: gb.pointer, ldb: n, c: gc.pointer, ldc: n)
                XCTAssertEqual(gc.array, want, "\((m, n, k))")
            }
        }
    }
}
