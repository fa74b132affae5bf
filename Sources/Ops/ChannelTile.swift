/// Channels-last tiles: 16 channels of one `h x w` feature map stored as one `SIMD16` vector per cell, so a kernel
/// that visits cells in an irregular order (RoI bins) still processes 16 channels per load with vector arithmetic.
///
/// Used by the forward passes of RoIPool and RoIAlign: a thread copies a block of channels into a tile once and
/// then pools every RoI of that map from it. Lanes of a short last block repeat its last channel (computed, never
/// written out).
public enum ChannelTile {
    /// Channels per tile: one `SIMD16` vector per cell (a 64-byte cache line of `Float`).
    public static let width = 16

    /// The largest map (h * w cells) kernels copy into tiles: 2^20 cells, a 64 MB tile per thread for `Float`.
    /// Feature maps of detection models are far smaller (an FPN P2 level of a 1333 x 1333 image has 334 x 334
    /// cells); kernels pool larger maps straight from their planes.
    public static let maxPlane = 1 << 20

    /// Cells `fill` moves per step: each channel's run of them is read contiguously, and their slice of the tile
    /// (16 KB for `Float`) stays in L1 while it is written four channels at a time.
    @usableFromInline static let run = 256

    /// Copies `channels` (1 ... `width`) planes of `plane` cells starting at `src` into `tile`: lane `g` of
    /// `tile[cell]` is `src[g * plane + cell]`; lanes from `channels` on repeat the last channel.
    ///
    /// Lanes are written four at a time (one `SIMD4` store of four channels' values), which is several times faster
    /// than single-lane stores.
    @inlinable
    public static func fill<T: KernelFloat>(
        _ tile: UnsafeMutablePointer<SIMD16<T>>, from src: UnsafePointer<T>, channels: Int, plane: Int
    ) {
        let quads = UnsafeMutableRawPointer(tile).assumingMemoryBound(to: SIMD4<T>.self)
        var start = 0
        while start < plane {
            let end = min(start + run, plane)
            for q in 0..<(width / 4) {
                let p0 = src + min(4 * q, channels - 1) * plane, p1 = src + min(4 * q + 1, channels - 1) * plane
                let p2 = src + min(4 * q + 2, channels - 1) * plane, p3 = src + min(4 * q + 3, channels - 1) * plane
                for cell in start..<end { quads[cell &* 4 &+ q] = SIMD4(p0[cell], p1[cell], p2[cell], p3[cell]) }
            }
            start = end
        }
    }

    /// Writes the first `channels` lanes of `count` vectors to `channels` rows of `count` values:
    /// `dst[g * count + i] = values[i][g]`. Four channels at a time are read as one `SIMD4`.
    @inlinable
    public static func store<T: KernelFloat>(
        _ values: UnsafePointer<SIMD16<T>>, count: Int, channels: Int, to dst: UnsafeMutablePointer<T>
    ) {
        let quads = UnsafeRawPointer(values).assumingMemoryBound(to: SIMD4<T>.self)
        let full = channels / 4
        for q in 0..<full {
            let d0 = dst + 4 * q * count, d1 = d0 + count, d2 = d1 + count, d3 = d2 + count
            for i in 0..<count {
                let v = quads[i &* 4 &+ q]
                d0[i] = v[0]; d1[i] = v[1]; d2[i] = v[2]; d3[i] = v[3]
            }
        }
        for g in (4 * full)..<channels {
            for i in 0..<count { dst[g * count + i] = values[i][g] }
        }
    }
}
