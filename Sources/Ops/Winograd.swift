#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// 3 × 3 convolutions (stride 1, padding 1, no dilation or groups) by Winograd's minimal filtering F(2×2, 3×3), or
/// F(4×4, 3×3) on request (`tile` 4; see "F(4×4, 3×3)" below).
///
/// Method (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the output is cut into 2 × 2
/// tiles, each computed from the 4 × 4 input patch around it as Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, with
///
///     Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
///
/// Summed over input channels, each of the 16 elements e of the transformed tile is a matrix product
/// M_e (K × tiles) = U_e (K × C) · V_e (C × tiles), where U_e holds the transformed filters (`transformWeights`,
/// once per layer, already packed for the GEMM) and V_e the transformed input patches. 16 products of depth C
/// /// replace im2col's one of depth 9·C with four times as many columns: 2.25 times fewer multiply-adds. The transforms
/// use only additions and halvings, so the results stay within a few float32 ulps of the direct sum (the filter
/// transform is done in Double).
///
/// Layout: input (N, C, H, W) and output (N, K, H, W), row-major. Tiles are numbered image by image, row by row:
/// tile (n, ty, tx) is n·TH·TW + ty·TW + tx with TH = ⌈H/2⌉, TW = ⌈W/2⌉; the patch of tile (ty, tx) starts at input
/// (2ty - 1, 2tx - 1) and reads zeros outside the image. Transforms run one vector of tiles of one tile row at a time
/// (16 on AVX-512, 8 on AVX2, 4 on the generic path), one tile per lane.
///
/// Threading: tiles are cut into blocks of whole GEMM column panels; a thread takes whole blocks and runs the input
/// transform, the 16 products and the output transform (`KernelTable.winogradBlock`, in the current
/// instruction-set path) on its own scratch, writing the output rows of its tiles only. Each output element is
/// computed by the same operations whatever the block or thread count.
///
/// The transformed filters are packed in one path's GEMM layout (`transformWeights(_:outChannels:inChannels:into:
/// tile:for:)`); `convolve` given filters packed for another path re-packs them for the current one first.
///
/// F(4×4, 3×3) (`tile` 4): 4 × 4 output tiles from 6 × 6 patches (patch of tile (ty, tx) from input
/// (4ty - 1, 4tx - 1), TH = ⌈H/4⌉, TW = ⌈W/4⌉) and 36 products: 4 times fewer multiply-adds than the direct sum
/// instead of 2.25, for about 7 times F(2×2, 3×3)'s rounding error (float32, 64–512 channels: 1.7–3.6e-6 of the
/// output's largest value, against 2.8–5.5e-7, and 1.9–2.5e-7 for the direct sum). The interpolation points are 0,
/// 1, -1, 1/2, -2 and ∞ (Barabasz et al., "Error analysis and improving the accuracy of Winograd convolution for deep
/// neural networks", 2020: two reciprocal points instead of ±2 cut the error about 3 times):
///
///     Bᵀ = [1 -3/2 -2 3/2 1 0; 0 -1 1/2 5/2 1 0; 0 1 -5/2 1/2 1 0; 0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0;
///           0 1 -3/2 -2 3/2 1],
///     G = [1 0 0; 1/3 1/3 1/3; -1/3 1/3 -1/3; -16/15 -8/15 -4/15; 1/15 -2/15 4/15; 0 0 1],
///     Aᵀ = [1 1 1 1 1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0; 0 1 -1 1/8 -8 1].
///
/// Only an explicit request (`defaultTile`, `SWIFTRCNN_WINOGRAD_TILE=4`) selects it: the default stays F(2×2, 3×3),
/// whose results are within a few ulps of the direct sum.
public enum Winograd {
    /// Elements of a transformed F(2×2, 3×3) tile: (2 + 3 - 1)².
    public static let components = 16

    /// Elements of a transformed tile for output tiles of `tile` × `tile`: (tile + 2)².
    @inlinable
    public static func componentCount(tile: Int) -> Int { (tile + 2) * (tile + 2) }

    /// The output tile (2 or 4) of the Winograd convolutions that layers set up from now on: 2 unless the
    /// environment variable `SWIFTRCNN_WINOGRAD_TILE` is 4 when the library loads, or it is set here; on a thread
    /// inside `withDefaultTile`, that call's tile.
    public static var defaultTile: Int {
        get {
            if let override = pthread_getspecific(tileOverrideKey) { return Int(bitPattern: override) }
            return processDefaultTile
        }
        set {
            precondition(newValue == 2 || newValue == 4, "Winograd.defaultTile must be 2 or 4")
            processDefaultTile = newValue
        }
    }

    nonisolated(unsafe) private static var processDefaultTile: Int = {
        guard let raw = getenv("SWIFTRCNN_WINOGRAD_TILE") else { return 2 }
        return String(cString: raw) == "4" ? 4 : 2
    }()

    /// Holds the calling thread's `withDefaultTile` tile (absent: none).
    private static let tileOverrideKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "Winograd: no thread-specific key")
        return key
    }()

    /// `body()` with `defaultTile` = `tile` on the calling thread only (other threads keep theirs): a trainer
    /// builds its layers with F(2×2, 3×3) whatever the process default, so that gradients stay as close to
    /// torchvision's as the tests hold them.
    public static func withDefaultTile<R>(_ tile: Int, _ body: () throws -> R) rethrows -> R {
        precondition(tile == 2 || tile == 4, "Winograd: tile must be 2 or 4")
        let saved = pthread_getspecific(tileOverrideKey)
        pthread_setspecific(tileOverrideKey, UnsafeRawPointer(bitPattern: tile))
        defer { pthread_setspecific(tileOverrideKey, saved) }
        return try body()
    }

    /// Elements of V and M (16 · (C + K) per tile) that a block of tiles may fill: 2 MiB of Float. Blocks with
    /// fewer tiles than the path's `winogradTiles` keep the transformed inputs closer to the cores while the 16
    /// products read them; at 256 channels in and out, 64-tile blocks ran 3–12% faster than 256-tile ones (AMD EPYC
    /// Zen 4, both paths, bench convolutions of the FPN, RPN and mask head).
    public static let blockElements = 1 << 19
    /// Fewest tiles per block (for many channels): a product's columns still fill several micro-kernel tiles.
    public static let minimumBlockTiles = 64

    /// Whether a convolution can run here: 3 × 3, stride 1, padding 1, dilation 1, one group.
    public static func applies(
        kernelH: Int, kernelW: Int, stride: Int, padding: Int, dilation: Int, groups: Int
    )
        -> Bool
    {
        kernelH == 3 && kernelW == 3 && stride == 1 && padding == 1 && dilation == 1 && groups == 1
    }

    /// Elements of `transformWeights`' result for K output and C input channels on path `isa`: 16 (36 for `tile`
    /// 4) packed K × C matrices (the same for Float and Double).
    @inlinable
    public static func weightCount(outChannels: Int, inChannels: Int, tile: Int = 2, for isa: ISA = .current) -> Int {
        componentCount(tile: tile) * GEMM.prepackedCount(m: outChannels, k: inChannels, for: isa)
    }

    /// Filters (K, C, 3, 3) to the 16 matrices U_e (K × C), U_e(k, c) = (G g_kc Gᵀ)(e / 4, e % 4), each packed for
    /// path `isa`'s GEMM at `u + e · weightCount / 16`. Computed in Double and rounded once; the filters, then the
    /// 16 matrices, are split over `Parallel` threads (a training step rebuilds every layer's transform).
    @inlinable
    public static func transformWeights<T: KernelFloat>(
        _ w: UnsafePointer<T>, outChannels: Int, inChannels: Int, into u: UnsafeMutablePointer<T>, tile: Int = 2,
        for isa: ISA = .current
    ) {
        precondition(tile == 2 || tile == 4, "Winograd: tile must be 2 or 4")
        let components = componentCount(tile: tile)
        let count = outChannels * inChannels
        let plain = UnsafeMutablePointer<T>.allocate(capacity: components * count)
        defer { plain.deallocate() }
        // Blocks of 64 filters go through a 16 × 64 tile in L1, so that each of the 16 matrices is written in runs
        // of 64 elements: writing 16 elements `count` apart per filter (a multiple of 4 KiB for 256 or 512
        // channels) made every store miss, 100 ns per filter.
        let block = 64
        Parallel.forEachChunk((count + block - 1) / block, minItemsPerChunk: 64) { blocks in
            let scratch = UnsafeMutablePointer<T>.allocate(capacity: components * block)
            defer { scratch.deallocate() }
            for b in blocks {
                let i0 = b * block, n = min(block, count - i0)
                if tile == 2 {
                    for i in 0..<n { transformFilter(w + 9 * (i0 + i), into: scratch + i, stride: block) }
                } else {
                    for i in 0..<n { transformFilter4(w + 9 * (i0 + i), into: scratch + i, stride: block) }
                }
                for e in 0..<components { (plain + e * count + i0).update(from: scratch + e * block, count: n) }
            }
        }
        let table = T.kernels(isa)
        let packed = table.prepackedCount(outChannels, inChannels)
        Parallel.forEachChunk(components, minItemsPerChunk: max(1, (1 << 16) / max(1, count))) { elements in
            for e in elements {
                table.prepackA(
                    plain + e * count, inChannels, false, outChannels, inChannels, 0, outChannels, u + e * packed)
            }
        }
    }

    /// (G g Gᵀ)(e / 4, e % 4) of one 3 × 3 filter `g` (row-major) into `out[e · stride]`, e = 0 ..< 16; in
    /// Double, rounded once.
    @inlinable @inline(__always)
    static func transformFilter<T: KernelFloat>(_ g: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, stride: Int) {
        // G·g (4 × 3): kernel rows combined; then (G·g)·Gᵀ row by row.
        @inline(__always) func column(_ j: Int) -> (Double, Double, Double, Double) {
            let g0 = Double(g[j]), g1 = Double(g[3 + j]), g2 = Double(g[6 + j])
            return (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
        }
        let c0 = column(0), c1 = column(1), c2 = column(2)
        @inline(__always) func row(_ r: Int, _ x0: Double, _ x1: Double, _ x2: Double) {
            out[(4 * r) * stride] = T(x0)
            out[(4 * r + 1) * stride] = T((x0 + x1 + x2) / 2)
            out[(4 * r + 2) * stride] = T((x0 - x1 + x2) / 2)
            out[(4 * r + 3) * stride] = T(x2)
        }
        row(0, c0.0, c1.0, c2.0)
        row(1, c0.1, c1.1, c2.1)
        row(2, c0.2, c1.2, c2.2)
        row(3, c0.3, c1.3, c2.3)
    }

    /// (G g Gᵀ)(e / 6, e % 6) of F(4×4, 3×3) for one 3 × 3 filter `g` (row-major) into `out[e · stride]`,
    /// e = 0 ..< 36; in Double, rounded once.
    @inlinable @inline(__always)
    static func transformFilter4<T: KernelFloat>(_ g: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, stride: Int)
    {
        @inline(__always) func apply(
            _ x0: Double, _ x1: Double, _ x2: Double
        )
            -> (Double, Double, Double, Double, Double, Double)
        {
            (
                x0, (x0 + x1 + x2) / 3, (x1 - x0 - x2) / 3, -(16 * x0 + 8 * x1 + 4 * x2) / 15,
                (x0 - 2 * x1 + 4 * x2) / 15, x2
            )
        }
        // G·g (6 × 3): the kernel's rows combined, column by column; then (G·g)·Gᵀ row by row.
        let c0 = apply(Double(g[0]), Double(g[3]), Double(g[6]))
        let c1 = apply(Double(g[1]), Double(g[4]), Double(g[7]))
        let c2 = apply(Double(g[2]), Double(g[5]), Double(g[8]))
        @inline(__always) func row(_ r: Int, _ x0: Double, _ x1: Double, _ x2: Double) {
            let y = apply(x0, x1, x2)
            out[(6 * r) * stride] = T(y.0)
            out[(6 * r + 1) * stride] = T(y.1)
            out[(6 * r + 2) * stride] = T(y.2)
            out[(6 * r + 3) * stride] = T(y.3)
            out[(6 * r + 4) * stride] = T(y.4)
            out[(6 * r + 5) * stride] = T(y.5)
        }
        row(0, c0.0, c1.0, c2.0)
        row(1, c0.1, c1.1, c2.1)
        row(2, c0.2, c1.2, c2.2)
        row(3, c0.3, c1.3, c2.3)
        row(4, c0.4, c1.4, c2.4)
        row(5, c0.5, c1.5, c2.5)
    }

    /// output (N, K, H, W) = relu?(conv3x3(input) + bias), with `weights` from `transformWeights` for path
    /// `packedFor` (re-packed for the current path first when that differs) and the same `tile`.
    @inlinable
    public static func convolve<T: KernelFloat>(
        _ input: UnsafePointer<T>, batch: Int, channels: Int, height: Int, width: Int,
        weights u: UnsafePointer<T>, packedFor isa: ISA = .current, outChannels: Int, bias: UnsafePointer<T>?,
        relu: Bool, tile: Int = 2, into output: UnsafeMutablePointer<T>
    ) {
        precondition(tile == 2 || tile == 4, "Winograd: tile must be 2 or 4")
        if batch == 0 || height == 0 || width == 0 || outChannels == 0 { return }
        let components = componentCount(tile: tile)
        let kernels = T.kernels
        let source = T.kernels(isa)
        if source.mr != kernels.mr || source.kc != kernels.kc {
            let packedCount = kernels.prepackedCount(outChannels, channels)
            let repacked = UnsafeMutablePointer<T>.allocate(capacity: components * packedCount)
            let plain = UnsafeMutablePointer<T>.allocate(capacity: outChannels * channels)
            defer { repacked.deallocate(); plain.deallocate() }
            let sourceCount = source.prepackedCount(outChannels, channels)
            for e in 0..<components {
                source.unpackA(u + e * sourceCount, outChannels, channels, plain)
                kernels.prepackA(
                    plain, channels, false, outChannels, channels, 0, outChannels, repacked + e * packedCount)
            }
            convolve(
                input, batch: batch, channels: channels, height: height, width: width, weights: repacked,
                packedFor: ISA.current, outChannels: outChannels, bias: bias, relu: relu, tile: tile, into: output)
            return
        }
        let tiles = batch * ((height + tile - 1) / tile) * ((width + tile - 1) / tile)
        let nr = kernels.nr, lanes = kernels.lanes
        // Blocks of whole GEMM column panels within `blockElements` (at least `minimumBlockTiles`, at most the
        // path's `winogradTiles`), at least four per thread when the map allows. F(4×4, 3×3) gets four times the
        // elements (at least half the tiles): its 36 products of 28 tiles each at 256 channels (what 2 MiB holds)
        // left the Winograd share of Faster R-CNN's time 9% below F(2×2, 3×3)'s, 64 tiles 28% (forced avx2 path,
        // AMD EPYC Zen 4).
        let fit = (tile == 2 ? blockElements : 4 * blockElements) / (components * (channels + outChannels))
        let fewest = tile == 2 ? minimumBlockTiles : minimumBlockTiles / 2
        let most = max(nr, min(kernels.winogradTiles, max(fewest, fit)) / nr * nr)
        let perThread = (tiles + 4 * Parallel.numThreads - 1) / (4 * Parallel.numThreads)
        let blockTiles = min(most, max(nr, (perThread + nr - 1) / nr * nr))
        let blocks = (tiles + blockTiles - 1) / blockTiles
        // Row stride of V_e and M_e: a vector store or load at the last tile stays inside the row, and the GEMM
        // reads whole column panels of V_e in place; rounded up to whole 64-byte lines, so that the panels' rows
        // start on a line.
        let lineElements = max(1, 64 / MemoryLayout<T>.stride)
        let ld = (blockTiles + lanes + lineElements - 1) / lineElements * lineElements
        let work = Double(tiles) * Double(channels) * Double(outChannels) * Double(components)
        let minBlocks = work < Double(1 << 22) ? blocks : 1
        Parallel.forEachChunk(blocks, minItemsPerChunk: minBlocks) { range in
            let vCount = components * channels * ld, mCount = components * outChannels * ld
            let scratchCount = vCount + mCount + 4 * lanes + 4
            let scratch = BufferCache.take(T.self, count: scratchCount)
            defer { BufferCache.give(scratch) }
            let v = scratch.pointer
            let m = v + vCount, staging = m + mCount
            for block in range {
                let t0 = block * blockTiles, t1 = min(tiles, t0 + blockTiles)
                kernels.winogradBlock(
                    input, batch, channels, height, width, t0, t1, tile, u, outChannels, bias, relu,
                    output, v, m, ld, staging)
            }
        }
    }
}
