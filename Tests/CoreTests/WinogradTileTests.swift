import Dispatch
import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// Which Winograd variant a layer gets: the process default, a thread's `withDefaultTile` override (what a trainer
/// uses to keep F(2×2, 3×3)), an explicit `winogradTile`, and derived layers keeping their source's. Also that an
/// F(4×4, 3×3) layer computes the convolution.
final class WinogradTileTests: XCTestCase {
    func conv(_ tile: Int? = nil, channels: Int = 3) -> Conv2d {
        let weight = (0..<(channels * channels * 9)).map { Float($0 % 7) / 7 - 0.4 }
        return Conv2d(
            weight: weight, bias: [Float](repeating: 0.1, count: channels), inChannels: channels,
            outChannels: channels, kernel: (3, 3), padding: 1, winogradTile: tile)
    }

    func testDefaultOverrideAndExplicitTile() {
        let saved = Winograd.defaultTile
        defer { Winograd.defaultTile = saved }
        Winograd.defaultTile = 4
        XCTAssertEqual(conv().winogradTile, 4)
        XCTAssertEqual(conv(2).winogradTile, 2)
        Winograd.withDefaultTile(2) {
            XCTAssertEqual(Winograd.defaultTile, 2)
            XCTAssertEqual(conv().winogradTile, 2)
            XCTAssertEqual(conv(4).winogradTile, 4)
            // Another thread keeps the process default.
            let seen = Seen()
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                seen.value = Winograd.defaultTile
                done.signal()
            }
            done.wait()
            XCTAssertEqual(seen.value, 4)
            Winograd.withDefaultTile(4) { XCTAssertEqual(conv().winogradTile, 4) }
            XCTAssertEqual(Winograd.defaultTile, 2)
        }
        XCTAssertEqual(Winograd.defaultTile, 4)
        Winograd.defaultTile = 2
        XCTAssertEqual(conv().winogradTile, 2)
    }

    func testDerivedLayersKeepTheTile() {
        for tile in [2, 4] {
            let c = conv(tile)
            let ones = [Float](repeating: 1, count: 3), zeros = [Float](repeating: 0, count: 3)
            XCTAssertEqual(
                c.foldingBatchNorm(gamma: ones, beta: zeros, mean: zeros, variance: ones, eps: 1e-5).winogradTile, tile)
            XCTAssertEqual(c.withReLU(true).winogradTile, tile)
            XCTAssertEqual(c.inputGradientLayer()?.winogradTile, tile)
        }
    }

    func testTile4ComputesTheConvolution() {
        let channels = 5
        let x = FeatureMap(
            batch: 2, channels: channels, height: 9, width: 13,
            data: (0..<(2 * channels * 9 * 13)).map { Float(($0 * 37) % 101) / 50 - 1 })
        let f2 = conv(2, channels: channels)(x), f4 = conv(4, channels: channels)(x)
        XCTAssertEqual(f4.shape, f2.shape)
        for (a, b) in zip(f4.data, f2.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }
}

/// What another thread saw (written before a semaphore signal, read after the wait).
private final class Seen: @unchecked Sendable {
    var value = 0
}
