#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Transparent huge pages for large, freshly allocated buffers.
///
/// glibc serves allocations above 32 MiB (feature maps of the finest FPN level, pasted masks) with a fresh mmap,
/// whose first touch faults in 4 KiB pages one by one; on these maps the faults cost as much as a convolution's
/// arithmetic. Asking for huge pages on the buffer before it is first written (`madvise(MADV_HUGEPAGE)`, which the
/// kernel honours when transparent huge pages are in `madvise` or `always` mode) makes that 512 times fewer faults.
/// The advice is best effort: where it is unsupported nothing changes, and it is Linux-only (on macOS `advise` does
/// nothing). `SWIFTRCNN_HUGE_PAGES=0` turns it off (for hosts where huge-page faults stall on memory compaction); it
/// is read once.
public enum HugePages {
    /// Whether buffers are advised: false when `SWIFTRCNN_HUGE_PAGES` is "0", "false", "no" or "off".
    public static let enabled: Bool = {
        guard let raw = getenv("SWIFTRCNN_HUGE_PAGES") else { return true }
        return !["0", "false", "no", "off"].contains(String(cString: raw).lowercased())
    }()

    /// Buffers at least this large (bytes) are advised: twice a huge page, so some whole huge page lies inside.
    public static let minimumBytes = 4 << 20
    @usableFromInline static let hugePage = 2 << 20

    /// Advises the whole 2 MiB-aligned huge pages inside `pointer ..< pointer + byteCount`.
    @inlinable
    public static func advise(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        #if canImport(Glibc)
            guard byteCount >= minimumBytes, enabled else { return }
            let start = (Int(bitPattern: pointer) + hugePage - 1) / hugePage * hugePage
            let end = (Int(bitPattern: pointer) + byteCount) / hugePage * hugePage
            guard end > start, let base = UnsafeMutableRawPointer(bitPattern: start) else { return }
            _ = madvise(base, end - start, Int32(MADV_HUGEPAGE))
        #endif
    }

    /// `advise` for a typed buffer of `count` elements.
    @inlinable
    public static func advise<T>(_ pointer: UnsafeMutablePointer<T>, count: Int) {
        advise(UnsafeMutableRawPointer(pointer), byteCount: count * MemoryLayout<T>.stride)
    }

    /// `advise` for a buffer (such as an array's uninitialised storage).
    @inlinable
    public static func advise<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        if let base = buffer.baseAddress { advise(base, count: buffer.count) }
    }
}
