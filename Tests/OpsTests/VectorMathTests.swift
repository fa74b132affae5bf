#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import SwiftRCNNOps
import XCTest

/// VectorMath.exp against the C library, over the whole range and at the edges, on every instruction-set path (it
/// runs in the path's kernels), and the same bit for bit on every path; VectorMath.hardswish against its scalar
/// definition, bit for bit, on every path; VectorMath.relu likewise.
final class VectorMathTests: XCTestCase {
    func testFloatExpWithinTwoUlpOfLibm() { forEachISA { _ in checkFloatExp() } }
    func testDoubleExpWithinTwoUlpOfLibm() { forEachISA { _ in checkDoubleExp() } }

    func testPathsAgreeBitForBit() {
        let xs = stride(from: -110.0 as Float, through: 90, by: 0.0517).map { $0 } + [.nan, .infinity, -.infinity]
        let xd = stride(from: -750.0, through: 712, by: 0.0919).map { $0 } + [.nan, .infinity, -.infinity]
        var wantS = xs, wantD = xd
        onISA(.generic) {
            VectorMath.exp(&wantS, count: wantS.count)
            VectorMath.exp(&wantD, count: wantD.count)
        }
        forEachISA { isa in
            var ys = xs, yd = xd
            VectorMath.exp(&ys, count: ys.count)
            VectorMath.exp(&yd, count: yd.count)
            XCTAssertTrue(sameValues(ys, wantS), "Float, \(isa)")
            XCTAssertTrue(sameValues(yd, wantD), "Double, \(isa)")
        }
    }

    func checkFloatExp() {
        var xs = stride(from: -110.0 as Float, through: 90, by: 0.0137).map { $0 }
        xs += [0, -0.0, 1e-30, -1e-30, 88.72, 88.73, -87.3, -103.9, -104, .infinity, -.infinity]
        var ys = xs
        VectorMath.exp(&ys, count: ys.count)
        for (x, y) in zip(xs, ys) {
            let want = expf(x)
            if want.isInfinite || want == 0 {
                XCTAssertEqual(y, want, "exp(\(x))")
            } else if want < Float.leastNormalMagnitude {
                XCTAssertEqual(y, want, accuracy: 2 * Float.leastNonzeroMagnitude, "exp(\(x))")
            } else {
                XCTAssertLessThanOrEqual(abs(y - want), 2 * want.ulp, "exp(\(x)) = \(y), libm \(want)")
            }
        }
        var nan: [Float] = [.nan]
        VectorMath.exp(&nan, count: 1)
        XCTAssertTrue(nan[0].isNaN)
    }

    func checkDoubleExp() {
        var xs = stride(from: -750.0, through: 712, by: 0.0731).map { $0 }
        xs += [0, 1e-300, -1e-300, 709.78, 709.79, -708.4, -745.1, -746, .infinity, -.infinity]
        var ys = xs
        VectorMath.exp(&ys, count: ys.count)
        for (x, y) in zip(xs, ys) {
            let want = exp(x)  // the C library's
            if want.isInfinite || want == 0 {
                XCTAssertEqual(y, want, "exp(\(x))")
            } else if want < Double.leastNormalMagnitude {
                XCTAssertEqual(y, want, accuracy: 2 * Double.leastNonzeroMagnitude, "exp(\(x))")
            } else {
                XCTAssertLessThanOrEqual(abs(y - want), 2 * want.ulp, "exp(\(x)) = \(y), libm \(want)")
            }
        }
        var nan: [Double] = [.nan]
        VectorMath.exp(&nan, count: 1)
        XCTAssertTrue(nan[0].isNaN)
    }

    func testHardswishAndReLUAreTheirDefinitionsOnEveryPath() {
        // Both bends (-3, 3), zeros of both signs, the extremes and non-finite values, then a dense sweep; counts
        // that leave every remainder of the vector widths.
        let special: [Double] = [
            -3, 3, 0, -0.0, -3.0000001, -2.9999999, 2.9999999, 3.0000001, 1e-40, -1e-40, 1e30, -1e30,
            .infinity, -.infinity, .nan,
        ]
        let sweep = stride(from: -8.0, through: 8, by: 0.0173).map { $0 }
        for count in [0, 1, 3, 4, 5, 15, 16, 17, 33, special.count + sweep.count] {
            let x = Array((special + sweep).prefix(count))
            let xf = x.map { Float($0) }
            func reference<T: FloatingPoint>(_ v: T) -> T { v * min(max(v + 3, 0), 6) / 6 }
            let wantFloat = xf.map(reference), wantDouble = x.map(reference)
            // ReLU: negative values to 0; NaN and -0 stay (compared bit for bit, so -0 must stay -0).
            func reluReference<T: FloatingPoint>(_ v: T) -> T { v < 0 ? 0 : v }
            let reluFloat = xf.map(reluReference), reluDouble = x.map(reluReference)
            forEachISA { isa in
                var yf = xf, yd = x
                VectorMath.hardswish(&yf, count: count)
                VectorMath.hardswish(&yd, count: count)
                XCTAssertTrue(sameValues(yf, wantFloat), "Float, \(count) elements, \(isa)")
                XCTAssertTrue(sameValues(yd, wantDouble), "Double, \(count) elements, \(isa)")
                var rf = xf, rd = x
                VectorMath.relu(&rf, count: count)
                VectorMath.relu(&rd, count: count)
                XCTAssertEqual(rf.map(\.bitPattern), reluFloat.map(\.bitPattern), "ReLU, Float, \(count), \(isa)")
                XCTAssertEqual(rd.map(\.bitPattern), reluDouble.map(\.bitPattern), "ReLU, Double, \(count), \(isa)")
                for guardAfter in [true, false] {
                    let gf = GuardedBuffer(xf, guardAfter: guardAfter)
                    VectorMath.hardswish(gf.pointer, count: count)
                    XCTAssertTrue(sameValues(gf.array, wantFloat), "guarded, \(count) elements, \(isa)")
                    let gr = GuardedBuffer(xf, guardAfter: guardAfter)
                    VectorMath.relu(gr.pointer, count: count)
                    XCTAssertEqual(gr.array.map(\.bitPattern), reluFloat.map(\.bitPattern), "guarded ReLU, \(count)")
                }
            }
        }
    }
}
