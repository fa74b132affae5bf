import SwiftRCNNOps

/// A batch of float32 feature maps in NCHW layout, the value every layer takes and returns.
public struct FeatureMap: Sendable {
    public let batch: Int, channels: Int, height: Int, width: Int
    /// The values, from the library's buffer cache when large (`FloatBuffer`).
    public var data: FloatBuffer

    /// A map over `data`, whose count must be batch·channels·height·width.
    public init(batch: Int, channels: Int, height: Int, width: Int, data: FloatBuffer) {
        precondition(data.count == batch * channels * height * width, "FeatureMap: data does not fill its shape")
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.data = data
    }

    /// A map over a copy of `data`, whose count must be batch·channels·height·width.
    public init(batch: Int, channels: Int, height: Int, width: Int, data: [Float]) {
        self.init(batch: batch, channels: channels, height: height, width: width, data: FloatBuffer(data))
    }

    /// A map whose values `fill` writes (every element, exactly once); no zero-filling pass. Large maps come from
    /// the buffer cache, with huge pages (`BufferCache`, `HugePages`).
    public init(
        batch: Int, channels: Int, height: Int, width: Int,
        fill: (UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.data = FloatBuffer(unsafeUninitializedCount: batch * channels * height * width, fill: fill)
    }

    public var plane: Int { height * width }
    public var shape: [Int] { [batch, channels, height, width] }
}
