/// torch.optim.SGD (dampening 0, no Nesterov) over the trainable tensors of a `ParameterStore`.
///
/// Per tensor p with gradient g: d = g + weightDecay · p; with momentum, buf = d on the first step and
/// buf = momentum · buf + d after, and d = buf; then p = p - lr · d. The momentum buffers live in the store, so a
/// store carries its optimiser state across calls (as torch's `optimizer.state`).
public struct SGD: Sendable {
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double

    public init(learningRate: Double, momentum: Double = 0, weightDecay: Double = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// Throws `invalidValue` naming the first setting torch would reject.
    public func validate() throws {
        try require(
            learningRate.isFinite && learningRate >= 0, "lr: expected a finite number >= 0, got \(learningRate)")
        try require(momentum.isFinite && momentum >= 0, "momentum: expected a finite number >= 0, got \(momentum)")
        try require(
            weightDecay.isFinite && weightDecay >= 0,
            "weight_decay: expected a finite number >= 0, got \(weightDecay)")
    }

    /// One update of every trainable tensor of `store` from its current gradient.
    public func step(_ store: ParameterStore) {
        let lr = Float(learningRate), mu = Float(momentum), wd = Float(weightDecay)
        let indices = store.names.indices.filter { !store.gradients[$0].isEmpty }
        for i in indices {
            let n = store.values[i].count
            let first = store.momentum[i].isEmpty
            if mu != 0 && first { store.momentum[i] = [Float](repeating: 0, count: n) }
            store.values[i].withUnsafeMutableBufferPointer { pb in
                store.gradients[i].withUnsafeBufferPointer { gb in
                    store.momentum[i].withUnsafeMutableBufferPointer { bb in
                        // An empty array's buffer may have a base address too: no momentum buffer without momentum.
                        let (p, g, buf) = (pb.baseAddress!, gb.baseAddress!, mu != 0 ? bb.baseAddress : nil)
                        Parallel.forEachChunk(n, minItemsPerChunk: 1 << 15) { range in
                            for j in range {
                                var d = g[j]
                                if wd != 0 { d = d + wd * p[j] }
                                if let buf {
                                    buf[j] = first ? d : mu * buf[j] + d
                                    d = buf[j]
                                }
                                p[j] = p[j] - lr * d
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The learning-rate schedule of torchvision's detection reference script: a linear warm-up (torch's `LinearLR`
/// from `warmupFactor` to 1 over the first `warmupIterations` iterations), then the rate times `gamma` for every
/// milestone epoch reached (`MultiStepLR`).
public struct LearningRateSchedule: Sendable {
    public var baseLearningRate: Double
    public var warmupFactor: Double
    public var warmupIterations: Int
    public var milestones: [Int]
    public var gamma: Double

    public init(
        baseLearningRate: Double, warmupFactor: Double = 0.001, warmupIterations: Int = 1000,
        milestones: [Int] = [16, 22], gamma: Double = 0.1
    ) {
        self.baseLearningRate = baseLearningRate
        self.warmupFactor = warmupFactor
        self.warmupIterations = warmupIterations
        self.milestones = milestones
        self.gamma = gamma
    }

    /// The rate of iteration `iteration` (0-based, counted from the start of training) in epoch `epoch`.
    public func learningRate(iteration: Int, epoch: Int) -> Double {
        var lr = baseLearningRate
        for m in milestones where epoch >= m { lr *= gamma }
        if iteration < warmupIterations && warmupIterations > 0 {
            let t = Double(iteration) / Double(warmupIterations)
            lr *= warmupFactor + (1 - warmupFactor) * t
        }
        return lr
    }
}
