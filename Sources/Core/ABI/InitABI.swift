import CSwiftRCNN

// C ABI of the parameter initialisation (swiftrcnn.h, "Initialisation").

@_cdecl("srcnn_initial_state")
public func srcnn_initial_state(
    _ kind: Int32, _ numClasses: Int64, _ seed: UInt64, _ predictorsOnly: Int32,
    _ architecture: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let out = try outPointer(out)
        // Initialisation covers the models the trainer trains: Faster and Mask R-CNN.
        guard let kind = DetectionModel.Kind(rawValue: kind), kind != .keypointRCNN else {
            throw SwiftRCNNError.invalidValue(
                "kind: expected SRCNN_FASTER_RCNN or SRCNN_MASK_RCNN (0 or 1), got \(kind)")
        }
        let maxClasses = DetectionModel.Config.maxClasses
        try require(
            numClasses >= 1 && numClasses <= Int64(maxClasses),
            "num_classes: expected an int in [1, \(maxClasses)], got \(numClasses)")
        let shape = try architecture.map { try Architecture(json: String(cString: $0)) } ?? Architecture()
        let predictors = Set(TorchvisionInit.predictorKeys(kind: kind))
        let state = try TorchvisionInit.state(
            kind: kind, numClasses: Int(numClasses), seed: seed, architecture: shape,
            only: predictorsOnly != 0 ? { predictors.contains($0) } : nil)
        let result = NamedArrays()
        for name in state.keys.sorted() {
            let entry = state[name]!
            result.append(name, shape: entry.shape, .float32(entry.values))
        }
        publish(result, out)
    }
}
