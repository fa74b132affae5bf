/// The state dict of a detector being trained: every tensor by torchvision name, with the gradient and the SGD
/// momentum buffer of the trainable ones.
///
/// Values are torchvision's parameterisation (convolutions and frozen batch norms apart, as `state_dict()` holds
/// them), so gradients, weight decay and saved weights are those of torchvision's unfolded parameters; the model that
/// computes (`DetectionModel`, norms folded into the convolutions) is rebuilt from these values after each update.
/// Tensors that are not parameters in torchvision (FrozenBatchNorm2d's weight, bias, running_mean and running_var are
/// buffers there) and parameters of frozen layers are stored without a gradient.
public final class ParameterStore: @unchecked Sendable {
    public private(set) var names: [String]
    public private(set) var shapes: [[Int]]
    var values: [[Float]]
    /// Empty for tensors without a gradient.
    var gradients: [[Float]]
    /// SGD momentum buffers: empty until the first step that uses momentum (torch creates them lazily too).
    var momentum: [[Float]]
    let indexOf: [String: Int]

    /// `trainable(name)` says which tensors get a gradient. Names are kept in sorted order (safetensors' order).
    public init(_ entries: [String: WeightStore.Entry], trainable: (String) -> Bool) {
        let sorted = entries.keys.sorted()
        names = sorted
        shapes = sorted.map { entries[$0]!.shape }
        values = sorted.map { entries[$0]!.values }
        gradients = sorted.map { trainable($0) ? [Float](repeating: 0, count: entries[$0]!.values.count) : [] }
        momentum = Array(repeating: [], count: sorted.count)
        indexOf = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1, $0) })
    }

    public var count: Int { names.count }

    /// Whether `name` gets a gradient (false for unknown names).
    public func isTrainable(_ name: String) -> Bool {
        guard let i = indexOf[name] else { return false }
        return !gradients[i].isEmpty
    }

    /// The names of the trainable tensors, in order (torchvision's `[n for n, p in model.named_parameters() if
    /// p.requires_grad]`, sorted).
    public var trainableNames: [String] { names.indices.filter { !gradients[$0].isEmpty }.map { names[$0] } }

    /// The values of `name` (a programming error when absent).
    public func value(_ name: String) -> [Float] { values[indexOf[name]!] }

    /// The gradient of `name`, or nil when it has none.
    public func gradient(_ name: String) -> [Float]? {
        guard let i = indexOf[name], !gradients[i].isEmpty else { return nil }
        return gradients[i]
    }

    /// Replaces the values of `name` (same count).
    public func setValue(_ name: String, _ v: [Float]) {
        let i = indexOf[name]!
        precondition(v.count == values[i].count, "ParameterStore: \(name) has \(values[i].count) values")
        values[i] = v
    }

    /// Replaces the gradient of the trainable tensor `name` (same count).
    public func setGradient(_ name: String, _ g: [Float]) {
        let i = indexOf[name]!
        precondition(g.count == gradients[i].count, "ParameterStore: \(name) has no gradient of \(g.count) values")
        gradients[i] = g
    }

    /// Calls `body` with the gradient buffer of `name` when it is trainable, else with nil.
    func withGradient<R>(_ name: String, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
        guard let i = indexOf[name], !gradients[i].isEmpty else { return body(nil) }
        return gradients[i].withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    /// Adds `g` into the gradient of `name` (ignored when it has none).
    func accumulate(_ name: String, _ g: UnsafePointer<Float>, count: Int) {
        guard let i = indexOf[name], !gradients[i].isEmpty else { return }
        precondition(count == gradients[i].count, "ParameterStore: gradient of \(name) has the wrong size")
        gradients[i].withUnsafeMutableBufferPointer { d in
            for j in 0..<count { d[j] += g[j] }
        }
    }

    /// Sets every gradient to zero (torch's `zero_grad(set_to_none=False)`).
    public func zeroGradients() {
        for i in gradients.indices where !gradients[i].isEmpty {
            gradients[i].withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    /// The whole state as `WeightStore` entries (for building the inference model or saving).
    public var entries: [String: WeightStore.Entry] {
        var result = [String: WeightStore.Entry](minimumCapacity: names.count)
        for i in names.indices { result[names[i]] = WeightStore.Entry(shape: shapes[i], values: values[i]) }
        return result
    }

    /// The SGD momentum buffers that exist, by name (see `SGD.step`).
    public var momentumBuffers: [String: [Float]] {
        var result = [String: [Float]]()
        for i in names.indices where !momentum[i].isEmpty { result[names[i]] = momentum[i] }
        return result
    }

    /// Replaces every momentum buffer by `buffers` (absent names: none); each must name a trainable tensor and have
    /// its size. Throws `invalidValue` naming the first that does not, before changing anything.
    public func setMomentumBuffers(_ buffers: [String: [Float]]) throws {
        for (name, buffer) in buffers {
            guard let i = indexOf[name], !gradients[i].isEmpty else {
                throw SwiftRCNNError.invalidValue("momentum['\(name)']: not a trainable parameter of this model")
            }
            try require(
                buffer.count == self.values[i].count,
                "momentum['\(name)']: expected \(self.values[i].count) values (shape \(shapes[i])), got \(buffer.count)"
            )
        }
        for i in names.indices { momentum[i] = buffers[names[i]] ?? [] }
    }
}
