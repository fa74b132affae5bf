import SwiftRCNNOps
import XCTest

/// The backward kernels with vector paths or strided scatters read and write only inside their buffers: run on
/// guarded copies (`GuardedBuffer`) on sizes around their lane groups, they must give what they give on ordinary
/// arrays (and not fault).
final class BackwardGuardPageTests: XCTestCase {
    func testMaxPoolBackward() {
        for (h, w, k, s, p) in [
            (3, 33, 3, 2, 1), (4, 34, 3, 2, 1), (5, 35, 3, 2, 1), (2, 64, 3, 2, 1), (6, 66, 3, 2, 1), (1, 1, 3, 2, 1),
            (4, 35, 1, 2, 0), (3, 17, 2, 2, 0),
        ] {
            let x: [Float] = guardValues(2 * h * w), ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            let g: [Float] = guardValues(2 * ho * wo, seed: 3)
            var want = [Float](repeating: 0.5, count: x.count)
            MaxPool2d.backward(
                g, input: x, planes: 2, height: h, width: w, kernel: k, stride: s, padding: p, into: &want)
            for guardAfter in [true, false] {
                let input = GuardedBuffer(x, guardAfter: guardAfter),
                    gradient = GuardedBuffer(g, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0.5, count: x.count), guardAfter: guardAfter)
                MaxPool2d.backward(
                    gradient.pointer, input: input.pointer, planes: 2, height: h, width: w, kernel: k, stride: s,
                    padding: p, into: output.pointer)
                XCTAssertEqual(output.array, want, "\((h, w, k, s, p))")
            }
        }
    }

    func testIm2ColAccumulate() {
        // (h, w, kernel, stride, padding, dilation), the whole output.
        for (h, w, k, s, p, d) in [(5, 64, 3, 2, 1, 1), (4, 66, 7, 2, 3, 1), (3, 33, 1, 2, 0, 1), (6, 40, 3, 1, 2, 2)] {
            let g = Im2Col.Geometry(
                height: h, width: w, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p, dilationH: d,
                dilationW: d)
            let columns: [Float] = guardValues(2 * k * k * g.outHeight * g.outWidth)
            var want = [Float](repeating: 0.5, count: 2 * h * w)
            Im2Col.accumulate(columns, channels: 2, geometry: g, rows: 0, g.outHeight, into: &want)
            for guardAfter in [true, false] {
                let source = GuardedBuffer(columns, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0.5, count: want.count), guardAfter: guardAfter)
                Im2Col.accumulate(source.pointer, channels: 2, geometry: g, rows: 0, g.outHeight, into: output.pointer)
                XCTAssertEqual(output.array, want, "\((h, w, k, s, p, d))")
            }
        }
    }

    func testNearestBackward() {
        for (h, w, ho, wo) in [(25, 34, 50, 67), (3, 17, 6, 34), (1, 1, 2, 3)] {
            let g: [Float] = guardValues(2 * ho * wo)
            var want = [Float](repeating: 0.5, count: 2 * h * w)
            Interpolation.nearestBackward(
                g, planes: 2, outHeight: ho, outWidth: wo, height: h, width: w, into: &want, accumulate: true)
            for guardAfter in [true, false] {
                let gradient = GuardedBuffer(g, guardAfter: guardAfter)
                let output = GuardedBuffer([Float](repeating: 0.5, count: want.count), guardAfter: guardAfter)
                Interpolation.nearestBackward(
                    gradient.pointer, planes: 2, outHeight: ho, outWidth: wo, height: h, width: w,
                    into: output.pointer, accumulate: true)
                XCTAssertEqual(output.array, want, "\((h, w, ho, wo))")
            }
        }
    }

    /// The input and output-gradient transforms load two vectors of columns per run of tiles: widths around
    /// 2·lanes (16, 32 and 64 columns on the three paths), odd and even.
    func testWinogradWeightGradient() {
        forEachISA { isa in
            for (h, w) in [(3, 15), (2, 16), (5, 17), (3, 32), (4, 33), (2, 63), (3, 64), (1, 1)] {
                let (c, k) = (2, 3)
                let x: [Float] = guardValues(c * h * w), dy: [Float] = guardValues(k * h * w, seed: 5)
                var want = [Float](repeating: 0, count: k * c * 9)
                Winograd.weightGradient(
                    x, batch: 1, channels: c, height: h, width: w, outputGradient: dy, outChannels: k, into: &want)
                for guardAfter in [true, false] {
                    let input = GuardedBuffer(x, guardAfter: guardAfter)
                    let gradient = GuardedBuffer(dy, guardAfter: guardAfter)
                    let output = GuardedBuffer([Float](repeating: 0, count: want.count), guardAfter: guardAfter)
                    Winograd.weightGradient(
                        input.pointer, batch: 1, channels: c, height: h, width: w, outputGradient: gradient.pointer,
                        outChannels: k, into: output.pointer)
                    XCTAssertEqual(output.array, want, "\((isa, h, w))")
                }
            }
        }
    }
}
