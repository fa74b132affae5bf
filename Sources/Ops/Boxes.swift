/// Box utilities of `torchvision.ops.boxes`, on row-major `(N, 4)` buffers of `(x1, y1, x2, y2)`.
///
/// Arithmetic follows torchvision's order of operations in the element type, so `Float` results match to the ulp
/// and NaN propagates the way it does there (a clamp of NaN stays NaN). Pairwise kernels split the rows of
/// `boxes1` over `Parallel` threads; each thread writes its own rows of the output.
public enum Boxes {
    /// Which pairwise overlap `pairwiseIoU` computes.
    public enum IoUKind: Int32, Sendable {
        case iou = 0, generalized = 1, distance = 2, complete = 3
    }

    /// Box formats of `torchvision.ops.box_convert`.
    public enum Format: Int32, Sendable {
        /// Corners `(x1, y1, x2, y2)`.
        case xyxy = 0
        /// Top-left corner, width, height.
        case xywh = 1
        /// Centre, width, height.
        case cxcywh = 2
    }

    /// The box around the non-zero pixels of each mask (`torchvision.ops.masks_to_boxes`): `masks` (n, height,
    /// width) -> `out` (n, 4) `(x1, y1, x2, y2)` in pixel indices, inclusive; `(0, 0, 0, 0)` for an empty mask.
    @inlinable
    public static func masksToBoxes(
        _ masks: UnsafePointer<UInt8>, count n: Int, height: Int, width: Int, into out: UnsafeMutablePointer<Float>
    ) {
        let plane = height * width
        Parallel.forEachChunk(n, minItemsPerChunk: max(1, (1 << 16) / max(1, plane))) { range in
            for i in range {
                var (x1, y1, x2, y2) = (width, height, -1, -1)
                let mask = masks + i * plane
                for y in 0..<height {
                    let row = mask + y * width
                    var first = -1, last = -1
                    for x in 0..<width where row[x] != 0 {
                        if first < 0 { first = x }
                        last = x
                    }
                    if first < 0 { continue }
                    if y1 == height { y1 = y }
                    y2 = y
                    x1 = min(x1, first)
                    x2 = max(x2, last)
                }
                let box = y2 < 0 ? (0, 0, 0, 0) : (x1, y1, x2, y2)
                out[4 * i] = Float(box.0)
                out[4 * i + 1] = Float(box.1)
                out[4 * i + 2] = Float(box.2)
                out[4 * i + 3] = Float(box.3)
            }
        }
    }

    /// `(x2 - x1) * (y2 - y1)` per box: `boxes` (n, 4) -> `out` (n,).
    @inlinable
    public static func area<T: KernelFloat>(_ boxes: UnsafePointer<T>, count n: Int, into out: UnsafeMutablePointer<T>)
    {
        for i in 0..<n {
            let b = boxes + 4 * i
            out[i] = (b[2] - b[0]) * (b[3] - b[1])
        }
    }

    /// Pairwise overlap of each box of `boxes1` (n, 4) with each of `boxes2` (m, 4) into `out` (n, m).
    ///
    /// For two boxes with intersection I and union U (areas from the corner differences, widths clamped at 0):
    /// - IoU = I / U;
    /// - generalized: IoU - (C - U) / C, C the area of the smallest enclosing box;
    /// - distance: IoU - d² / (c² + eps), d the distance of the centres, c the diagonal of the enclosing box;
    /// - complete: distance - α v, v = (4/π²)(atan(w1/h1) - atan(w2/h2))², α = v / (1 - IoU + v + eps).
    ///
    /// `boxes2` is transposed once into struct-of-arrays form so each output row is a contiguous, vectorisable
    /// loop. Rows are split over `Parallel` threads.
    @inlinable
    public static func pairwiseIoU<T: KernelFloat>(
        _ kind: IoUKind, _ boxes1: UnsafePointer<T>, count n: Int, _ boxes2: UnsafePointer<T>, count m: Int,
        eps: T, into out: UnsafeMutablePointer<T>
    ) {
        if n == 0 || m == 0 { return }
        let soa = UnsafeMutablePointer<T>.allocate(capacity: 5 * m)
        defer { soa.deallocate() }
        let (bx1, by1, bx2, by2, barea) = (soa, soa + m, soa + 2 * m, soa + 3 * m, soa + 4 * m)
        var hasNaN = false
        for j in 0..<m {
            let b = boxes2 + 4 * j
            (bx1[j], by1[j], bx2[j], by2[j]) = (b[0], b[1], b[2], b[3])
            barea[j] = (b[2] - b[0]) * (b[3] - b[1])
            hasNaN = hasNaN || b[0].isNaN || b[1].isNaN || b[2].isNaN || b[3].isNaN
        }
        for i in 0..<(4 * n) where boxes1[i].isNaN { hasNaN = true; break }
        let rowsPerChunk = max(1, 16384 / m)
        Parallel.forEachChunk(n, minItemsPerChunk: rowsPerChunk) { rows in
            for i in rows {
                let a = boxes1 + 4 * i
                let row = out + i * m
                if hasNaN {
                    // min/max that propagate NaN, as torch's do.
                    pairwiseRow(kind, a, m, bx1, by1, bx2, by2, barea, eps, row, min: minimum, max: maximum)
                } else {
                    pairwiseRow(kind, a, m, bx1, by1, bx2, by2, barea, eps, row, min: fastMin, max: fastMax)
                }
            }
        }
    }

    /// One output row of `pairwiseIoU`. `min`/`max` are inlined; without NaN inputs they are plain selects.
    @inlinable @inline(__always)
    static func pairwiseRow<T: KernelFloat>(
        _ kind: IoUKind, _ a: UnsafePointer<T>, _ m: Int, _ bx1: UnsafePointer<T>, _ by1: UnsafePointer<T>,
        _ bx2: UnsafePointer<T>, _ by2: UnsafePointer<T>, _ barea: UnsafePointer<T>, _ eps: T,
        _ row: UnsafeMutablePointer<T>, min: (T, T) -> T, max: (T, T) -> T
    ) {
        let (ax1, ay1, ax2, ay2) = (a[0], a[1], a[2], a[3])
        let area1 = (ax2 - ax1) * (ay2 - ay1)
        @inline(__always) func iouAt(_ j: Int) -> (iou: T, union: T) {
            let iw = clampMin0(min(ax2, bx2[j]) - max(ax1, bx1[j]))
            let ih = clampMin0(min(ay2, by2[j]) - max(ay1, by1[j]))
            let inter = iw * ih
            let union = area1 + barea[j] - inter
            return (inter / union, union)
        }
        switch kind {
        case .iou:
            for j in 0..<m { row[j] = iouAt(j).iou }
        case .generalized:
            for j in 0..<m {
                let (iou, union) = iouAt(j)
                let cw = clampMin0(max(ax2, bx2[j]) - min(ax1, bx1[j]))
                let ch = clampMin0(max(ay2, by2[j]) - min(ay1, by1[j]))
                let enclosing = cw * ch
                row[j] = iou - (enclosing - union) / enclosing
            }
        case .distance, .complete:
            let fourOverPiSquared = T(4.0 / (Double.pi * Double.pi))
            let aspect1 = kind == .complete ? T.atan((ax2 - ax1) / (ay2 - ay1)) : 0
            for j in 0..<m {
                let iou = iouAt(j).iou
                let cw = clampMin0(max(ax2, bx2[j]) - min(ax1, bx1[j]))
                let ch = clampMin0(max(ay2, by2[j]) - min(ay1, by1[j]))
                let diagonal = cw * cw + ch * ch + eps
                let dx = (ax1 + ax2) / 2 - (bx1[j] + bx2[j]) / 2
                let dy = (ay1 + ay2) / 2 - (by1[j] + by2[j]) / 2
                let diou = iou - (dx * dx + dy * dy) / diagonal
                if kind == .distance {
                    row[j] = diou
                } else {
                    let t = aspect1 - T.atan((bx2[j] - bx1[j]) / (by2[j] - by1[j]))
                    let v = fourOverPiSquared * (t * t)
                    let alpha = v / (1 - iou + v + eps)
                    row[j] = diou - alpha * v
                }
            }
        }
    }

    /// Converts `boxes` (n, 4) from one format to another into `out` (n, 4). `out` may alias `boxes`.
    @inlinable
    public static func convert<T: KernelFloat>(
        _ boxes: UnsafePointer<T>, count n: Int, from inFormat: Format, to outFormat: Format,
        into out: UnsafeMutablePointer<T>
    ) {
        for i in 0..<n {
            let b = boxes + 4 * i
            var (p, q, r, s) = (b[0], b[1], b[2], b[3])
            // To corners first (torchvision goes through xyxy for the mixed conversions too).
            switch inFormat {
            case .xyxy: break
            case .xywh: (r, s) = (p + r, q + s)
            case .cxcywh:
                let (cx, cy, w, h) = (p, q, r, s)
                (p, q, r, s) = (cx - T(0.5) * w, cy - T(0.5) * h, cx + T(0.5) * w, cy + T(0.5) * h)
            }
            switch outFormat {
            case .xyxy: break
            case .xywh: (r, s) = (r - p, s - q)
            case .cxcywh:
                let (x1, y1, x2, y2) = (p, q, r, s)
                (p, q, r, s) = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
            }
            let o = out + 4 * i
            o[0] = p; o[1] = q; o[2] = r; o[3] = s
        }
    }

    /// Clamps x to [0, width] and y to [0, height] for `boxes` (n, 4) into `out` (n, 4); NaN stays NaN.
    @inlinable
    public static func clipToImage<T: KernelFloat>(
        _ boxes: UnsafePointer<T>, count n: Int, height: T, width: T, into out: UnsafeMutablePointer<T>
    ) {
        for i in 0..<(4 * n) {
            let limit = i & 1 == 0 ? width : height
            out[i] = clamp(boxes[i], 0, limit)
        }
    }

    /// Writes the indices of boxes with width and height both >= minSize into `keep`; returns how many.
    @inlinable
    public static func removeSmall<T: KernelFloat>(
        _ boxes: UnsafePointer<T>, count n: Int, minSize: T, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        var k = 0
        for i in 0..<n {
            let b = boxes + 4 * i
            if b[2] - b[0] >= minSize && b[3] - b[1] >= minSize {
                keep[k] = Int64(i)
                k += 1
            }
        }
        return k
    }
}

// Min, max and clamp with torch's NaN behaviour: a NaN operand gives NaN.
@inlinable @inline(__always)
func minimum<T: FloatingPoint>(_ a: T, _ b: T) -> T { a.isNaN || b.isNaN ? .nan : (a < b ? a : b) }
@inlinable @inline(__always)
func maximum<T: FloatingPoint>(_ a: T, _ b: T) -> T { a.isNaN || b.isNaN ? .nan : (a > b ? a : b) }
// Plain min and max (vectorise to single instructions); only for inputs known to hold no NaN.
@inlinable @inline(__always)
func fastMin<T: FloatingPoint>(_ a: T, _ b: T) -> T { a < b ? a : b }
@inlinable @inline(__always)
func fastMax<T: FloatingPoint>(_ a: T, _ b: T) -> T { a > b ? a : b }
@inlinable @inline(__always)
func clampMin0<T: FloatingPoint>(_ x: T) -> T { x < 0 ? 0 : x }
@inlinable @inline(__always)
func clamp<T: FloatingPoint>(_ x: T, _ lo: T, _ hi: T) -> T { x < lo ? lo : (x > hi ? hi : x) }
