import Dispatch
import Synchronization
import _SwiftRCNNCPUID
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The threads behind `Parallel.forEachChunk`: `numThreads - 1` workers that, after each parallel loop, keep
/// polling for the next one for `spinNanoseconds` before they sleep.
///
/// A detector runs thousands of parallel loops of a few hundred microseconds each, separated by short serial steps.
/// Threads that sleep between them (as Dispatch's do) are woken through the kernel for every loop, and on a
/// virtual machine waking an idle core can cost as much as the loop itself (a 512³ GEMM on two cores ran 1.4× as
/// fast as on one with Dispatch, 1.9× with workers that poll). Polling is bounded, so an idle process does not
/// keep cores busy.
///
/// Placement. A sleeping worker woken by the caller can be put by Linux on the caller's own CPU (on a virtual
/// machine an idle virtual CPU can look busy to the guest), where the two share one core until the scheduler moves
/// one of them, milliseconds later. So before waking a sleeping worker the caller takes its own CPU out of the
/// worker's allowed CPUs, and the worker puts it back as soon as it runs; and a polling worker that finds itself on
/// the caller's CPU when a loop starts moves off it (`srcnn_leave_cpu`). Neither pins anything: the allowed CPUs are
/// as before once the worker runs; and with more threads than CPUs nobody is moved. On AMD EPYC Zen 3 (2 virtual
/// CPUs, avx2), two 512³ products after each 20 ms or 100 ms idle gap took 7.8 / 8.6 ms (median of 60) without
/// this and 4.4 / 4.8 ms with it (NumPy's OpenBLAS: 5.1 / 4.8 ms); in back-to-back loops nothing changes.
///
/// Protocol. One word, `claim`, holds the loop's generation, its item count and the next unclaimed item. The
/// caller stores the loop's body, then publishes a new word; every thread (the caller included) claims items by
/// compare-and-exchange on that word, so an item is claimed once and only for the loop whose generation the
/// claimer saw, and the body is read only after a successful claim. The caller returns when `unfinished` reaches
/// zero, so a body never outlives its loop. One loop runs at a time: a loop started while another is running
/// (from a worker, from inside a body, or from a second caller thread) runs on its own thread instead.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    /// How long a worker keeps polling after a loop before it sleeps.
    static let spinNanoseconds: UInt64 = 500_000

    /// generation << 40 | item count << 20 | next item.
    private let claim = Atomic<Int>(0)
    /// Items of the current loop not yet finished.
    private let unfinished = Atomic<Int>(0)
    /// Workers with an index below this take part in the current loop.
    private let participants = Atomic<Int>(0)
    /// Set while a loop runs.
    private let busy = Atomic<Bool>(false)
    /// The CPU of the thread that published the current loop, which the workers keep off (-1: none).
    private let callerCPU = Atomic<Int>(-1)
    /// CPUs the process may run on, as the first loop found them (-1: not known).
    private static let allowedCPUs = Int(srcnn_allowed_cpu_count())
    /// The current loop's body: written before its word is published, read after a claim.
    private var body: ((Int) -> Void)?
    private var workers: [Worker] = []

    private static let itemBits = 20
    private static let itemMask = (1 << itemBits) - 1
    /// Most items of one loop.
    static let maximumItems = itemMask

    /// A worker's sleep: `asleep` says it is (about to be) waiting on `wake`, which the caller signals after
    /// clearing `asleep`.
    private final class Worker: @unchecked Sendable {
        let asleep = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
        /// The worker's kernel thread id (0 until it runs).
        let thread = Atomic<Int>(0)
        /// A CPU the waker took out of the worker's allowed CPUs before waking it (-1: none).
        let excludedCPU = Atomic<Int>(-1)
    }

    /// The process's pool; a child process made by fork gets a new one (its parent's workers do not exist there).
    nonisolated(unsafe) private static var shared: WorkerPool?
    nonisolated(unsafe) private static var forked = false
    private static let creation = Mutex<Void>(())

    @usableFromInline
    static func pool() -> WorkerPool {
        if let pool = shared, !forked { return pool }
        return creation.withLock { _ in
            if let pool = shared, !forked { return pool }
            if shared == nil {
                pthread_atfork(nil, nil, { WorkerPool.forked = true })
            }
            forked = false
            let pool = WorkerPool()
            shared = pool
            return pool
        }
    }

    /// Runs `body(i)` for every i in 0 ..< items on up to `threads` threads (the caller and `threads - 1` workers),
    /// returning when all have finished. Items are claimed one by one, so uneven items balance out.
    @usableFromInline
    func run(items: Int, threads: Int, _ body: (Int) -> Void) {
        precondition(items <= Self.maximumItems)
        if items <= 0 { return }
        guard threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<items { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        addWorkers(upTo: threads - 1)
        withoutActuallyEscaping(body) { body in
            self.body = body
            unfinished.store(items, ordering: .relaxed)
            participants.store(threads - 1, ordering: .relaxed)
            // More threads than CPUs share CPUs anyway: then nobody is moved (it would only bounce them around).
            callerCPU.store(threads <= Self.allowedCPUs ? Int(srcnn_current_cpu()) : -1, ordering: .relaxed)
            let generation = (claim.load(ordering: .relaxed) >> (2 * Self.itemBits)) &+ 1
            let word = (generation & ((1 << 23) - 1)) << (2 * Self.itemBits) | items << Self.itemBits
            claim.store(word, ordering: .sequentiallyConsistent)
            for worker in workers.prefix(threads - 1)
            where worker.asleep.exchange(false, ordering: .sequentiallyConsistent) {
                let cpu = callerCPU.load(ordering: .relaxed)
                if srcnn_exclude_cpu(Int32(worker.thread.load(ordering: .relaxed)), Int32(cpu)) != 0 {
                    worker.excludedCPU.store(cpu, ordering: .relaxed)
                }
                worker.wake.signal()
            }
            runItems()
            // Items still running on workers.
            Self.waitUntil { unfinished.load(ordering: .acquiring) <= 0 }
            self.body = nil
        }
    }

    /// Polls `condition` until it holds, after a while letting other threads have the core between polls (a thread
    /// it waits for may need one on a loaded machine).
    @usableFromInline
    static func waitUntil(_ condition: () -> Bool) {
        var polls = 0
        while !condition() {
            polls += 1
            if polls < 4096 { srcnn_cpu_relax() } else { sched_yield() }
        }
    }

    /// Claims and runs items of the published loop until none are left (or the loop is no longer current).
    private func runItems() {
        var word = claim.load(ordering: .acquiring)
        while true {
            let items = (word >> Self.itemBits) & Self.itemMask, next = word & Self.itemMask
            if next >= items { return }
            let (exchanged, current) = claim.compareExchange(
                expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
            if exchanged {
                body?(next)
                unfinished.subtract(1, ordering: .releasing)
                word = claim.load(ordering: .acquiring)
            } else {
                word = current
            }
        }
    }

    private func addWorkers(upTo count: Int) {
        while workers.count < count {
            let worker = Worker()
            let index = workers.count
            workers.append(worker)
            let context = Unmanaged.passRetained(WorkerStart(pool: self, worker: worker, index: index)).toOpaque()
            #if canImport(Glibc)
                var thread = pthread_t()
            #else
                var thread: pthread_t?
            #endif
            let created = pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
                    start.pool.workerLoop(start.worker, index: start.index)
                    return nil
                }, context)
            if created == 0 {
                #if canImport(Glibc)
                    pthread_detach(thread)
                #else
                    if let thread { pthread_detach(thread) }
                #endif
            } else {
                // No thread: the loops run with fewer helpers (items are claimed, never assigned).
                Unmanaged<WorkerStart>.fromOpaque(context).release()
            }
        }
    }

    private final class WorkerStart {
        let pool: WorkerPool, worker: Worker, index: Int
        init(pool: WorkerPool, worker: Worker, index: Int) {
            self.pool = pool
            self.worker = worker
            self.index = index
        }
    }

    private func workerLoop(_ worker: Worker, index: Int) -> Never {
        let generationShift = 2 * Self.itemBits
        worker.thread.store(Int(srcnn_current_thread()), ordering: .relaxed)
        var seen = claim.load(ordering: .acquiring) >> generationShift
        while true {
            var polls = 0
            var deadline: UInt64 = 0
            while claim.load(ordering: .acquiring) >> generationShift == seen {
                srcnn_cpu_relax()
                polls += 1
                if polls & 63 != 0 { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if deadline == 0 {
                    deadline = now + Self.spinNanoseconds
                } else if now >= deadline {
                    sleep(worker, unlessPast: seen)
                    deadline = 0
                }
            }
            seen = claim.load(ordering: .acquiring) >> generationShift
            if index < participants.load(ordering: .relaxed) {
                srcnn_leave_cpu(Int32(callerCPU.load(ordering: .relaxed)))
                runItems()
            }
        }
    }

    /// Waits on the worker's semaphore until a caller wakes it, unless a loop after generation `seen` is already
    /// published.
    private func sleep(_ worker: Worker, unlessPast seen: Int) {
        worker.asleep.store(true, ordering: .sequentiallyConsistent)
        if claim.load(ordering: .sequentiallyConsistent) >> (2 * Self.itemBits) != seen,
            worker.asleep.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
        {
            return
        }
        // Either no loop was published, or a caller cleared `asleep` and has signalled (or will signal) `wake`.
        worker.wake.wait()
        let excluded = worker.excludedCPU.exchange(-1, ordering: .relaxed)
        if excluded >= 0 { srcnn_allow_cpu(Int32(excluded)) }
    }
}
