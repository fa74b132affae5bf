/// The weight gradient of a Winograd convolution (3 × 3, stride 1, padding 1), by the same F(2×2, 3×3) algorithm.
///
/// Per output tile, the forward is Y = Aᵀ M A with M = Σ_c U_c ⊙ V_c, U = G g Gᵀ and V = Bᵀ d B (see `Winograd`).
/// The identity holds for every filter g, so its gradient is the convolution's: with dM = A dY Aᵀ (the 2 × 2
/// output-gradient tile, zero past the map's edge), dU = Σ_tiles dM ⊙ V and dg = Gᵀ dU G. Each of the 16 elements e
/// of dU is a matrix product over the tiles, dU_e (K × C) = Σ dM_e (K × tiles) · V_eᵀ (tiles × C): 16 products of
/// depth tiles = P/4 replace im2col's one of depth P with 9·C columns, 2.25 times fewer multiply-adds, and no column
/// buffer. The transforms use only additions and negations; dg = Gᵀ dU G is computed in Double.
///
/// Layout: as `Winograd.convolve`: input (N, C, H, W), output gradient (N, K, H, W), tiles numbered image by image,
/// row by row. The tiles are cut into blocks of `weightGradientBlockElements` of V and dM (or fewer: a count that
/// does not depend on the thread count), taken in order.
///
/// Threading: per block, the transforms are split over channels (`KernelTable.winogradInputTransform`,
/// `winogradGradientTransform`, in the current instruction-set path) and the 16 products over threads, one whole
/// product each (`KernelTable.gemmBlock`); each dU_e adds the blocks in order, so the result does not depend on the
/// thread count.
extension Winograd {
    /// Elements of V and dM for one block of tiles (16 MiB of floats, as an im2col band of `Conv2d`).
    public static let weightGradientBlockElements = 1 << 22

    /// dW (K, C, 3, 3) += dL/dW of `convolve` (3 × 3, stride 1, padding 1; no bias or ReLU, whose gradients are
    /// the caller's) for the input `input` (N, C, H, W) and the output gradient `gradient` (N, K, H, W).
    /// `blockElements` bounds V and dM (whole vectors of tiles, at least one).
    @inlinable
    public static func weightGradient<T: KernelFloat>(
        _ input: UnsafePointer<T>, batch: Int, channels: Int, height: Int, width: Int,
        outputGradient gradient: UnsafePointer<T>, outChannels: Int, into dw: UnsafeMutablePointer<T>,
        blockElements: Int = weightGradientBlockElements
    ) {
        let (c, k) = (channels, outChannels)
        if batch == 0 || height == 0 || width == 0 || c == 0 || k == 0 { return }
        let kernels = T.kernels
        let lanes = kernels.lanes
        let tiles = batch * ((height + 1) / 2) * ((width + 1) / 2)
        let fit = blockElements / (components * (c + k)) / lanes * lanes
        let blockTiles = min(tiles, max(lanes, fit))
        // Row stride of V_e and dM_e: a vector store at the last tile stays inside the row.
        let ld = blockTiles + lanes
        let count = components * (c + k) * ld + components * k * c
        let scratch = BufferCache.take(T.self, count: count)
        defer { BufferCache.give(scratch) }
        let buffer = scratch.pointer
        let v = buffer, m = v + components * c * ld, du = m + components * k * ld
        du.initialize(repeating: 0, count: components * k * c)
        var t0 = 0
        while t0 < tiles {
            let t1 = min(tiles, t0 + blockTiles)
            // Channels 0 ..< C of the input, then C ..< C + K for the output gradient's K channels.
            Parallel.forEachChunk(c + k, minItemsPerChunk: max(1, 4096 / (t1 - t0))) { range in
                let staging = UnsafeMutablePointer<T>.allocate(capacity: 2 * lanes + 2)
                defer { staging.deallocate() }
                if range.lowerBound < c {
                    kernels.winogradInputTransform(
                        input, c, range.lowerBound, min(c, range.upperBound), height, width, t0, t1, v, ld, staging)
                }
                if range.upperBound > c {
                    kernels.winogradGradientTransform(
                        gradient, k, max(0, range.lowerBound - c), range.upperBound - c, height, width, t0, t1, m, ld,
                        staging)
                }
            }
            Parallel.forEachChunk(components) { elements in
                for e in elements {
                    kernels.gemmBlock(
                        0, k, 0, c, t1 - t0, m + e * k * ld, ld, false, v + e * c * ld, ld, true, du + e * k * c, c,
                        true, nil, nil, false, nil)
                }
            }
            t0 = t1
        }
        // dg(ky, kx) = Σ_{i, j} G(i, ky) · dU(i, j) · G(j, kx), G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]: along the rows
        // (i) first, then the columns.
        Parallel.forEachChunk(k * c, minItemsPerChunk: 4096) { pairs in
            for pair in pairs {
                @inline(__always) func u(_ i: Int, _ j: Int) -> Double { Double(du[(4 * i + j) * k * c + pair]) }
                // r(a, j) = Σ_i G(i, a) · dU(i, j) for a = 0, 1, 2: G's columns are (1, ½, ½, 0), (0, ½, -½, 0)
                // and (0, ½, ½, 1).
                @inline(__always) func r(_ j: Int) -> (Double, Double, Double) {
                    let half1 = u(1, j) / 2, half2 = u(2, j) / 2
                    return (u(0, j) + half1 + half2, half1 - half2, half1 + half2 + u(3, j))
                }
                let r0 = r(0), r1 = r(1), r2 = r(2), r3 = r(3)
                // dg(a, b) = Σ_j r(a, j) · G(j, b), the same combination along j.
                let out = dw + pair * 9
                @inline(__always) func add(_ a: Int, _ x0: Double, _ x1: Double, _ x2: Double, _ x3: Double) {
                    let half1 = x1 / 2, half2 = x2 / 2
                    out[3 * a] += T(x0 + half1 + half2)
                    out[3 * a + 1] += T(half1 - half2)
                    out[3 * a + 2] += T(half1 + half2 + x3)
                }
                add(0, r0.0, r1.0, r2.0, r3.0)
                add(1, r0.1, r1.1, r2.1, r3.1)
                add(2, r0.2, r1.2, r2.2, r3.2)
            }
        }
    }
}
