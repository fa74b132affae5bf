import Synchronization
import _SwiftRCNNCPUID
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Large buffers kept by the library between uses, so that a detector's feature maps and scratch space come from
/// memory the process already has.
///
/// glibc gives every allocation above 32 MiB its own fresh mapping and returns it to the kernel when freed, and it
/// trims the top of its heap whenever enough is free there, whoever freed it. Fresh memory is zero-filled by the
/// kernel on first touch, page by page; on virtual machines (free page reporting, ballooning) each such page can
/// also fault in the host. A detector call on an 800 × 1066 image allocates several 55 MB maps, and how many of them
/// come fresh depends on what else runs in the process: in one process with torchvision a Faster R-CNN call ran
/// 25–50% slower than alone. Buffers that go through this cache stay mapped and are handed out again.
///
/// Policy. Requests below `minimumBytes` go to `malloc` and `free` directly. Larger ones take the smallest cached
/// buffer that holds them and is at most `slack` times their size (of equal ones, the last returned, whose lines may
/// still be in the caches), or else a new allocation (rounded up to whole huge pages, aligned to one, and advised
/// with `HugePages`); before a new allocation, kept buffers are freed (the oldest first) while what is in use and
/// kept would exceed twice the most ever in use at once (or that plus `headroomMinimumBytes`, if more). So what the
/// cache keeps idle is in proportion to what the library uses at once. A returned buffer is kept unless that would
/// make the cache hold more than `limitBytes`; then the buffers returned longest ago are freed first. `release()`
/// frees every kept buffer and starts counting the most in use afresh (the Python API's
/// `swiftrcnn.release_memory()`).
///
/// The limit is `SWIFTRCNN_BUFFER_CACHE_MB` mebibytes when set (read once; 0 turns the cache off), else none: only
/// the bound on what is in use and kept together applies. It was 1 GiB, and a training step, which has more than
/// that in use at once (a Mask R-CNN step on two 512 × 683 images: 1.25 GiB; 1.5 GiB in use and kept), then found
/// a third of its buffers freed at the next step and allocated ~30 of them afresh per step: 19% of the step's time
/// went to the kernel zero-filling their pages (AMD EPYC Zen 3 VM, 2 threads; without the limit a step took 5.5-5.8
/// s instead of 6.7-7.0). A child made by `fork` starts with an empty cache (the parent's kept buffers are left to
/// it unused, as a lock held at the fork could never be released there).
public enum BufferCache {
    /// Smallest request (bytes) that goes through the cache.
    public static let minimumBytes = 1 << 20
    /// A cached buffer is handed out for a request only if it is at most this many times the request's size.
    public static let slack = 1.5
    /// When a request needs a new buffer, kept buffers are freed first (the oldest first) until what is in use and
    /// kept together is at most twice the most ever in use at once, or that plus this many bytes if more. So the
    /// cache adds at most that much to the library's peak, and what it keeps idle stays in proportion to use even
    /// when the sizes asked for keep changing (evaluation on images of many sizes). One call's buffers cannot all be
    /// served by those live at its peak (a 14 MB map does not take a 55 MB buffer): a Faster R-CNN call on an
    /// 800 × 1066 image has 144 MiB in use at most and needs 269 MiB in all to allocate nothing afresh; keeping only
    /// as much as was in use, every call allocated 16 buffers anew.
    public static let headroomMinimumBytes = 128 << 20

    /// Most bytes kept idle: `SWIFTRCNN_BUFFER_CACHE_MB` mebibytes when set at startup (0 turns the cache off), else
    /// `Int.max` (no limit but the bound on what is in use and kept together). Settable at run time, e.g. by a
    /// process that must keep little idle between calls: a lower limit frees the oldest kept buffers at once.
    public static var limitBytes: Int {
        get { limit.load(ordering: .relaxed) }
        set {
            let bytes = max(0, newValue)
            limit.store(bytes, ordering: .relaxed)
            for pointer in store().evict(downTo: bytes) { free(pointer) }
        }
    }

    private static let limit = Atomic<Int>(configuredLimitBytes)

    /// `SWIFTRCNN_BUFFER_CACHE_MB` in bytes, or `Int.max` when it is not set (or not a whole number of 0 or more).
    private static var configuredLimitBytes: Int {
        guard let raw = getenv("SWIFTRCNN_BUFFER_CACHE_MB"),
            let megabytes = Int(String(cString: raw).trimmingSpaces), megabytes >= 0
        else { return Int.max }
        return megabytes.multipliedReportingOverflow(by: 1 << 20).overflow ? Int.max : megabytes << 20
    }

    /// A buffer of at least `byteCount` bytes, 64-byte aligned (whole huge pages from the cache's own
    /// allocations). Give it back with `give(_:capacity:)`, passing the capacity returned here.
    public static func take(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let bytes = max(byteCount, 1)
        if bytes < minimumBytes || limitBytes == 0 {
            return (allocate(bytes, alignment: 64), bytes)
        }
        let unit = bytes >= HugePages.minimumBytes ? HugePages.hugePage : 1 << 16
        let (rounded, overflow) = bytes.addingReportingOverflow(unit - 1)
        let capacity = overflow ? bytes : rounded / unit * unit
        let (kept, evicted) = store().take(bytes, orNew: capacity)
        for pointer in evicted { free(pointer) }
        if let kept { return kept }
        let pointer = allocate(capacity, alignment: unit == HugePages.hugePage ? unit : 64)
        HugePages.advise(pointer, byteCount: capacity)
        return (pointer, capacity)
    }

    /// Returns a buffer from `take(byteCount:)` with the capacity it came with.
    public static func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        if capacity < minimumBytes || limitBytes == 0 {
            free(pointer)
            return
        }
        for evicted in store().give(pointer, capacity: capacity) { free(evicted) }
    }

    /// `take(byteCount:)` for `count` elements of `T`; give it back with `give(_:)`.
    public static func take<T>(_: T.Type, count: Int) -> (pointer: UnsafeMutablePointer<T>, capacity: Int) {
        let (bytes, overflow) = max(count, 0).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        precondition(!overflow, "BufferCache: \(count) elements do not fit in memory")
        let (pointer, capacity) = take(byteCount: bytes)
        return (pointer.bindMemory(to: T.self, capacity: max(count, 0)), capacity)
    }

    /// Returns a buffer from `take(_:count:)`.
    public static func give<T>(_ buffer: (pointer: UnsafeMutablePointer<T>, capacity: Int)) {
        give(UnsafeMutableRawPointer(buffer.pointer), capacity: buffer.capacity)
    }

    /// Frees every kept buffer, and counts the most in use (`statistics`) afresh from what is in use now. The
    /// GEMM's per-thread packing buffers (`srcnn_thread_scratch`, a few MiB per thread) are freed at their thread's
    /// next product, which allocates one of the size it needs.
    public static func release() {
        for evicted in store().removeAll() { free(evicted) }
        srcnn_release_thread_scratch()
    }

    /// Bytes kept idle now.
    public static var keptBytes: Int { store().keptBytes }

    /// How many requests of `minimumBytes` and more were served by a new allocation, and how many by a kept buffer,
    /// since the process started (or the cache's first use in a forked child); and the most bytes in use at once,
    /// and in use and kept together, since then or the last `release()`.
    public static var statistics: (allocations: Int, reuses: Int, peakInUse: Int, peakHeld: Int) {
        store().statistics
    }

    private static func allocate(_ bytes: Int, alignment: Int) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, alignment, bytes) == 0, let pointer else {
            fatalError("BufferCache: out of memory allocating \(bytes) bytes")
        }
        return pointer
    }

    /// The kept buffers, oldest first, under a lock.
    private final class Store: @unchecked Sendable {
        struct Entry {
            let pointer: UnsafeMutableRawPointer
            let capacity: Int
        }
        private struct State {
            var entries: [Entry] = []
            /// Bytes in `entries`.
            var bytes = 0
            /// Bytes handed out and not yet returned, and the most there have been at once.
            var live = 0, peakLive = 0
            /// The most bytes there have been handed out and kept together.
            var peakHeld = 0
            var allocations = 0, reuses = 0

            /// Removes the oldest kept buffers until at most `most` bytes are kept; returns them, to free.
            mutating func evictOldest(downTo most: Int) -> [UnsafeMutableRawPointer] {
                var drop = 0
                while bytes > most, drop < entries.count {
                    bytes -= entries[drop].capacity
                    drop += 1
                }
                let evicted = entries.prefix(drop).map(\.pointer)
                entries.removeFirst(drop)
                return evicted
            }
        }
        private let state = Mutex<State>(State())

        /// A kept buffer for `bytes`, or nil after counting a new one of `capacity` bytes as handed out; and the
        /// kept buffers to free (oldest first) so that what is in use and kept stays within the bound
        /// (`headroomMinimumBytes`).
        func take(
            _ bytes: Int, orNew capacity: Int
        ) -> (
            kept: (pointer: UnsafeMutableRawPointer, capacity: Int)?, evicted: [UnsafeMutableRawPointer]
        ) {
            let most = Double(bytes) * BufferCache.slack
            return state.withLock { state in
                var best: Int?
                for (i, entry) in state.entries.enumerated()
                where entry.capacity >= bytes && Double(entry.capacity) <= most {
                    if best == nil || entry.capacity <= state.entries[best!].capacity { best = i }
                }
                guard let best else {
                    state.allocations += 1
                    state.live += capacity
                    state.peakLive = max(state.peakLive, state.live)
                    let headroom = max(state.peakLive, BufferCache.headroomMinimumBytes)
                    let most = state.peakLive.addingReportingOverflow(headroom)
                    let cap = most.overflow ? Int.max : most.partialValue
                    let evicted = state.evictOldest(downTo: cap - state.live)
                    state.peakHeld = max(state.peakHeld, state.live + state.bytes)
                    return (nil, evicted)
                }
                let entry = state.entries.remove(at: best)
                state.bytes -= entry.capacity
                state.reuses += 1
                state.live += entry.capacity
                state.peakLive = max(state.peakLive, state.live)
                return ((entry.pointer, entry.capacity), [])
            }
        }

        /// Keeps the buffer and returns those to free: the oldest beyond `limitBytes`, or the buffer itself.
        func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) -> [UnsafeMutableRawPointer] {
            return state.withLock { state in
                // Buffers taken before a fork come back to the child's new cache: live stays at zero or more.
                state.live = max(0, state.live - capacity)
                let limit = BufferCache.limitBytes
                if capacity > limit { return [pointer] }
                let evicted = state.evictOldest(downTo: limit - capacity)
                state.entries.append(Entry(pointer: pointer, capacity: capacity))
                state.bytes += capacity
                return evicted
            }
        }

        /// Frees the oldest kept buffers until at most `most` bytes are kept; returns them, to free.
        func evict(downTo most: Int) -> [UnsafeMutableRawPointer] {
            state.withLock { $0.evictOldest(downTo: most) }
        }

        func removeAll() -> [UnsafeMutableRawPointer] {
            state.withLock { state in
                let all = state.entries.map(\.pointer)
                state.entries = []
                state.bytes = 0
                state.peakLive = state.live
                state.peakHeld = state.live
                return all
            }
        }

        var keptBytes: Int { state.withLock { $0.bytes } }
        var statistics: (allocations: Int, reuses: Int, peakInUse: Int, peakHeld: Int) {
            state.withLock { ($0.allocations, $0.reuses, $0.peakLive, $0.peakHeld) }
        }
    }

    nonisolated(unsafe) private static var shared: Store?
    nonisolated(unsafe) private static var forked = false
    private static let creation = Mutex<Void>(())

    private static func store() -> Store {
        if let store = shared, !forked { return store }
        return creation.withLock { _ in
            if let store = shared, !forked { return store }
            if shared == nil {
                pthread_atfork(nil, nil, { BufferCache.forked = true })
            }
            forked = false
            let store = Store()
            shared = store
            return store
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        let s = drop(while: { $0 == " " })
        return s.dropLast(s.reversed().prefix(while: { $0 == " " }).count)
    }
}
