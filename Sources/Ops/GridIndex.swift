/// Greedy NMS accelerated by a uniform grid over the centres of the boxes kept so far.
///
/// Which kept boxes can suppress a candidate a (width w, height h) at threshold t >= 0? IoU > t needs an
/// intersection of positive area, and bounds how far apart the centres may be. Along x, with intersection width
/// `iw`, centre distance `d` and widths `wa`, `wb`:
///   - iw = (wa + wb)/2 - (|Δx1| + |Δx2|)/2 <= (wa + wb)/2 - d, so d < (wa + wb)/2 for any overlap;
///   - IoU > t gives I > t·max(Aa, Ab), hence iw > t·wa and iw > t·wb (as ih <= h of either box), so
///     wb < wa/t and d < (wa + wb)/2 - t·max(wa, wb) <= wa·(1 - t)/(2t) for t <= 1/2, wa·(1 - t) for t > 1/2.
/// So only kept boxes whose centre lies within R = min((wa + wmax)/2, wa·g(t)) of a's centre (and likewise in y)
/// are tested, wmax being the widest box of the input. At t = 0.5 the window has the area of a itself, and greedy
/// NMS becomes close to linear in the number of boxes. Every test uses `NMS.iou`, the same expression as the
/// direct path, so results are identical; the window is widened by a relative margin for rounding.
///
/// Memory: one cell head per grid cell (at most `maxCellsPerBox` per box) and one link per kept box.
/// Single-threaded: greedy NMS is sequential by definition.
@usableFromInline
struct GridIndex {
    @usableFromInline let minX: Double, minY: Double
    @usableFromInline let scaleX: Double, scaleY: Double
    @usableFromInline let columns: Int, rows: Int
    /// Largest width and height of the boxes with positive area.
    @usableFromInline let maxW: Double, maxH: Double

    /// Cap on grid cells per input box: memory stays O(N) however small the boxes are relative to their spread.
    @usableFromInline static let maxCellsPerBox = 4
    /// Relative widening of the search window, far above float rounding of the coordinates and the IoU.
    @usableFromInline static let windowMargin = 1e-3

    /// Returns nil when the boxes give no useful grid (non-finite coordinates, no box of positive area).
    @inlinable
    init?<T: KernelFloat>(boxes: UnsafePointer<T>, order: [Int]) {
        var lo = (Double.infinity, Double.infinity), hi = (-Double.infinity, -Double.infinity)
        var sideSum = 0.0, proper = 0, wmax = 0.0, hmax = 0.0
        for i in order {
            let b = boxes + 4 * i
            let (x1, y1, x2, y2) = (Double(b[0]), Double(b[1]), Double(b[2]), Double(b[3]))
            guard x1.isFinite && y1.isFinite && x2.isFinite && y2.isFinite else { return nil }
            guard x2 > x1 && y2 > y1 else { continue }  // never overlaps anything with positive area
            let (cx, cy) = ((x1 + x2) / 2, (y1 + y2) / 2)
            lo = (Swift.min(lo.0, cx), Swift.min(lo.1, cy))
            hi = (Swift.max(hi.0, cx), Swift.max(hi.1, cy))
            sideSum += (x2 - x1) + (y2 - y1)
            wmax = Swift.max(wmax, x2 - x1)
            hmax = Swift.max(hmax, y2 - y1)
            proper += 1
        }
        guard proper > 0 else { return nil }
        // Cells about half a typical box: a window at t = 0.5 then spans about 3 x 3 cells.
        let cell = sideSum / Double(4 * proper)
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
        defer { head.deallocate(); kbox.deallocate(); karea.deallocate(); next.deallocate() }
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
                    search: for r in r0...r1 {
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
                cell = row(cy) * columns + column(cx)
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
