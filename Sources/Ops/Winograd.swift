/// 3 × 3 convolutions (stride 1, padding 1, no dilation or groups) by Winograd's minimal filtering F(2×2, 3×3).
///
/// Method (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the output is cut into 2 × 2
/// tiles, each computed from the 4 × 4 input patch around it as Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, with
///
///     Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
///
/// Summed over input channels, each of the 16 elements e of the transformed tile is a matrix product
/// M_e (K × tiles) = U_e (K × C) · V_e (C × tiles), where U_e holds the transformed filters (`transformWeights`,
/// once per layer, already packed for the GEMM) and V_e the transformed input patches. 16 products of depth C
/// replace im2col's one of depth 9·C with four times as many columns: 2.25 times fewer multiply-adds. The transforms use only additions and halvings, so
/// the results stay within a few float32 ulps of the direct sum (the filter transform is done in Double).
///
/// Layout: input (N, C, H, W) and output (N, K, H, W), row-major. Tiles are numbered image by image, row by row:
/// tile (n, ty, tx) is n·TH·TW + ty·TW + tx with TH = ⌈H/2⌉, TW = ⌈W/2⌉; the patch of tile (ty, tx) starts at input
/// (2ty - 1, 2tx - 1) and reads zeros outside the image. Transforms run 16 tiles of one tile row at a time in SIMD16
/// lanes.
///
/// Threading: tiles are cut into blocks of at most `maxBlockTiles`; a thread takes whole blocks and runs the input
/// transform, the 16 products (single-threaded `GEMM.multiplyBlock`) and the output transform on its own scratch,
/// writing the output rows of its tiles only. Each output element is computed by the same operations whatever the
/// block or thread count.
public enum Winograd {
    /// Elements of a transformed tile: (2 + 3 - 1)².
    public static let components = 16
    /// Most tiles per block: 16 · 256 · 256 Floats of V (4 MiB) for 256 input channels, near the L2 per product.
    @usableFromInline static let maxBlockTiles = 256
    /// Lanes of the transforms: tiles of one tile row done together.
    @usableFromInline static let lanes = 16

    /// Whether a convolution can run here: 3 × 3, stride 1, padding 1, dilation 1, one group.
    public static func applies(kernelH: Int, kernelW: Int, stride: Int, padding: Int, dilation: Int, groups: Int)
        -> Bool
    {
        kernelH == 3 && kernelW == 3 && stride == 1 && padding == 1 && dilation == 1 && groups == 1
    }

    /// Elements of `transformWeights`' result for K output and C input channels: 16 packed K × C matrices.
    @inlinable
    public static func weightCount(outChannels: Int, inChannels: Int) -> Int {
        components * GEMM.prepackedCount(m: outChannels, k: inChannels)
    }

    /// Filters (K, C, 3, 3) to the 16 matrices U_e (K × C), U_e(k, c) = (G g_kc Gᵀ)(e / 4, e % 4), each packed for
    /// the GEMM (`GEMM.prepackA`) at `u + e · weightCount / 16`. Computed in Double and rounded once.
    @inlinable
    public static func transformWeights<T: KernelFloat>(
        _ w: UnsafePointer<T>, outChannels: Int, inChannels: Int, into u: UnsafeMutablePointer<T>
    ) {
        let count = outChannels * inChannels
        let plain = UnsafeMutablePointer<T>.allocate(capacity: components * count)
        defer { plain.deallocate() }
        for i in 0..<count {
            let g = w + 9 * i
            // G·g (4 × 3): kernel rows combined; then (G·g)·Gᵀ row by row.
            @inline(__always) func column(_ j: Int) -> (Double, Double, Double, Double) {
                let g0 = Double(g[j]), g1 = Double(g[3 + j]), g2 = Double(g[6 + j])
                return (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
            }
            let c0 = column(0), c1 = column(1), c2 = column(2)
            @inline(__always) func row(_ r: Int, _ x0: Double, _ x1: Double, _ x2: Double) {
                plain[(4 * r) * count + i] = T(x0)
                plain[(4 * r + 1) * count + i] = T((x0 + x1 + x2) / 2)
                plain[(4 * r + 2) * count + i] = T((x0 - x1 + x2) / 2)
                plain[(4 * r + 3) * count + i] = T(x2)
            }
            row(0, c0.0, c1.0, c2.0)
            row(1, c0.1, c1.1, c2.1)
            row(2, c0.2, c1.2, c2.2)
            row(3, c0.3, c1.3, c2.3)
        }
        let packed = GEMM.prepackedCount(m: outChannels, k: inChannels)
        for e in 0..<components {
            GEMM.prepackA(plain + e * count, lda: inChannels, m: outChannels, k: inChannels, into: u + e * packed)
        }
    }

    /// output (N, K, H, W) = relu?(conv3x3(input) + bias), with `weights` from `transformWeights`.
    @inlinable
    public static func convolve<T: KernelFloat>(
        _ input: UnsafePointer<T>, batch: Int, channels: Int, height: Int, width: Int,
        weights u: UnsafePointer<T>, outChannels: Int, bias: UnsafePointer<T>?, relu: Bool,
        into output: UnsafeMutablePointer<T>
    ) {
        if batch == 0 || height == 0 || width == 0 || outChannels == 0 { return }
        let tileGrid = TileGrid(batch: batch, height: height, width: width)
        let packedWeights = GEMM.prepackedCount(m: outChannels, k: channels)
        let tiles = tileGrid.count
        // Blocks of whole 32-column GEMM panels, at least four per thread when the map allows.
        let perThread = (tiles + 4 * Parallel.numThreads - 1) / (4 * Parallel.numThreads)
        let blockTiles = min(maxBlockTiles, max(GEMM.nr, (perThread + GEMM.nr - 1) / GEMM.nr * GEMM.nr))
        let blocks = (tiles + blockTiles - 1) / blockTiles
        // Row stride of V_e and M_e: a SIMD16 store or load at the last tile stays inside the row.
        let ld = blockTiles + lanes
        let work = Double(tiles) * Double(channels) * Double(outChannels) * 16
        let minBlocks = work < Double(1 << 22) ? blocks : 1
        Parallel.forEachChunk(blocks, minItemsPerChunk: minBlocks) { range in
            let vCount = components * channels * ld, mCount = components * outChannels * ld
            let scratch = UnsafeMutableRawPointer.allocate(
                byteCount: (vCount + mCount + 64) * MemoryLayout<T>.stride, alignment: 64)
            defer { scratch.deallocate() }
            HugePages.advise(scratch, byteCount: (vCount + mCount + 64) * MemoryLayout<T>.stride)
            let v = scratch.bindMemory(to: T.self, capacity: vCount + mCount + 64)
            let m = v + vCount, staging = m + mCount
            for block in range {
                let t0 = block * blockTiles, t1 = min(tiles, t0 + blockTiles)
                transformInput(input, channels: channels, grid: tileGrid, tiles: t0, t1, into: v, ld: ld,
                               staging: staging)
                for e in 0..<components {
                    let ue = u + e * packedWeights
                    GEMM.multiplyBlock(rows: 0, outChannels, columns: 0, t1 - t0, k: channels,
                                       a: ue, lda: channels, transposeA: false,
                                       b: v + e * channels * ld, ldb: ld, transposeB: false,
                                       c: m + e * outChannels * ld, ldc: ld, accumulate: false, prepackedA: ue)
                }
                transformOutput(m, ld: ld, outChannels: outChannels, grid: tileGrid, tiles: t0, t1, bias: bias,
                                relu: relu, into: output)
            }
        }
    }

    /// The tile numbering of an (N, ·, H, W) map, and the runs of one tile row that a block covers.
    @usableFromInline
    struct TileGrid {
        @usableFromInline let batch: Int, height: Int, width: Int, rows: Int, columns: Int

        @inlinable init(batch: Int, height: Int, width: Int) {
            self.batch = batch; self.height = height; self.width = width
            rows = (height + 1) / 2
            columns = (width + 1) / 2
        }

        @inlinable var count: Int { batch * rows * columns }

        /// Calls `body(n, ty, tx, count, offset)` for each run of at most `lanes` consecutive tiles of one tile row
        /// within tiles `t0 ..< t1`; `offset` is the first tile's index minus t0.
        @inlinable @inline(__always)
        func forEachRun(_ t0: Int, _ t1: Int, _ body: (Int, Int, Int, Int, Int) -> Void) {
            var t = t0
            while t < t1 {
                let row = t / columns, tx = t - row * columns
                let n = row / rows, ty = row - n * rows
                let count = min(lanes, columns - tx, t1 - t)
                body(n, ty, tx, count, t - t0)
                t += count
            }
        }
    }

    /// V_e(c, t - t0) for tiles t0 ..< t1 (V_e at `v + e·C·ld`): Bᵀ d B of each channel's 4 × 4 patch.
    /// `staging` holds 48 elements for patches that cross the image border.
    @inlinable
    static func transformInput<T: KernelFloat>(
        _ input: UnsafePointer<T>, channels: Int, grid: TileGrid, tiles t0: Int, _ t1: Int,
        into v: UnsafeMutablePointer<T>, ld: Int, staging: UnsafeMutablePointer<T>
    ) {
        typealias V16 = SIMD16<T>
        typealias V32 = SIMD32<T>
        let (h, w) = (grid.height, grid.width)
        let plane = h * w, componentStride = channels * ld
        for c in 0..<channels {
            grid.forEachRun(t0, t1) { n, ty, tx, _, offset in
                let src = input + (n * channels + c) * plane
                let x0 = 2 * tx - 1
                let inside = x0 >= 0 && x0 + 2 * lanes + 2 <= w
                // Each of the patch's four rows as its columns d0...d3 across lanes, transformed along the row
                // (Bᵀ on the columns): (d0 - d2, d1 + d2, d2 - d1, d1 - d3). Rows outside the image are zero.
                @inline(__always) func row(_ r: Int) -> (V16, V16, V16, V16) {
                    let iy = 2 * ty - 1 + r
                    guard iy >= 0 && iy < h else { return (V16(), V16(), V16(), V16()) }
                    let p = src + iy * w
                    let a: V32, b: V32
                    if inside {
                        a = UnsafeRawPointer(p + x0).loadUnaligned(as: V32.self)
                        b = UnsafeRawPointer(p + x0 + 2).loadUnaligned(as: V32.self)
                    } else {
                        // Columns x0 ..< x0 + 34 with zeros outside [0, w).
                        let lo = max(0, -x0), hi = max(lo, min(2 * lanes + 2, w - x0))
                        staging.update(repeating: 0, count: 2 * lanes + 2)
                        (staging + lo).update(from: p + x0 + lo, count: hi - lo)
                        a = UnsafeRawPointer(staging).loadUnaligned(as: V32.self)
                        b = UnsafeRawPointer(staging + 2).loadUnaligned(as: V32.self)
                    }
                    let d0 = a.evenLanes, d1 = a.oddLanes, d2 = b.evenLanes, d3 = b.oddLanes
                    return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                }
                let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
                let dst = v + c * ld + offset
                @inline(__always) func store(_ e: Int, _ x: V16) {
                    UnsafeMutableRawPointer(dst + e * componentStride).storeBytes(of: x, as: V16.self)
                }
                // Bᵀ on the rows: (row0 - row2, row1 + row2, row2 - row1, row1 - row3). Lanes past `count` land in
                // later tiles of this block (written afterwards) or in the row's padding.
                @inline(__always) func column(_ s: Int, _ x0: V16, _ x1: V16, _ x2: V16, _ x3: V16) {
                    store(s, x0 - x2)
                    store(4 + s, x1 + x2)
                    store(8 + s, x2 - x1)
                    store(12 + s, x1 - x3)
                }
                column(0, r0.0, r1.0, r2.0, r3.0)
                column(1, r0.1, r1.1, r2.1, r3.1)
                column(2, r0.2, r1.2, r2.2, r3.2)
                column(3, r0.3, r1.3, r2.3, r3.3)
            }
        }
    }

    /// The output tiles of t0 ..< t1 from M_e(k, t - t0) (M_e at `m + e·K·ld`): Aᵀ M A, plus bias, ReLU.
    @inlinable
    static func transformOutput<T: KernelFloat>(
        _ m: UnsafePointer<T>, ld: Int, outChannels: Int, grid: TileGrid, tiles t0: Int, _ t1: Int,
        bias: UnsafePointer<T>?, relu: Bool, into output: UnsafeMutablePointer<T>
    ) {
        typealias V16 = SIMD16<T>
        typealias V32 = SIMD32<T>
        let (h, w) = (grid.height, grid.width)
        let plane = h * w, componentStride = outChannels * ld
        for k in 0..<outChannels {
            let b = V16(repeating: bias?[k] ?? 0)
            grid.forEachRun(t0, t1) { n, ty, tx, count, offset in
                let src = m + k * ld + offset
                @inline(__always) func load(_ e: Int) -> V16 {
                    UnsafeRawPointer(src + e * componentStride).loadUnaligned(as: V16.self)
                }
                // Aᵀ on the rows of M (p0, p1), then on the columns.
                @inline(__always) func rows(_ s: Int) -> (V16, V16) {
                    let (r0, r1, r2, r3) = (load(s), load(4 + s), load(8 + s), load(12 + s))
                    return (r0 + r1 + r2, r1 - r2 - r3)
                }
                let q0 = rows(0), q1 = rows(1), q2 = rows(2), q3 = rows(3)
                var y00 = q0.0 + q1.0 + q2.0 + b, y01 = q1.0 - q2.0 - q3.0 + b
                var y10 = q0.1 + q1.1 + q2.1 + b, y11 = q1.1 - q2.1 - q3.1 + b
                if relu {
                    y00 = T.relu(y00); y01 = T.relu(y01); y10 = T.relu(y10); y11 = T.relu(y11)
                }
                let oy = 2 * ty, ox = 2 * tx
                let dst = output + (n * outChannels + k) * plane + oy * w + ox
                let valid = min(2 * count, w - ox)
                @inline(__always) func storeRow(_ even: V16, _ odd: V16, _ p: UnsafeMutablePointer<T>) {
                    let row = V32(interleaving: even, odd)
                    if valid == 2 * lanes {
                        UnsafeMutableRawPointer(p).storeBytes(of: row, as: V32.self)
                    } else {
                        for j in 0..<valid { p[j] = row[j] }
                    }
                }
                storeRow(y00, y01, dst)
                if oy + 1 < h { storeRow(y10, y11, dst + w) }
            }
        }
    }
}
