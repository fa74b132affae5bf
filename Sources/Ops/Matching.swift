/// Assignment of predictions to ground truths from a quality matrix, as
/// `torchvision.models.detection._utils.Matcher`.
///
/// `quality` is row-major `(m, n)`: row `i` holds the quality (e.g. IoU) of ground truth `i` with each of the `n`
/// predictions. Each prediction gets the ground truth of highest quality (the first one on ties), or
/// `belowLowThreshold` when that quality is `< low`, or `betweenThresholds` when it is in `[low, high)`.
/// Thresholds are compared in the element type, as torch compares a tensor with a Python scalar.
///
/// With `allowLowQualityMatches`, every prediction whose quality with some ground truth equals that ground truth's
/// best quality (all ties) gets its highest-quality ground truth back, even below the thresholds.
///
/// NaN follows torch's `max`, which propagates it: a prediction with a NaN quality gets the first ground truth
/// whose quality is NaN (NaN is neither below nor between the thresholds, so that is a match), and a ground truth
/// with a NaN quality restores no low-quality matches (nothing equals NaN). IoU is NaN for two boxes of zero area.
///
/// Threading: predictions are split over `Parallel` threads; each thread writes its own range of `matches`.
/// Callers guarantee `m >= 1` and `n >= 1` (validated at the boundary).
public enum Matching {
    /// torchvision's `Matcher.BELOW_LOW_THRESHOLD`.
    public static let belowLowThreshold: Int64 = -1
    /// torchvision's `Matcher.BETWEEN_THRESHOLDS`.
    public static let betweenThresholds: Int64 = -2

    /// Writes the match of each prediction into `matches` (n,).
    @inlinable
    public static func match<T: KernelFloat>(
        quality: UnsafePointer<T>, groundTruths m: Int, predictions n: Int, highThreshold: T, lowThreshold: T,
        allowLowQualityMatches: Bool, matches: UnsafeMutablePointer<Int64>
    ) {
        // Best quality of each ground truth over all predictions (only needed for the low-quality restore).
        let bestPerGT = UnsafeMutablePointer<T>.allocate(capacity: allowLowQualityMatches ? m : 0)
        defer { bestPerGT.deallocate() }
        if allowLowQualityMatches {
            Parallel.forEachChunk(m, minItemsPerChunk: max(1, 16384 / n)) { gts in
                for i in gts {
                    let row = quality + i * n
                    var best = row[0]
                    for j in 1..<n where row[j] > best || row[j].isNaN { best = row[j] }
                    bestPerGT[i] = best
                }
            }
        }
        Parallel.forEachChunk(n, minItemsPerChunk: max(1, 16384 / m)) { cols in
            let lo = cols.lowerBound, width = cols.count
            // Column maxima over the ground truths, scanning rows so reads stay contiguous. A value replaces the
            // maximum when it is greater or NaN (`!(v <= max)`), unless the maximum is NaN already: the first NaN.
            let bestValue = UnsafeMutablePointer<T>.allocate(capacity: width)
            let bestIndex = UnsafeMutablePointer<Int64>.allocate(capacity: width)
            defer { bestValue.deallocate(); bestIndex.deallocate() }
            bestValue.update(from: quality + lo, count: width)
            bestIndex.update(repeating: 0, count: width)
            for i in 1..<m {
                let row = quality + i * n + lo
                for k in 0..<width where !(row[k] <= bestValue[k]) && bestValue[k] == bestValue[k] {
                    bestValue[k] = row[k]
                    bestIndex[k] = Int64(i)
                }
            }
            for k in 0..<width {
                let v = bestValue[k]
                matches[lo + k] =
                    v < lowThreshold
                    ? belowLowThreshold
                    : (v < highThreshold ? betweenThresholds : bestIndex[k])
            }
            if allowLowQualityMatches {
                for i in 0..<m {
                    let row = quality + i * n + lo
                    let best = bestPerGT[i]
                    for k in 0..<width where row[k] == best { matches[lo + k] = bestIndex[k] }
                }
            }
        }
    }
}
