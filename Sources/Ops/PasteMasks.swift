/// Pasting of per-box masks into full images, as `torchvision.models.detection.roi_heads.paste_masks_in_image`.
///
/// Layout: `masks` is `(n, m, m)` row-major (the `(N, 1, M, M)` tensor without its channel), `boxes` `(n, 4)`
/// `(x1, y1, x2, y2)`, `out` `(n, height, width)`. For each mask:
/// 1. the mask is padded with `padding` zeros on every side (size s = m + 2·padding) and its box is scaled about
///    its centre by s / m, in the element type, then truncated to integers (x0, y0, x1, y1);
/// 2. the padded mask is resized to h × w (h = max(y1 - y0 + 1, 1), w = max(x1 - x0 + 1, 1)) by bilinear
///    interpolation with `align_corners=False`: output index d reads source position
///    max((d + 0.5)·s/size - 0.5, 0) (see `tap`), blending along the width first, then along the height;
/// 3. the resized mask is placed with its top-left pixel at (x0, y0) and clipped to the image; everything else is 0.
///
/// Only the pixels that land inside the image are interpolated, and padding is never materialised: its rows read a
/// zero row and its columns a zero sentinel. Threading: masks are split over `Parallel` threads; each thread writes
/// its own output planes and owns its scratch buffers. With `zeroed` the caller guarantees that `out` already reads
/// as zeros (`ZeroPages.fill`), and only the windows the boxes cover are written. Callers guarantee `m >= 1`,
/// `padding >= 0`, `height, width >= 1` (validated at the boundary); boxes may hold any values (see `expandedBox`).
public enum PasteMasks {
    /// torchvision's box scale for a padded mask, `(m + 2·padding) / m`, computed in `Double` as Python does.
    @inlinable
    public static func boxScale(maskSize m: Int, padding: Int) -> Double { Double(m + 2 * padding) / Double(m) }

    /// Largest magnitude of an expanded box coordinate: beyond it (and for NaN) coordinates saturate, so that the
    /// integer arithmetic on them cannot overflow.
    @usableFromInline static let coordinateLimit = 1 << 60

    /// The box `b` scaled about its centre by `scale` and truncated toward zero, as torchvision's `expand_boxes`
    /// followed by `.to(torch.int64)`: (x0, y0, x1, y1), each within ±`coordinateLimit`.
    @inlinable
    public static func expandedBox<T: KernelFloat>(_ b: UnsafePointer<T>, scale: T) -> (Int, Int, Int, Int) {
        let halfW = (b[2] - b[0]) * T(0.5) * scale
        let halfH = (b[3] - b[1]) * T(0.5) * scale
        let cx = (b[2] + b[0]) * T(0.5)
        let cy = (b[3] + b[1]) * T(0.5)
        func int(_ v: T) -> Int { T.clampedInt(v, -coordinateLimit, coordinateLimit) }
        return (int(cx - halfW), int(cy - halfH), int(cx + halfW), int(cy + halfH))
    }

    /// Source taps of output index `dst` when resizing `inSize` samples to `outSize` (align_corners=False), as
    /// torch's CPU bilinear kernel computes them: the same size copies; otherwise the source position is
    /// `fma(inSize / outSize, dst + 0.5, -0.5)` clamped at 0, its lower neighbour `i0` (floored through `Float`, as
    /// torch's `floorf`) capped at `inSize - 1`, `i1` the next sample or `i0` itself at the end, weights `1 - λ, λ`.
    @inlinable
    public static func tap<T: KernelFloat>(_ dst: Int, inSize: Int, outSize: Int) -> (i0: Int, i1: Int, w0: T, w1: T) {
        if inSize == outSize { return (dst, dst, 1, 0) }
        var real = T(-0.5).addingProduct(T(inSize) / T(outSize), T(dst) + T(0.5))
        if real < 0 { real = 0 }
        let i0 = min(Int(Float(real).rounded(.down)), inSize - 1)
        let lambda = min(max(real - T(i0), 0), 1)
        return (i0, i0 < inSize - 1 ? i0 + 1 : i0, 1 - lambda, lambda)
    }

    @inlinable
    public static func paste<T: KernelFloat>(
        masks: UnsafePointer<T>, boxes: UnsafePointer<T>, count n: Int, maskSize m: Int, padding: Int,
        height: Int, width: Int, zeroed: Bool = false, into out: UnsafeMutablePointer<T>
    ) {
        let scale = T(boxScale(maskSize: m, padding: padding))
        let padded = m + 2 * padding
        Parallel.forEachChunk(n) { range in
            // Per-thread scratch, reused by every mask of the chunk: column taps of the window, two interpolated
            // source rows (with their padded row index), a zero row for padding rows, one mask row + zero sentinel.
            let col0 = UnsafeMutablePointer<Int>.allocate(capacity: width)
            let col1 = UnsafeMutablePointer<Int>.allocate(capacity: width)
            let cw0 = UnsafeMutablePointer<T>.allocate(capacity: width)
            let cw1 = UnsafeMutablePointer<T>.allocate(capacity: width)
            let rows = UnsafeMutablePointer<T>.allocate(capacity: 3 * width)
            let source = UnsafeMutablePointer<T>.allocate(capacity: m + 1)
            defer {
                col0.deallocate(); col1.deallocate(); cw0.deallocate(); cw1.deallocate(); rows.deallocate()
                source.deallocate()
            }
            let zeroRow = rows + 2 * width
            zeroRow.update(repeating: 0, count: width)
            source[m] = 0
            for k in range {
                let plane = out + k * height * width
                let (x0, y0, x1, y1) = expandedBox(boxes + 4 * k, scale: scale)
                let w = max(x1 - x0 + 1, 1), h = max(y1 - y0 + 1, 1)
                // The window of the image the box covers: columns [left, right), rows [top, bottom).
                let left = max(x0, 0), right = min(x1 + 1, width)
                let top = max(y0, 0), bottom = min(y1 + 1, height)
                if left >= right || top >= bottom {
                    if !zeroed { plane.update(repeating: 0, count: height * width) }
                    continue
                }
                let span = right - left
                for x in 0..<span {
                    let t: (i0: Int, i1: Int, w0: T, w1: T) = tap(left + x - x0, inSize: padded, outSize: w)
                    // Padded column -> mask column, or the zero sentinel at index m for a padding column.
                    let c0 = t.i0 - padding, c1 = t.i1 - padding
                    col0[x] = c0 >= 0 && c0 < m ? c0 : m
                    col1[x] = c1 >= 0 && c1 < m ? c1 : m
                    cw0[x] = t.w0
                    cw1[x] = t.w1
                }
                var cachedRow = (-1, -1)  // padded source row held in rows[0..<span] and rows[width..<width+span]
                /// The source row `r` (padded index) interpolated along the width, never evicting row `keep`.
                func interpolatedRow(_ r: Int, keep: Int) -> UnsafeMutablePointer<T> {
                    let real = r - padding
                    if real < 0 || real >= m { return zeroRow }
                    if cachedRow.0 == r { return rows }
                    if cachedRow.1 == r { return rows + width }
                    let slot = cachedRow.0 == keep ? 1 : 0
                    let dst = rows + slot * width
                    if slot == 0 { cachedRow.0 = r } else { cachedRow.1 = r }
                    source.update(from: masks + (k * m + real) * m, count: m)
                    for x in 0..<span { dst[x] = source[col0[x]] * cw0[x] + source[col1[x]] * cw1[x] }
                    return dst
                }
                if !zeroed { plane.update(repeating: 0, count: top * width) }
                for y in top..<bottom {
                    let t: (i0: Int, i1: Int, w0: T, w1: T) = tap(y - y0, inSize: padded, outSize: h)
                    let upper = interpolatedRow(t.i0, keep: t.i1)
                    let lower = interpolatedRow(t.i1, keep: t.i0)
                    let line = plane + y * width
                    if !zeroed { line.update(repeating: 0, count: left) }
                    let window = line + left
                    for x in 0..<span { window[x] = upper[x] * t.w0 + lower[x] * t.w1 }
                    if !zeroed { (line + right).update(repeating: 0, count: width - right) }
                }
                if !zeroed { (plane + bottom * width).update(repeating: 0, count: (height - bottom) * width) }
            }
        }
    }
}
