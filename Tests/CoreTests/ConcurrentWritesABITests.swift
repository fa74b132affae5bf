import CSwiftRCNN
import Dispatch
import Synchronization
import XCTest

/// Issue #9: an export checked a caller's array and its kernel read it again later, so a caller thread writing into
/// the array during the call got past the checks (roi_pool_backward wrote out of bounds at a tampered argmax, RoI
/// kernels read images past the batch). Values that index memory are now checked on a copy the kernel reads: while
/// another thread flips them, every call either fails the checks or runs on values that passed them.
final class ConcurrentWritesABITests: XCTestCase {
    /// Writes `bad` and then `good` into `values[i]`, for every listed `i`, until stopped.
    final class Flipper<T>: @unchecked Sendable {
        let values: UnsafeMutablePointer<T>, indices: [Int], good: [T], bad: T
        let running = Atomic<Bool>(true)

        init(_ values: UnsafeMutablePointer<T>, at indices: [Int], bad: T) {
            self.values = values
            self.indices = indices
            self.good = indices.map { values[$0] }
            self.bad = bad
        }

        func run() {
            // Plain stores (tests build without optimisation, so none is elided).
            while running.load(ordering: .relaxed) {
                for i in indices { values[i] = bad }
                for (i, g) in zip(indices, good) { values[i] = g }
            }
        }
    }

    /// Calls `body` repeatedly for `seconds` while a `Flipper` writes into `values`; returns (calls, failed calls).
    func race<T>(
        _ values: UnsafeMutablePointer<T>, at indices: [Int], bad: T, seconds: Double = 0.5,
        _ body: () -> Int32
    ) -> (Int, Int) {
        let flipper = Flipper(values, at: indices, bad: bad)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { flipper.run() }
        var calls = 0, failures = 0
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            if body() != Int32(SRCNN_OK.rawValue) { failures += 1 }
            calls += 1
        }
        flipper.running.store(false, ordering: .relaxed)
        group.wait()
        return (calls, failures)
    }

    func testRoIPoolBackwardArgmax() {
        let err = ErrBuf()
        let (k, c, n, h, w) = (16, 4, 2, 8, 8)
        let grad = Buf<Float>(zeros: [k, c, 2, 2], 1), gradInput = Buf<Float>(zeros: [n, c, h, w], 0)
        let rois = Buf<Float>((0..<k).flatMap { [Float($0 % n), 0, 0, 6, 6] }, [k, 5])
        let argmax = UnsafeMutablePointer<Int64>.allocate(capacity: k * c * 4)
        defer { argmax.deallocate() }
        argmax.initialize(repeating: 5, count: k * c * 4)
        var a = makeArray(argmax, [k, c, 2, 2], SRCNN_INT64)
        let (calls, failures) = race(argmax, at: Array(stride(from: 0, to: k * c * 4, by: 3)), bad: 1 << 40) {
            grad.with { g in
                rois.with { r in
                    gradInput.with { gi in
                        CSwiftRCNN.srcnn_roi_pool_backward(g, r, &a, gi, &err.bytes)
                    }
                }
            }
        }
        XCTAssertGreaterThan(calls, failures)
    }

    func testRoIAlignBatchIndex() {
        let err = ErrBuf()
        let (k, c, n, h, w) = (16, 4, 2, 16, 16)
        let input = Buf<Float>(zeros: [n, c, h, w], 1), output = Buf<Float>(zeros: [k, c, 3, 3], 0)
        let rois = UnsafeMutablePointer<Float>.allocate(capacity: k * 5)
        defer { rois.deallocate() }
        for r in 0..<k { (rois + 5 * r).initialize(from: [Float(r % n), 1, 1, 12, 12], count: 5) }
        var b = makeArray(rois, [k, 5], SRCNN_FLOAT32)
        let (calls, failures) = race(rois, at: (0..<k).map { 5 * $0 }, bad: 3e8) {
            input.with { x in
                output.with { o in
                    CSwiftRCNN.srcnn_roi_align(x, &b, 3, 3, 1.0, 2, 0, o, &err.bytes)
                }
            }
        }
        XCTAssertGreaterThan(calls, failures)
    }

    func testPasteMasksBoxes() {
        let err = ErrBuf()
        let (k, m, h, w) = (16, 8, 32, 32)
        let masks = Buf<Float>(zeros: [k, 1, m, m], 1), out = Buf<Float>(zeros: [k, 1, h, w], 0)
        let boxes = UnsafeMutablePointer<Float>.allocate(capacity: k * 4)
        defer { boxes.deallocate() }
        for r in 0..<k { (boxes + 4 * r).initialize(from: [2, 3, 20, 25], count: 4) }
        var b = makeArray(boxes, [k, 4], SRCNN_FLOAT32)
        let (calls, failures) = race(boxes, at: (0..<k).map { 4 * $0 + 2 }, bad: 1e30) {
            masks.with { mk in
                out.with { o in
                    CSwiftRCNN.srcnn_paste_masks_in_image(mk, &b, Int64(h), Int64(w), 1, o, &err.bytes)
                }
            }
        }
        XCTAssertGreaterThan(calls, failures)
    }
}
