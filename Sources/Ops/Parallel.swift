import Dispatch
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How many threads the kernels use, and the one place that spreads work over them.
///
/// The count starts as `SWIFTRCNN_NUM_THREADS` when that is a positive integer, else the number of online cores,
/// and can be changed with `Parallel.numThreads`. Work is split into contiguous chunks run by the calling thread and
/// up to `numThreads - 1` workers (`WorkerPool`); each chunk owns its index range, so kernels that write disjoint
/// outputs per index never contend.
public enum Parallel {
    nonisolated(unsafe) private static var _numThreads: Int = initialThreadCount()

    /// Threads used by every kernel (>= 1).
    public static var numThreads: Int {
        get { _numThreads }
        set { _numThreads = max(1, newValue) }
    }

    private static func initialThreadCount() -> Int {
        if let raw = getenv("SWIFTRCNN_NUM_THREADS"), let n = Int(String(cString: raw)), n > 0 {
            return min(n, 1024)
        }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Calls `body(range)` for contiguous chunks covering `0..<count`, in parallel when the work is worth it.
    ///
    /// - Parameters:
    ///   - count: number of independent items.
    ///   - minItemsPerChunk: below this many items per thread the loop runs on the calling thread; pass roughly
    ///     how many items make ~50 µs of work.
    @inlinable
    public static func forEachChunk(_ count: Int, minItemsPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let threads = min(numThreads, max(1, count / max(1, minItemsPerChunk)))
        if threads == 1 {
            body(0..<count)
            return
        }
        // More chunks than threads smooths out uneven items (RoIs of very different sizes).
        let chunks = min(count, threads * 4)
        WorkerPool.pool().run(items: chunks, threads: threads) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}
