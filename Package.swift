// swift-tools-version:6.2
// swiftrcnn: two-stage object detection (Faster R-CNN, Mask R-CNN) and its ops, in Swift.
//
// Targets (data flows one way through them):
//   SwiftRCNNOps  (Sources/Ops)     kernels on raw buffers with explicit shapes; no Python, no Foundation. Picks
//                                   one of the per-instruction-set kernel modules at run time (ISA.swift).
//   _KernelsGeneric, _KernelsAVX2, _KernelsAVX512  (Sources/Kernels/<isa>)
//                                   GEMM, Winograd, im2col and the RoI channel tiles, one source
//                                   (Sources/Kernels/shared) compiled once per instruction set with its own code
//                                   generation, vectors and block sizes.
//   _SwiftRCNNCPUID (Sources/CPUID) cpuid / xgetbv, the cache prefetch hints, thread placement and the threads' kept
//                                   scratch buffers: what Swift cannot ask the CPU or the C library itself.
//   CSwiftRCNN    (Sources/CPython) the C header that is the ABI contract (the CPython extension beside it is
//                                   built by setup.py, not by SwiftPM).
//   SwiftRCNN     (Sources/Core)    tensors, validation, the Swift API and the exported C ABI (@_cdecl).
import PackageDescription

// MARK: - Implementation details: per-instruction-set kernels

/// One module per instruction-set path. `-target-cpu` is the reason these are separate modules; SwiftPM accepts
/// such flags in packages used as (versioned) dependencies when the manifest's tools version is 6.2 or later. The
/// generic path is pinned to the architecture's baseline so that it runs on any CPU whatever the build's own target
/// CPU.
func kernelModule(_ name: String, folder: String, targetCPU: String?, defines: [SwiftSetting] = []) -> Target {
    .target(
        name: name,
        dependencies: ["_SwiftRCNNCPUID"],
        path: "Sources/Kernels/\(folder)",
        swiftSettings: (targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []) + defines
    )
}

/// `SWIFTRCNN_AVX512_AS_AVX2=1` (a test build, not for speed): the avx512 path's kernels are compiled for AVX2 + FMA
/// (`-target-cpu haswell`, its 16-lane vectors as pairs of ymm registers) and the path asks the CPU for AVX2 only, so
/// its own logic — 8-row tiles, 16-lane vectors and packing, its block sizes — runs and is tested on CPUs without
/// AVX-512. Only the code generation differs from the real path.
let avx512AsAVX2 = Context.environment["SWIFTRCNN_AVX512_AS_AVX2"].map { $0 == "1" } ?? false
let avx512Defines: [SwiftSetting] = avx512AsAVX2 ? [.define("SWIFTRCNN_AVX512_AS_AVX2")] : []

#if arch(x86_64)
    let kernelModules = [
        kernelModule("_KernelsGeneric", folder: "generic", targetCPU: "x86-64"),
        kernelModule("_KernelsAVX2", folder: "avx2", targetCPU: "haswell"),
        kernelModule(
            "_KernelsAVX512", folder: "avx512", targetCPU: avx512AsAVX2 ? "haswell" : "skylake-avx512",
            defines: avx512Defines),
    ]
#else
    let kernelModules = [kernelModule("_KernelsGeneric", folder: "generic", targetCPU: nil)]
#endif

// MARK: - The build's own target CPU

/// `SWIFTRCNN_TARGET_CPU` (setup.py sets it; default for a plain `swift build`: none, i.e. the architecture's
/// baseline) is the CPU the rest of the library (`SwiftRCNNOps`, `SwiftRCNN`) is compiled for. It is applied per
/// target rather than with `-Xswiftc`, which would override the kernel modules' own `-target-cpu`.
let buildTargetCPU = Context.environment["SWIFTRCNN_TARGET_CPU"].flatMap { $0.isEmpty || $0 == "generic" ? nil : $0 }
let buildSettings: [SwiftSetting] = buildTargetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []

let package = Package(
    name: "swiftrcnn",
    // Linux, and macOS 15 or later: the worker pool's atomics (the Synchronization module) need macOS 15.
    platforms: [.macOS(.v15)],
    products: [
        // For Swift programs: `import SwiftRCNN`.
        .library(name: "SwiftRCNN", targets: ["SwiftRCNN"]),
        // The shared library the Python extension links against (libswiftrcnn_capi.so).
        .library(name: "swiftrcnn_capi", type: .dynamic, targets: ["SwiftRCNN"]),
    ],
    targets: [
        .target(
            name: "_SwiftRCNNCPUID",
            path: "Sources/CPUID",
            cSettings: [.define("SWIFTRCNN_BUILD_TARGET_CPU", to: "\"\(buildTargetCPU ?? "generic")\"")]
        ),
        .target(
            name: "SwiftRCNNOps",
            dependencies: ["_SwiftRCNNCPUID"] + kernelModules.map { .target(name: $0.name) },
            path: "Sources/Ops",
            swiftSettings: buildSettings + avx512Defines
        ),
        .target(
            name: "CSwiftRCNN",
            path: "Sources/CPython",
            exclude: ["extension"],
            sources: ["abi.c"],
            publicHeadersPath: "include"
        ),
        .target(
            name: "SwiftRCNN",
            dependencies: ["SwiftRCNNOps", "CSwiftRCNN"],
            path: "Sources/Core",
            swiftSettings: buildSettings
        ),
    ] + kernelModules + [
        .testTarget(name: "OpsTests", dependencies: ["SwiftRCNNOps", "_SwiftRCNNCPUID"], path: "Tests/OpsTests"),
        .testTarget(name: "CoreTests", dependencies: ["SwiftRCNN", "CSwiftRCNN"], path: "Tests/CoreTests"),
    ],
    swiftLanguageModes: [.v5]
)
