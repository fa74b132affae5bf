import SwiftRCNN
import SwiftRCNNOps
import XCTest

/// The keypoint branch's layers: the general transposed convolution (the adjoint of the convolution with the same
/// kernel, stride and padding) and bicubic resizing.
final class KeypointLayersTests: XCTestCase {
    func testTransposedConvolutionIsTheConvolutionsAdjoint() {
        // <conv(y), x> == <y, convT(x)> for the 4 x 4, stride 2, padding 1 kernel of KeypointRCNNPredictor.
        var state: UInt64 = 7
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
        let (cin, cout, k) = (3, 2, 4)
        let w = (0..<(cin * cout * k * k)).map { _ in next() }
        let x = FeatureMap(batch: 2, channels: cin, height: 5, width: 6, data: (0..<180).map { _ in next() })
        let t = ConvTranspose2d(
            weight: w, bias: nil, inChannels: cin, outChannels: cout, kernel: k, stride: 2, padding: 1)
        let tx = t(x)
        XCTAssertEqual(tx.shape, [2, cout, 10, 12])
        // The convolution from cout to cin channels: its weight (cin, cout, k, k) is the transposed one's.
        let conv = Conv2d(
            weight: w, bias: nil, inChannels: cout, outChannels: cin, kernel: (k, k), stride: 2, padding: 1,
            winograd: false)
        let y = FeatureMap(batch: 2, channels: cout, height: 10, width: 12, data: (0..<480).map { _ in next() })
        let cy = conv(y)
        XCTAssertEqual(cy.shape, x.shape)
        let lhs = zip(cy.data, x.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(y.data, tx.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)))
        // The bias is added to every output.
        let b = ConvTranspose2d(
            weight: w, bias: [1, -2], inChannels: cin, outChannels: cout, kernel: k, stride: 2, padding: 1)(x)
        for (i, (u, v)) in zip(b.data, tx.data).enumerated() {
            XCTAssertEqual(u - v, (i / 120) % 2 == 0 ? 1 : -2, accuracy: 1e-5)
        }
    }

    func testBicubicResize() {
        // A constant stays constant (the weights sum to 1), a same-size resize is a copy, and upsampling a ramp
        // x -> x by 2 gives torch's values (A = -0.75 overshoots; edge taps are clamped).
        var out = [Float](repeating: 0, count: 7 * 9)
        let constant = [Float](repeating: 3, count: 4 * 5)
        Interpolation.bicubic(constant, planes: 1, height: 4, width: 5, outHeight: 7, outWidth: 9, into: &out)
        XCTAssertTrue(out.allSatisfy { abs($0 - 3) < 1e-5 }, "\(out)")
        var same = [Float](repeating: 0, count: 20)
        let ramp = (0..<20).map { Float($0 % 5) }
        Interpolation.bicubic(ramp, planes: 1, height: 4, width: 5, outHeight: 4, outWidth: 5, into: &same)
        XCTAssertEqual(same, ramp)
        var up = [Float](repeating: 0, count: 8 * 10)
        Interpolation.bicubic(ramp, planes: 1, height: 4, width: 5, outHeight: 8, outWidth: 10, into: &up)
        // torch.nn.functional.interpolate(ramp, size=(8, 10), mode="bicubic", align_corners=False), every row.
        let torchRow: [Float] = [
            -0.10546875, 0.19140625, 0.66796875, 1.296875, 1.703125, 2.296875, 2.703125, 3.33203125, 3.80859375,
            4.10546875,
        ]
        for y in 0..<8 { XCTAssertEqual(Array(up[(10 * y)..<(10 * y + 10)]), torchRow) }
    }
}
