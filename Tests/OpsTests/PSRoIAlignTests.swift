import SwiftRCNNOps
import XCTest

/// ps_roi_align kernels on small cases worked out by hand.
final class PSRoIAlignTests: XCTestCase {
    func testAxis() {
        // 1...5 -> 0.5...4.5 after the half-pixel shift; 2 bins of 2; adaptive grid ceil(4 / 2) = 2.
        let a = PSRoIAlign.axis(from: 1.0, to: 5.0, scale: 1, pooled: 2, samplingRatio: -1)
        XCTAssertEqual(a.start, 0.5)
        XCTAssertEqual(a.binSize, 2)
        XCTAssertEqual(a.grid, 2)
        XCTAssertEqual(PSRoIAlign.axis(from: 1.0, to: 5.0, scale: 1, pooled: 2, samplingRatio: 3).grid, 3)
        // Inverted: no minimum size, negative grid.
        XCTAssertEqual(PSRoIAlign.axis(from: 5.0, to: 1.0, scale: 1, pooled: 2, samplingRatio: 0).grid, -2)
    }

    func testForwardOnALinearMapIsTheBinCentre() {
        // Channel ci holds 100 * ci + 8 * y + x on an 8 x 8 map. Bilinear sampling reproduces a linear function, so
        // each bin's average is the value at its centre: box 1...5 -> bins centred at 1.5 and 3.5.
        let input: [Double] = (0..<256).map { Double(100 * ($0 / 64) + $0 % 64) }
        var out = [Double](repeating: .nan, count: 4)
        PSRoIAlign.forward(
            input: input, batch: 1, channels: 4, height: 8, width: 8, rois: [0, 1, 1, 5, 5],
            roiCount: 1, pooledHeight: 2, pooledWidth: 2, spatialScale: 1, samplingRatio: -1,
            output: &out)
        let centres = [1.5, 3.5]
        for i in 0..<2 {
            for j in 0..<2 {
                XCTAssertEqual(
                    out[2 * i + j], Double(100 * (2 * i + j)) + 8 * centres[i] + centres[j],
                    accuracy: 1e-12)
            }
        }
    }

    func testDegenerateBoxes() {
        let input = [Float](repeating: 1, count: 16)
        var out = [Float](repeating: 7, count: 3)
        // Zero-size with adaptive sampling: a 0 x 0 grid, 0 / 0. Inverted in both axes: grid -1 x -1, 0 / 1.
        // Far outside the map: every sample counts as 0.
        let rois: [Float] = [0, 2, 2, 2, 2, 0, 3, 3, 1, 1, 0, 20, 20, 30, 30]
        PSRoIAlign.forward(
            input: input, batch: 1, channels: 1, height: 4, width: 4, rois: rois, roiCount: 3,
            pooledHeight: 1, pooledWidth: 1, spatialScale: 1, samplingRatio: 0, output: &out)
        XCTAssertTrue(out[0].isNaN)
        XCTAssertEqual(out[1], 0)
        XCTAssertEqual(out[2], 0)
    }

    func testBackwardBilinearWeights() {
        // One sample at (y, x) = (0.5 + 0.75, 1.5 + 1) = (1.25, 2.5): weights 0.375, 0.375, 0.125, 0.125 on cells
        // (1, 2), (1, 3), (2, 2), (2, 3); times the gradient 2.
        var grad = [Double](repeating: .nan, count: 16)
        PSRoIAlign.backward(
            gradOutput: [2], rois: [0, 2, 1, 4, 2.5], roiCount: 1, pooledHeight: 1, pooledWidth: 1,
            spatialScale: 1, samplingRatio: 1, batch: 1, channels: 1, height: 4, width: 4,
            gradInput: &grad)
        XCTAssertEqual(
            grad,
            [
                0, 0, 0, 0,
                0, 0, 0.75, 0.75,
                0, 0, 0.25, 0.25,
                0, 0, 0, 0,
            ])
    }

    /// Several images, output channels and RoIs per image, on maps both staged in a thread's buffer and (larger
    /// than `PSRoIPool.stageBudget`, 2^18 cells) read in place: on a linear map every bin is the value at its centre.
    func testForwardStagedAndInPlaceMaps() {
        checkLinearMaps(height: 30, width: 40)
        checkLinearMaps(height: 512, width: 513)
    }

    private func checkLinearMaps(height h: Int, width w: Int) {
        let (n, outChannels, ph, pw) = (2, 2, 2, 3)
        let c = outChannels * ph * pw
        // Image b, channel ci: 1000 * b + 100 * ci + 2 * y + x.
        let input = (0..<(n * c * h * w)).map { (e: Int) -> Double in
            let (b, ci, y, x) = (e / (c * h * w), e / (h * w) % c, e / w % h, e % w)
            return Double(1000 * b + 100 * ci + 2 * y + x)
        }
        let (H, W) = (Double(h), Double(w))
        let boxes: [[Double]] = [
            [1, 0.1 * W, 0.2 * H, 0.7 * W, 0.9 * H], [0, 0.5 * W, 0.05 * H, 0.95 * W, 0.5 * H],
            [1, 0.3 * W, 0.3 * H, 0.4 * W, 0.35 * H],
        ]
        var out = [Double](repeating: .nan, count: boxes.count * outChannels * ph * pw)
        PSRoIAlign.forward(
            input: input, batch: n, channels: c, height: h, width: w, rois: boxes.flatMap { $0 },
            roiCount: boxes.count, pooledHeight: ph, pooledWidth: pw, spatialScale: 1,
            samplingRatio: 2, output: &out)
        for (r, box) in boxes.enumerated() {
            for co in 0..<outChannels {
                for i in 0..<ph {
                    for j in 0..<pw {
                        let y = box[2] - 0.5 + (Double(i) + 0.5) * (box[4] - box[2]) / Double(ph)
                        let x = box[1] - 0.5 + (Double(j) + 0.5) * (box[3] - box[1]) / Double(pw)
                        let ci = (co * ph + i) * pw + j
                        XCTAssertEqual(
                            out[((r * outChannels + co) * ph + i) * pw + j],
                            1000 * box[0] + Double(100 * ci) + 2 * y + x, accuracy: 1e-9)
                    }
                }
            }
        }
    }
}
