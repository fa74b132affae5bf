import SwiftRCNNOps

/// The storage of a `FeatureMap`: a copy-on-write array of floats whose large allocations come from, and go back
/// to, `BufferCache`, so that a detector's maps reuse memory the process already has.
///
/// It reads and writes like `[Float]` (a random-access, mutable collection with `withUnsafeBufferPointer` and
/// `withUnsafeMutableBufferPointer`); `Array(buffer)` copies it out, `FloatBuffer(array)` copies an array in.
/// Copies share storage until one of them is written.
public struct FloatBuffer: RandomAccessCollection, MutableCollection, Sendable {
    @usableFromInline
    final class Storage: @unchecked Sendable {
        @usableFromInline let base: UnsafeMutablePointer<Float>
        @usableFromInline let count: Int
        let capacity: Int

        /// Uninitialised storage for `count` floats.
        @usableFromInline
        init(count: Int) {
            precondition(count >= 0, "FloatBuffer: negative count")
            let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
            precondition(!overflow, "FloatBuffer: \(count) floats do not fit in memory")
            let (pointer, capacity) = BufferCache.take(byteCount: bytes)
            self.base = pointer.bindMemory(to: Float.self, capacity: count)
            self.count = count
            self.capacity = capacity
        }

        deinit { BufferCache.give(UnsafeMutableRawPointer(base), capacity: capacity) }
    }

    @usableFromInline var storage: Storage

    /// `count` floats written by `fill` (every element, exactly once); no zero-filling pass.
    @inlinable
    public init(unsafeUninitializedCount count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows
    {
        storage = Storage(count: count)
        try fill(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// `count` copies of `value`.
    public init(repeating value: Float, count: Int) {
        self.init(unsafeUninitializedCount: count) { $0.initialize(repeating: value) }
    }

    /// A copy of `elements`.
    public init<S: Sequence>(_ elements: S) where S.Element == Float {
        let done: FloatBuffer? = elements.withContiguousStorageIfAvailable { source in
            FloatBuffer(unsafeUninitializedCount: source.count) { buffer in
                if let from = source.baseAddress { buffer.baseAddress!.update(from: from, count: source.count) }
            }
        }
        if let done {
            self = done
            return
        }
        let array = Array(elements)
        self.init(array)
    }

    /// An empty buffer.
    public init() { self.init(unsafeUninitializedCount: 0) { _ in } }

    public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { storage.count }
    @inlinable public var count: Int { storage.count }

    @inlinable
    public subscript(position: Int) -> Float {
        get {
            precondition(position >= 0 && position < storage.count, "FloatBuffer: index out of range")
            return storage.base[position]
        }
        set {
            precondition(position >= 0 && position < storage.count, "FloatBuffer: index out of range")
            makeUnique()
            storage.base[position] = newValue
        }
    }

    /// Calls `body` with the floats, read-only.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(UnsafeBufferPointer(start: storage.base, count: storage.count)) }
    }

    /// Calls `body` with the floats to write (copied first when another buffer shares them).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        let storage = storage
        var buffer = UnsafeMutableBufferPointer(start: storage.base, count: storage.count)
        let result = try withExtendedLifetime(storage) { try body(&buffer) }
        precondition(
            buffer.baseAddress == storage.base && buffer.count == storage.count,
            "FloatBuffer: withUnsafeMutableBufferPointer's buffer was replaced")
        return result
    }

    public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R? {
        try withUnsafeBufferPointer(body)
    }

    public mutating func withContiguousMutableStorageIfAvailable<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R? {
        try withUnsafeMutableBufferPointer(body)
    }

    @inlinable
    mutating func makeUnique() {
        if isKnownUniquelyReferenced(&storage) { return }
        let old = storage
        let copy = Storage(count: old.count)
        copy.base.update(from: old.base, count: old.count)
        storage = copy
    }
}

extension FloatBuffer: Equatable {
    public static func == (a: FloatBuffer, b: FloatBuffer) -> Bool {
        a.count == b.count && (a.storage === b.storage || a.elementsEqual(b))
    }
}

extension FloatBuffer: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: Float...) { self.init(elements) }
}

extension FloatBuffer: CustomStringConvertible {
    public var description: String { Array(self).description }
}

/// Floats stored contiguously, read through a pointer: `[Float]` and `FloatBuffer`, so that layers take either
/// without a copy.
public protocol ContiguousFloats {
    var count: Int { get }
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R
}

extension Array: ContiguousFloats where Element == Float {}
extension FloatBuffer: ContiguousFloats {}
