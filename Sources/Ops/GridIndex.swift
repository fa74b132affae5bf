/// Greedy NMS accelerated by a uniform grid over the centres of the boxes kept so far.
///
/// Which kept boxes can suppress a candidate a (width w, height h) at threshold t >= 0? IoU > t needs an
/// intersection of positive area, and bounds how far apart the centres may be. Along x, with intersection width
/// `iw`, centre distance `d` and widths `wa`, `wb`:
///   - iw = (wa + wb)/2 - (|Δx1| + |Δx2|)/2 <= (wa + wb)/2 - d, so d < (wa + wb)/2 for any overlap;
///   - IoU > t gives I > t·max(Aa, Ab), hence iw > t·wa and iw > t·wb (as ih <= h of either box), so
///     wb < wa/t and d < (wa + wb)/2 - t·max(wa, wb) <= wa·(1 - t)/(2t) for t <= 1/2, wa·(1 - t) for t > 1/2.
/// So only kept boxes whose centre lies within R = min((wa + wmax)/2, wa·g(t)) of a's centre (and likewise in y)
/// are tested, wmax being the widest indexed box. At t = 0.5 the window has the area of a itself, and greedy NMS
/// becomes close to linear in the number of boxes. Every test uses `NMS.iou`, the same expression as the direct
/// path, so results are identical; the window is widened by a relative margin for rounding.
///
/// The grid is sized by a sample of the boxes (`sampleSize`, evenly spaced in visiting order), so that a few boxes
/// far away or far larger than the others cannot squeeze the rest into one cell. Leaving out the outermost
/// `trimmedFraction` of the sample at each end: the grid spans the centres, but no further than a quarter of the
/// sampled centres' extent beyond them (centres beyond share the edge cells); its cells are half the median sampled
/// side; and a box more than `largeFactor` times wider or taller than the sampled ones is not indexed but kept in a
/// list that every candidate tests. Whatever the boxes, a candidate tests each kept box at most once and visits at
/// most as many cells as there are kept boxes, so the cost stays within that of torchvision's greedy loop.
///
/// Memory: one cell head per grid cell (at most `maxCellsPerBox` per box) and one link per kept box.
/// Single-threaded: greedy NMS is sequential by definition.
@usableFromInline
struct GridIndex {
    @usableFromInline let minX: Double, minY: Double
    @usableFromInline let scaleX: Double, scaleY: Double
    @usableFromInline let columns: Int, rows: Int
    /// Width and height above which a box is kept in the list of large boxes instead of the grid.
    @usableFromInline let largeW: Double, largeH: Double
    /// Largest width and height of the boxes with positive area that are not large.
    @usableFromInline let maxW: Double, maxH: Double

    /// Cap on grid cells per input box: memory stays O(N) however small the boxes are relative to their spread.
    @usableFromInline static let maxCellsPerBox = 4
    /// Relative widening of the search window, far above float rounding of the coordinates and the IoU.
    @usableFromInline static let windowMargin = 1e-3
    /// Boxes of positive area sampled to size the grid.
    @usableFromInline static let sampleSize = 1024
    /// Fraction of the sampled centres and sides left out at each end when sizing the grid.
    @usableFromInline static let trimmedFraction = 1.0 / 64
    /// How many times the widest (tallest) sampled box, trimmed, a box must exceed in width (height) to be large.
    @usableFromInline static let largeFactor = 2.0

    /// Returns nil when the boxes give no useful grid (non-finite coordinates, no box of positive area).
    @inlinable
    init?<T: KernelFloat>(boxes: UnsafePointer<T>, order: [Int]) {
        /// Width and height of box i when both are positive, else nil (such a box never overlaps anything).
        func sides(_ i: Int) -> (Double, Double)? {
            let b = boxes + 4 * i
            let (w, h) = (Double(b[2]) - Double(b[0]), Double(b[3]) - Double(b[1]))
            return w > 0 && h > 0 ? (w, h) : nil
        }
        var proper = 0
        var lowest = (Double.infinity, Double.infinity), highest = (-Double.infinity, -Double.infinity)
        for i in order {
            let b = boxes + 4 * i
            guard b[0].isFinite && b[1].isFinite && b[2].isFinite && b[3].isFinite else { return nil }
            guard sides(i) != nil else { continue }
            let (cx, cy) = ((Double(b[0]) + Double(b[2])) / 2, (Double(b[1]) + Double(b[3])) / 2)
            lowest = (Swift.min(lowest.0, cx), Swift.min(lowest.1, cy))
            highest = (Swift.max(highest.0, cx), Swift.max(highest.1, cy))
            proper += 1
        }
        guard proper > 0 else { return nil }
        // `s` boxes of positive area, evenly spaced in visiting order.
        let s = Swift.min(proper, GridIndex.sampleSize)
        var cxs = [Double](), cys = [Double](), ws = [Double](), hs = [Double](), halfSides = [Double]()
        cxs.reserveCapacity(s); cys.reserveCapacity(s); ws.reserveCapacity(s); hs.reserveCapacity(s)
        halfSides.reserveCapacity(s)
        var seen = 0
        for i in order {
            guard let (w, h) = sides(i) else { continue }
            if seen * s / proper != (seen + 1) * s / proper {
                let b = boxes + 4 * i
                cxs.append((Double(b[0]) + Double(b[2])) / 2)
                cys.append((Double(b[1]) + Double(b[3])) / 2)
                ws.append(w)
                hs.append(h)
                halfSides.append((w + h) / 4)
            }
            seen += 1
        }
        cxs.sort(); cys.sort(); ws.sort(); hs.sort(); halfSides.sort()
        let n = cxs.count, cut = Int(Double(n) * GridIndex.trimmedFraction)
        // The trimmed extent, widened by a quarter on each side, or the whole extent when that is smaller.
        let (qx, qy) = ((cxs[cut], cxs[n - 1 - cut]), (cys[cut], cys[n - 1 - cut]))
        let (mx, my) = ((qx.1 - qx.0) / 4, (qy.1 - qy.0) / 4)
        let lo = (Swift.max(lowest.0, qx.0 - mx), Swift.max(lowest.1, qy.0 - my))
        let hi = (Swift.min(highest.0, qx.1 + mx), Swift.min(highest.1, qy.1 + my))
        largeW = ws[n - 1 - cut] * GridIndex.largeFactor
        largeH = hs[n - 1 - cut] * GridIndex.largeFactor
        var wmax = 0.0, hmax = 0.0
        for i in order {
            guard let (w, h) = sides(i), w <= largeW && h <= largeH else { continue }
            wmax = Swift.max(wmax, w)
            hmax = Swift.max(hmax, h)
        }
        // Cells about half a typical box: a window at t = 0.5 then spans about 3 x 3 cells.
        let cell = halfSides[n / 2]
        let (spanX, spanY) = (hi.0 - lo.0, hi.1 - lo.1)
        guard cell > 0, spanX.isFinite, spanY.isFinite else { return nil }
        var cols = Swift.max(1, Int(Swift.min(spanX / cell + 1, 65536)))
        var rws = Swift.max(1, Int(Swift.min(spanY / cell + 1, 65536)))
        let maxCells = Swift.max(16, GridIndex.maxCellsPerBox * order.count)
        while cols * rws > maxCells {
            cols = (cols + 1) / 2
            rws = (rws + 1) / 2
        }
        minX = lo.0
        minY = lo.1
        columns = cols
        rows = rws
        scaleX = spanX > 0 ? Double(cols) / spanX : 0
        scaleY = spanY > 0 ? Double(rws) / spanY : 0
        maxW = wmax
        maxH = hmax
    }

    /// Grid column of x, clamped into the grid (monotone in x; NaN gives column 0).
    @inlinable @inline(__always)
    func column(_ x: Double) -> Int {
        let c = (x - minX) * scaleX
        return !(c > 0) ? 0 : (c >= Double(columns - 1) ? columns - 1 : Int(c))
    }

    @inlinable @inline(__always)
    func row(_ y: Double) -> Int {
        let r = (y - minY) * scaleY
        return !(r > 0) ? 0 : (r >= Double(rows - 1) ? rows - 1 : Int(r))
    }

    /// How far, relative to a box's own side, the centre of a box that suppresses it can be (see the type's
    /// comment); infinite for t = 0, where only the overlap bound applies, and 0 for t >= 1, where nothing is
    /// suppressed.
    @inlinable
    static func reach(_ t: Double) -> Double {
        if t <= 0 { return .infinity }
        return t <= 0.5 ? (1 - t) / (2 * t) : Swift.max(1 - t, 0)
    }

    /// Greedy NMS over `order`, which must hold indices of `boxes`, for `iouThreshold >= 0` (see `NMS.suppress`).
    @inlinable
    func suppress<T: KernelFloat>(
        boxes: UnsafePointer<T>, order: [Int], iouThreshold: Double, keep: UnsafeMutablePointer<Int64>
    ) -> Int {
        let n = order.count
        let head = UnsafeMutablePointer<Int32>.allocate(capacity: columns * rows)
        head.initialize(repeating: -1, count: columns * rows)
        // Per kept box: corners, area and the next kept box in the same cell.
        let kbox = UnsafeMutablePointer<SIMD4<T>>.allocate(capacity: n)
        let karea = UnsafeMutablePointer<T>.allocate(capacity: n)
        let next = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        // Kept large boxes, outside the grid.
        let large = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        var largeCount = 0
        defer { head.deallocate(); kbox.deallocate(); karea.deallocate(); next.deallocate(); large.deallocate() }
        let reach = GridIndex.reach(iouThreshold)
        let grow = 1 + GridIndex.windowMargin
        var kept = 0
        for idx in order {
            let b = boxes + 4 * idx
            let (x1, y1, x2, y2) = (b[0], b[1], b[2], b[3])
            let area = (x2 - x1) * (y2 - y1)
            let (w, h) = (Double(x2) - Double(x1), Double(y2) - Double(y1))
            let proper = w > 0 && h > 0
            var cell = -1
            if proper {
                let (cx, cy) = ((Double(x1) + Double(x2)) / 2, (Double(y1) + Double(y2)) / 2)
                let rx = Swift.min((w + maxW) / 2, w * reach) * grow
                let ry = Swift.min((h + maxH) / 2, h * reach) * grow
                let (c0, c1) = (column(cx - rx), column(cx + rx))
                let (r0, r1) = (row(cy - ry), row(cy + ry))
                var suppressed = false
                if (c1 - c0 + 1) * (r1 - r0 + 1) > kept {
                    // The window has more cells than there are kept boxes: test them all instead.
                    for k in 0..<kept {
                        let q = kbox[k]
                        if Double(NMS.iou(x1, y1, x2, y2, area, q[0], q[1], q[2], q[3], karea[k])) > iouThreshold {
                            suppressed = true
                            break
                        }
                    }
                } else {
                    for j in 0..<largeCount {
                        let k = Int(large[j])
                        let q = kbox[k]
                        if Double(NMS.iou(x1, y1, x2, y2, area, q[0], q[1], q[2], q[3], karea[k])) > iouThreshold {
                            suppressed = true
                            break
                        }
                    }
                    search: for r in r0...r1 where !suppressed {
                        for c in c0...c1 {
                            var e = head[r * columns + c]
                            while e >= 0 {
                                let k = Int(e)
                                let q = kbox[k]
                                if Double(NMS.iou(x1, y1, x2, y2, area, q[0], q[1], q[2], q[3], karea[k]))
                                    > iouThreshold
                                {
                                    suppressed = true
                                    break search
                                }
                                e = next[k]
                            }
                        }
                    }
                }
                if suppressed { continue }
                if w > largeW || h > largeH {
                    large[largeCount] = Int32(kept)
                    largeCount += 1
                } else {
                    cell = row(cy) * columns + column(cx)
                }
            }
            // Degenerate boxes are kept (nothing overlaps them with positive area) but never indexed.
            keep[kept] = Int64(idx)
            kbox[kept] = SIMD4(x1, y1, x2, y2)
            karea[kept] = area
            if cell >= 0 {
                next[kept] = head[cell]
                head[cell] = Int32(kept)
            }
            kept += 1
        }
        return kept
    }
}
