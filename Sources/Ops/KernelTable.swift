import _KernelsGeneric
#if arch(x86_64)
    import _KernelsAVX2
    import _KernelsAVX512
#endif

/// The entry points and block sizes of one instruction-set path (`Sources/Kernels/<isa>`) for one element type.
/// `GEMM`, `Winograd` and `Im2Col` split work over threads and call these for each thread's share; the RoI kernels
/// call the channel-tile entries per tile or per RoI.
public struct KernelTable<T: SIMDScalar>: Sendable {
    /// Rows and columns of the GEMM micro-kernel tile, and the most depth of a packed block.
    public let mr: Int, nr: Int, kc: Int
    /// Elements of one vector register (Winograd tiles per transform step).
    public let lanes: Int
    /// Most Winograd tiles per block (a multiple of `nr`).
    public let winogradTiles: Int

    public typealias GEMMBlock =
        @Sendable (
            _ i0: Int, _ rows: Int, _ j0: Int, _ columns: Int, _ k: Int,
            _ a: UnsafePointer<T>, _ lda: Int, _ transposeA: Bool, _ b: UnsafePointer<T>, _ ldb: Int,
            _ transposeB: Bool,
            _ c: UnsafeMutablePointer<T>, _ ldc: Int, _ accumulate: Bool,
            _ bias: UnsafePointer<T>?, _ addend: UnsafePointer<T>?, _ relu: Bool, _ prepackedA: UnsafePointer<T>?
        ) -> Void
    public typealias PrepackA =
        @Sendable (
            _ a: UnsafePointer<T>, _ lda: Int, _ transposed: Bool, _ m: Int, _ k: Int, _ lo: Int, _ hi: Int,
            _ into: UnsafeMutablePointer<T>
        ) -> Void
    public typealias UnpackA =
        @Sendable (
            _ packed: UnsafePointer<T>, _ m: Int, _ k: Int, _ into: UnsafeMutablePointer<T>
        ) -> Void
    public typealias WinogradBlock =
        @Sendable (
            _ input: UnsafePointer<T>, _ batch: Int, _ channels: Int, _ height: Int, _ width: Int, _ t0: Int, _ t1: Int,
            _ tile: Int, _ weights: UnsafePointer<T>, _ outChannels: Int, _ bias: UnsafePointer<T>?, _ relu: Bool,
            _ output: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>, _ m: UnsafeMutablePointer<T>, _ ld: Int,
            _ staging: UnsafeMutablePointer<T>
        ) -> Void
    public typealias Im2ColRows =
        @Sendable (
            _ input: UnsafePointer<T>, _ height: Int, _ width: Int, _ kernelH: Int, _ kernelW: Int, _ strideH: Int,
            _ strideW: Int, _ padH: Int, _ padW: Int, _ dilationH: Int, _ dilationW: Int, _ outWidth: Int,
            _ oy0: Int, _ oy1: Int, _ r0: Int, _ r1: Int, _ columns: UnsafeMutablePointer<T>
        ) -> Void
    public typealias WinogradTransform =
        @Sendable (
            _ source: UnsafePointer<T>, _ channels: Int, _ c0: Int, _ c1: Int, _ height: Int, _ width: Int, _ t0: Int,
            _ t1: Int, _ into: UnsafeMutablePointer<T>, _ ld: Int, _ staging: UnsafeMutablePointer<T>
        ) -> Void

    public typealias FillChannelTile =
        @Sendable (
            _ tile: UnsafeMutablePointer<SIMD16<T>>, _ from: UnsafePointer<T>, _ channels: Int, _ plane: Int
        ) -> Void
    public typealias StoreChannelTile =
        @Sendable (
            _ values: UnsafePointer<SIMD16<T>>, _ count: Int, _ channels: Int, _ to: UnsafeMutablePointer<T>
        ) -> Void
    public typealias RoIAlignTile =
        @Sendable (
            _ tile: UnsafePointer<SIMD16<T>>, _ line: UnsafeMutablePointer<SIMD16<T>>,
            _ rowBounds: UnsafePointer<Int>, _ rowIndex: UnsafePointer<Int>, _ rowWeight: UnsafePointer<T>,
            _ columnBounds: UnsafePointer<Int>, _ columnIndex: UnsafePointer<Int>, _ columnWeight: UnsafePointer<T>,
            _ spanLow: Int, _ spanHigh: Int, _ pooledH: Int, _ pooledW: Int, _ samples: T,
            _ into: UnsafeMutablePointer<SIMD16<T>>
        ) -> Void
    public typealias RoIPoolTile =
        @Sendable (
            _ tile: UnsafePointer<SIMD16<T>>, _ width: Int, _ edges: UnsafePointer<Int>, _ pooledH: Int,
            _ pooledW: Int, _ maxima: UnsafeMutablePointer<SIMD16<T>>,
            _ winners: UnsafeMutablePointer<SIMD16<T.SIMDMaskScalar>>
        ) -> Void

    /// One thread's rectangle of C = op(A)·op(B) with the epilogue (see `GEMM`).
    public let gemmBlock: GEMMBlock
    /// Rows lo ..< hi of op(A) (m × k), packed to where they belong in the whole packed op(A) that is
    /// `gemmBlock`'s `prepackedA` (`prepackedCount(m, k)` elements); lo is a multiple of `mr`, and so is hi unless
    /// it is m. 0 ..< m packs it all; threads packing disjoint ranges fill one copy.
    public let prepackA: PrepackA
    /// The inverse of `prepackA`: the m × k row-major matrix back (moving packed weights between paths).
    public let unpackA: UnpackA
    /// Elements of op(A) (m × k) packed by `prepackA`.
    public let prepackedCount: @Sendable (_ m: Int, _ k: Int) -> Int
    /// Tiles t0 ..< t1 of a Winograd convolution with output tiles of `tile` × `tile`, 2 or 4 (see `Winograd`).
    public let winogradBlock: WinogradBlock
    /// Rows r0 ..< r1 of an im2col matrix (see `Im2Col`).
    public let im2colRows: Im2ColRows
    /// Winograd's input transform V_e = Bᵀ d B alone, of channels c0 ..< c1 for tiles t0 ..< t1; `staging` holds
    /// 2 · lanes + 2 elements (see `Winograd.weightGradient`).
    public let winogradInputTransform: WinogradTransform
    /// The output gradient's transform dM_e = A dY Aᵀ, of channels c0 ..< c1 for tiles t0 ..< t1; `staging` holds
    /// 2 · lanes elements (see `Winograd.weightGradient`).
    public let winogradGradientTransform: WinogradTransform
    /// `ChannelTile.fill`: up to 16 channel planes into a channels-last tile.
    public let fillChannelTile: FillChannelTile
    /// `ChannelTile.store`: a tile's first lanes back to channel rows.
    public let storeChannelTile: StoreChannelTile
    /// One RoI's RoIAlign bins from a tile (see `RoIAlign.forwardTiled`).
    public let roiAlignTile: RoIAlignTile
    /// One RoI's RoIPool maxima and argmax from a tile (see `RoIPool.forwardTiled`).
    public let roiPoolTile: RoIPoolTile
    /// One plane of a depthwise convolution: input h × w, a k × k filter and its bias, stride, padding, output
    /// ho × wo (see `Depthwise`).
    public let depthwise:
        @Sendable (
            _ src: UnsafePointer<T>, _ height: Int, _ width: Int, _ filter: UnsafePointer<T>, _ bias: T, _ kernel: Int,
            _ stride: Int, _ padding: Int, _ outHeight: Int, _ outWidth: Int, _ into: UnsafeMutablePointer<T>
        ) -> Void
    /// In-place exp of `count` elements (`VectorMath.exp`).
    public let expInPlace: @Sendable (_ p: UnsafeMutablePointer<T>, _ count: Int) -> Void
    /// In-place hardswish of `count` elements (`VectorMath.hardswish`).
    public let hardswishInPlace: @Sendable (_ p: UnsafeMutablePointer<T>, _ count: Int) -> Void
    /// In-place ReLU of `count` elements (`VectorMath.relu`).
    public let reluInPlace: @Sendable (_ p: UnsafeMutablePointer<T>, _ count: Int) -> Void
}

extension KernelFloat {
    /// The kernels of the current instruction-set path for this element type.
    @inlinable
    public static var kernels: KernelTable<Self> { kernels(ISA.current) }
}

extension Float {
    public static func kernels(_ isa: ISA) -> KernelTable<Float> {
        switch isa {
        case .generic: return KernelTable.genericFloat
        #if arch(x86_64)
            case .avx2: return KernelTable.avx2Float
            case .avx512: return KernelTable.avx512Float
        #else
            case .avx2, .avx512: return KernelTable.genericFloat
        #endif
        }
    }
}

extension Double {
    public static func kernels(_ isa: ISA) -> KernelTable<Double> {
        switch isa {
        case .generic: return KernelTable.genericDouble
        #if arch(x86_64)
            case .avx2: return KernelTable.avx2Double
            case .avx512: return KernelTable.avx512Double
        #else
            case .avx2, .avx512: return KernelTable.genericDouble
        #endif
        }
    }
}

// One table per path and type. Each module has the same entry points; the closure types pick the overload.

extension KernelTable where T == Float {
    static let genericFloat = KernelTable(
        mr: _KernelsGeneric.Kernels.mr, nr: _KernelsGeneric.Kernels.floatNR, kc: _KernelsGeneric.Kernels.kc,
        lanes: _KernelsGeneric.Kernels.floatLanes, winogradTiles: _KernelsGeneric.Kernels.winogradTiles,
        gemmBlock: _KernelsGeneric.Kernels.gemmBlock,
        prepackA: _KernelsGeneric.Kernels.prepackA, unpackA: _KernelsGeneric.Kernels.unpackA,
        prepackedCount: _KernelsGeneric.Kernels.prepackedCount, winogradBlock: _KernelsGeneric.Kernels.winogradBlock,
        im2colRows: _KernelsGeneric.Kernels.im2colRows,
        winogradInputTransform: _KernelsGeneric.Kernels.winogradInputTransform,
        winogradGradientTransform: _KernelsGeneric.Kernels.winogradGradientTransform,
        fillChannelTile: _KernelsGeneric.Kernels.fillChannelTile,
        storeChannelTile: _KernelsGeneric.Kernels.storeChannelTile,
        roiAlignTile: _KernelsGeneric.Kernels.roiAlignTile, roiPoolTile: _KernelsGeneric.Kernels.roiPoolTile,
        depthwise: _KernelsGeneric.Kernels.depthwise,
        expInPlace: _KernelsGeneric.Kernels.expInPlace,
        hardswishInPlace: _KernelsGeneric.Kernels.hardswishInPlace,
        reluInPlace: _KernelsGeneric.Kernels.reluInPlace)
    #if arch(x86_64)
        static let avx2Float = KernelTable(
            mr: _KernelsAVX2.Kernels.mr, nr: _KernelsAVX2.Kernels.floatNR, kc: _KernelsAVX2.Kernels.kc,
            lanes: _KernelsAVX2.Kernels.floatLanes, winogradTiles: _KernelsAVX2.Kernels.winogradTiles,
            gemmBlock: _KernelsAVX2.Kernels.gemmBlock,
            prepackA: _KernelsAVX2.Kernels.prepackA, unpackA: _KernelsAVX2.Kernels.unpackA,
            prepackedCount: _KernelsAVX2.Kernels.prepackedCount, winogradBlock: _KernelsAVX2.Kernels.winogradBlock,
            im2colRows: _KernelsAVX2.Kernels.im2colRows,
            winogradInputTransform: _KernelsAVX2.Kernels.winogradInputTransform,
            winogradGradientTransform: _KernelsAVX2.Kernels.winogradGradientTransform,
            fillChannelTile: _KernelsAVX2.Kernels.fillChannelTile,
            storeChannelTile: _KernelsAVX2.Kernels.storeChannelTile,
            roiAlignTile: _KernelsAVX2.Kernels.roiAlignTile, roiPoolTile: _KernelsAVX2.Kernels.roiPoolTile,
            depthwise: _KernelsAVX2.Kernels.depthwise,
            expInPlace: _KernelsAVX2.Kernels.expInPlace,
            hardswishInPlace: _KernelsAVX2.Kernels.hardswishInPlace,
            reluInPlace: _KernelsAVX2.Kernels.reluInPlace)
        static let avx512Float = KernelTable(
            mr: _KernelsAVX512.Kernels.mr, nr: _KernelsAVX512.Kernels.floatNR, kc: _KernelsAVX512.Kernels.kc,
            lanes: _KernelsAVX512.Kernels.floatLanes, winogradTiles: _KernelsAVX512.Kernels.winogradTiles,
            gemmBlock: _KernelsAVX512.Kernels.gemmBlock,
            prepackA: _KernelsAVX512.Kernels.prepackA, unpackA: _KernelsAVX512.Kernels.unpackA,
            prepackedCount: _KernelsAVX512.Kernels.prepackedCount, winogradBlock: _KernelsAVX512.Kernels.winogradBlock,
            im2colRows: _KernelsAVX512.Kernels.im2colRows,
            winogradInputTransform: _KernelsAVX512.Kernels.winogradInputTransform,
            winogradGradientTransform: _KernelsAVX512.Kernels.winogradGradientTransform,
            fillChannelTile: _KernelsAVX512.Kernels.fillChannelTile,
            storeChannelTile: _KernelsAVX512.Kernels.storeChannelTile,
            roiAlignTile: _KernelsAVX512.Kernels.roiAlignTile, roiPoolTile: _KernelsAVX512.Kernels.roiPoolTile,
            depthwise: _KernelsAVX512.Kernels.depthwise,
            expInPlace: _KernelsAVX512.Kernels.expInPlace,
            hardswishInPlace: _KernelsAVX512.Kernels.hardswishInPlace,
            reluInPlace: _KernelsAVX512.Kernels.reluInPlace)
    #endif
}

extension KernelTable where T == Double {
    static let genericDouble = KernelTable(
        mr: _KernelsGeneric.Kernels.mr, nr: _KernelsGeneric.Kernels.doubleNR, kc: _KernelsGeneric.Kernels.kc,
        lanes: _KernelsGeneric.Kernels.doubleLanes, winogradTiles: _KernelsGeneric.Kernels.winogradTiles,
        gemmBlock: _KernelsGeneric.Kernels.gemmBlock,
        prepackA: _KernelsGeneric.Kernels.prepackA, unpackA: _KernelsGeneric.Kernels.unpackA,
        prepackedCount: _KernelsGeneric.Kernels.prepackedCount, winogradBlock: _KernelsGeneric.Kernels.winogradBlock,
        im2colRows: _KernelsGeneric.Kernels.im2colRows,
        winogradInputTransform: _KernelsGeneric.Kernels.winogradInputTransform,
        winogradGradientTransform: _KernelsGeneric.Kernels.winogradGradientTransform,
        fillChannelTile: _KernelsGeneric.Kernels.fillChannelTile,
        storeChannelTile: _KernelsGeneric.Kernels.storeChannelTile,
        roiAlignTile: _KernelsGeneric.Kernels.roiAlignTile, roiPoolTile: _KernelsGeneric.Kernels.roiPoolTile,
        depthwise: _KernelsGeneric.Kernels.depthwise,
        expInPlace: _KernelsGeneric.Kernels.expInPlace,
        hardswishInPlace: _KernelsGeneric.Kernels.hardswishInPlace,
        reluInPlace: _KernelsGeneric.Kernels.reluInPlace)
    #if arch(x86_64)
        static let avx2Double = KernelTable(
            mr: _KernelsAVX2.Kernels.mr, nr: _KernelsAVX2.Kernels.doubleNR, kc: _KernelsAVX2.Kernels.kc,
            lanes: _KernelsAVX2.Kernels.doubleLanes, winogradTiles: _KernelsAVX2.Kernels.winogradTiles,
            gemmBlock: _KernelsAVX2.Kernels.gemmBlock,
            prepackA: _KernelsAVX2.Kernels.prepackA, unpackA: _KernelsAVX2.Kernels.unpackA,
            prepackedCount: _KernelsAVX2.Kernels.prepackedCount, winogradBlock: _KernelsAVX2.Kernels.winogradBlock,
            im2colRows: _KernelsAVX2.Kernels.im2colRows,
            winogradInputTransform: _KernelsAVX2.Kernels.winogradInputTransform,
            winogradGradientTransform: _KernelsAVX2.Kernels.winogradGradientTransform,
            fillChannelTile: _KernelsAVX2.Kernels.fillChannelTile,
            storeChannelTile: _KernelsAVX2.Kernels.storeChannelTile,
            roiAlignTile: _KernelsAVX2.Kernels.roiAlignTile, roiPoolTile: _KernelsAVX2.Kernels.roiPoolTile,
            depthwise: _KernelsAVX2.Kernels.depthwise,
            expInPlace: _KernelsAVX2.Kernels.expInPlace,
            hardswishInPlace: _KernelsAVX2.Kernels.hardswishInPlace,
            reluInPlace: _KernelsAVX2.Kernels.reluInPlace)
        static let avx512Double = KernelTable(
            mr: _KernelsAVX512.Kernels.mr, nr: _KernelsAVX512.Kernels.doubleNR, kc: _KernelsAVX512.Kernels.kc,
            lanes: _KernelsAVX512.Kernels.doubleLanes, winogradTiles: _KernelsAVX512.Kernels.winogradTiles,
            gemmBlock: _KernelsAVX512.Kernels.gemmBlock,
            prepackA: _KernelsAVX512.Kernels.prepackA, unpackA: _KernelsAVX512.Kernels.unpackA,
            prepackedCount: _KernelsAVX512.Kernels.prepackedCount, winogradBlock: _KernelsAVX512.Kernels.winogradBlock,
            im2colRows: _KernelsAVX512.Kernels.im2colRows,
            winogradInputTransform: _KernelsAVX512.Kernels.winogradInputTransform,
            winogradGradientTransform: _KernelsAVX512.Kernels.winogradGradientTransform,
            fillChannelTile: _KernelsAVX512.Kernels.fillChannelTile,
            storeChannelTile: _KernelsAVX512.Kernels.storeChannelTile,
            roiAlignTile: _KernelsAVX512.Kernels.roiAlignTile, roiPoolTile: _KernelsAVX512.Kernels.roiPoolTile,
            depthwise: _KernelsAVX512.Kernels.depthwise,
            expInPlace: _KernelsAVX512.Kernels.expInPlace,
            hardswishInPlace: _KernelsAVX512.Kernels.hardswishInPlace,
            reluInPlace: _KernelsAVX512.Kernels.reluInPlace)
    #endif
}
