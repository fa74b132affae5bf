import SwiftRCNNOps

/// A batch of float32 feature maps in NCHW layout, the value every layer takes and returns.
public struct FeatureMap: Sendable {
    public let batch: Int, channels: Int, height: Int, width: Int
    public var data: [Float]

    /// A map over `data`, whose count must be batch·channels·height·width.
    public init(batch: Int, channels: Int, height: Int, width: Int, data: [Float]) {
        precondition(data.count == batch * channels * height * width, "FeatureMap: data does not fill its shape")
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.data = data
    }

    /// A map whose values `fill` writes (every element, exactly once); no zero-filling pass. Large maps get
    /// huge pages (`HugePages`).
    public init(
        batch: Int, channels: Int, height: Int, width: Int,
        fill: (UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.data = [Float](unsafeUninitializedCapacity: batch * channels * height * width) { buffer, count in
            HugePages.advise(buffer)
            fill(buffer)
            count = buffer.count
        }
    }

    public var plane: Int { height * width }
    public var shape: [Int] { [batch, channels, height, width] }
}
