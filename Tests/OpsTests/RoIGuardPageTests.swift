import SwiftRCNNOps
import XCTest

/// The RoI kernels read and write only inside their buffers (see `GuardedBuffer`), on channel counts around the
/// 16-channel tiles, maps from empty to past the tiling and staging limits, and boxes inside, on, across and outside
/// the map borders, tiny, empty, inverted and far larger than the map: run on guarded copies of every buffer, they
/// must give what they give on ordinary arrays (and not fault).
final class RoIGuardPageTests: XCTestCase {
    /// (channels, height, width): channels around the tiles' 16 lanes, widths around 16 and 32, empty maps.
    let maps = [(1, 1, 1), (15, 4, 5), (16, 7, 16), (17, 3, 17), (33, 5, 33), (31, 2, 31), (2, 0, 4), (3, 4, 0)]
    let pooledSizes = [(1, 1), (2, 3), (7, 7)]

    /// Rows `[batch, x1, y1, x2, y2]` in image coordinates for an h x w map at `scale`: the whole map, touching its
    /// far corner, across each border, outside it, tiny, empty, inverted, far larger than it, at its last pixel and
    /// inside it; images alternate between 0 and 1.
    func boxes<T: KernelFloat>(height h: Int, width w: Int, scale: Double) -> [T] {
        let (W, H) = (Double(w) / scale, Double(h) / scale)
        let corners: [[Double]] = [
            [0, 0, W, H], [W - 2, H - 2, W, H], [W - 1, H - 1, W + 3, H + 5], [-3, -2, 1, 2],
            [W + 5, H + 5, W + 9, H + 9], [-10, -10, -4, -4], [1, 1, 1.01, 1.01], [2, 2, 2, 2], [3, 3, 1, 1],
            [-50, -40, W + 60, H + 70], [W - 0.5, H - 0.5, W - 0.25, H - 0.25], [0.3 * W, 0.1 * H, 0.6 * W, 0.9 * H],
        ]
        return corners.enumerated().flatMap { r, c in ([Double(r % 2)] + c).map { T($0) } }
    }

    /// Boxes at the ends of a map of more than 2^17 cells (scale 1), none spanning it (which would exceed the
    /// sampling limits with adaptive sampling).
    func boxesOnALargeMap<T: KernelFloat>(height h: Int, width w: Int) -> [T] {
        let (W, H) = (T(w), T(h))
        return [
            0, W - 3, H - 3, W, H, 1, W - 1, H - 1, W + 2, H + 2, 0, -2, -2, 3, 3, 1, W - 40, H - 40, W + 1, H + 1,
            0, W / 2 - 5, H / 2 - 5, W / 2 + 5, H / 2 + 5,
        ]
    }

    // MARK: RoIAlign

    func checkRoIAlign<T: KernelFloat>(
        _: T.Type, batch n: Int, channels c: Int, height h: Int, width w: Int, rois: [T], scale: T,
        pooled: (Int, Int), aligned: Bool, ratio: Int
    ) {
        let k = rois.count / 5, (ph, pw) = pooled
        let label = "\(T.self) \((n, c, h, w)) pooled \(pooled) aligned \(aligned) ratio \(ratio)"
        let x: [T] = guardValues(n * c * h * w), gradOutput: [T] = guardValues(k * c * ph * pw, seed: 1)
        var want = [T](repeating: -7, count: k * c * ph * pw)
        RoIAlign.forward(
            input: x, batch: n, channels: c, height: h, width: w, rois: rois, count: k,
            spatialScale: scale, pooledH: ph, pooledW: pw, samplingRatio: ratio, aligned: aligned,
            output: &want)
        var wantGrad = [T](repeating: -7, count: x.count)
        RoIAlign.backward(
            gradOutput: gradOutput, rois: rois, count: k, spatialScale: scale, pooledH: ph,
            pooledW: pw, samplingRatio: ratio, aligned: aligned, gradInput: &wantGrad, batch: n,
            channels: c, height: h, width: w)
        for guardAfter in [true, false] {
            let gx = GuardedBuffer(x, guardAfter: guardAfter), gr = GuardedBuffer(rois, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
            RoIAlign.forward(
                input: gx.pointer, batch: n, channels: c, height: h, width: w, rois: gr.pointer,
                count: k, spatialScale: scale, pooledH: ph, pooledW: pw, samplingRatio: ratio,
                aligned: aligned, output: out.pointer)
            XCTAssertTrue(sameValues(out.array, want), "forward \(label)")
            let go = GuardedBuffer(gradOutput, guardAfter: guardAfter)
            let gi = GuardedBuffer([T](repeating: -7, count: x.count), guardAfter: guardAfter)
            RoIAlign.backward(
                gradOutput: go.pointer, rois: gr.pointer, count: k, spatialScale: scale, pooledH: ph,
                pooledW: pw, samplingRatio: ratio, aligned: aligned, gradInput: gi.pointer, batch: n,
                channels: c, height: h, width: w)
            XCTAssertTrue(sameValues(gi.array, wantGrad), "backward \(label)")
        }
    }

    func checkRoIAlignTiles<T: KernelFloat>(_ type: T.Type) {
        for (c, h, w) in maps {
            let rois: [T] = boxes(height: h, width: w, scale: 0.5)
            for pooled in pooledSizes {
                for (aligned, ratio) in [(false, 0), (true, 2), (true, 0)] {
                    checkRoIAlign(
                        type, batch: 2, channels: c, height: h, width: w, rois: rois, scale: 0.5,
                        pooled: pooled, aligned: aligned, ratio: ratio)
                }
            }
        }
    }

    // The tiles are filled, pooled and stored by each instruction-set path's kernels: every path is checked.
    func testRoIAlignFloat() { forEachISA { _ in checkRoIAlignTiles(Float.self) } }
    func testRoIAlignDouble() { forEachISA { _ in checkRoIAlignTiles(Double.self) } }

    /// Maps of more than `ChannelTile.maxPlane` cells are pooled one plane at a time.
    func testRoIAlignUntiledMaps() {
        for (h, w) in [(1, ChannelTile.maxPlane + 1), (ChannelTile.maxPlane + 1, 1)] {
            let rois: [Float] = boxesOnALargeMap(height: h, width: w)
            for (aligned, ratio) in [(false, 0), (true, 2)] {
                checkRoIAlign(
                    Float.self, batch: 2, channels: 2, height: h, width: w, rois: rois, scale: 1,
                    pooled: (2, 3), aligned: aligned, ratio: ratio)
            }
        }
    }

    /// Multi-level RoIAlign (MultiScaleRoIAlign's pooling): levels assigned by `LevelMapper` on the guarded boxes,
    /// some RoIs on no level. With `untiled`, an extra level too large for tiles (assigned no RoI) sends every
    /// level through the per-plane path.
    func checkMultiLevel<T: KernelFloat>(_: T.Type, channels c: Int, untiled: Bool) {
        let n = 2
        var sizes = [(7, 16, T(0.5)), (4, 8, T(0.25)), (2, 5, T(0.125))]
        if untiled { sizes.append((1, ChannelTile.maxPlane + 1, T(0.0625))) }
        // Image 32 x 14; the last box has a negative area (no level).
        let rois = boxes(height: 7, width: 16, scale: 0.5) + [T(1), 3, 1, 1, 3]
        let k = rois.count / 5
        let mapper = MultiScaleRoIAlign.LevelMapper(kMin: 1, kMax: 3, canonicalScale: 8, canonicalLevel: 2)
        let data: [[T]] = sizes.enumerated().map { l, s in guardValues(n * c * s.0 * s.1, seed: l) }
        let levelOfRoI = rois.withUnsafeBufferPointer { r in
            (0..<k).map { mapper.levelIndex(r.baseAddress! + 5 * $0, levels: 3) }
        }
        XCTAssertEqual(Set(levelOfRoI), [-1, 0, 1, 2])
        let plain = data.map { d in
            let p = UnsafeMutablePointer<T>.allocate(capacity: d.count)
            p.initialize(from: d, count: d.count)
            return p
        }
        defer { plain.forEach { $0.deallocate() } }
        let levels = zip(plain, sizes).map { d, s in
            RoIAlign.Level(data: UnsafePointer(d), height: s.0, width: s.1, spatialScale: s.2)
        }
        for guardAfter in [true, false] {
            let gr = GuardedBuffer(rois, guardAfter: guardAfter)
            let mapped = (0..<k).map { mapper.levelIndex(gr.pointer + 5 * $0, levels: 3) }
            XCTAssertEqual(mapped, levelOfRoI)
            let gl = GuardedBuffer(mapped, guardAfter: guardAfter)
            let gd = data.map { GuardedBuffer($0, guardAfter: guardAfter) }
            let gLevels = GuardedBuffer(
                zip(gd, sizes).map { d, s in
                    RoIAlign.Level(data: UnsafePointer(d.pointer), height: s.0, width: s.1, spatialScale: s.2)
                }, guardAfter: guardAfter)
            for (ph, pw) in pooledSizes {
                let label = "\(T.self) channels \(c) untiled \(untiled) pooled \((ph, pw))"
                var want = [T](repeating: -7, count: k * c * ph * pw)
                RoIAlign.forward(
                    levels: levels, count: levels.count, levelOfRoI: levelOfRoI, batch: n, channels: c,
                    rois: rois, count: k, pooledH: ph, pooledW: pw, samplingRatio: 0, aligned: false,
                    output: &want)
                let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
                RoIAlign.forward(
                    levels: gLevels.pointer, count: gLevels.count, levelOfRoI: gl.pointer, batch: n,
                    channels: c, rois: gr.pointer, count: k, pooledH: ph, pooledW: pw,
                    samplingRatio: 0, aligned: false, output: out.pointer)
                XCTAssertTrue(sameValues(out.array, want), label)
            }
            withExtendedLifetime(gd) {}
        }
    }

    func testMultiLevelRoIAlign() {
        forEachISA { _ in
            for c in [1, 15, 16, 17, 33] { checkMultiLevel(Float.self, channels: c, untiled: false) }
            checkMultiLevel(Double.self, channels: 17, untiled: false)
        }
        for c in [1, 3] { checkMultiLevel(Float.self, channels: c, untiled: true) }
    }

    // MARK: RoIPool

    func checkRoIPool<T: KernelFloat>(
        _: T.Type, batch n: Int, channels c: Int, height h: Int, width w: Int, rois: [T], scale: T, pooled: (Int, Int)
    ) {
        let k = rois.count / 5, (ph, pw) = pooled
        let label = "\(T.self) \((n, c, h, w)) pooled \(pooled)"
        let x: [T] = guardValues(n * c * h * w), gradOutput: [T] = guardValues(k * c * ph * pw, seed: 1)
        typealias Forward = (UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<Int64>?)
            -> Void
        let paths: [(String, Forward)] = [
            (
                "forward",
                {
                    RoIPool.forward(
                        input: $0, batch: n, channels: c, height: h, width: w, rois: $1, roiCount: k,
                        pooledHeight: ph, pooledWidth: pw, spatialScale: scale, output: $2,
                        argmax: $3)
                }
            ),
            (
                "tiled",
                {
                    RoIPool.forwardTiled(
                        input: $0, batch: n, channels: c, height: h, width: w, rois: $1,
                        roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: scale,
                        output: $2, argmax: $3)
                }
            ),
            (
                "planes",
                {
                    RoIPool.forwardPlanes(
                        input: $0, batch: n, channels: c, height: h, width: w, rois: $1,
                        roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: scale,
                        output: $2, argmax: $3)
                }
            ),
        ]
        for (name, forward) in paths {
            var want = [T](repeating: -7, count: k * c * ph * pw)
            var wantArgmax = [Int64](repeating: -7, count: want.count)
            forward(x, rois, &want, &wantArgmax)
            for guardAfter in [true, false] {
                let gx = GuardedBuffer(x, guardAfter: guardAfter), gr = GuardedBuffer(rois, guardAfter: guardAfter)
                let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
                let argmax = GuardedBuffer([Int64](repeating: -7, count: want.count), guardAfter: guardAfter)
                forward(gx.pointer, gr.pointer, out.pointer, argmax.pointer)
                XCTAssertTrue(sameValues(out.array, want), "\(name) \(label)")
                XCTAssertEqual(argmax.array, wantArgmax, "\(name) \(label)")
                let alone = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
                forward(gx.pointer, gr.pointer, alone.pointer, nil)
                XCTAssertTrue(sameValues(alone.array, want), "\(name) without argmax \(label)")
            }
        }
        var argmax = [Int64](repeating: -7, count: k * c * ph * pw), out = [T](repeating: 0, count: argmax.count)
        RoIPool.forward(
            input: x, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: ph, pooledWidth: pw, spatialScale: scale, output: &out, argmax: &argmax)
        for withRoIs in [true, false] {
            var want = [T](repeating: -7, count: x.count)
            rois.withUnsafeBufferPointer { r in
                RoIPool.backward(
                    gradOutput: gradOutput, argmax: argmax, rois: withRoIs ? r.baseAddress : nil,
                    roiCount: k, pooledHeight: ph, pooledWidth: pw, batch: n, channels: c, height: h,
                    width: w, gradInput: &want)
            }
            for guardAfter in [true, false] {
                let go = GuardedBuffer(gradOutput, guardAfter: guardAfter)
                let ga = GuardedBuffer(argmax, guardAfter: guardAfter), gr = GuardedBuffer(rois, guardAfter: guardAfter)
                let gi = GuardedBuffer([T](repeating: -7, count: x.count), guardAfter: guardAfter)
                RoIPool.backward(
                    gradOutput: go.pointer, argmax: ga.pointer, rois: withRoIs ? gr.pointer : nil,
                    roiCount: k, pooledHeight: ph, pooledWidth: pw, batch: n, channels: c, height: h,
                    width: w, gradInput: gi.pointer)
                XCTAssertTrue(sameValues(gi.array, want), "backward rois \(withRoIs) \(label)")
            }
        }
    }

    func testRoIPool() {
        forEachISA { _ in
            for (c, h, w) in maps + [(4, 3, 3), (5, 2, 6)] {
                for (scale, pooled) in [(0.5, (1, 1)), (1.0, (2, 3)), (0.5, (7, 7))] {
                    let rois: [Float] = boxes(height: h, width: w, scale: scale)
                    checkRoIPool(
                        Float.self, batch: 2, channels: c, height: h, width: w, rois: rois, scale: Float(scale),
                        pooled: pooled)
                }
            }
            let rois: [Double] = boxes(height: 5, width: 33, scale: 0.5)
            checkRoIPool(
                Double.self, batch: 2, channels: 17, height: 5, width: 33, rois: rois, scale: 0.5, pooled: (2, 3))
        }
    }

    func testQuantizedBins() {
        for pooled in [1, 2, 7, 16, 17] {
            for (lo, hi, inclusiveEnd, limit) in [
                (-3.4, 40.6, true, 33), (2.5, 2.5, false, 32), (9.0, 1.0, true, 0),
                (-1e12, 1e12, false, 7),
            ] {
                var starts = [Int](repeating: -7, count: pooled), ends = starts
                RoIPool.quantizedBins(
                    from: lo, to: hi, scale: 0.5, pooled: pooled, inclusiveEnd: inclusiveEnd,
                    limit: limit, starts: &starts, ends: &ends)
                for guardAfter in [true, false] {
                    let gs = GuardedBuffer([Int](repeating: -7, count: pooled), guardAfter: guardAfter)
                    let ge = GuardedBuffer([Int](repeating: -7, count: pooled), guardAfter: guardAfter)
                    RoIPool.quantizedBins(
                        from: lo, to: hi, scale: 0.5, pooled: pooled, inclusiveEnd: inclusiveEnd,
                        limit: limit, starts: gs.pointer, ends: ge.pointer)
                    XCTAssertEqual(gs.array, starts, "\((pooled, lo, hi))")
                    XCTAssertEqual(ge.array, ends, "\((pooled, lo, hi))")
                }
            }
        }
    }

    // MARK: PSRoIAlign and PSRoIPool

    func checkPSRoIAlign<T: KernelFloat>(
        _: T.Type, batch n: Int, outChannels: Int, height h: Int, width w: Int, rois: [T], scale: T,
        pooled: (Int, Int), ratio: Int
    ) {
        let k = rois.count / 5, (ph, pw) = pooled, c = outChannels * ph * pw
        let label = "\(T.self) \((n, c, h, w)) pooled \(pooled) ratio \(ratio)"
        let x: [T] = guardValues(n * c * h * w), gradOutput: [T] = guardValues(k * outChannels * ph * pw, seed: 1)
        var want = [T](repeating: -7, count: gradOutput.count)
        PSRoIAlign.forward(
            input: x, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: ph, pooledWidth: pw, spatialScale: scale, samplingRatio: ratio, output: &want)
        var wantGrad = [T](repeating: -7, count: x.count)
        PSRoIAlign.backward(
            gradOutput: gradOutput, rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
            spatialScale: scale, samplingRatio: ratio, batch: n, channels: c, height: h, width: w,
            gradInput: &wantGrad)
        for guardAfter in [true, false] {
            let gx = GuardedBuffer(x, guardAfter: guardAfter), gr = GuardedBuffer(rois, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
            PSRoIAlign.forward(
                input: gx.pointer, batch: n, channels: c, height: h, width: w, rois: gr.pointer,
                roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: scale,
                samplingRatio: ratio, output: out.pointer)
            XCTAssertTrue(sameValues(out.array, want), "forward \(label)")
            let go = GuardedBuffer(gradOutput, guardAfter: guardAfter)
            let gi = GuardedBuffer([T](repeating: -7, count: x.count), guardAfter: guardAfter)
            PSRoIAlign.backward(
                gradOutput: go.pointer, rois: gr.pointer, roiCount: k, pooledHeight: ph,
                pooledWidth: pw, spatialScale: scale, samplingRatio: ratio, batch: n, channels: c,
                height: h, width: w, gradInput: gi.pointer)
            XCTAssertTrue(sameValues(gi.array, wantGrad), "backward \(label)")
        }
    }

    func checkPSRoIPool<T: KernelFloat>(
        _: T.Type, batch n: Int, outChannels: Int, height h: Int, width w: Int, rois: [T], scale: T,
        pooled: (Int, Int)
    ) {
        let k = rois.count / 5, (ph, pw) = pooled, c = outChannels * ph * pw
        let label = "\(T.self) \((n, c, h, w)) pooled \(pooled)"
        let x: [T] = guardValues(n * c * h * w), gradOutput: [T] = guardValues(k * outChannels * ph * pw, seed: 1)
        var want = [T](repeating: -7, count: gradOutput.count)
        PSRoIPool.forward(
            input: x, batch: n, channels: c, height: h, width: w, rois: rois, roiCount: k,
            pooledHeight: ph, pooledWidth: pw, spatialScale: scale, output: &want)
        var wantGrad = [T](repeating: -7, count: x.count)
        PSRoIPool.backward(
            gradOutput: gradOutput, rois: rois, roiCount: k, pooledHeight: ph, pooledWidth: pw,
            spatialScale: scale, batch: n, channels: c, height: h, width: w, gradInput: &wantGrad)
        for guardAfter in [true, false] {
            let gx = GuardedBuffer(x, guardAfter: guardAfter), gr = GuardedBuffer(rois, guardAfter: guardAfter)
            let out = GuardedBuffer([T](repeating: -7, count: want.count), guardAfter: guardAfter)
            PSRoIPool.forward(
                input: gx.pointer, batch: n, channels: c, height: h, width: w, rois: gr.pointer,
                roiCount: k, pooledHeight: ph, pooledWidth: pw, spatialScale: scale, output: out.pointer)
            XCTAssertTrue(sameValues(out.array, want), "forward \(label)")
            let go = GuardedBuffer(gradOutput, guardAfter: guardAfter)
            let gi = GuardedBuffer([T](repeating: -7, count: x.count), guardAfter: guardAfter)
            PSRoIPool.backward(
                gradOutput: go.pointer, rois: gr.pointer, roiCount: k, pooledHeight: ph,
                pooledWidth: pw, spatialScale: scale, batch: n, channels: c, height: h, width: w,
                gradInput: gi.pointer)
            XCTAssertTrue(sameValues(gi.array, wantGrad), "backward \(label)")
        }
    }

    /// (output channels, height, width): one to many staged planes, empty maps.
    let psMaps = [(1, 1, 1), (2, 4, 5), (3, 7, 16), (1, 3, 17), (5, 5, 33), (2, 0, 4), (1, 4, 0)]

    func testPSRoIAlign() {
        for (oc, h, w) in psMaps {
            let rois: [Float] = boxes(height: h, width: w, scale: 0.5)
            for pooled in pooledSizes {
                for ratio in [0, 2] {
                    checkPSRoIAlign(
                        Float.self, batch: 2, outChannels: oc, height: h, width: w, rois: rois,
                        scale: 0.5, pooled: pooled, ratio: ratio)
                }
            }
        }
        let rois: [Double] = boxes(height: 5, width: 33, scale: 0.5)
        checkPSRoIAlign(
            Double.self, batch: 2, outChannels: 3, height: 5, width: 33, rois: rois, scale: 0.5,
            pooled: (2, 3), ratio: 0)
    }

    func testPSRoIPool() {
        for (oc, h, w) in psMaps {
            for (scale, pooled) in [(0.5, (1, 1)), (1.0, (2, 3)), (0.5, (7, 7))] {
                let rois: [Float] = boxes(height: h, width: w, scale: scale)
                checkPSRoIPool(
                    Float.self, batch: 2, outChannels: oc, height: h, width: w, rois: rois,
                    scale: Float(scale), pooled: pooled)
            }
        }
        let rois: [Double] = boxes(height: 5, width: 33, scale: 0.5)
        checkPSRoIPool(
            Double.self, batch: 2, outChannels: 3, height: 5, width: 33, rois: rois, scale: 0.5,
            pooled: (2, 3))
    }

    /// Planes of more than 2^18 cells are read in place; planes of more than 2^17 are staged one at a time.
    func testPositionSensitiveLargeMaps() {
        for (oc, h, w) in [(1, 1, (1 << 18) + 1), (1, (1 << 18) + 1, 1), (3, 2, (1 << 16) + 1)] {
            let rois: [Float] = boxesOnALargeMap(height: h, width: w)
            for ratio in [0, 2] {
                checkPSRoIAlign(
                    Float.self, batch: 2, outChannels: oc, height: h, width: w, rois: rois, scale: 1,
                    pooled: (1, 2), ratio: ratio)
            }
            checkPSRoIPool(
                Float.self, batch: 2, outChannels: oc, height: h, width: w, rois: rois, scale: 1,
                pooled: (2, 1))
        }
    }

    // MARK: ChannelTile

    func testChannelTile() {
        for plane in [1, 15, 255, 256, 257, 600] {
            for channels in 1...16 {
                let src: [Float] = guardValues(channels * plane)
                var tile = [SIMD16<Float>](repeating: SIMD16(repeating: -7), count: plane)
                ChannelTile.fill(&tile, from: src, channels: channels, plane: plane)
                var back = [Float](repeating: -7, count: channels * plane)
                ChannelTile.store(tile, count: plane, channels: channels, to: &back)
                XCTAssertEqual(back, src)
                for guardAfter in [true, false] {
                    let gs = GuardedBuffer(src, guardAfter: guardAfter)
                    let gt = GuardedBuffer(
                        [SIMD16<Float>](repeating: SIMD16(repeating: -7), count: plane),
                        guardAfter: guardAfter)
                    ChannelTile.fill(gt.pointer, from: gs.pointer, channels: channels, plane: plane)
                    XCTAssertEqual(gt.array, tile, "\((plane, channels))")
                    let gb = GuardedBuffer([Float](repeating: -7, count: back.count), guardAfter: guardAfter)
                    ChannelTile.store(gt.pointer, count: plane, channels: channels, to: gb.pointer)
                    XCTAssertEqual(gb.array, src, "\((plane, channels))")
                }
            }
        }
    }
}
