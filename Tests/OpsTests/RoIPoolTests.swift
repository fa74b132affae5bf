import SwiftRCNNOps
import XCTest

/// roi_pool kernels on small cases worked out by hand.
final class RoIPoolTests: XCTestCase {
    func testQuantizedBins() {
        var starts = [Int](repeating: 0, count: 3), ends = [Int](repeating: 0, count: 3)
        // round(1.2) = 1, round(4.4) = 4, size 4 counting the end cell, bins of 2: [1, 3), [3, 5).
        RoIPool.quantizedBins(
            from: 1.2, to: 4.4, scale: 1.0, pooled: 2, inclusiveEnd: true, limit: 10,
            starts: &starts, ends: &ends)
        XCTAssertEqual(Array(starts.prefix(2)), [1, 3])
        XCTAssertEqual(Array(ends.prefix(2)), [3, 5])
        // Halves round away from zero: -2.5 -> -3, 2.5 -> 3; size 6 in 3 bins, shifted by -3 and clamped at 0.
        RoIPool.quantizedBins(
            from: -2.5, to: 2.5, scale: 1.0, pooled: 3, inclusiveEnd: false, limit: 10,
            starts: &starts, ends: &ends)
        XCTAssertEqual(starts, [0, 0, 1])
        XCTAssertEqual(ends, [0, 1, 3])
        // size 5 in 2 bins of 2.5: floor/ceil edges overlap at cell 2; the limit clamps the end.
        RoIPool.quantizedBins(
            from: Float(0), to: 4, scale: 1, pooled: 2, inclusiveEnd: true, limit: 4,
            starts: &starts, ends: &ends)
        XCTAssertEqual(Array(starts.prefix(2)), [0, 2])
        XCTAssertEqual(Array(ends.prefix(2)), [3, 4])
    }

    func testForwardMaxArgmaxAndEmptyBins() {
        // One 4 x 4 channel; the maxima of the four 2 x 2 quadrants are 9 (at 4), 8 (at 3), 7 (at 13), 6 (at 10).
        let input: [Double] = [
            1, 0, 2, 8,
            9, 3, 5, 4,
            0, 1, 6, 2,
            4, 7, 3, 1,
        ]
        let rois: [Double] = [
            0, 0, 0, 3, 3,
            0, -9, -9, -6, -6,
        ]  // entirely outside: every bin empty
        var out = [Double](repeating: .nan, count: 8)
        var argmax = [Int64](repeating: 99, count: 8)
        RoIPool.forward(
            input: input, batch: 1, channels: 1, height: 4, width: 4, rois: rois, roiCount: 2,
            pooledHeight: 2, pooledWidth: 2, spatialScale: 1, output: &out, argmax: &argmax)
        XCTAssertEqual(out, [9, 8, 7, 6, 0, 0, 0, 0])
        XCTAssertEqual(argmax, [4, 3, 13, 10, -1, -1, -1, -1])
    }

    func testForwardTiesKeepFirstAndNaNNeverWins() {
        let input: [Float] = [
            .nan, 2, 2,
            2, .nan, 1,
            -.infinity, -.infinity, -.infinity,
        ]
        let rois: [Float] = [0, 0, 0, 2, 1, 0, 0, 2, 2, 2]
        var out = [Float](repeating: 0, count: 2)
        var argmax = [Int64](repeating: 0, count: 2)
        RoIPool.forward(
            input: input, batch: 1, channels: 1, height: 3, width: 3, rois: rois, roiCount: 2,
            pooledHeight: 1, pooledWidth: 1, spatialScale: 1, output: &out, argmax: &argmax)
        XCTAssertEqual(out[0], 2)
        XCTAssertEqual(argmax[0], 1)  // the first 2 in row-major order
        XCTAssertEqual(out[1], -Float.greatestFiniteMagnitude)  // only -inf in the bottom row
        XCTAssertEqual(argmax[1], -1)
    }

    func testBackwardRoutesAndAccumulates() {
        // Two images, two channels, 2 x 2 maps; three single-bin RoIs.
        let rois: [Double] = [1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1]
        let argmax: [Int64] = [3, -1, 3, 0, 2, 1]
        let grad: [Double] = [1, 10, 2, 20, 4, 40]
        var gradInput = [Double](repeating: .nan, count: 16)
        RoIPool.backward(
            gradOutput: grad, argmax: argmax, rois: rois, roiCount: 3, pooledHeight: 1, pooledWidth: 1,
            batch: 2, channels: 2, height: 2, width: 2, gradInput: &gradInput)
        XCTAssertEqual(
            gradInput,
            [
                0, 0, 4, 0, 0, 40, 0, 0,
                0, 0, 0, 3, 20, 0, 0, 0,
            ])
        // Without rois every RoI belongs to image 0.
        var single = [Double](repeating: .nan, count: 4)
        RoIPool.backward(
            gradOutput: [5, 6], argmax: [1, 1], rois: nil, roiCount: 2, pooledHeight: 1,
            pooledWidth: 1, batch: 1, channels: 1, height: 2, width: 2, gradInput: &single)
        XCTAssertEqual(single, [0, 11, 0, 0])
    }

    /// The tiled and plane-by-plane kernels agree bit for bit, over several channel blocks (with a short last
    /// one), two images, ties, NaN, -inf and empty bins.
    func testTiledAndPlanesAgree() {
        checkTiledAndPlanesAgree(Float.self)
        checkTiledAndPlanesAgree(Double.self)
    }

    private func checkTiledAndPlanesAgree<T: KernelFloat>(_: T.Type) {
        let (n, c, h, w, k) = (2, 37, 9, 11, 7)
        // Few distinct values, so bins hold ties; every 13th cell NaN, every 17th -inf.
        let input = (0..<(n * c * h * w)).map { (i: Int) -> T in
            if i % 13 == 5 { return .nan }
            if i % 17 == 3 { return -.infinity }
            return T((i * 7919) % 5)
        }
        let boxes: [[Double]] = [
            [0, 0, 0, 10, 8], [1, 2, 1, 5, 7], [1, -3, -3, 30, 30], [0, 4, 4, 4, 4],
            [1, 9, 9, 2, 2], [0, 12, 0, 20, 8], [1, 0.4, 0.6, 3.5, 8.49],
        ]
        let rois = boxes.flatMap { $0.map { T($0) } }
        let size = k * c * 3 * 2
        var tiled = [T](repeating: 99, count: size), planes = [T](repeating: -99, count: size)
        var tiledArgmax = [Int64](repeating: 99, count: size), planesArgmax = [Int64](repeating: -99, count: size)
        RoIPool.forwardTiled(
            input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: 3, pooledWidth: 2, spatialScale: 1, output: &tiled,
            argmax: &tiledArgmax)
        RoIPool.forwardPlanes(
            input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: 3, pooledWidth: 2, spatialScale: 1, output: &planes,
            argmax: &planesArgmax)
        XCTAssertEqual(tiled, planes)  // maxima are never NaN
        XCTAssertEqual(tiledArgmax, planesArgmax)
        XCTAssertTrue(tiledArgmax.contains(-1))
        // Without argmax, the same maxima.
        var tiledOnly = [T](repeating: 99, count: size), planesOnly = [T](repeating: -99, count: size)
        RoIPool.forwardTiled(
            input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: 3, pooledWidth: 2, spatialScale: 1, output: &tiledOnly, argmax: nil)
        RoIPool.forwardPlanes(
            input: input, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: 3, pooledWidth: 2, spatialScale: 1, output: &planesOnly, argmax: nil)
        XCTAssertEqual(tiledOnly, tiled)
        XCTAssertEqual(planesOnly, planes)
    }
}
