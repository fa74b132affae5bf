import Dispatch
import SwiftRCNNOps
import Synchronization
import XCTest
import _SwiftRCNNCPUID

/// `Parallel.forEachChunk` over the worker pool: every item once, from any thread, nested, back to back.
final class ParallelTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.numThreads }
    override func tearDown() { Parallel.numThreads = savedThreads }

    /// Counts how often each index of 0 ..< count is visited by one forEachChunk.
    private func visits(_ count: Int, minItemsPerChunk: Int = 1) -> [Int] {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        Parallel.forEachChunk(count, minItemsPerChunk: minItemsPerChunk) { range in
            for i in range { counts[i] += 1 }
        }
        return Array(counts)
    }

    func testEveryItemOnceForAnyThreadCount() {
        for threads in [1, 2, 3, 8] {
            Parallel.numThreads = threads
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                XCTAssertEqual(visits(count), Array(repeating: 1, count: count), "threads \(threads), count \(count)")
            }
        }
    }

    func testManyLoopsBackToBack() {
        // Thousands of short loops: workers alternate between polling and sleeping between them.
        Parallel.numThreads = 4
        for round in 0..<3000 {
            let count = 1 + round % 37
            XCTAssertEqual(visits(count), Array(repeating: 1, count: count))
            if round % 1000 == 999 { usleep(2000) }  // past the polling time: workers sleep and are woken
        }
    }

    func testNestedLoopsRunEveryItem() {
        Parallel.numThreads = 4
        let total = Atomic<Int>(0)
        Parallel.forEachChunk(16) { outer in
            for _ in outer {
                Parallel.forEachChunk(100) { inner in total.add(inner.count, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 1600)
    }

    func testLoopsFromSeveralThreadsAtOnce() {
        Parallel.numThreads = 3
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for round in 0..<500 {
                let count = 1 + (round * 7 + caller) % 50
                if visits(count) != Array(repeating: 1, count: count) { failures.add(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    }

    /// Workers woken from sleep (their caller's CPU taken out of their allowed CPUs meanwhile) run every item, and
    /// run them with all their CPUs allowed again.
    func testWokenWorkersGetTheirCPUsBack() {
        let allowed = srcnn_allowed_cpu_count()
        Parallel.numThreads = 2
        let narrowed = Atomic<Int>(0)
        for round in 0..<20 {
            let count = 64
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
            counts.initialize(repeating: 0)
            Parallel.forEachChunk(count) { range in
                if srcnn_allowed_cpu_count() != allowed { narrowed.add(1, ordering: .relaxed) }
                for i in range {
                    counts[i] += 1
                    usleep(20)  // long enough that the worker takes items too
                }
            }
            XCTAssertEqual(Array(counts), Array(repeating: 1, count: count), "round \(round)")
            counts.deallocate()
            usleep(2000)  // past the polling time: the worker sleeps and is woken by the next loop
        }
        XCTAssertEqual(narrowed.load(ordering: .relaxed), 0, "items ran on a thread with fewer allowed CPUs")
        XCTAssertEqual(srcnn_allowed_cpu_count(), allowed)
    }

    /// The placement helpers: leaving a CPU moves the thread and keeps its allowed CPUs; excluding a CPU moves it
    /// too, and allowing it again restores the count.
    func testPlacementHelpers() throws {
        let allowed = srcnn_allowed_cpu_count()
        XCTAssertEqual(srcnn_leave_cpu(-1), 0)
        #if os(Linux)
            XCTAssertGreaterThan(allowed, 0)
            XCTAssertGreaterThan(srcnn_current_thread(), 0)
        #endif
        try XCTSkipIf(allowed < 2, "one CPU allowed: nothing to move to")
        let cpu = srcnn_current_cpu()
        XCTAssertGreaterThanOrEqual(cpu, 0)
        XCTAssertEqual(srcnn_leave_cpu(cpu), 1)
        XCTAssertNotEqual(srcnn_current_cpu(), cpu)
        XCTAssertEqual(srcnn_allowed_cpu_count(), allowed)
        XCTAssertEqual(srcnn_leave_cpu(cpu), 0, "not on that CPU any more")

        let here = srcnn_current_cpu()
        XCTAssertEqual(srcnn_exclude_cpu(srcnn_current_thread(), here), 1)
        XCTAssertEqual(srcnn_allowed_cpu_count(), allowed - 1)
        XCTAssertNotEqual(srcnn_current_cpu(), here)
        srcnn_allow_cpu(here)
        XCTAssertEqual(srcnn_allowed_cpu_count(), allowed)
    }
}
