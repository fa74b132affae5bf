/// The parts of `torchvision.ops.MultiScaleRoIAlign` around RoIAlign: the scale of each feature map, inferred from
/// its size, and the FPN level each RoI is pooled from (Lin et al., "Feature Pyramid Networks", 2017, eq. 1).
/// Pooling itself is `RoIAlign.forward(levels:levelOfRoI:...)` with `aligned = false`.
public enum MultiScaleRoIAlign {
    /// torchvision's `LevelMapper` eps, added before flooring so exact powers of two land on their own level.
    public static let levelEpsilon = 1e-6

    /// The scale of a feature map `featureHeight` rows high for images padded to `imageHeight` rows:
    /// `2^round(log2(featureHeight / imageHeight))`, the ratio and logarithm taken in `Float` (torch's default
    /// dtype) and rounded half to even. Only heights are used, as in torchvision. Both must be positive.
    @inlinable
    public static func inferScale(featureHeight: Int, imageHeight: Int) -> Double {
        let ratio = Float(Double(featureHeight) / Double(imageHeight))
        let exponent = Float.log2(ratio).rounded(.toNearestOrEven)
        return pow2(Int(exponent))
    }

    /// The pyramid level `k` of a map with scale `2^-k`: `Int(-log2(scale))` in `Float`, truncated.
    @inlinable
    public static func level(ofScale scale: Double) -> Int {
        Int(-Float.log2(Float(scale)))
    }

    /// `2^e` for an exponent in `Double`'s normal range.
    @inlinable
    static func pow2(_ e: Int) -> Double {
        Double(sign: .plus, exponent: e, significand: 1)
    }

    /// Assigns RoIs to levels: `floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + eps)` in the element
    /// type, clamped to `[kMin, kMax]` (to `kMax` when `kMin > kMax`, as torch's clamp), minus `kMin`.
    public struct LevelMapper: Sendable {
        public let kMin: Int, kMax: Int
        public let canonicalScale: Int, canonicalLevel: Int

        public init(kMin: Int, kMax: Int, canonicalScale: Int, canonicalLevel: Int) {
            self.kMin = kMin
            self.kMax = kMax
            self.canonicalScale = canonicalScale
            self.canonicalLevel = canonicalLevel
        }

        /// The mapper torchvision builds for maps of these scales (first and last give the level range).
        public init(scales: [Double], canonicalScale: Int, canonicalLevel: Int) {
            self.init(
                kMin: MultiScaleRoIAlign.level(ofScale: scales[0]),
                kMax: MultiScaleRoIAlign.level(ofScale: scales[scales.count - 1]),
                canonicalScale: canonicalScale, canonicalLevel: canonicalLevel)
        }

        /// The level index in `0..<levels` of the RoI `[batch, x1, y1, x2, y2]` at `roi`, or -1 when the formula
        /// gives NaN (an inverted box with negative area) or an index with no feature map: torchvision leaves
        /// such RoIs' outputs zero.
        @inlinable
        public func levelIndex<T: KernelFloat>(_ roi: UnsafePointer<T>, levels: Int) -> Int {
            let area = (roi[3] - roi[1]) * (roi[4] - roi[2])
            let size = area.squareRoot()
            let target = (T(canonicalLevel) + T.log2(size / T(canonicalScale)) + T(MultiScaleRoIAlign.levelEpsilon))
                .rounded(.down)
            if target.isNaN { return -1 }
            let clamped = Swift.min(Swift.max(target, T(kMin)), T(kMax))
            let index = Int(clamped) - kMin
            return index >= 0 && index < levels ? index : -1
        }
    }
}
