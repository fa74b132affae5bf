// The GEMM loop nest and packing shared by every instruction set (BLIS's structure: only the micro-kernel and the
// block sizes in `Config.swift` are per instruction set). Layouts and threading are documented on
// `SwiftRCNNOps.GEMM`, which splits the work over threads and calls `Kernels.gemmBlock` for each share.

import _SwiftRCNNCPUID

extension Kernels {
    /// Columns of the micro-kernel tile for `T`: two vectors of B per step.
    @inline(__always)
    static func nr<T: KernelScalar>(_: T.Type) -> Int { 2 * T.Vector.scalarCount }

    /// Depth blocks of a product of depth k: k is cut into this many equal blocks (block q starts at k·q / count),
    /// each at most `Blocking.kc` deep.
    @inline(__always)
    static func depthBlockCount(_ k: Int) -> Int { (k + Blocking.kc - 1) / Blocking.kc }

    /// Elements of a packed m × k op(A): whole `mr`-row panels.
    @inline(__always)
    static func packedCount(m: Int, k: Int) -> Int { (m + Blocking.mr - 1) / Blocking.mr * Blocking.mr * k }

    /// One thread's share of C = op(A)·op(B) (+ C when `accumulate`), then the epilogue: rows `i0 ..< i0 + rows`
    /// and columns `j0 ..< j0 + columns` of C, the blocked loop nest with its own packing buffers.
    ///
    /// k is cut into equal blocks of at most `kc` (no thin last block). When this share of op(A), padded to whole
    /// panels, fits `packedAWholeLimit`, it is packed once up front instead of once per column block. The
    /// epilogue (bias[i], addend(i, j), ReLU) runs on each tile after its last depth block, while the tile is
    /// still in L1. `prepackedA`, from `prepackA` of rows `0 ..< rows` (so `i0` = 0), replaces packing A.
    ///
    /// When the path `packsBWhileMultiplying` and op(B) is not transposed, B is not copied before its tiles (in the
    /// row-band order, which such paths use for every depth block): the
    /// first row band's tile of each whole panel reads the panel from B and writes it packed as it multiplies it
    /// (`microKernel`'s `packInto`), and the other bands and row blocks read the packed panel; a partial last panel
    /// (zero-padded) is packed ahead. The sums are the same, in the same order, as with the separate copy.
    ///
    /// With `inPlaceB` (op(B) not transposed) the micro-kernel reads B where it is, row stride `ldb`, instead of a
    /// packed copy: for a B that is already in cache and whose rows are padded so that whole `nr`-column panels can
    /// be read from column `j0` on (the Winograd products; the columns past the end only feed the discarded part
    /// of edge tiles).
    @inline(__always)
    static func multiplyBlock<T: KernelScalar>(
        rows i0: Int, _ rows: Int, columns j0: Int, _ columns: Int, k: Int,
        a: UnsafePointer<T>, lda: Int, transposeA: Bool,
        b: UnsafePointer<T>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool,
        bias: UnsafePointer<T>?, addend: UnsafePointer<T>?, relu: Bool, prepackedA: UnsafePointer<T>?,
        inPlaceB: Bool = false
    ) {
        if rows <= 0 || columns <= 0 { return }
        let mr = Blocking.mr, nr = nr(T.self), mc = Blocking.mc, nc = Blocking.nc
        let epilogue = bias != nil || addend != nil || relu
        if k <= 0 {
            for r in 0..<rows where !accumulate {
                (c + (i0 + r) * ldc + j0).update(repeating: 0, count: columns)
            }
            if epilogue {
                applyEpilogue(
                    c + i0 * ldc + j0, ldc: ldc, i: i0, j: j0, rows: rows, columns: columns,
                    bias: bias, addend: addend.map { $0 + i0 * ldc + j0 }, relu: relu)
            }
            return
        }
        let depthBlocks = depthBlockCount(k)
        @inline(__always) func depthStart(_ q: Int) -> Int { k * q / depthBlocks }
        let depthMax = (k + depthBlocks - 1) / depthBlocks
        let rowsPadded = (rows + mr - 1) / mr * mr
        let wholeA = prepackedA != nil || rowsPadded * k <= Blocking.packedAWholeLimit
        let aCount = prepackedA != nil ? 0 : wholeA ? rowsPadded * k : min(mc, rowsPadded) * depthMax
        let inPlace = inPlaceB && !transposeB
        // B not transposed (its rows are the packed panels' rows) and a first band of full height: the tiles of the
        // first band of each depth block pack B's panels as they multiply them (`microKernel`'s `packInto`).
        // (Only in the row-band order: the paths that pack so visit every block in it.)
        let fusedPacking = Blocking.packsBWhileMultiplying && !inPlace && !transposeB && min(mc, rows) >= mr
        let bCount = inPlace ? 0 : depthMax * min(nc, (columns + nr - 1) / nr * nr)
        let tileCount = mr * nr
        // One 64-byte aligned buffer: B block, A block(s), edge tile (each a multiple of the vector). It is the
        // thread's kept scratch (`srcnn_thread_scratch`): a buffer allocated per call came with pages fresh to the
        // process often enough (glibc trims its heaps) that zero-filling them on first touch took 3-10% of a product
        // (AMD EPYC Zen 3 VM, 2 threads: 100-640 page faults of ~3 µs per product on bench/gemm.py's problems).
        let byteCount = (aCount + bCount + tileCount) * MemoryLayout<T>.stride
        guard let buffer = srcnn_thread_scratch(byteCount) else {
            fatalError("GEMM: out of memory allocating \(byteCount) bytes of packing buffer")
        }
        let packedB = buffer.bindMemory(to: T.self, capacity: aCount + bCount + tileCount)
        let packedA = packedB + bCount
        let edge = packedA + aCount
        if wholeA && prepackedA == nil {
            packWholeA(a, lda: lda, transposed: transposeA, rows: i0, rows, k: k, into: packedA)
        }
        let wholeBase = prepackedA ?? UnsafePointer(packedA)

        for jc in stride(from: 0, to: columns, by: nc) {
            let nb = min(nc, columns - jc)
            for q in 0..<depthBlocks {
                let pc = depthStart(q), kb = depthStart(q + 1) - pc
                let add = accumulate || q > 0
                let finish = q == depthBlocks - 1 && epilogue
                // B is packed chunk by chunk just before the first row block's tiles use it (so the packed chunk is
                // still in L2 for them, instead of the whole block going out to L3 and back), and reused from there
                // by the other row blocks.
                @inline(__always) func packChunk(_ jr: Int, _ count: Int) {
                    packB(
                        b, ldb: ldb, transposed: transposeB, rows: pc, kb, columns: j0 + jc + jr, min(count, nb - jr),
                        into: packedB + jr * kb)
                }
                // The chunk's last panel when it is partial (fewer than `nr` columns left): packed ahead, with its
                // zero padding, where the first band's tiles pack the whole panels as they multiply them.
                @inline(__always) func packPartialPanel(_ jchunk: Int, _ chunk: Int) {
                    let last = nb / nr * nr
                    if last < nb && last >= jchunk && last < jchunk + chunk { packChunk(last, nb - last) }
                }
                // The source of the chunk of B packed after chunk `jchunk` (`chunk` columns) of row block `ic`: the
                // next chunk of this block while the first row block runs, the next block's first chunk at the
                // last row block's last chunk. Its lines are prefetched while this chunk is multiplied, a share per
                // band or panel, so that the packing reads L2 instead of waiting on memory.
                @inline(__always) func nextChunkSource(_ ic: Int, _ jchunk: Int, _ chunk: Int) -> SourceRuns<T>? {
                    if inPlace { return nil }
                    if ic == 0 && jchunk + chunk < nb {
                        return sourceRuns(
                            b, ldb: ldb, transposed: transposeB, rows: pc, kb, columns: j0 + jc + jchunk + chunk,
                            min(chunk, nb - jchunk - chunk))
                    }
                    if ic + mc < rows || jchunk + chunk < nb { return nil }
                    let (nextQ, nextJc) = q + 1 < depthBlocks ? (q + 1, jc) : (0, jc + nc)
                    if nextJc >= columns { return nil }
                    let pn = depthStart(nextQ)
                    return sourceRuns(
                        b, ldb: ldb, transposed: transposeB, rows: pn, depthStart(nextQ + 1) - pn,
                        columns: j0 + nextJc, min(chunk, columns - nextJc))
                }
                let blockB = inPlace ? b + pc * ldb + j0 + jc : UnsafePointer(packedB)
                let bStride = inPlace ? ldb : nr
                for ic in stride(from: 0, to: rows, by: mc) {
                    let mb = min(mc, rows - ic)
                    let blockA: UnsafePointer<T>
                    if wholeA {
                        blockA = wholeBase + rowsPadded * pc + ic * kb
                    } else {
                        packA(a, lda: lda, transposed: transposeA, rows: i0 + ic, mb, columns: pc, kb, into: packedA)
                        blockA = UnsafePointer(packedA)
                    }
                    @inline(__always) func tile(_ ir: Int, _ jr: Int, packing: Bool = false) {
                        let h = min(mr, mb - ir), w = min(nr, nb - jr)
                        let ap = blockA + ir * kb, bp = blockB + (inPlace ? jr : jr * kb)
                        let cp = c + (i0 + ic + ir) * ldc + j0 + jc + jr
                        if packing {
                            microKernel(
                                depth: kb, ap, b + (pc * ldb + j0 + jc + jr), bStride: ldb, cp, ldc: ldc, add: add,
                                packInto: packedB + jr * kb)
                        } else if h == mr && w == nr {
                            microKernel(depth: kb, ap, bp, bStride: bStride, cp, ldc: ldc, add: add)
                        } else if h <= 4 && w == nr {
                            microKernel4Rows(
                                rows: h, depth: kb, ap, aStride: mr, bp, bStride: bStride, cp, ldc: ldc, add: add)
                        } else {
                            microKernel(depth: kb, ap, bp, bStride: bStride, edge, ldc: nr, add: false)
                            for r in 0..<h {
                                let dst = cp + r * ldc, src = edge + r * nr
                                if add {
                                    for j in 0..<w { dst[j] += src[j] }
                                } else {
                                    dst.update(from: src, count: w)
                                }
                            }
                        }
                        if finish {
                            applyEpilogue(
                                cp, ldc: ldc, i: i0 + ic + ir, j: j0 + jc + jr, rows: h, columns: w,
                                bias: bias, addend: addend.map { $0 + (i0 + ic + ir) * ldc + j0 + jc + jr },
                                relu: relu)
                        }
                    }
                    if kb <= Blocking.rowOrderMaximumDepth {
                        // Walk each band of C along a chunk of columns (`rowOrderChunkBytes` of B panels) (a few long streams the
                        // prefetchers follow), band after band, while the chunk's B panels stay in cache.
                        let chunk = min(nc, wholePanels(fitting: Blocking.rowOrderChunkBytes, depth: kb, T.self))
                        let bands = (mb + mr - 1) / mr
                        for jchunk in stride(from: 0, to: nb, by: chunk) {
                            let fusing = ic == 0 && fusedPacking
                            if ic == 0 && !inPlace {
                                if fusing { packPartialPanel(jchunk, chunk) } else { packChunk(jchunk, chunk) }
                            }
                            let ahead = nextChunkSource(ic, jchunk, chunk)
                            let perBand = ahead.map { ($0.runs + bands - 1) / bands } ?? 0
                            for (band, ir) in stride(from: 0, to: mb, by: mr).enumerated() {
                                if let ahead { prefetchRuns(ahead, band * perBand, perBand) }
                                for jr in stride(from: jchunk, to: min(nb, jchunk + chunk), by: nr) {
                                    tile(ir, jr, packing: fusing && band == 0 && jr + nr <= nb)
                                }
                            }
                        }
                    } else {
                        // The B panel stays in L1 while the A block streams from L2.
                        let chunk = packChunkPanels * nr
                        // (B packed apart here: no path that packs by the first band visits this order.)
                        for jchunk in stride(from: 0, to: nb, by: chunk) {
                            if ic == 0 && !inPlace { packChunk(jchunk, chunk) }
                            let ahead = nextChunkSource(ic, jchunk, chunk)
                            let perPanel = ahead.map { ($0.runs + packChunkPanels - 1) / packChunkPanels } ?? 0
                            for (panel, jr) in stride(from: jchunk, to: min(nb, jchunk + chunk), by: nr).enumerated() {
                                if let ahead { prefetchRuns(ahead, panel * perPanel, perPanel) }
                                for ir in stride(from: 0, to: mb, by: mr) { tile(ir, jr) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs of contiguous elements of a matrix, `stride` apart from `base`, `length` elements each.
    typealias SourceRuns<T> = (base: UnsafePointer<T>, runs: Int, length: Int, stride: Int)

    /// The source of rows `p0 ..< p0 + depth` and columns `j0 ..< j0 + columns` of op(B): rows of B, or of Bᵀ when
    /// `transposed`.
    @inline(__always)
    static func sourceRuns<T>(
        _ b: UnsafePointer<T>, ldb: Int, transposed: Bool, rows p0: Int, _ depth: Int, columns j0: Int, _ columns: Int
    ) -> SourceRuns<T> {
        transposed ? (b + (j0 * ldb + p0), columns, depth, ldb) : (b + (p0 * ldb + j0), depth, columns, ldb)
    }

    /// Columns of as many whole `nr`-column panels of `depth` rows of `T` as `bytes` holds, at least one panel.
    @inline(__always)
    static func wholePanels<T: KernelScalar>(fitting bytes: Int, depth: Int, _: T.Type) -> Int {
        let nr = nr(T.self)
        return max(nr, bytes / max(1, depth * MemoryLayout<T>.stride) / nr * nr)
    }

    /// Prefetches (into L2) the cache lines of `count` runs of `source` from run `first` on (as many as it has).
    @inline(__always)
    static func prefetchRuns<T>(_ source: SourceRuns<T>, _ first: Int, _ count: Int) {
        var run = first
        let last = min(source.runs, first &+ count)
        while run < last {
            let start = UInt(bitPattern: source.base + run &* source.stride)
            var line = start & ~63
            let end = start &+ UInt(source.length &* MemoryLayout<T>.stride)
            while line < end {
                srcnn_prefetch_ahead(UnsafeRawPointer(bitPattern: line))
                line &+= 64
            }
            run &+= 1
        }
    }

    /// Panels of B packed at a time in the column-panel order of `multiplyBlock` (4 or 8 measured alike on AMD
    /// EPYC Zen 4; with 4 the packed chunk and the prefetched next one stay well inside a 512 KiB L2 on AVX-512).
    @inline(__always)
    static var packChunkPanels: Int { 4 }

    /// C(i, j) = relu?(C(i, j) + bias[i] + addend(i, j)) on the `rows` × `columns` tile at `c` (row stride
    /// `ldc`) whose first element is C(i, j); `addend` points at the addend of that first element, with C's stride.
    @inline(__always)
    static func applyEpilogue<T: KernelScalar>(
        _ c: UnsafeMutablePointer<T>, ldc: Int, i: Int, j: Int, rows: Int, columns: Int,
        bias: UnsafePointer<T>?, addend: UnsafePointer<T>?, relu: Bool
    ) {
        typealias V = T.Vector
        for r in 0..<rows {
            let row = c + r * ldc
            let b = bias?[i + r] ?? 0
            let add = addend.map { $0 + r * ldc }
            var q = 0
            while q + V.scalarCount <= columns {
                var v = V.load(row + q) + V(repeating: b)
                if let add { v += V.load(add + q) }
                if relu { v = V.relu(v) }
                v.store(to: row + q)
                q += V.scalarCount
            }
            while q < columns {
                var v = row[q] + b
                if let add { v += add[q] }
                if relu && v < 0 { v = 0 }
                row[q] = v
                q += 1
            }
        }
    }

    /// Packs rows `i0 ..< i0 + rows` of op(A) (all k columns) whole: depth block q occupies rowsPadded · kb
    /// elements from rowsPadded · depthStart(q), its rows ic.. starting ic · kb further on. With a `part`
    /// lo ..< hi (lo a multiple of `mr`, and hi too unless it is `rows`) only rows i0 + lo ..< i0 + hi are packed,
    /// to where they belong in that layout.
    @inline(__always)
    static func packWholeA<T: KernelScalar>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool, rows i0: Int, _ rows: Int, k: Int,
        part: (lo: Int, hi: Int)? = nil, into dst: UnsafeMutablePointer<T>
    ) {
        let (lo, hi) = part ?? (0, rows)
        if lo >= hi { return }
        let depthBlocks = depthBlockCount(k)
        let rowsPadded = (rows + Blocking.mr - 1) / Blocking.mr * Blocking.mr
        for q in 0..<depthBlocks {
            let pc = k * q / depthBlocks, kb = k * (q + 1) / depthBlocks - pc
            packA(
                a, lda: lda, transposed: transposed, rows: i0 + lo, hi - lo, columns: pc, kb,
                into: dst + rowsPadded * pc + lo * kb)
        }
    }

    /// The inverse of `packWholeA` for rows 0 ..< m: the packed op(A) back to an m × k row-major matrix (row stride
    /// k), for moving packed weights to another path's layout.
    @inline(__always)
    static func unpackWholeA<T: KernelScalar>(
        _ packed: UnsafePointer<T>, m: Int, k: Int, into dst: UnsafeMutablePointer<T>
    ) {
        let mr = Blocking.mr
        let depthBlocks = depthBlockCount(k)
        let rowsPadded = (m + mr - 1) / mr * mr
        for q in 0..<depthBlocks {
            let pc = k * q / depthBlocks, kb = k * (q + 1) / depthBlocks - pc
            let block = packed + rowsPadded * pc
            for i in 0..<m {
                let src = block + (i / mr) * mr * kb + i % mr
                for p in 0..<kb { dst[i * k + pc + p] = src[p * mr] }
            }
        }
    }

    // Index arithmetic in the copies uses wrapping operators: the callers' sizes bound every offset, and trap
    // checks would keep LLVM from unrolling and vectorising them.

    /// Copies rows `i0 ..< i0 + rows` and columns `p0 ..< p0 + depth` of op(A) into `mr`-row panels: panel q at
    /// `dst + q·mr·depth`, element (row r, column p) at `p·mr + r`; rows past the end are zero. op(A)(i, p) is
    /// `a[i·lda + p]`, or `a[p·lda + i]` when `transposed`.
    @inline(__always)
    static func packA<T: KernelScalar>(
        _ a: UnsafePointer<T>, lda: Int, transposed: Bool, rows i0: Int, _ rows: Int, columns p0: Int, _ depth: Int,
        into dst: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let mr = Blocking.mr, w = V.scalarCount
        let full = rows / mr * mr
        if transposed {
            // A source row is an op(A) column: a panel's mr values of it are contiguous there. Eight source rows at a
            // time, panel by panel (the eight rows stay in L1 across the panels, each panel gets a contiguous run):
            // each row but the group's last is copied in whole vectors, whose lanes past mr land in the next row's
            // place in the panel (written next) and come from the source row's next elements (within the matrix:
            // a later source row follows); the last row element by element. Three times the speed of scattering
            // each source row to every panel (AMD EPYC Zen 3, a 96-row block of a 512 × 2048 op(A)).
            let group = 8
            var p = 0
            while p < depth {
                let g = min(group, depth &- p)
                var d = dst + p &* mr
                var q = 0
                while q < full {
                    var src = a + ((p0 &+ p) &* lda &+ i0 &+ q)
                    var dd = d
                    for _ in 0..<g &- 1 {
                        var o = 0
                        while o < mr {
                            V.load(src + o).store(to: dd + o)
                            o &+= w
                        }
                        src += lda
                        dd += mr
                    }
                    for r in 0..<mr { dd[r] = src[r] }
                    d += mr &* depth
                    q &+= mr
                }
                if q < rows {
                    for j in 0..<g {
                        let src = a + ((p0 &+ p &+ j) &* lda &+ i0 &+ q), dd = d + j &* mr
                        for r in 0..<rows - q { dd[r] = src[r] }
                        for r in rows - q..<mr { dd[r] = 0 }
                    }
                }
                p &+= g
            }
            return
        }
        var panel = dst
        var q = 0
        while q < full {
            let s = a + ((i0 &+ q) &* lda &+ p0)
            for p in 0..<depth {
                let d = panel + p &* mr
                for r in 0..<mr { d[r] = s[r &* lda &+ p] }
            }
            panel += mr &* depth
            q &+= mr
        }
        if q < rows {
            let h = rows - q
            for r in 0..<h {
                let src = a + ((i0 &+ q &+ r) &* lda &+ p0)
                for p in 0..<depth { panel[p &* mr &+ r] = src[p] }
            }
            for r in h..<mr {
                for p in 0..<depth { panel[p &* mr &+ r] = 0 }
            }
        }
    }

    /// Copies rows `p0 ..< p0 + depth` and columns `j0 ..< j0 + columns` of op(B) into `nr`-column panels: panel q
    /// at `dst + q·depth·nr`, element (row p, column j) at `p·nr + j`; columns past the end are zero. op(B)(p, j)
    /// is `b[p·ldb + j]`, or `b[j·ldb + p]` when `transposed`.
    @inline(__always)
    static func packB<T: KernelScalar>(
        _ b: UnsafePointer<T>, ldb: Int, transposed: Bool, rows p0: Int, _ depth: Int, columns j0: Int,
        _ columns: Int, into dst: UnsafeMutablePointer<T>
    ) {
        typealias V = T.Vector
        let nr = nr(T.self), w = V.scalarCount
        if !transposed {
            // Eight source rows at a time, panel by panel: eight sequential read streams, and each panel gets eight
            // consecutive rows (a contiguous run) per visit.
            let group = 8
            var p = 0
            while p < depth {
                let g = min(group, depth &- p)
                var d = dst + p &* nr
                var q = 0
                while q &+ nr <= columns {
                    var src = b + ((p0 &+ p) &* ldb &+ j0 &+ q)
                    var dd = d
                    for _ in 0..<g {
                        V.load(src).store(to: dd)
                        V.load(src + w).store(to: dd + w)
                        src += ldb
                        dd += nr
                    }
                    d += depth &* nr
                    q &+= nr
                }
                if q < columns {
                    let cols = columns - q
                    for r in 0..<g {
                        let src = b + ((p0 &+ p &+ r) &* ldb &+ j0 &+ q)
                        let dd = d + r &* nr
                        for j in 0..<cols { dd[j] = src[j] }
                        for j in cols..<nr { dd[j] = 0 }
                    }
                }
                p &+= g
            }
            return
        }
        // Transposed: panel column j is source row j0 + q + j, contiguous in p. Whole panels go through registers:
        // a W × W block (W = vector lanes) of W source rows, transposed by log2(W) rounds of deinterleaving (an
        // unzip of the block read as one sequence rotates its row and column index bits by one), gives W panel rows.
        let wholeDepth = depth / w * w
        var panel = dst
        for q in stride(from: 0, to: columns, by: nr) {
            let cols = min(nr, columns - q)
            var pStart = 0
            if cols == nr && wholeDepth > 0 {
                withUnsafeTemporaryAllocation(of: V.self, capacity: 2 &* w) { buffer in
                    let block = buffer.baseAddress!
                    for h in 0..<2 {
                        let rows = b + ((j0 &+ q &+ h &* w) &* ldb &+ p0)
                        var p = 0
                        while p < wholeDepth {
                            var x = block, y = block + w
                            for j in 0..<w { x[j] = V.load(rows + (j &* ldb &+ p)) }
                            var span = 1
                            while span < w {
                                for i in 0..<w / 2 {
                                    let (even, odd) = V.deinterleave(x[2 &* i], x[2 &* i &+ 1])
                                    y[i] = even
                                    y[w / 2 &+ i] = odd
                                }
                                swap(&x, &y)
                                span &*= 2
                            }
                            for r in 0..<w { x[r].store(to: panel + ((p &+ r) &* nr &+ h &* w)) }
                            p &+= w
                        }
                    }
                }
                pStart = wholeDepth
            }
            for j in 0..<cols {
                let src = b + ((j0 &+ q &+ j) &* ldb &+ p0)
                for p in pStart..<depth { panel[p &* nr &+ j] = src[p] }
            }
            for j in cols..<nr {
                for p in 0..<depth { panel[p &* nr &+ j] = 0 }
            }
            panel += depth &* nr
        }
    }
}
