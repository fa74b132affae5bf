import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// `FloatBuffer`, the storage of `FeatureMap`: array-like reads and writes, copy-on-write, conversions to and from
/// `[Float]`, and large buffers coming back from `BufferCache`.
final class FloatBufferTests: XCTestCase {
    func testReadsAndWritesLikeAnArray() {
        var b = FloatBuffer([1, 2, 3, 4])
        XCTAssertEqual(b.count, 4)
        XCTAssertEqual(Array(b), [1, 2, 3, 4])
        b[2] = 7
        XCTAssertEqual(Array(b), [1, 2, 7, 4])
        XCTAssertEqual(b.reduce(0, +), 14)
        XCTAssertEqual(Array(b[1..<3]), [2, 7])
        b.withUnsafeMutableBufferPointer { p in p[0] = -1 }
        XCTAssertEqual(b.withUnsafeBufferPointer { Array($0) }, [-1, 2, 7, 4])
        XCTAssertEqual(FloatBuffer(repeating: 0.5, count: 3), [0.5, 0.5, 0.5])
        XCTAssertEqual(FloatBuffer((0..<5).lazy.map { Float($0) * 2 }), [0, 2, 4, 6, 8], "a sequence without storage")
        XCTAssertEqual(FloatBuffer().count, 0)
        XCTAssertEqual(FloatBuffer(), FloatBuffer([]))
        XCTAssertNotEqual(FloatBuffer([1, 2]), FloatBuffer([1, 3]))
        XCTAssertNotEqual(FloatBuffer([1, 2]), FloatBuffer([1, 2, 3]))
        XCTAssertEqual(b.description, "[-1.0, 2.0, 7.0, 4.0]")
    }

    func testCopyOnWrite() {
        let a = FloatBuffer([1, 2, 3])
        var b = a
        b[0] = 9
        XCTAssertEqual(Array(a), [1, 2, 3])
        XCTAssertEqual(Array(b), [9, 2, 3])
        var c = a
        c.withUnsafeMutableBufferPointer { $0[2] = 0 }
        XCTAssertEqual(Array(a), [1, 2, 3])
        XCTAssertEqual(Array(c), [1, 2, 0])
        // A map's copy is independent too.
        var map = FeatureMap(batch: 1, channels: 1, height: 1, width: 3, data: a)
        let before = map
        map.data[1] = 5
        XCTAssertEqual(Array(before.data), [1, 2, 3])
        XCTAssertEqual(Array(map.data), [1, 5, 3])
    }

    func testLargeMapsReuseMemory() throws {
        try XCTSkipIf(BufferCache.limitBytes < 64 << 20, "cache limit too small for this test")
        BufferCache.release()
        defer { BufferCache.release() }
        let shape = (batch: 1, channels: 64, height: 100, width: 100)  // 2.4 MiB
        var first: UnsafePointer<Float>?
        do {
            let map = FeatureMap(batch: shape.0, channels: shape.1, height: shape.2, width: shape.3) {
                $0.initialize(repeating: 1)
            }
            first = map.data.withUnsafeBufferPointer { $0.baseAddress }
        }
        XCTAssertGreaterThan(BufferCache.keptBytes, 0, "the map's buffer went back to the cache")
        let next = FeatureMap(batch: shape.0, channels: shape.1, height: shape.2, width: shape.3) {
            $0.initialize(repeating: 2)
        }
        XCTAssertEqual(next.data.withUnsafeBufferPointer { $0.baseAddress }, first)
        XCTAssertTrue(next.data.allSatisfy { $0 == 2 })
        XCTAssertEqual(BufferCache.keptBytes, 0)
    }

    func testRepeatedLayersAllocateNothingNew() throws {
        // A chain of convolutions (Winograd, im2col and 1 x 1) run twice on the same shapes: the second run's
        // maps and scratch all come from the cache, and the output is the same.
        try XCTSkipIf(BufferCache.limitBytes < 256 << 20, "cache limit too small for this test")
        var seed: UInt64 = 5
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(seed >> 40) / Float(1 << 24) - 0.5
            }
        }
        let x = FeatureMap(batch: 1, channels: 32, height: 120, width: 160, data: values(32 * 120 * 160))
        let layers = [
            Conv2d(
                weight: values(64 * 32 * 9), bias: values(64), inChannels: 32, outChannels: 64, kernel: (3, 3),
                padding: 1, relu: true),
            Conv2d(
                weight: values(64 * 64 * 9), bias: nil, inChannels: 64, outChannels: 64, kernel: (3, 3),
                stride: 2, padding: 1),
            Conv2d(weight: values(128 * 64), bias: values(128), inChannels: 64, outChannels: 128, kernel: (1, 1)),
        ]
        // One thread, so that every run takes the same scratch buffers (on more, how many threads join a loop
        // varies); the first run's output is copied out, so that its buffer goes back too.
        let threads = Parallel.numThreads
        Parallel.numThreads = 1
        defer { Parallel.numThreads = threads }
        func run() -> [Float] { Array(layers.reduce(x) { $1($0) }.data) }
        let first = run()
        let before = BufferCache.statistics
        let second = run()
        let after = BufferCache.statistics
        XCTAssertEqual(after.allocations, before.allocations, "new buffers on the second run")
        XCTAssertGreaterThan(after.reuses, before.reuses)
        XCTAssertEqual(first, second)
    }
}
