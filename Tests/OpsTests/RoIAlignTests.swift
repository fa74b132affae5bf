import SwiftRCNNOps
import XCTest

/// RoIAlign and MultiScaleRoIAlign kernels on small cases worked out by hand.
final class RoIAlignTests: XCTestCase {
    /// A 4 x 4 map with value 4y + x at row y, column x: bilinear interpolation reproduces it exactly inside.
    let ramp: [Double] = (0..<16).map(Double.init)

    func forward(
        _ map: [Double], n: Int = 1, channels: Int = 1, height: Int = 4, width: Int = 4, _ rois: [Double],
        pooled: (Int, Int) = (1, 1), scale: Double = 1, samplingRatio: Int = 1, aligned: Bool = false
    )
        -> [Double]
    {
        let k = rois.count / 5
        var out = [Double](repeating: .nan, count: k * channels * pooled.0 * pooled.1)
        RoIAlign.forward(
            input: map, batch: n, channels: channels, height: height, width: width, rois: rois,
            count: k, spatialScale: scale, pooledH: pooled.0, pooledW: pooled.1,
            samplingRatio: samplingRatio, aligned: aligned, output: &out)
        return out
    }

    func backward(
        _ grad: [Double], _ rois: [Double], n: Int = 1, channels: Int = 1, height: Int = 4,
        width: Int = 4, pooled: (Int, Int) = (1, 1), scale: Double = 1, samplingRatio: Int = 1,
        aligned: Bool = false
    ) -> [Double] {
        var gradInput = [Double](repeating: .nan, count: n * channels * height * width)
        RoIAlign.backward(
            gradOutput: grad, rois: rois, count: rois.count / 5, spatialScale: scale,
            pooledH: pooled.0, pooledW: pooled.1, samplingRatio: samplingRatio, aligned: aligned,
            gradInput: &gradInput, batch: n, channels: channels, height: height, width: width)
        return gradInput
    }

    func testGeometry() {
        // Legacy: a 0.5-wide box is raised to width 1; adaptive grid ceil(size / pooled).
        let roi: [Double] = [0, 2, 4, 2.5, 10]
        let g = RoIAlign.geometry(roi, spatialScale: 0.5, pooledH: 2, pooledW: 2, samplingRatio: -1, aligned: false)
        XCTAssertEqual([g.startX, g.startY, g.binW, g.binH, g.gridW, g.gridH], [1, 2, 0.5, 1.5, 1, 2])
        // Aligned: shifted by half a pixel, sizes kept (here negative for the inverted x side).
        let a = RoIAlign.geometry(
            [0, 4, 0, 2, 8] as [Double], spatialScale: 1, pooledH: 2, pooledW: 1,
            samplingRatio: 3, aligned: true)
        XCTAssertEqual([a.startX, a.startY, a.binW, a.binH, a.gridW, a.gridH], [3.5, -0.5, -2, 4, 3, 3])
        XCTAssertEqual(a.sampleRowsAndColumns(pooledH: 2, pooledW: 1).rows, 6)
    }

    func testForwardSamplesBilinearly() {
        // One sample at (1, 1).
        XCTAssertEqual(forward(ramp, [0, 0, 0, 2, 2]), [5])
        // One sample at (1.5, 0.5): the mean of rows 1, 2 and columns 0, 1.
        XCTAssertEqual(forward(ramp, [0, 0, 1, 1, 2]), [6.5])
        // Aligned: the same box shifted by half a pixel samples at (1, 1) again.
        XCTAssertEqual(forward(ramp, [0, 0.5, 0.5, 2.5, 2.5], aligned: true), [5])
        // Adaptive 3 x 3 grid over [0, 3]^2: samples at 0.5, 1.5, 2.5; the mean of a linear map is its centre value.
        XCTAssertEqual(forward(ramp, [0, 0, 0, 3, 3], samplingRatio: 0)[0], 4 * 1.5 + 1.5, accuracy: 1e-12)
        // 2 x 2 bins of 1 sample: centres (0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5).
        XCTAssertEqual(forward(ramp, [0, 0, 0, 2, 2], pooled: (2, 2)), [2.5, 3.5, 6.5, 7.5])
        // spatial_scale maps box coordinates onto the map.
        XCTAssertEqual(forward(ramp, [0, 0, 0, 4, 4], scale: 0.5), [5])
    }

    func testForwardAtAndBeyondTheBorder() {
        // A sample in (H - 1, H] uses row H - 1 only: y = 3.5 -> row 3, x = 0.5 -> columns 0, 1.
        XCTAssertEqual(forward(ramp, [0, 0, 3, 1, 4]), [12.5])
        // y in [-1, 0] clamps to 0: sample at (-0.5, 1.5) reads row 0.
        XCTAssertEqual(forward(ramp, [0, 1, -1, 2, 0]), [1.5])
        // Beyond -1 or W the sample contributes 0, but still counts: columns x = 3 (clamped to column 3) and
        // x = 5 (outside), rows 0.25 and 0.75 -> (4 + 6 + 0 + 0) / 4.
        XCTAssertEqual(forward(ramp, [0, 2, 0, 6, 1], samplingRatio: 2), [2.5])
        XCTAssertEqual(forward(ramp, [0, 10, 10, 12, 12]), [0])
        // A map without rows takes no samples.
        XCTAssertEqual(forward([], height: 0, width: 4, [0, 0, 0, 2, 2]), [0])
    }

    func testInvertedAlignedAdaptiveTakesNoSamples() {
        XCTAssertEqual(forward(ramp, [0, 3, 3, 1, 1], pooled: (2, 2), samplingRatio: -1, aligned: true), [0, 0, 0, 0])
        XCTAssertEqual(
            backward([1, 1, 1, 1], [0, 3, 3, 1, 1], pooled: (2, 2), samplingRatio: -1, aligned: true),
            [Double](repeating: 0, count: 16))
    }

    func testBatchIndexAndChannels() {
        // Two images of two channels: image 1 channel c holds 100 (1 + c) + ramp.
        var map = [Double]()
        for image in 0..<2 { for c in 0..<2 { map += ramp.map { $0 + Double(100 * image * (1 + c)) } } }
        let out = forward(map, n: 2, channels: 2, [1, 0, 0, 2, 2, 0, 0, 0, 2, 2])
        XCTAssertEqual(out, [105, 205, 5, 5])
    }

    func testBackwardSpreadsBilinearWeights() {
        // One sample at (1.5, 0.5) with gradient 4: 1 to each of its four neighbours.
        var expected = [Double](repeating: 0, count: 16)
        for i in [4, 5, 8, 9] { expected[i] = 1 }
        XCTAssertEqual(backward([4], [0, 0, 1, 1, 2]), expected)
        // Two RoIs on one image accumulate; a sample outside gives nothing.
        expected[5] += 3
        XCTAssertEqual(backward([4, 3, 7], [0, 0, 1, 1, 2, 0, 0, 0, 2, 2, 0, 9, 9, 11, 11]), expected)
    }

    /// Backward is the adjoint of forward: <forward(x), g> = <x, backward(g)> for any x and g.
    func testBackwardIsAdjointOfForward() {
        var rng = SystemRandomNumberGenerator()
        let (n, c, h, w, k) = (2, 3, 7, 9, 12)
        let x = (0..<(n * c * h * w)).map { _ in Double.random(in: -1...1, using: &rng) }
        var rois = [Double]()
        for i in 0..<k {
            let x1 = Double.random(in: -3...9, using: &rng), y1 = Double.random(in: -3...7, using: &rng)
            rois += [
                Double(i % n), x1, y1, x1 + Double.random(in: -2...8, using: &rng),
                y1 + Double.random(in: 0...6, using: &rng),
            ]
        }
        for (sr, aligned) in [(-1, false), (2, true), (3, false), (0, true)] {
            let y = forward(
                x, n: n, channels: c, height: h, width: w, rois, pooled: (2, 3), scale: 0.9,
                samplingRatio: sr, aligned: aligned)
            let g = y.map { _ in Double.random(in: -1...1, using: &rng) }
            let gx = backward(
                g, rois, n: n, channels: c, height: h, width: w, pooled: (2, 3), scale: 0.9,
                samplingRatio: sr, aligned: aligned)
            let lhs = zip(y, g).reduce(0) { $0 + $1.0 * $1.1 }
            let rhs = zip(x, gx).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-10, "sampling_ratio \(sr), aligned \(aligned)")
        }
    }

    /// RoIs whose tables exceed the table budget are done in several passes; results equal RoI-by-RoI runs.
    func testManyPassesMatchOneRoIAtATime() {
        let (h, w) = (6, 5)
        let map = (0..<(h * w)).map { Double(($0 * 7) % 11) }
        // Tall boxes: 2 * 7 * ceil(7000 / 7) sample-row entries each, ~14k per RoI, 200 RoIs > 2^21.
        var rois = [Double]()
        for i in 0..<200 { rois += [0, Double(i % 5) - 1, -3000, Double(i % 4) + 1, 4000] }
        let all = forward(map, height: h, width: w, rois, pooled: (7, 1), samplingRatio: -1)
        for i in 0..<200 {
            let one = forward(
                map, height: h, width: w, Array(rois[(5 * i)..<(5 * i + 5)]), pooled: (7, 1),
                samplingRatio: -1)
            XCTAssertEqual(Array(all[(7 * i)..<(7 * i + 7)]), one)
        }
    }

    func testFloatMatchesDouble() {
        let rois: [Double] = [0, 0.3, 0.7, 3.2, 2.9]
        let d = forward(ramp, rois, pooled: (2, 2), samplingRatio: 2)
        var out = [Float](repeating: 0, count: 4)
        RoIAlign.forward(
            input: ramp.map(Float.init), batch: 1, channels: 1, height: 4, width: 4,
            rois: rois.map(Float.init), count: 1, spatialScale: 1, pooledH: 2, pooledW: 2,
            samplingRatio: 2, aligned: false, output: &out)
        for i in 0..<4 { XCTAssertEqual(Double(out[i]), d[i], accuracy: 1e-5) }
    }

    /// Maps pooled through channel tiles (with a short last block of 3 of 19 channels) and maps larger than
    /// `ChannelTile.maxPlane`, pooled plane by plane, agree with the exact value: on a linear map each bin averages
    /// to the value at its centre.
    func testForwardOnTiledAndUntiledMaps() {
        checkLinearMap(channels: 19, height: 30, width: 40)
        checkLinearMap(channels: 2, height: 1025, width: 1024)
        XCTAssertGreaterThan(1025 * 1024, ChannelTile.maxPlane)
    }

    private func checkLinearMap(channels c: Int, height h: Int, width w: Int) {
        // Image b, channel ci: 1000 * b + 10 * ci + 0.5 * y + 0.25 * x.
        let n = 2
        let map = (0..<(n * c * h * w)).map { (e: Int) -> Double in
            let (b, ci, y, x) = (e / (c * h * w), e / (h * w) % c, e / w % h, e % w)
            return Double(1000 * b + 10 * ci) + 0.5 * Double(y) + 0.25 * Double(x)
        }
        let (H, W) = (Double(h), Double(w))
        let boxes: [[Double]] = [[1, 0.1 * W, 0.2 * H, 0.7 * W, 0.9 * H], [0, 0.5 * W, 0.05 * H, 0.95 * W, 0.5 * H]]
        let out = forward(
            map, n: n, channels: c, height: h, width: w, boxes.flatMap { $0 }, pooled: (2, 3),
            samplingRatio: 2, aligned: true)
        for (r, box) in boxes.enumerated() {
            for ci in 0..<c {
                for i in 0..<2 {
                    for j in 0..<3 {
                        let y = box[2] - 0.5 + (Double(i) + 0.5) * (box[4] - box[2]) / 2
                        let x = box[1] - 0.5 + (Double(j) + 0.5) * (box[3] - box[1]) / 3
                        XCTAssertEqual(
                            out[((r * c + ci) * 2 + i) * 3 + j],
                            1000 * box[0] + Double(10 * ci) + 0.5 * y + 0.25 * x, accuracy: 1e-9)
                    }
                }
            }
        }
    }

    func testMultiLevelForward() {
        let fine = ramp, coarse: [Double] = [100, 200, 300, 400]
        var out = [Double](repeating: .nan, count: 3)
        fine.withUnsafeBufferPointer { f in
            coarse.withUnsafeBufferPointer { c in
                let levels = [
                    RoIAlign.Level(data: f.baseAddress!, height: 4, width: 4, spatialScale: 1),
                    RoIAlign.Level(data: c.baseAddress!, height: 2, width: 2, spatialScale: 0.5),
                ]
                let rois: [Double] = [0, 0, 0, 2, 2, 0, 0, 0, 2, 2, 0, 0, 0, 2, 2]
                let levelOfRoI = [1, 0, -1]
                RoIAlign.forward(
                    levels: levels, count: 2, levelOfRoI: levelOfRoI, batch: 1, channels: 1, rois: rois,
                    count: 3, pooledH: 1, pooledW: 1, samplingRatio: 1, aligned: false, output: &out)
            }
        }
        // Level 1 samples its own (0.5, 0.5): the mean of all four values; level 0 samples (1, 1); -1 is zero.
        XCTAssertEqual(out, [250, 5, 0])
    }

    func testScaleInferenceAndLevels() {
        XCTAssertEqual(MultiScaleRoIAlign.inferScale(featureHeight: 50, imageHeight: 800), 1.0 / 16)
        XCTAssertEqual(MultiScaleRoIAlign.inferScale(featureHeight: 27, imageHeight: 210), 1.0 / 8)  // 2^-2.96
        XCTAssertEqual(MultiScaleRoIAlign.inferScale(featureHeight: 600, imageHeight: 200), 4)  // 2^1.58
        XCTAssertEqual(MultiScaleRoIAlign.level(ofScale: 0.25), 2)
        XCTAssertEqual(MultiScaleRoIAlign.level(ofScale: 2), -1)

        let mapper = MultiScaleRoIAlign.LevelMapper(
            scales: [0.25, 0.125, 0.0625, 0.03125], canonicalScale: 224,
            canonicalLevel: 4)
        XCTAssertEqual([mapper.kMin, mapper.kMax], [2, 5])
        func level(_ box: [Double]) -> Int { mapper.levelIndex([0] + box, levels: 4) }
        XCTAssertEqual(level([0, 0, 224, 224]), 2)  // canonical size -> level 4
        XCTAssertEqual(level([0, 0, 112, 112]), 1)
        XCTAssertEqual(level([0, 0, 111, 112]), 0)  // just below the 112 boundary -> level 2
        XCTAssertEqual(level([0, 0, 5000, 5000]), 3)  // clamped to kMax
        XCTAssertEqual(level([5, 5, 5, 5]), 0)  // area 0: log2(0) = -inf, clamped to kMin
        XCTAssertEqual(level([5, 5, 2, 9]), -1)  // negative area: NaN
        // A level beyond the maps given has no feature map.
        XCTAssertEqual(mapper.levelIndex([0, 0, 0, 500, 500] as [Double], levels: 2), -1)
        // kMin > kMax (maps listed coarse to fine): torch's clamp yields kMax, an index below 0.
        let reversed = MultiScaleRoIAlign.LevelMapper(kMin: 4, kMax: 2, canonicalScale: 224, canonicalLevel: 4)
        XCTAssertEqual(reversed.levelIndex([0, 0, 0, 50, 50] as [Double], levels: 2), -1)
    }
}
