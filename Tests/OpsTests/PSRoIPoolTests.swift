import SwiftRCNNOps
import XCTest

/// ps_roi_pool kernels on small cases worked out by hand.
final class PSRoIPoolTests: XCTestCase {
    /// Channel ci of a 1 x 4 x 4 x 4 map holds 100 * ci + 4 * y + x.
    let input: [Double] = (0..<64).map { Double(100 * ($0 / 16) + $0 % 16) }

    func testEachBinReadsItsOwnChannel() {
        // Box 0...2 rounds to start 0, end 2, size 2 (no end cell): bins of one cell at (i, j).
        var out = [Double](repeating: .nan, count: 4)
        PSRoIPool.forward(
            input: input, batch: 1, channels: 4, height: 4, width: 4, rois: [0, 0, 0, 2, 2],
            roiCount: 1, pooledHeight: 2, pooledWidth: 2, spatialScale: 1, output: &out)
        XCTAssertEqual(out, [0, 101, 204, 305])
        XCTAssertEqual(PSRoIPool.inputChannel(1, 0, 1, pooledHeight: 2, pooledWidth: 2), 5)
    }

    func testAverageAndLastRowColumnLeftOut() {
        // One output channel from four; box 1...5 at scale 0.5 -> start 1 (round 0.5 away from zero), end 3, size 2.
        // Pooled 1 x 1 with one input channel: cells [1, 3) x [1, 3) of channel 0: (5 + 6 + 9 + 10) / 4 = 7.5.
        var out = [Double](repeating: .nan, count: 1)
        PSRoIPool.forward(
            input: input, batch: 1, channels: 1, height: 4, width: 4, rois: [0, 1, 1, 5, 5],
            roiCount: 1, pooledHeight: 1, pooledWidth: 1, spatialScale: 0.5, output: &out)
        XCTAssertEqual(out, [7.5])
        // Box 0...8: size 8, but edges clamp to 3 = h - 1, so rows and columns 0...2 are averaged: mean 5.
        PSRoIPool.forward(
            input: input, batch: 1, channels: 1, height: 4, width: 4, rois: [0, 0, 0, 8, 8],
            roiCount: 1, pooledHeight: 1, pooledWidth: 1, spatialScale: 1, output: &out)
        XCTAssertEqual(out, [5])
        // Box 3...8: starts at 3 = h - 1, so the bin is empty.
        PSRoIPool.forward(
            input: input, batch: 1, channels: 1, height: 4, width: 4, rois: [0, 3, 3, 8, 8],
            roiCount: 1, pooledHeight: 1, pooledWidth: 1, spatialScale: 1, output: &out)
        XCTAssertEqual(out, [0])
    }

    /// Several images, output channels and RoIs per image, on maps staged in a thread's buffer all at once, a few
    /// planes at a time, and (larger than `PSRoIPool.stageBudget`, 2^18 cells) read in place. On a linear map a bin
    /// `[y0, y1) x [x0, x1)` averages to its value at `((y0 + y1 - 1) / 2, (x0 + x1 - 1) / 2)`.
    func testForwardStagedAndInPlaceMaps() {
        checkLinearMaps(height: 30, width: 40)
        checkLinearMaps(height: 300, width: 300)
        checkLinearMaps(height: 512, width: 513)
    }

    private func checkLinearMaps(height h: Int, width w: Int) {
        let (n, outChannels, ph, pw) = (2, 5, 2, 2)
        let c = outChannels * ph * pw
        // Image b, channel ci: 1000 * b + 100 * ci + 2 * y + x (integers, so every sum and mean is exact).
        let input = (0..<(n * c * h * w)).map { (e: Int) -> Float in
            let (b, ci, y, x) = (e / (c * h * w), e / (h * w) % c, e / w % h, e % w)
            return Float(1000 * b + 100 * ci + 2 * y + x)
        }
        // Integer boxes with even sides at scale 1: bin (i, j) is rows y1 + [i, i + 1) * height / 2, likewise x.
        let boxes: [[Int]] = [[1, 3, 4, 27, 14], [0, 15, 2, 27, 20], [1, 0, 0, 12, 8], [0, 6, 6, 8, 10]]
        var out = [Float](repeating: .nan, count: boxes.count * outChannels * ph * pw)
        PSRoIPool.forward(
            input: input, batch: n, channels: c, height: h, width: w,
            rois: boxes.flatMap { $0.map(Float.init) }, roiCount: boxes.count, pooledHeight: ph,
            pooledWidth: pw, spatialScale: 1, output: &out)
        for (r, box) in boxes.enumerated() {
            let (binH, binW) = ((box[4] - box[2]) / ph, (box[3] - box[1]) / pw)
            for co in 0..<outChannels {
                for i in 0..<ph {
                    for j in 0..<pw {
                        let (y0, x0) = (box[2] + i * binH, box[1] + j * binW)
                        let ci = (co * ph + i) * pw + j
                        let mean = Float(1000 * box[0] + 100 * ci + (2 * y0 + binH - 1)) + Float(2 * x0 + binW - 1) / 2
                        XCTAssertEqual(out[((r * outChannels + co) * ph + i) * pw + j], mean, "\(h)x\(w) \(box)")
                    }
                }
            }
        }
    }

    func testBackwardSpreadsOverBinAndClampsToMapSize() {
        // Box 0...2 in a 1 x 1 pool: cells [0, 2) x [0, 2), each gets 8 / 4.
        var grad = [Double](repeating: .nan, count: 9)
        PSRoIPool.backward(
            gradOutput: [8], rois: [0, 0, 0, 2, 2], roiCount: 1, pooledHeight: 1, pooledWidth: 1,
            spatialScale: 1, batch: 1, channels: 1, height: 3, width: 3, gradInput: &grad)
        XCTAssertEqual(grad, [2, 2, 0, 2, 2, 0, 0, 0, 0])
        // Box 2...9: empty in the forward pass (start 2 = h - 1) but torchvision's backward clamps to h: the last
        // cell gets the whole gradient.
        PSRoIPool.backward(
            gradOutput: [8], rois: [0, 2, 2, 9, 9], roiCount: 1, pooledHeight: 1, pooledWidth: 1,
            spatialScale: 1, batch: 1, channels: 1, height: 3, width: 3, gradInput: &grad)
        XCTAssertEqual(grad, [0, 0, 0, 0, 0, 0, 0, 0, 8])
    }
}
