// swift-tools-version:6.0
// swiftrcnn: two-stage object detection (Faster R-CNN, Mask R-CNN) and its ops, in Swift.
//
// Targets (data flows one way through them):
//   SwiftRCNNOps  (Sources/Ops)     kernels on raw buffers with explicit shapes; no Python, no Foundation.
//   CSwiftRCNN    (Sources/CPython) the C header that is the ABI contract (the CPython extension beside it is
//                                   built by setup.py, not by SwiftPM).
//   SwiftRCNN     (Sources/Core)    tensors, validation, the Swift API and the exported C ABI (@_cdecl).
import PackageDescription

let package = Package(
    name: "swiftrcnn",
    products: [
        // For Swift programs: `import SwiftRCNN`.
        .library(name: "SwiftRCNN", targets: ["SwiftRCNN"]),
        // The shared library the Python extension links against (libswiftrcnn_capi.so).
        .library(name: "swiftrcnn_capi", type: .dynamic, targets: ["SwiftRCNN"]),
    ],
    targets: [
        .target(name: "SwiftRCNNOps", path: "Sources/Ops"),
        .target(
            name: "CSwiftRCNN",
            path: "Sources/CPython",
            exclude: ["extension"],
            sources: ["abi.c"],
            publicHeadersPath: "include"
        ),
        .target(name: "SwiftRCNN", dependencies: ["SwiftRCNNOps", "CSwiftRCNN"], path: "Sources/Core"),
        .testTarget(name: "OpsTests", dependencies: ["SwiftRCNNOps"], path: "Tests/OpsTests"),
        .testTarget(name: "CoreTests", dependencies: ["SwiftRCNN", "CSwiftRCNN"], path: "Tests/CoreTests"),
    ],
    swiftLanguageModes: [.v5]
)
