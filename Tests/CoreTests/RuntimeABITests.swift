import CSwiftRCNN
import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// The runtime exports (threads, instruction-set path, configuration report), called through swiftrcnn.h.
final class RuntimeABITests: XCTestCase {
    func testInstructionSetPath() {
        let saved = String(cString: CSwiftRCNN.srcnn_isa())
        defer { XCTAssertEqual(CSwiftRCNN.srcnn_set_isa(saved, nil), Int32(SRCNN_OK.rawValue)) }
        XCTAssertEqual(CSwiftRCNN.srcnn_isa_supported("generic"), 1)
        XCTAssertEqual(CSwiftRCNN.srcnn_isa_supported("sse9"), 0)
        XCTAssertEqual(CSwiftRCNN.srcnn_isa_supported(nil), 0)
        let err = ErrBuf()
        for name in ["generic", "avx2", "avx512"] {
            let st = CSwiftRCNN.srcnn_set_isa(name, &err.bytes)
            if CSwiftRCNN.srcnn_isa_supported(name) == 1 {
                assertStatus(st, SRCNN_OK, err)
                XCTAssertEqual(String(cString: CSwiftRCNN.srcnn_isa()), name)
            } else {
                assertStatus(st, SRCNN_VALUE_ERROR, err, mentions: "lacks")
            }
        }
        assertStatus(CSwiftRCNN.srcnn_set_isa("sse9", &err.bytes), SRCNN_VALUE_ERROR, err, mentions: "isa: unknown")
        assertStatus(CSwiftRCNN.srcnn_set_isa(nil, &err.bytes), SRCNN_VALUE_ERROR, err, mentions: "isa")
        XCTAssertEqual(CSwiftRCNN.srcnn_isa_environment_error(&err.bytes), 0, "SWIFTRCNN_ISA is not set in tests")
    }

    func testKeptAndReleasedMemory() throws {
        try XCTSkipIf(BufferCache.limitBytes < 64 << 20, "cache limit too small for this test")
        _ = CSwiftRCNN.srcnn_release_memory()
        XCTAssertEqual(CSwiftRCNN.srcnn_kept_memory(), 0)
        do {
            let map = FeatureMap(batch: 1, channels: 8, height: 256, width: 256) { $0.initialize(repeating: 0) }
            XCTAssertEqual(map.data.count, 8 << 16)
        }
        let kept = CSwiftRCNN.srcnn_kept_memory()
        XCTAssertGreaterThanOrEqual(kept, 2 << 20, "the 2 MiB map went back to the cache")
        XCTAssertTrue(Configuration.report.contains("\(kept >> 20) MiB kept now"), Configuration.report)
        XCTAssertEqual(CSwiftRCNN.srcnn_release_memory(), kept)
        XCTAssertEqual(CSwiftRCNN.srcnn_kept_memory(), 0)
    }

    func testConfigReport() {
        let length = CSwiftRCNN.srcnn_config_report(nil, 0)
        XCTAssertGreaterThan(length, 100)
        var buffer = [CChar](repeating: 1, count: Int(length) + 1)
        XCTAssertEqual(CSwiftRCNN.srcnn_config_report(&buffer, Int64(buffer.count)), length)
        let report = String(cString: buffer)
        XCTAssertEqual(report, Configuration.report)
        XCTAssertTrue(report.contains("path in use:"), report)
        XCTAssertTrue(report.contains("CPU:"), report)
        // Truncated to the capacity, still NUL-terminated.
        var small = [CChar](repeating: 1, count: 10)
        XCTAssertEqual(CSwiftRCNN.srcnn_config_report(&small, 10), length)
        XCTAssertEqual(String(cString: small), String(report.prefix(9)))
    }
}
