/// The named float32 arrays of a torchvision state dict, handed out to the model's parts as they are built.
///
/// Like `load_state_dict(strict=True)`: every part `take`s the arrays it needs by name with the shape it expects;
/// `finish()` then reports, in one error, every missing key, every shape mismatch and every key nobody took.
/// BatchNorm bookkeeping (`num_batches_tracked`) may be left untaken.
public struct WeightStore: Sendable {
    public struct Entry: Sendable {
        public let shape: [Int]
        public let values: [Float]
        public init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    private var entries: [String: Entry]
    private var taken = Set<String>()
    private var missing = [String]()
    private var mismatched = [String]()

    public init(_ entries: [String: Entry]) {
        self.entries = entries
    }

    public var names: [String] { Array(entries.keys) }

    /// The values of `name`, which must have `shape`. A missing or mismatched key is recorded (and reported by
    /// `finish`) and zeros of the expected shape stand in, so one pass collects every problem.
    public mutating func take(_ name: String, shape: [Int]) -> [Float] {
        let count = shape.reduce(1, *)
        guard let e = entries[name] else {
            missing.append("\(name) (expected shape \(shape))")
            return [Float](repeating: 0, count: count)
        }
        taken.insert(name)
        guard e.shape == shape else {
            mismatched.append("\(name): expected shape \(shape), got \(e.shape)")
            return [Float](repeating: 0, count: count)
        }
        return e.values
    }

    /// Takes `name` when present (returns nil, and records nothing, when absent).
    public mutating func takeIfPresent(_ name: String, shape: [Int]) -> [Float]? {
        entries[name] == nil ? nil : take(name, shape: shape)
    }

    /// Throws one error listing every missing, mismatched and unexpected key.
    public func finish() throws {
        let unexpected = entries.keys.filter { !taken.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        if missing.isEmpty && mismatched.isEmpty && unexpected.isEmpty { return }
        var parts = [String]()
        if !missing.isEmpty { parts.append("missing keys: " + missing.sorted().joined(separator: ", ")) }
        if !mismatched.isEmpty { parts.append("shape mismatches: " + mismatched.sorted().joined(separator: "; ")) }
        if !unexpected.isEmpty { parts.append("unexpected keys: " + unexpected.joined(separator: ", ")) }
        throw SwiftRCNNError.invalidValue("weights: " + parts.joined(separator: ". "))
    }
}
