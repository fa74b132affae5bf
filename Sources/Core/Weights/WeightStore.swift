/// The named float32 arrays of a torchvision state dict, handed out to the model's parts as they are built.
///
/// Like `load_state_dict(strict=True)`: every part `take`s the arrays it needs by name with the shape it expects;
/// `finish()` then reports, in one error, the missing keys, the shape mismatches and the keys nobody took.
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

    /// Every entry, by name.
    public var allEntries: [String: Entry] { entries }

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

    /// Most keys named per kind of problem, so that the message fits the C ABI's 512-byte error buffer even when a
    /// whole part is missing; the counts come first.
    static let listedKeys = 4

    /// Throws one error counting, and naming up to `listedKeys` of, the mismatched, unexpected and missing keys.
    public func finish() throws {
        let unexpected = entries.keys.filter {
            !taken.contains($0) && !$0.hasSuffix(TorchvisionKeys.batchNormCounter)
        }.sorted()
        if missing.isEmpty && mismatched.isEmpty && unexpected.isEmpty { return }
        func list(_ keys: [String], _ separator: String) -> String {
            let shown = keys.sorted().prefix(Self.listedKeys).joined(separator: separator)
            return keys.count > Self.listedKeys ? shown + "\(separator)... (\(keys.count) in all)" : shown
        }
        var counts = [String](), parts = [String]()
        if !mismatched.isEmpty {
            counts.append("\(mismatched.count) mis-shaped")
            parts.append("shape mismatches: " + list(mismatched, "; "))
        }
        if !unexpected.isEmpty {
            counts.append("\(unexpected.count) unexpected")
            parts.append("unexpected keys: " + list(unexpected, ", "))
        }
        if !missing.isEmpty {
            counts.append("\(missing.count) missing")
            parts.append("missing keys: " + list(missing, ", "))
        }
        throw SwiftRCNNError.invalidValue(
            "weights: " + counts.joined(separator: ", ") + ". "
                + parts.joined(separator: ". "))
    }
}
