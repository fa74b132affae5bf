#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
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
                MaxPool2d.forward(
                    input.pointer, planes: 2, height: h, width: w, kernel: 3, stride: 2, padding: 1,
                    into: output.pointer)
                XCTAssertEqual(output.array, want, "\((h, w))")
            }
        }
    }

    func testIm2Col() {
        forEachISA { isa in
            for (h, w, k, s, p) in [
                (5, 64, 3, 2, 1), (4, 66, 7, 2, 3), (3, 33, 1, 2, 0), (6, 40, 3, 1, 1), (2, 31, 3, 2, 1),
            ] {
                let g = Im2Col.Geometry(
                    height: h, width: w, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p,
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
    }

    func testWinograd() {
        forEachISA { isa in
            for (n, c, k, h, w) in [
                (1, 3, 4, 14, 14), (2, 2, 3, 5, 34), (1, 2, 2, 7, 35), (1, 1, 9, 3, 64), (3, 2, 2, 1, 1),
            ] {
                let x = values(n * c * h * w), g = values(k * c * 9)
                var u = [Float](repeating: 0, count: Winograd.weightCount(outChannels: k, inChannels: c))
                Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u)
                var want = [Float](repeating: 0, count: n * k * h * w)
                Winograd.convolve(
                    x, batch: n, channels: c, height: h, width: w, weights: u, outChannels: k, bias: nil,
                    relu: true, into: &want)
                for guardAfter in [true, false] {
                    let input = GuardedBuffer(x, guardAfter: guardAfter)
                    let output = GuardedBuffer([Float](repeating: 0, count: want.count), guardAfter: guardAfter)
                    Winograd.convolve(
                        input.pointer, batch: n, channels: c, height: h, width: w, weights: u,
                        outChannels: k, bias: nil, relu: true, into: output.pointer)
                    XCTAssertEqual(output.array, want, "\((n, c, k, h, w))")
                }
            }
        }
    }

    func testGEMM() {
        forEachISA { isa in
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

    func testMaxPoolOtherWindows() {
        for (h, w) in [(4, 34), (5, 33), (1, 1), (2, 17)] {
            for (k, st, p) in [(2, 2, 0), (3, 1, 1), (1, 1, 0), (3, 2, 0), (5, 3, 2)] where h + 2 * p >= k {
                let x = values(2 * h * w), ho = (h + 2 * p - k) / st + 1, wo = (w + 2 * p - k) / st + 1
                var want = [Float](repeating: -7, count: 2 * ho * wo)
                MaxPool2d.forward(x, planes: 2, height: h, width: w, kernel: k, stride: st, padding: p, into: &want)
                for guardAfter in [true, false] {
                    let input = GuardedBuffer(x, guardAfter: guardAfter)
                    let output = GuardedBuffer([Float](repeating: -7, count: want.count), guardAfter: guardAfter)
                    MaxPool2d.forward(
                        input.pointer, planes: 2, height: h, width: w, kernel: k, stride: st,
                        padding: p, into: output.pointer)
                    XCTAssertEqual(output.array, want, "\((h, w, k, st, p))")
                }
            }
        }
    }

    func testIm2ColOtherGeometries() {
        forEachISA { isa in
            // (h, w, kh, kw, stride, pad, dilation), and a band of rows that is not the whole output.
            for (h, w, kh, kw, s, p, d) in [
                (5, 40, 3, 1, 2, 0, 2), (4, 35, 1, 5, 3, 2, 1), (7, 66, 3, 3, 2, 2, 2),
                (1, 1, 1, 1, 1, 0, 1), (3, 17, 2, 2, 2, 0, 1),
            ] {
                let g = Im2Col.Geometry(
                    height: h, width: w, kernelH: kh, kernelW: kw, strideH: s, strideW: s, padH: p,
                    padW: p, dilationH: d, dilationW: d)
                for (oy0, oy1) in [(0, g.outHeight), (g.outHeight / 2, g.outHeight)] {
                    let x = values(3 * h * w), n = 3 * kh * kw * (oy1 - oy0) * g.outWidth
                    var want = [Float](repeating: -7, count: n)
                    Im2Col.fill(x, channels: 3, geometry: g, rows: oy0, oy1, into: &want)
                    for guardAfter in [true, false] {
                        let input = GuardedBuffer(x, guardAfter: guardAfter)
                        let output = GuardedBuffer([Float](repeating: -7, count: n), guardAfter: guardAfter)
                        Im2Col.fill(input.pointer, channels: 3, geometry: g, rows: oy0, oy1, into: output.pointer)
                        XCTAssertEqual(output.array, want, "\((h, w, kh, kw, s, p, d, oy0))")
                    }
                }
            }
        }
    }

    /// GEMM with transposed operands, row strides beyond the rows (every matrix ends at its last element),
    /// accumulation and the epilogue (bias, addend, ReLU), in both element types.
    func checkGEMM<T: KernelFloat>(_: T.Type) {
        for (m, n, k) in [(9, 33, 5), (8, 64, 129), (3, 31, 17), (17, 65, 2), (1, 1, 1), (16, 16, 700)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2
                let aCount = ((ta ? k : m) - 1) * lda + (ta ? m : k)
                let bCount = ((tb ? n : k) - 1) * ldb + (tb ? k : n), cCount = (m - 1) * ldc + n
                let a: [T] = guardValues(aCount), b: [T] = guardValues(bCount, seed: 1)
                let c: [T] = guardValues(cCount, seed: 2), bias: [T] = guardValues(m, seed: 3)
                let addend: [T] = guardValues(cCount, seed: 4)
                for (accumulate, epilogue) in [(false, false), (true, true), (false, true)] {
                    let label = "\((T.self, m, n, k, ta, tb, accumulate, epilogue))"
                    var want = c
                    bias.withUnsafeBufferPointer { bp in
                        addend.withUnsafeBufferPointer { ap in
                            GEMM.multiply(
                                m: m, n: n, k: k, a: a, lda: lda, transposeA: ta, b: b, ldb: ldb,
                                transposeB: tb, c: &want, ldc: ldc, accumulate: accumulate,
                                epilogue: epilogue
                                    ? GEMMEpilogue(
                                        bias: bp.baseAddress,
                                        addend: ap.baseAddress, relu: true) : nil)
                        }
                    }
                    for guardAfter in [true, false] {
                        let ga = GuardedBuffer(a, guardAfter: guardAfter)
                        let gb = GuardedBuffer(b, guardAfter: guardAfter), gc = GuardedBuffer(c, guardAfter: guardAfter)
                        let gbias = GuardedBuffer(bias, guardAfter: guardAfter)
                        let gadd = GuardedBuffer(addend, guardAfter: guardAfter)
                        GEMM.multiply(
                            m: m, n: n, k: k, a: ga.pointer, lda: lda, transposeA: ta, b: gb.pointer,
                            ldb: ldb, transposeB: tb, c: gc.pointer, ldc: ldc, accumulate: accumulate,
                            epilogue: epilogue
                                ? GEMMEpilogue(
                                    bias: gbias.pointer, addend: gadd.pointer,
                                    relu: true) : nil)
                        XCTAssertEqual(gc.array, want, label)
                    }
                }
            }
        }
        // Prepacked A: partial last panel, several depth blocks (kc = 640), transposed or not.
        for (m, k) in [(1, 1), (7, 5), (8, 641), (9, 1300), (17, 33)] {
            for transposed in [false, true] {
                let lda = (transposed ? m : k) + 1, aCount = ((transposed ? k : m) - 1) * lda + (transposed ? m : k)
                let a: [T] = guardValues(aCount)
                var want = [T](repeating: -7, count: GEMM.prepackedCount(m: m, k: k))
                GEMM.prepackA(a, lda: lda, transposed: transposed, m: m, k: k, into: &want)
                for guardAfter in [true, false] {
                    let ga = GuardedBuffer(a, guardAfter: guardAfter)
                    let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
                    GEMM.prepackA(ga.pointer, lda: lda, transposed: transposed, m: m, k: k, into: out.pointer)
                    XCTAssertEqual(out.array, want, "\((T.self, m, k, transposed))")
                }
            }
        }
    }

    func testGEMMVariants() {
        forEachISA { isa in
            checkGEMM(Float.self)
            checkGEMM(Double.self)
        }
    }

    /// Winograd with guarded filters, transformed weights and bias, in both element types.
    func checkWinograd<T: KernelFloat>(_: T.Type, tile: Int) {
        for (n, c, k, h, w) in [
            (1, 3, 4, 14, 14), (2, 2, 3, 5, 34), (1, 2, 9, 7, 35), (3, 2, 2, 1, 1),
            (1, 1, 1, 2, 33), (1, 2, 2, 6, 66), (2, 1, 2, 3, 129),
        ] {
            let x: [T] = guardValues(n * c * h * w), g: [T] = guardValues(k * c * 9, seed: 1)
            let bias: [T] = guardValues(k, seed: 2)
            var u = [T](repeating: -7, count: Winograd.weightCount(outChannels: k, inChannels: c, tile: tile))
            Winograd.transformWeights(g, outChannels: k, inChannels: c, into: &u, tile: tile)
            var want = [T](repeating: -7, count: n * k * h * w)
            Winograd.convolve(
                x, batch: n, channels: c, height: h, width: w, weights: u, outChannels: k, bias: bias,
                relu: false, tile: tile, into: &want)
            for guardAfter in [true, false] {
                let gg = GuardedBuffer(g, guardAfter: guardAfter)
                let gu = GuardedBuffer([T](repeating: -7, count: u.count), guardAfter: guardAfter)
                Winograd.transformWeights(gg.pointer, outChannels: k, inChannels: c, into: gu.pointer, tile: tile)
                XCTAssertEqual(gu.array, u, "\((T.self, tile, n, c, k, h, w))")
                let gx = GuardedBuffer(x, guardAfter: guardAfter), gb = GuardedBuffer(bias, guardAfter: guardAfter)
                let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
                Winograd.convolve(
                    gx.pointer, batch: n, channels: c, height: h, width: w, weights: gu.pointer,
                    outChannels: k, bias: gb.pointer, relu: false, tile: tile, into: out.pointer)
                XCTAssertEqual(out.array, want, "\((T.self, tile, n, c, k, h, w))")
            }
        }
    }

    func testWinogradWeightsAndBias() {
        forEachISA { isa in
            for tile in [2, 4] {
                checkWinograd(Float.self, tile: tile)
                checkWinograd(Double.self, tile: tile)
            }
        }
    }

    func checkInterpolation<T: KernelFloat>(
        _: T.Type, planes: Int, height h: Int, width w: Int, outHeight ho: Int,
        outWidth wo: Int
    ) {
        let label = "\((T.self, planes, h, w, ho, wo))"
        let x: [T] = guardValues(planes * h * w), base: [T] = guardValues(planes * ho * wo, seed: 3)
        var nearest = [T](repeating: -7, count: base.count), sum = base, bilinear = nearest
        Interpolation.nearest(x, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo, into: &nearest)
        Interpolation.nearest(
            x, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo, into: &sum,
            accumulate: true)
        Interpolation.bilinear(x, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo, into: &bilinear)
        for guardAfter in [true, false] {
            let gx = GuardedBuffer(x, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: base.count), guardAfter: guardAfter)
            Interpolation.nearest(
                gx.pointer, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo,
                into: out.pointer)
            XCTAssertEqual(out.array, nearest, "nearest \(label)")
            let acc = GuardedBuffer(base, guardAfter: guardAfter)
            Interpolation.nearest(
                gx.pointer, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo,
                into: acc.pointer, accumulate: true)
            XCTAssertEqual(acc.array, sum, "accumulate \(label)")
            let bil = GuardedBuffer([T](repeating: -7, count: base.count), guardAfter: guardAfter)
            Interpolation.bilinear(
                gx.pointer, planes: planes, height: h, width: w, outHeight: ho, outWidth: wo,
                into: bil.pointer)
            XCTAssertEqual(bil.array, bilinear, "bilinear \(label)")
        }
    }

    func testInterpolation() {
        for (h, w, ho, wo) in [
            (1, 1, 1, 1), (1, 1, 17, 33), (15, 16, 1, 1), (16, 17, 33, 31), (33, 31, 16, 15),
            (2, 3, 4, 6), (5, 7, 5, 7), (3, 33, 7, 65),
        ] {
            checkInterpolation(Float.self, planes: 3, height: h, width: w, outHeight: ho, outWidth: wo)
            checkInterpolation(Double.self, planes: 1, height: h, width: w, outHeight: ho, outWidth: wo)
        }
    }

    /// A Float resize of 2^23 + 30 samples to 2/3 as many: the source position of the last output rounds up to
    /// the input size, one sample past the row (a guarded run of this size takes seconds in a debug build).
    func testBilinearTapOfALongAxisStaysInside() {
        let (size, out) = (8_388_638, 5_592_426)
        let last: (i0: Int, i1: Int, w0: Float, w1: Float) = Interpolation.bilinearTap(
            out - 1, inSize: size,
            outSize: out)
        XCTAssertTrue(last == (size - 1, size - 1, 0, 1), "\(last)")
    }

    func checkPasteMasks<T: KernelFloat>(_: T.Type, maskSize m: Int, padding: Int, height: Int, width: Int) {
        // Boxes over the whole image, at its far corner, across each border, outside, tiny, empty, inverted, far
        // larger than the image and inside it.
        let (W, H) = (T(width), T(height))
        let boxes: [T] = [
            0, 0, W, H, W - 2, H - 2, W, H, W - 1, H - 1, W + 5, H + 3, -4, -3, 2, 1,
            W + 2, H + 2, W + 9, H + 9, -9, -9, -3, -3, 1, 1, 1.2, 1.1, 2, 2, 2, 2, 3, 3, 1, 1,
            -40, -30, W + 50, H + 60, 0.3 * W, 0.2 * H, 0.7 * W, 0.9 * H,
        ]
        let n = boxes.count / 4
        let masks: [T] = guardValues(n * m * m)
        var want = [T](repeating: -7, count: n * height * width)
        PasteMasks.paste(
            masks: masks, boxes: boxes, count: n, maskSize: m, padding: padding, height: height,
            width: width, into: &want)
        for guardAfter in [true, false] {
            let gm = GuardedBuffer(masks, guardAfter: guardAfter), gb = GuardedBuffer(boxes, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
            PasteMasks.paste(
                masks: gm.pointer, boxes: gb.pointer, count: n, maskSize: m, padding: padding,
                height: height, width: width, into: out.pointer)
            XCTAssertEqual(out.array, want, "\((T.self, m, padding, height, width))")
            // Into an output that already reads as zeros: only the boxes' windows are written, with the same result.
            let zeroed = GuardedBuffer([T](repeating: 0, count: want.count), guardAfter: guardAfter)
            PasteMasks.paste(
                masks: gm.pointer, boxes: gb.pointer, count: n, maskSize: m, padding: padding,
                height: height, width: width, zeroed: true, into: zeroed.pointer)
            XCTAssertEqual(zeroed.array, want, "zeroed \((T.self, m, padding, height, width))")
        }
    }

    func testPasteMasks() {
        for (height, width) in [(1, 1), (15, 17), (33, 31), (16, 32)] {
            for m in [1, 14, 28] {
                for padding in [0, 1, 2] {
                    checkPasteMasks(Float.self, maskSize: m, padding: padding, height: height, width: width)
                }
            }
        }
        checkPasteMasks(Double.self, maskSize: 28, padding: 1, height: 33, width: 31)
    }

    func testVectorMathExp() {
        // Both range ends and non-finite values first, then ordinary ones.
        let special: [Double] = [
            0, -0.0, 1, -1, 88.7, 88.8, -104, -103, .infinity, -.infinity, .nan, 1e-30, 709.7,
            709.8, -745, -746,
        ]
        for count in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000] {
            let x = (0..<count).map { $0 < special.count ? special[$0] : Double($0 % 200) - 100.37 }
            var wantFloat = x.map { Float($0) }, wantDouble = x
            let floats = wantFloat
            VectorMath.exp(&wantFloat, count: count)
            VectorMath.exp(&wantDouble, count: count)
            for guardAfter in [true, false] {
                let gf = GuardedBuffer(floats, guardAfter: guardAfter), gd = GuardedBuffer(x, guardAfter: guardAfter)
                VectorMath.exp(gf.pointer, count: count)
                VectorMath.exp(gd.pointer, count: count)
                XCTAssertTrue(sameValues(gf.array, wantFloat), "\(count)")
                XCTAssertTrue(sameValues(gd.array, wantDouble), "\(count)")
            }
        }
    }
}
