import SwiftRCNNOps
import XCTest

/// `BufferCache`: small requests bypass it; a returned large buffer is handed out again for a request it fits within
/// the slack, not for one it would dwarf; new large buffers are whole huge pages, aligned to one; what is kept stays
/// within a limit set, and what is in use and kept within twice the most in use (the only bound by default: the
/// suite does not set `SWIFTRCNN_BUFFER_CACHE_MB`); `release` empties it.
final class BufferCacheTests: XCTestCase {
    override func setUp() { BufferCache.release() }
    override func tearDown() { BufferCache.release() }

    func testReuseWithinSlack() throws {
        try XCTSkipIf(BufferCache.limitBytes == 0, "cache turned off by SWIFTRCNN_BUFFER_CACHE_MB=0")
        let size = 6 << 20
        let first = BufferCache.take(byteCount: size)
        XCTAssertGreaterThanOrEqual(first.capacity, size)
        XCTAssertEqual(first.capacity % (2 << 20), 0, "whole huge pages")
        XCTAssertEqual(Int(bitPattern: first.pointer) % (2 << 20), 0, "aligned to a huge page")
        first.pointer.storeBytes(of: 0x1234_5678, as: UInt32.self)
        BufferCache.give(first.pointer, capacity: first.capacity)
        XCTAssertEqual(BufferCache.keptBytes, first.capacity)

        // Twice the request is beyond the slack: a new buffer.
        let small = BufferCache.take(byteCount: 3 << 20)
        XCTAssertNotEqual(small.pointer, first.pointer)
        XCTAssertEqual(BufferCache.keptBytes, first.capacity)

        // Within the slack: the kept buffer, with what was written to it.
        let again = BufferCache.take(byteCount: size - 100_000)
        XCTAssertEqual(again.pointer, first.pointer)
        XCTAssertEqual(again.capacity, first.capacity)
        XCTAssertEqual(again.pointer.load(as: UInt32.self), 0x1234_5678)
        XCTAssertEqual(BufferCache.keptBytes, 0)

        BufferCache.give(small.pointer, capacity: small.capacity)
        BufferCache.give(again.pointer, capacity: again.capacity)
        XCTAssertEqual(BufferCache.keptBytes, small.capacity + again.capacity)
        BufferCache.release()
        XCTAssertEqual(BufferCache.keptBytes, 0)
    }

    func testBestFitAmongKept() throws {
        try XCTSkipIf(BufferCache.limitBytes < 64 << 20, "cache limit too small for this test")
        let sizes = [10 << 20, 8 << 20, 9 << 20]
        let taken = sizes.map { BufferCache.take(byteCount: $0) }
        for t in taken { BufferCache.give(t.pointer, capacity: t.capacity) }
        let got = BufferCache.take(byteCount: 7 << 20)
        XCTAssertEqual(got.pointer, taken[1].pointer, "the smallest that holds the request")
        BufferCache.give(got.pointer, capacity: got.capacity)
    }

    func testSmallRequestsBypass() {
        let small = BufferCache.take(byteCount: 1000)
        XCTAssertEqual(small.capacity, 1000)
        XCTAssertEqual(Int(bitPattern: small.pointer) % 64, 0)
        BufferCache.give(small.pointer, capacity: small.capacity)
        XCTAssertEqual(BufferCache.keptBytes, 0)
        let empty = BufferCache.take(byteCount: 0)
        XCTAssertEqual(empty.capacity, 1)
        BufferCache.give(empty.pointer, capacity: empty.capacity)
    }

    func testKeptBytesStayWithinLimit() throws {
        try XCTSkipIf(BufferCache.limitBytes == 0, "cache turned off by SWIFTRCNN_BUFFER_CACHE_MB=0")
        let saved = BufferCache.limitBytes
        defer { BufferCache.limitBytes = saved }
        let limit = 256 << 20
        BufferCache.limitBytes = limit
        // Give back more than the limit, in buffers of 64 MiB: the oldest are freed.
        let piece = 64 << 20
        let count = limit / piece + 3
        let taken = (0..<count).map { _ in BufferCache.take(byteCount: piece) }
        for t in taken { BufferCache.give(t.pointer, capacity: t.capacity) }
        XCTAssertLessThanOrEqual(BufferCache.keptBytes, limit)
        XCTAssertGreaterThan(BufferCache.keptBytes, limit - 2 * piece)
        // The oldest were freed; of equal kept buffers the last returned comes out first.
        let kept = BufferCache.keptBytes / taken[0].capacity
        XCTAssertEqual(kept, limit / taken[0].capacity)
        let again = BufferCache.take(byteCount: piece)
        XCTAssertEqual(again.pointer, taken.last!.pointer)
        let rest = (1..<kept).map { _ in BufferCache.take(byteCount: piece) }
        XCTAssertEqual(
            Set(([again] + rest).map(\.pointer)), Set(taken.suffix(kept).map(\.pointer)), "the newest were kept")
        XCTAssertEqual(BufferCache.keptBytes, 0)
        for t in rest { BufferCache.give(t.pointer, capacity: t.capacity) }
        BufferCache.give(again.pointer, capacity: again.capacity)
    }

    func testNoFixedLimitByDefault() throws {
        try XCTSkipIf(BufferCache.limitBytes != Int.max, "a limit is set (SWIFTRCNN_BUFFER_CACHE_MB)")
        // 1.25 GiB in use at once (address space only: the pages are never touched) comes back whole, beyond the
        // 1 GiB that the cache used to keep at most: a training step with that much in use finds it all again.
        let taken = (0..<5).map { _ in BufferCache.take(byteCount: 256 << 20) }
        for t in taken { BufferCache.give(t.pointer, capacity: t.capacity) }
        let total = taken.reduce(0) { $0 + $1.capacity }
        XCTAssertEqual(BufferCache.keptBytes, total)
        XCTAssertLessThanOrEqual(BufferCache.keptBytes, 2 * BufferCache.statistics.peakInUse)
        // A limit set at run time frees the oldest kept buffers at once; the newest stay.
        defer { BufferCache.limitBytes = Int.max }
        BufferCache.limitBytes = 600 << 20
        XCTAssertEqual(BufferCache.keptBytes, 2 * taken[0].capacity)
        let again = BufferCache.take(byteCount: 256 << 20)
        XCTAssertEqual(again.pointer, taken[4].pointer)
        BufferCache.give(again.pointer, capacity: again.capacity)
        BufferCache.limitBytes = 0
        XCTAssertEqual(BufferCache.keptBytes, 0)
    }

    func testInUseAndKeptStayWithinTwiceThePeak() throws {
        try XCTSkipIf(BufferCache.limitBytes < 1 << 30, "cache limit too small for this test")
        // One 256 MiB buffer, then smaller ones that none kept can serve (each under 2/3 of the one before), one at a
        // time: 674 MiB in all, so the oldest kept ones are freed to stay within twice the 256 MiB in use at most.
        let before = BufferCache.statistics.peakInUse
        var total = 0
        for mebibytes in [256, 160, 100, 62, 40, 24, 16, 10, 6] {
            let b = BufferCache.take(byteCount: mebibytes << 20)
            total += b.capacity
            BufferCache.give(b.pointer, capacity: b.capacity)
        }
        let statistics = BufferCache.statistics
        XCTAssertEqual(statistics.peakInUse, before + (256 << 20))
        XCTAssertGreaterThan(total, 2 * statistics.peakInUse)
        XCTAssertLessThanOrEqual(statistics.peakHeld, 2 * statistics.peakInUse)
        XCTAssertLessThanOrEqual(BufferCache.keptBytes, 2 * statistics.peakInUse)
        XCTAssertGreaterThan(BufferCache.keptBytes, 2 * statistics.peakInUse - (256 << 20))
        // release() counts the most in use afresh.
        BufferCache.release()
        XCTAssertEqual(BufferCache.statistics.peakInUse, before)
    }

    func testConcurrentUse() {
        // Threads taking and giving sizes around one another: every buffer handed out is held by one thread only
        // (each writes its index and reads it back).
        let threads = 4, rounds = 200
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for r in 0..<rounds {
                let size = (1 << 20) + ((t * 7 + r) % 5) * (300 << 10)
                let b = BufferCache.take(byteCount: size)
                let p = b.pointer.bindMemory(to: Int.self, capacity: size / 8)
                p[0] = t * rounds + r
                p[size / 8 - 1] = t * rounds + r
                usleep(10)
                XCTAssertEqual(p[0], t * rounds + r)
                XCTAssertEqual(p[size / 8 - 1], t * rounds + r)
                BufferCache.give(b.pointer, capacity: b.capacity)
            }
        }
        XCTAssertLessThanOrEqual(BufferCache.keptBytes, BufferCache.limitBytes)
    }
}
