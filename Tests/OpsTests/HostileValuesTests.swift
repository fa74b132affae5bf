import SwiftRCNNOps
import XCTest

/// Issue #9: float-to-int conversions of values computed from data trapped on NaN, infinite or huge values. The
/// kernels now clamp them, so no value makes them trap or read outside their arrays (the C ABI still rejects such
/// values before any kernel runs; these call the kernels directly, as a Swift caller may).
final class HostileValuesTests: XCTestCase {
    static let hostile: [Double] = [.nan, .infinity, -.infinity, 1e30, -1e30, 3e8, -5, 2.5]

    func testClampedInt() {
        func check<T: KernelFloat>(_: T.Type) {
            XCTAssertEqual(T.clampedInt(.nan, -3, 7), -3)
            XCTAssertEqual(T.clampedInt(.infinity, -3, 7), 7)
            XCTAssertEqual(T.clampedInt(-.infinity, -3, 7), -3)
            XCTAssertEqual(T.clampedInt(T(1e30), -3, 7), 7)
            XCTAssertEqual(T.clampedInt(T(-1e30), -3, 7), -3)
            XCTAssertEqual(T.clampedInt(T(6.9), -3, 7), 6)
            XCTAssertEqual(T.clampedInt(T(-2.9), -3, 7), -2)
            XCTAssertEqual(T.clampedInt(T(1e30), Int.min, Int.max), Int.max)
            XCTAssertEqual(T.clampedInt(T(-1e30), Int.min, Int.max), Int.min)
            XCTAssertEqual(T.clampedInt(T(1 << 40), Int.min, Int.max), 1 << 40)
        }
        check(Float.self)
        check(Double.self)
    }

    func testPasteMasksAnyBox() {
        let masks = [Float](repeating: 1, count: 4 * 4)
        for v in Self.hostile {
            for corner in 0..<4 {
                var boxes: [Float] = [1, 1, 5, 5]
                boxes[corner] = Float(v)
                var out = [Float](repeating: .nan, count: 8 * 8)
                PasteMasks.paste(
                    masks: masks, boxes: boxes, count: 1, maskSize: 4, padding: 1, height: 8, width: 8,
                    into: &out)
                XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 <= 1 }, "corner \(corner) = \(v)")
            }
        }
    }

    /// RoIs with every hostile value as batch index or coordinate through each RoI kernel; 2 images of 2 channels.
    func testRoIKernelsAnyRoI() {
        let (n, c, h, w) = (2, 4, 6, 6)
        let input = (0..<(n * c * h * w)).map { Float($0 % 7) }
        for v in Self.hostile {
            for column in 0..<5 {
                var rois: [Float] = [1, 0, 0, 3, 3, 0, 1, 1, 4, 5]
                rois[column] = Float(v)
                let k = 2
                var out = [Float](repeating: 0, count: k * c * 4)
                var argmax = [Int64](repeating: 0, count: k * c * 4)
                var grad = [Float](repeating: 0, count: n * c * h * w)
                let ones = [Float](repeating: 1, count: k * c * 4)
                let context = "column \(column) = \(v)"
                // Pooled 1 x 1 with adaptive sampling: a huge side asks for the largest grid, not a trap.
                RoIAlign.forward(
                    input: input, batch: n, channels: c, height: h, width: w, rois: rois, count: k,
                    spatialScale: 1, pooledH: 1, pooledW: 1, samplingRatio: -1, aligned: false,
                    output: &out)
                RoIAlign.backward(
                    gradOutput: ones, rois: rois, count: k, spatialScale: 1, pooledH: 1, pooledW: 1,
                    samplingRatio: -1, aligned: true, gradInput: &grad, batch: n, channels: c,
                    height: h, width: w)
                RoIPool.forward(
                    input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                    pooledHeight: 2, pooledWidth: 2, spatialScale: 1, output: &out, argmax: &argmax)
                XCTAssertTrue(argmax.allSatisfy { $0 >= -1 && $0 < h * w }, context)
                RoIPool.backward(
                    gradOutput: ones, argmax: argmax, rois: rois, roiCount: k, pooledHeight: 2,
                    pooledWidth: 2, batch: n, channels: c, height: h, width: w, gradInput: &grad)
                PSRoIPool.forward(
                    input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                    pooledHeight: 2, pooledWidth: 2, spatialScale: 1, output: &out)
                PSRoIPool.backward(
                    gradOutput: ones, rois: rois, roiCount: k, pooledHeight: 2, pooledWidth: 2,
                    spatialScale: 1, batch: n, channels: c, height: h, width: w, gradInput: &grad)
                PSRoIAlign.forward(
                    input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
                    pooledHeight: 1, pooledWidth: 1, spatialScale: 1, samplingRatio: -1, output: &out)
                PSRoIAlign.backward(
                    gradOutput: ones, rois: rois, roiCount: k, pooledHeight: 1, pooledWidth: 1,
                    spatialScale: 1, samplingRatio: -1, batch: n, channels: c, height: h, width: w,
                    gradInput: &grad)
            }
        }
    }
}
