/// Channels-last tiles: 16 channels of one `h x w` feature map stored as one `SIMD16` vector per cell, so a kernel
/// that visits cells in an irregular order (RoI bins) still processes 16 channels per load with vector arithmetic.
///
/// Used by the forward passes of RoIPool and RoIAlign: a thread copies a block of channels into a tile once and
/// then pools every RoI of that map from it. Lanes of a short last block repeat its last channel (computed, never
/// written out). The copies and the per-RoI pooling run in the instruction-set path's kernels
/// (`Sources/Kernels/shared/ChannelTiles.swift`), so a portable build still uses the CPU's widest vectors.
public enum ChannelTile {
    /// Channels per tile: one `SIMD16` vector per cell (a 64-byte cache line of `Float`).
    public static let width = 16

    /// The largest map (h * w cells) kernels copy into tiles: 2^20 cells, a 64 MB tile per thread for `Float`.
    /// Feature maps of detection models are far smaller (an FPN P2 level of a 1333 x 1333 image has 334 x 334
    /// cells); kernels pool larger maps straight from their planes.
    public static let maxPlane = 1 << 20

    /// Copies `channels` (1 ... `width`) planes of `plane` cells starting at `src` into `tile`: lane `g` of
    /// `tile[cell]` is `src[g * plane + cell]`; lanes from `channels` on repeat the last channel. Runs in the
    /// current instruction-set path's kernels (`KernelTable.fillChannelTile`).
    @inlinable
    public static func fill<T: KernelFloat>(
        _ tile: UnsafeMutablePointer<SIMD16<T>>, from src: UnsafePointer<T>, channels: Int, plane: Int
    ) {
        T.kernels.fillChannelTile(tile, src, channels, plane)
    }

    /// Writes the first `channels` lanes of `count` vectors to `channels` rows of `count` values:
    /// `dst[g * count + i] = values[i][g]` (`KernelTable.storeChannelTile`).
    @inlinable
    public static func store<T: KernelFloat>(
        _ values: UnsafePointer<SIMD16<T>>, count: Int, channels: Int, to dst: UnsafeMutablePointer<T>
    ) {
        T.kernels.storeChannelTile(values, count, channels, dst)
    }
}
