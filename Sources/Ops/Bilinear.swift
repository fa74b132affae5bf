/// One axis of a bilinear sample in the convention of torchvision's RoIAlign kernels (shared by RoIAlign and
/// PSRoIAlign).
///
/// A sample at coordinate `v` on an axis of `size` pixels reads pixels `low` and `high` with weights `1 - frac` and
/// `frac`. A sample outside [-1, size] contributes nothing (nil); one in [-1, 0]
/// is clamped to 0; one at or beyond the last pixel reads only the last pixel. NaN lies outside.
@inlinable @inline(__always)
func bilinearTap<T: KernelFloat>(_ v: T, size: Int) -> (low: Int, high: Int, frac: T)? {
    if !(size > 0 && v >= -1 && v <= T(size)) { return nil }
    let clamped = v <= 0 ? 0 : v
    let low = T.truncatedInt(clamped)
    if low >= size - 1 { return (size - 1, size - 1, 0) }
    return (low, low + 1, clamped - T(low))
}
