/// The kernels of one instruction set: this file and the rest of `shared/` are compiled once per instruction set,
/// each time into its own module (`_KernelsGeneric`, `_KernelsAVX2`, `_KernelsAVX512`) with that set's code
/// generation and its `Config.swift` (vector width, micro-kernel, block sizes). `SwiftRCNNOps` picks one module at
/// run time from the CPU and calls these entry points; each works on one thread's share of the work.
///
/// Everything here is concrete (`Float` and `Double` overloads) and not inlinable, so the code that runs is the
/// code compiled in this module for its instruction set.
public enum Kernels {
    /// Rows of the GEMM micro-kernel tile (A values broadcast per step).
    public static var mr: Int { Blocking.mr }
    /// Columns of the GEMM micro-kernel tile for Float: two vectors.
    public static var floatNR: Int { nr(Float.self) }
    /// Columns of the GEMM micro-kernel tile for Double: two vectors.
    public static var doubleNR: Int { nr(Double.self) }
    /// Most depth of a packed GEMM block.
    public static var kc: Int { Blocking.kc }
    /// Lanes of one vector of Float (tiles per Winograd transform step, outputs per strided im2col copy).
    public static var floatLanes: Int { Float.Vector.scalarCount }
    /// Lanes of one vector of Double.
    public static var doubleLanes: Int { Double.Vector.scalarCount }

    /// Most Winograd tiles per block.
    public static var winogradTiles: Int { Blocking.winogradTiles }

    /// Elements of op(A) (m × k) packed by `prepackA`: whole `mr`-row panels (the same for Float and Double).
    public static func prepackedCount(m: Int, k: Int) -> Int { packedCount(m: m, k: k) }
}

// MARK: - Entry points, one per element type

extension Kernels {
    public static func gemmBlock(
        rows i0: Int, _ rows: Int, columns j0: Int, _ columns: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool, b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
        bias: UnsafePointer<Float>?, addend: UnsafePointer<Float>?, relu: Bool, prepackedA: UnsafePointer<Float>?
    ) {
        multiplyBlock(
            rows: i0, rows, columns: j0, columns, k: k, a: a, lda: lda, transposeA: transposeA, b: b,
            ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate, bias: bias,
            addend: addend, relu: relu, prepackedA: prepackedA)
    }

    public static func gemmBlock(
        rows i0: Int, _ rows: Int, columns j0: Int, _ columns: Int, k: Int,
        a: UnsafePointer<Double>, lda: Int, transposeA: Bool, b: UnsafePointer<Double>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<Double>, ldc: Int, accumulate: Bool,
        bias: UnsafePointer<Double>?, addend: UnsafePointer<Double>?, relu: Bool, prepackedA: UnsafePointer<Double>?
    ) {
        multiplyBlock(
            rows: i0, rows, columns: j0, columns, k: k, a: a, lda: lda, transposeA: transposeA, b: b,
            ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate, bias: bias,
            addend: addend, relu: relu, prepackedA: prepackedA)
    }

    /// Rows `lo ..< hi` of op(A) (m × k) packed where they belong in the whole packed op(A) at `dst`
    /// (`prepackedCount(m:k:)` elements, `gemmBlock`'s `prepackedA`); `lo` is a multiple of `mr`, and so is `hi`
    /// unless it is m. 0 ..< m packs it all; threads packing disjoint ranges fill one copy together.
    public static func prepackA(
        _ a: UnsafePointer<Float>, lda: Int, transposed: Bool, m: Int, k: Int, rows lo: Int, _ hi: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        packWholeA(a, lda: lda, transposed: transposed, rows: 0, m, k: k, part: (lo, hi), into: dst)
    }

    public static func prepackA(
        _ a: UnsafePointer<Double>, lda: Int, transposed: Bool, m: Int, k: Int, rows lo: Int, _ hi: Int,
        into dst: UnsafeMutablePointer<Double>
    ) {
        packWholeA(a, lda: lda, transposed: transposed, rows: 0, m, k: k, part: (lo, hi), into: dst)
    }

    /// The m × k matrix (row stride k) that `prepackA` packed.
    public static func unpackA(_ packed: UnsafePointer<Float>, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        unpackWholeA(packed, m: m, k: k, into: dst)
    }

    public static func unpackA(
        _ packed: UnsafePointer<Double>, m: Int, k: Int, into dst: UnsafeMutablePointer<Double>
    ) {
        unpackWholeA(packed, m: m, k: k, into: dst)
    }

    /// One plane of a depthwise convolution (see `depthwisePlane`).
    public static func depthwise(
        _ src: UnsafePointer<Float>, height: Int, width: Int, filter: UnsafePointer<Float>, bias: Float, kernel: Int,
        stride: Int, padding: Int, outHeight: Int, outWidth: Int, into dst: UnsafeMutablePointer<Float>
    ) {
        depthwisePlane(
            src, height: height, width: width, filter: filter, bias: bias, kernel: kernel, stride: stride,
            padding: padding, outHeight: outHeight, outWidth: outWidth, into: dst)
    }

    public static func depthwise(
        _ src: UnsafePointer<Double>, height: Int, width: Int, filter: UnsafePointer<Double>, bias: Double,
        kernel: Int, stride: Int, padding: Int, outHeight: Int, outWidth: Int, into dst: UnsafeMutablePointer<Double>
    ) {
        depthwisePlane(
            src, height: height, width: width, filter: filter, bias: bias, kernel: kernel, stride: stride,
            padding: padding, outHeight: outHeight, outWidth: outWidth, into: dst)
    }

    public static func winogradBlock(
        _ input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, tiles t0: Int, _ t1: Int,
        tile: Int, weights u: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, relu: Bool,
        into output: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
        ld: Int, staging: UnsafeMutablePointer<Float>
    ) {
        convolveTiles(
            input, batch: batch, channels: channels, height: height, width: width, tiles: t0, t1, tile: tile,
            weights: u, outChannels: outChannels, bias: bias, relu: relu, into: output, v: v, m: m, ld: ld,
            staging: staging)
    }

    public static func winogradBlock(
        _ input: UnsafePointer<Double>, batch: Int, channels: Int, height: Int, width: Int, tiles t0: Int, _ t1: Int,
        tile: Int, weights u: UnsafePointer<Double>, outChannels: Int, bias: UnsafePointer<Double>?, relu: Bool,
        into output: UnsafeMutablePointer<Double>, v: UnsafeMutablePointer<Double>,
        m: UnsafeMutablePointer<Double>, ld: Int, staging: UnsafeMutablePointer<Double>
    ) {
        convolveTiles(
            input, batch: batch, channels: channels, height: height, width: width, tiles: t0, t1, tile: tile,
            weights: u, outChannels: outChannels, bias: bias, relu: relu, into: output, v: v, m: m, ld: ld,
            staging: staging)
    }

    /// V_e of channels c0 ..< c1 for tiles t0 ..< t1: Winograd's input transform alone (`transformInput`).
    public static func winogradInputTransform(
        _ input: UnsafePointer<Float>, channels: Int, _ c0: Int, _ c1: Int, height: Int, width: Int,
        tiles t0: Int, _ t1: Int, into v: UnsafeMutablePointer<Float>, ld: Int, staging: UnsafeMutablePointer<Float>
    ) {
        transformInput(
            input, channels: channels, c0, c1, height: height, width: width, tiles: t0, t1, into: v, ld: ld,
            staging: staging)
    }

    public static func winogradInputTransform(
        _ input: UnsafePointer<Double>, channels: Int, _ c0: Int, _ c1: Int, height: Int, width: Int,
        tiles t0: Int, _ t1: Int, into v: UnsafeMutablePointer<Double>, ld: Int,
        staging: UnsafeMutablePointer<Double>
    ) {
        transformInput(
            input, channels: channels, c0, c1, height: height, width: width, tiles: t0, t1, into: v, ld: ld,
            staging: staging)
    }

    /// dM_e of output channels k0 ..< k1 for tiles t0 ..< t1: the output gradient's transform
    /// (`transformGradient`).
    public static func winogradGradientTransform(
        _ gradient: UnsafePointer<Float>, channels: Int, _ k0: Int, _ k1: Int, height: Int, width: Int,
        tiles t0: Int, _ t1: Int, into m: UnsafeMutablePointer<Float>, ld: Int, staging: UnsafeMutablePointer<Float>
    ) {
        transformGradient(
            gradient, channels: channels, k0, k1, height: height, width: width, tiles: t0, t1, into: m, ld: ld,
            staging: staging)
    }

    public static func winogradGradientTransform(
        _ gradient: UnsafePointer<Double>, channels: Int, _ k0: Int, _ k1: Int, height: Int, width: Int,
        tiles t0: Int, _ t1: Int, into m: UnsafeMutablePointer<Double>, ld: Int,
        staging: UnsafeMutablePointer<Double>
    ) {
        transformGradient(
            gradient, channels: channels, k0, k1, height: height, width: width, tiles: t0, t1, into: m, ld: ld,
            staging: staging)
    }

    public static func im2colRows(
        _ input: UnsafePointer<Float>, height: Int, width: Int, kernelH: Int, kernelW: Int, strideH: Int,
        strideW: Int, padH: Int, padW: Int, dilationH: Int, dilationW: Int, outWidth: Int,
        outputRows oy0: Int, _ oy1: Int, matrixRows r0: Int, _ r1: Int, into columns: UnsafeMutablePointer<Float>
    ) {
        fillIm2Col(
            input, height: height, width: width, kernelH: kernelH, kernelW: kernelW, strideH: strideH,
            strideW: strideW, padH: padH, padW: padW, dilationH: dilationH, dilationW: dilationW,
            outWidth: outWidth, outputRows: oy0, oy1, matrixRows: r0, r1, into: columns)
    }

    public static func im2colRows(
        _ input: UnsafePointer<Double>, height: Int, width: Int, kernelH: Int, kernelW: Int, strideH: Int,
        strideW: Int, padH: Int, padW: Int, dilationH: Int, dilationW: Int, outWidth: Int,
        outputRows oy0: Int, _ oy1: Int, matrixRows r0: Int, _ r1: Int, into columns: UnsafeMutablePointer<Double>
    ) {
        fillIm2Col(
            input, height: height, width: width, kernelH: kernelH, kernelW: kernelW, strideH: strideH,
            strideW: strideW, padH: padH, padW: padW, dilationH: dilationH, dilationW: dilationW,
            outWidth: outWidth, outputRows: oy0, oy1, matrixRows: r0, r1, into: columns)
    }
}
