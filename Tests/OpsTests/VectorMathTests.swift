#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import SwiftRCNNOps
import XCTest

/// VectorMath.exp against the C library, over the whole range and at the edges.
final class VectorMathTests: XCTestCase {
    func testFloatExpWithinTwoUlpOfLibm() {
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

    func testDoubleExpWithinTwoUlpOfLibm() {
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
}
