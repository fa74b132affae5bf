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
}
