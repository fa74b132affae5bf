import CSwiftRCNN
import XCTest

/// srcnn_matmul called through swiftrcnn.h.
final class LinalgABITests: XCTestCase {
    func testMatmulAllTransposes() {
        let err = ErrBuf()
        // op(a) = [[1, 2, 3], [4, 5, 6]], op(b) = [[7, 8], [9, 10], [11, 12]] -> [[58, 64], [139, 154]].
        let a = Buf<Double>([1, 2, 3, 4, 5, 6], [2, 3]), at = Buf<Double>([1, 4, 2, 5, 3, 6], [3, 2])
        let b = Buf<Double>([7, 8, 9, 10, 11, 12], [3, 2]), bt = Buf<Double>([7, 9, 11, 8, 10, 12], [2, 3])
        for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] as [(Int32, Int32)] {
            let out = Buf<Double>(zeros: [2, 2], -1)
            let st = (ta == 1 ? at : a).with { x in
                (tb == 1 ? bt : b).with { y in
                    out.with { o in
                        CSwiftRCNN.srcnn_matmul(x, y, ta, tb, o, &err.bytes)
                    }
                }
            }
            assertStatus(st, SRCNN_OK, err)
            XCTAssertEqual(out.values, [58, 64, 139, 154], "transposes \(ta) \(tb)")
        }
        // Float, k = 0: zeros.
        let empty = Buf<Float>([], [2, 0]), none = Buf<Float>([], [0, 3]), out = Buf<Float>(zeros: [2, 3], 5)
        let st = empty.with { x in
            none.with { y in
                out.with { o in
                    CSwiftRCNN.srcnn_matmul(x, y, 0, 0, o, &err.bytes)
                }
            }
        }
        assertStatus(st, SRCNN_OK, err)
        XCTAssertEqual(out.values, [0, 0, 0, 0, 0, 0])
    }

    func testMatmulRejectsBadInput() {
        let err = ErrBuf()
        let a = Buf<Float>(zeros: [2, 3], 1), b = Buf<Float>(zeros: [3, 4], 1), out = Buf<Float>(zeros: [2, 4], 0)
        func call(_ x: Buf<Float>, _ y: Buf<Float>, _ o: Buf<Float>, _ ta: Int32 = 0, _ tb: Int32 = 0) -> Int32 {
            x.with { px in y.with { py in o.with { po in CSwiftRCNN.srcnn_matmul(px, py, ta, tb, po, &err.bytes) } } }
        }
        assertStatus(call(a, b, out), SRCNN_OK, err)
        assertStatus(call(a, b, out, 0, 1), SRCNN_VALUE_ERROR, err, mentions: "inner dimensions")
        assertStatus(call(a, b, out, 2, 0), SRCNN_VALUE_ERROR, err, mentions: "transpose_a")
        assertStatus(call(a, b, out, 0, -1), SRCNN_VALUE_ERROR, err, mentions: "transpose_b")
        assertStatus(call(a, b, Buf<Float>(zeros: [4, 2], 0)), SRCNN_VALUE_ERROR, err, mentions: "out")
        assertStatus(call(Buf<Float>(zeros: [6], 0), b, out), SRCNN_VALUE_ERROR, err, mentions: "a: expected shape")
        assertStatus(call(a, Buf<Float>(zeros: [3, 4, 1], 0), out), SRCNN_VALUE_ERROR, err, mentions: "b:")
        let bd = Buf<Double>(zeros: [3, 4], 1)
        let st = a.with { x in bd.with { y in out.with { o in CSwiftRCNN.srcnn_matmul(x, y, 0, 0, o, &err.bytes) } } }
        assertStatus(st, SRCNN_TYPE_ERROR, err, mentions: "b: expected dtype float32")
        let ai = Buf<Int64>(zeros: [2, 3], 1)
        let st2 = ai.with { x in b.with { y in out.with { o in CSwiftRCNN.srcnn_matmul(x, y, 0, 0, o, &err.bytes) } } }
        assertStatus(st2, SRCNN_TYPE_ERROR, err, mentions: "a: expected dtype float32 or float64")
        // out aliasing an input.
        let square = Buf<Float>(zeros: [3, 3], 1), sq = Buf<Float>(zeros: [3, 3], 1)
        let st3 = square.with { x in sq.with { y in CSwiftRCNN.srcnn_matmul(x, y, 0, 0, x, &err.bytes) } }
        assertStatus(st3, SRCNN_VALUE_ERROR, err, mentions: "out: must not overlap a")
        let st4 = CSwiftRCNN.srcnn_matmul(nil, nil, 0, 0, nil, &err.bytes)
        assertStatus(st4, SRCNN_VALUE_ERROR, err, mentions: "a: missing array")
    }
}
