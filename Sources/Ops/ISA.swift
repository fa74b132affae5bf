import _SwiftRCNNCPUID
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The instruction-set paths the per-CPU kernels (`Sources/Kernels/<isa>`) are compiled for, and which one runs.
///
/// The GEMM, Winograd and im2col kernels exist once per path, each compiled with its own code generation and block
/// sizes. At first use the fastest path the CPU (cpuid, and the OS's saved register state) supports is chosen,
/// unless `SWIFTRCNN_ISA` names one; `ISA.select` switches at run time (tests run every supported path). The other
/// kernels follow the build's target CPU.
public enum ISA: String, CaseIterable, Sendable, CustomStringConvertible {
    /// 128-bit vectors, no FMA on x86-64 (SSE2 baseline; NEON on arm64): runs on every CPU.
    case generic
    /// AVX2 + FMA, 16 × 256-bit registers (x86-64-v3: Intel Haswell and later, AMD Zen 1 to 3).
    case avx2
    /// AVX-512 F/CD/BW/DQ/VL, 32 × 512-bit registers (x86-64-v4: Intel Skylake-SP and later, AMD Zen 4 and 5).
    case avx512

    public var description: String { rawValue }

    /// Whether this build holds the path's kernels (the x86 paths are built only for x86-64).
    public var isBuilt: Bool {
        switch self {
        case .generic: return true
        case .avx2, .avx512:
            #if arch(x86_64)
                return true
            #else
                return false
            #endif
        }
    }

    /// The `-target-cpu` its kernel module is compiled with (Package.swift).
    public var compilerTargetCPU: String {
        switch self {
        case .generic: return CPU.architecture == "x86_64" ? "x86-64" : "baseline"
        case .avx2: return "haswell"
        case .avx512: return ISA.avx512AsAVX2 ? "haswell" : "skylake-avx512"
        }
    }

    /// Whether this is a test build whose avx512 path is compiled for AVX2 + FMA (`SWIFTRCNN_AVX512_AS_AVX2=1` when
    /// building; Package.swift): the path's logic then runs on CPUs without AVX-512, with AVX2 code generation.
    public static var avx512AsAVX2: Bool {
        #if SWIFTRCNN_AVX512_AS_AVX2
            return true
        #else
            return false
        #endif
    }

    /// Whether this CPU can run the path (and this build holds it).
    public var isSupported: Bool { isBuilt && CPU.features.isSuperset(of: requiredFeatures) }

    /// The CPU features the path's code generation may use (`-target-cpu haswell` / `skylake-avx512`).
    public var requiredFeatures: CPU.Features {
        switch self {
        case .generic: return []
        case .avx2: return [.avx, .avx2, .fma, .f16c, .bmi1, .bmi2, .lzcnt, .movbe, .popcnt, .sse42]
        case .avx512:
            if ISA.avx512AsAVX2 { return ISA.avx2.requiredFeatures }
            return ISA.avx2.requiredFeatures.union([.avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl])
        }
    }

    /// Paths this CPU supports, slowest first.
    public static var supported: [ISA] { allCases.filter(\.isSupported) }

    /// The fastest path this CPU supports.
    public static var best: ISA { supported.last ?? .generic }

    /// `SWIFTRCNN_ISA` as read at start-up, when it was set.
    public static let environmentValue: String? = getenv("SWIFTRCNN_ISA").map { String(cString: $0) }

    /// Why `SWIFTRCNN_ISA` could not be followed (an unknown name, or a path this CPU lacks), else nil. The best
    /// supported path runs instead; the Python package raises this message at import.
    public static let environmentError: String? = {
        guard let raw = environmentValue, !raw.isEmpty else { return nil }
        do throws(ISAError) {
            _ = try ISA(validating: raw)
            return nil
        } catch {
            return "SWIFTRCNN_ISA=\(raw): \(error.message)"
        }
    }()

    nonisolated(unsafe) private static var _current: ISA = {
        if let raw = environmentValue, let isa = try? ISA(validating: raw) { return isa }
        return best
    }()

    /// The path the kernels run: `SWIFTRCNN_ISA` when it names a supported path, else `best`. Change it with
    /// `select(_:)`, which refuses a path this CPU lacks; not while kernels run on other threads.
    public static var current: ISA { _current }

    /// Selects `isa`, or throws naming the CPU features it lacks.
    public static func select(_ isa: ISA) throws(ISAError) {
        _current = try ISA(validating: isa.rawValue)
    }

    /// Selects the path named `name` ("generic", "avx2", "avx512"), or throws naming what is wrong.
    public static func select(_ name: String) throws(ISAError) {
        _current = try ISA(validating: name)
    }

    /// The path named `name`, if it exists and this CPU supports it.
    public init(validating name: String) throws(ISAError) {
        let key = name.lowercased()
        guard let isa = ISA(rawValue: key) else {
            throw ISAError(
                message: "unknown instruction-set path '\(name)'; expected one of "
                    + ISA.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard isa.isBuilt else {
            throw ISAError(
                message: "the \(isa) path is not built for this architecture; supported: "
                    + ISA.supported.map(\.rawValue).joined(separator: ", "))
        }
        guard isa.isSupported else {
            let missing = CPU.Features.names.filter {
                isa.requiredFeatures.contains($0.0) && !CPU.features.contains($0.0)
            }.map(\.1)
            throw ISAError(
                message: "this CPU (\(CPU.model.isEmpty ? "unknown model" : CPU.model)) lacks "
                    + missing.joined(separator: ", ") + " needed by the \(isa) path; supported: "
                    + ISA.supported.map(\.rawValue).joined(separator: ", "))
        }
        self = isa
    }
}

/// A path that cannot run here; `message` says which and why.
public struct ISAError: Error, Sendable {
    public let message: String
}

/// The CPU this process runs on, as far as the kernels care.
public enum CPU {
    /// Instruction-set features (each set only when the OS also saves the registers it uses).
    public struct Features: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let sse42 = Features(rawValue: UInt32(SRCNN_CPU_SSE42))
        public static let avx = Features(rawValue: UInt32(SRCNN_CPU_AVX))
        public static let avx2 = Features(rawValue: UInt32(SRCNN_CPU_AVX2))
        public static let fma = Features(rawValue: UInt32(SRCNN_CPU_FMA))
        public static let f16c = Features(rawValue: UInt32(SRCNN_CPU_F16C))
        public static let bmi1 = Features(rawValue: UInt32(SRCNN_CPU_BMI1))
        public static let bmi2 = Features(rawValue: UInt32(SRCNN_CPU_BMI2))
        public static let lzcnt = Features(rawValue: UInt32(SRCNN_CPU_LZCNT))
        public static let movbe = Features(rawValue: UInt32(SRCNN_CPU_MOVBE))
        public static let popcnt = Features(rawValue: UInt32(SRCNN_CPU_POPCNT))
        public static let avx512f = Features(rawValue: UInt32(SRCNN_CPU_AVX512F))
        public static let avx512cd = Features(rawValue: UInt32(SRCNN_CPU_AVX512CD))
        public static let avx512bw = Features(rawValue: UInt32(SRCNN_CPU_AVX512BW))
        public static let avx512dq = Features(rawValue: UInt32(SRCNN_CPU_AVX512DQ))
        public static let avx512vl = Features(rawValue: UInt32(SRCNN_CPU_AVX512VL))

        /// Each feature with its conventional (lscpu) name.
        public static let names: [(Features, String)] = [
            (.sse42, "sse4_2"), (.popcnt, "popcnt"), (.avx, "avx"), (.avx2, "avx2"), (.fma, "fma"), (.f16c, "f16c"),
            (.bmi1, "bmi1"), (.bmi2, "bmi2"), (.lzcnt, "lzcnt"), (.movbe, "movbe"), (.avx512f, "avx512f"),
            (.avx512cd, "avx512cd"), (.avx512bw, "avx512bw"), (.avx512dq, "avx512dq"), (.avx512vl, "avx512vl"),
        ]

        /// The names of the features in this set.
        public var list: [String] { Features.names.filter { contains($0.0) }.map(\.1) }
    }

    /// Features of this CPU (empty on CPUs that are not x86-64).
    public static let features = Features(rawValue: srcnn_cpu_features())

    /// The CPU's brand string ("AMD EPYC 7B13 64-Core Processor"), empty when it reports none.
    public static let model: String = {
        var buffer = [CChar](repeating: 0, count: 64)
        srcnn_cpu_brand(&buffer, Int32(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// The architecture this library was built for.
    public static var architecture: String {
        #if arch(x86_64)
            return "x86_64"
        #elseif arch(arm64)
            return "arm64"
        #else
            return "unknown"
        #endif
    }
}
