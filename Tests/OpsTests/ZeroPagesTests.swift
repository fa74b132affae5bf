import SwiftRCNNOps
import XCTest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `ZeroPages.fill` on allocator memory full of other bytes: every byte of the range reads as zero afterwards, the
/// bytes around it keep their values, and the range can be written again. Sizes below and above
/// `ZeroPages.minimumBytes`, starting and ending inside pages.
final class ZeroPagesTests: XCTestCase {
    func testFillZeroesExactlyTheRange() {
        for (size, offset) in [(1000, 3), (ZeroPages.minimumBytes - 5, 1), (3 << 20 + 123, 77), (8 << 20, 4096)] {
            let total = size + offset + 4096
            guard let raw = malloc(total) else { return XCTFail("no memory") }
            defer { free(raw) }
            memset(raw, 0xAB, total)
            ZeroPages.fill(raw + offset, byteCount: size)
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            let before = (0..<offset).filter { bytes[$0] != 0xAB }.count
            let inside = (offset..<offset + size).filter { bytes[$0] != 0 }.count
            let after = (offset + size..<total).filter { bytes[$0] != 0xAB }.count
            XCTAssertEqual([before, inside, after], [0, 0, 0], "size \(size) offset \(offset)")
            memset(raw + offset, 0x5C, size)
            XCTAssertEqual((offset..<offset + size).filter { bytes[$0] != 0x5C }.count, 0, "rewritten \(size)")
        }
    }

    func testTypedFill() {
        var values = [Double](repeating: .nan, count: 300_000)
        values.withUnsafeMutableBufferPointer { ZeroPages.fill($0) }
        XCTAssertEqual(values.filter { $0 != 0 }.count, 0)
    }
}
