import SwiftRCNNOps
import _SwiftRCNNCPUID

/// What this process runs on and how the library was built: the CPU, its instruction sets, the kernel paths and the
/// one in use, threads, and the build's target CPU — what `swiftrcnn.show_config()` prints (like
/// `numpy.show_config()` or `torch.__config__.show()`), for bug reports and benchmark tables.
public enum Configuration {
    /// The CPU the library (all but the per-instruction-set kernels) was compiled for: `SWIFTRCNN_TARGET_CPU` at
    /// build time, or "generic".
    public static var buildTargetCPU: String { String(cString: srcnn_build_target_cpu()) }

    /// The report, one `name: value` line each.
    public static var report: String {
        let model = CPU.model.isEmpty ? "unknown model" : CPU.model
        let features = CPU.features.list
        let paths = ISA.allCases.map { isa -> String in
            let state = !isa.isBuilt ? "not built" : isa.isSupported ? "supported" : "not supported by this CPU"
            return "\(isa) (\(state))"
        }
        let current = ISA.current
        let why: String
        if let error = ISA.environmentError {
            why = "best for this CPU; \(error)"
        } else if ISA.environmentValue.map({ !$0.isEmpty }) ?? false {
            why = "SWIFTRCNN_ISA"
        } else {
            why = current == ISA.best ? "best for this CPU" : "selected"
        }
        let float = Float.kernels(current)
        let cache = BufferCache.statistics
        let lines: [(String, String)] = [
            ("swiftrcnn", swiftRCNNVersion),
            ("CPU", "\(model) (\(CPU.architecture))"),
            ("instruction sets", features.isEmpty ? "baseline only" : features.joined(separator: " ")),
            ("kernel paths", paths.joined(separator: ", ")),
            ("path in use", "\(current) (\(why))"),
            ("GEMM tile (float32)", "\(float.mr) x \(float.nr), depth blocks of \(float.kc)"),
            (
                "Winograd (3 x 3)",
                Winograd.defaultTile == 4
                    ? "F(4x4, 3x3) (SWIFTRCNN_WINOGRAD_TILE=4)"
                    : "F(2x2, 3x3) (set SWIFTRCNN_WINOGRAD_TILE=4 for F(4x4, 3x3))"
            ),
            ("threads", "\(Parallel.numThreads)"),
            ("library target CPU", buildTargetCPU),
            (
                "kernel target CPUs",
                ISA.allCases.filter(\.isBuilt).map { "\($0)=\($0.compilerTargetCPU)" }
                    .joined(separator: ", ")
                    + (ISA.avx512AsAVX2 ? " (a test build: SWIFTRCNN_AVX512_AS_AVX2, avx512 logic on AVX2)" : "")
            ),
            ("huge pages", HugePages.enabled ? "advised for large buffers" : "off (SWIFTRCNN_HUGE_PAGES)"),
            (
                "buffer cache",
                BufferCache.limitBytes == 0
                    ? "off (SWIFTRCNN_BUFFER_CACHE_MB=0)"
                    : "keeps freed buffers of 1 MiB and more"
                        + (BufferCache.limitBytes == Int.max
                            ? " (in use and kept within twice the most in use); "
                            : ", up to \(BufferCache.limitBytes >> 20) MiB; ")
                        + "\(BufferCache.keptBytes >> 20) MiB kept now; "
                        + "\(cache.allocations) allocations, \(cache.reuses) reuses; "
                        + "at most \(cache.peakInUse >> 20) MiB in use, \(cache.peakHeld >> 20) MiB in use and kept"
            ),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 }
            .joined(separator: "\n")
    }

    /// Prints `report`.
    public static func show() { print(report) }
}
