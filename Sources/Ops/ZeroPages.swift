#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Zero-filling of large buffers without writing them: for outputs that stay mostly zero (pasted masks), so that
/// only the pages that get values are ever touched.
///
/// On Linux, `madvise(MADV_DONTNEED)` hands the whole pages inside the buffer back to the kernel; a private anonymous
/// page given back reads as zeros, and is mapped again (zero-filled) only when it is next written. Pages never
/// written cost nothing: no zeroing by the kernel, no resident memory, and on a virtual machine no fault in the host.
/// The partial pages at both ends, and every buffer on other systems (where the advice does not zero), are written
/// with zeros. Only for memory from the allocator (private and anonymous): on a file mapping the pages would read
/// the file again, so buffers that callers pass in are never given back.
public enum ZeroPages {
    /// Buffers smaller than this (bytes) are simply written with zeros.
    public static let minimumBytes = 1 << 20

    /// Makes the `byteCount` bytes at `pointer`, which the caller allocated with `malloc` (or Swift's allocators),
    /// read as zeros.
    public static func fill(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount <= 0 { return }
        #if os(Linux)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            if byteCount >= minimumBytes && page > 0 {
                let address = Int(bitPattern: pointer)
                let start = (address + page - 1) / page * page
                let end = (address + byteCount) / page * page
                if end > start, let base = UnsafeMutableRawPointer(bitPattern: start),
                    madvise(base, end - start, Int32(MADV_DONTNEED)) == 0
                {
                    memset(pointer, 0, start - address)
                    memset(base + (end - start), 0, address + byteCount - end)
                    return
                }
            }
        #endif
        memset(pointer, 0, byteCount)
    }

    /// `fill` for a typed buffer whose zero is all bits zero (the float types).
    public static func fill<T: BinaryFloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>) {
        if let base = buffer.baseAddress {
            fill(UnsafeMutableRawPointer(base), byteCount: buffer.count * MemoryLayout<T>.stride)
        }
    }
}
