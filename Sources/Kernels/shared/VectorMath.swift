// Elementary functions over contiguous arrays (`SwiftRCNNOps.VectorMath`), written as straight-line arithmetic
// without fused multiply-adds so LLVM vectorises the loops with this path's vectors and every path gives the same
// results bit for bit.
//
// exp(x) = 2^n · exp(r) with n = round(x / ln 2) and r = x - n ln 2, |r| <= ln(2)/2, the product n ln 2 taken in
// two parts (Cody & Waite) so r keeps full precision; exp(r) comes from a minimax polynomial (Float) or a rational
// approximation (Double) accurate to about 1 ulp, and 2^n is built from exponent bits in two halves so results
// down to the subnormal range are right. Beyond the representable range the result is +inf or 0; NaN stays NaN.

extension Kernels {
    /// In-place exp of `count` Floats.
    public static func expInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        // ln(Float.greatestFiniteMagnitude) and the x below which exp(x) rounds to 0.
        let hi: Float = 88.72283935546875, lo: Float = -103.97208
        let log2e: Float = 1.44269504088896341
        // ln 2 split: c1 has few significant bits, so n * c1 is exact for the n that occur.
        let c1: Float = 0.693359375, c2: Float = -2.12194440e-4
        let roundingMagic: Float = 12582912  // 1.5 · 2^23
        for i in 0..<count {
            let x = p[i]
            let xc = x < lo ? lo : (x > hi ? hi : x)
            // Adding 1.5·2^23 rounds to an integer (to nearest even) and leaves it in the low mantissa bits.
            let shifted = xc * log2e + roundingMagic
            let n = shifted - roundingMagic
            let r = (xc - n * c1) - n * c2
            // Minimax coefficients of (exp(r) - 1 - r) / r² on [-ln2/2, ln2/2] (Cephes expf).
            var q: Float = 1.9875691500e-4
            q = q * r + 1.3981999507e-3
            q = q * r + 8.3334519073e-3
            q = q * r + 4.1665795894e-2
            q = q * r + 1.6666665459e-1
            q = q * r + 5.0000001201e-1
            let e = q * (r * r) + r + 1
            // Wrapping integer arithmetic only: no trap checks, so the loop vectorises (NaN reaches y via r).
            let ni = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: roundingMagic.bitPattern)
            let n1 = ni >> 1, n2 = ni &- (ni >> 1)
            let s1 = Float(bitPattern: UInt32(bitPattern: (n1 &+ 127) &<< 23))
            let s2 = Float(bitPattern: UInt32(bitPattern: (n2 &+ 127) &<< 23))
            let y = e * s1 * s2
            p[i] = x > hi ? .infinity : (x < lo ? 0 : y)
        }
    }

    /// In-place exp of `count` Doubles.
    public static func expInPlace(_ p: UnsafeMutablePointer<Double>, count: Int) {
        let hi = 709.782712893383973096, lo = -745.13321910194110842
        let log2e = 1.4426950408889634073599
        let c1 = 6.93145751953125e-1, c2 = 1.42860682030941723212e-6
        let roundingMagic = 6755399441055744.0  // 1.5 · 2^52
        for i in 0..<count {
            let x = p[i]
            let xc = x < lo ? lo : (x > hi ? hi : x)
            let shifted = xc * log2e + roundingMagic
            let n = shifted - roundingMagic
            let r = (xc - n * c1) - n * c2
            // exp(r) = 1 + 2 P(r²) r / (Q(r²) - P(r²) r), a rational approximation (Cephes exp).
            let rr = r * r
            let px =
                r
                * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                    + 9.99999999999999999910e-1)
            let qx =
                ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                    + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
            let e = 1 + 2 * (px / (qx - px))
            let ni = Int64(bitPattern: shifted.bitPattern) &- Int64(bitPattern: roundingMagic.bitPattern)
            let n1 = ni >> 1, n2 = ni &- (ni >> 1)
            let s1 = Double(bitPattern: UInt64(bitPattern: (n1 &+ 1023) &<< 52))
            let s2 = Double(bitPattern: UInt64(bitPattern: (n2 &+ 1023) &<< 52))
            let y = e * s1 * s2
            p[i] = x > hi ? .infinity : (x < lo ? 0 : y)
        }
    }
}

// hardswish(x) = x · min(max(x + 3, 0), 6) / 6 (MobileNetV3's activation), in that order of operations: the division
// is what makes it costly, and with this path's vectors it runs on 4, 8 or 16 lanes at once. ReLU stores every
// element (a select, no branch), so it vectorises too.

extension Kernels {
    /// In-place hardswish of `count` Floats; NaN stays NaN.
    public static func hardswishInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = p[i]
            p[i] = x * min(max(x + 3, 0), 6) / 6
        }
    }

    /// In-place hardswish of `count` Doubles; NaN stays NaN.
    public static func hardswishInPlace(_ p: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count {
            let x = p[i]
            p[i] = x * min(max(x + 3, 0), 6) / 6
        }
    }

    /// In-place ReLU of `count` Floats: negative values become 0; NaN and -0 stay.
    public static func reluInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = p[i]
            p[i] = x < 0 ? 0 : x
        }
    }

    /// In-place ReLU of `count` Doubles: negative values become 0; NaN and -0 stay.
    public static func reluInPlace(_ p: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count {
            let x = p[i]
            p[i] = x < 0 ? 0 : x
        }
    }
}
