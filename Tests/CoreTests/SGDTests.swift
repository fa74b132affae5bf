import SwiftRCNN
import XCTest

/// `SGD` and `LearningRateSchedule` against torch.optim.SGD's and the reference script's arithmetic, worked out by
/// hand; the trainer's use of them is tested against torchvision in Tests/python/test_training.py.
final class SGDTests: XCTestCase {
    func store() -> ParameterStore {
        ParameterStore(
            [
                "a.weight": WeightStore.Entry(shape: [2], values: [1, -2]),
                "a.frozen": WeightStore.Entry(shape: [1], values: [5]),
            ], trainable: { $0.hasSuffix("weight") })
    }

    func testMomentumAndWeightDecay() {
        let s = store()
        XCTAssertEqual(s.trainableNames, ["a.weight"])
        XCTAssertNil(s.gradient("a.frozen"))
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        // Step 1: d = g + wd p = (0.5 + 0.01, -1 - 0.02); buf = d; p -= 0.1 d.
        s.setGradient("a.weight", [0.5, -1])
        sgd.step(s)
        let p1: [Float] = [1 - 0.1 * 0.51, -2 - 0.1 * -1.02]
        XCTAssertEqual(s.value("a.weight")[0], p1[0], accuracy: 1e-6)
        XCTAssertEqual(s.value("a.weight")[1], p1[1], accuracy: 1e-6)
        // Step 2: buf = 0.9 buf + d.
        s.setGradient("a.weight", [0.5, -1])
        sgd.step(s)
        let d2: [Float] = [0.5 + 0.01 * p1[0], -1 + 0.01 * p1[1]]
        let buf: [Float] = [0.9 * 0.51 + d2[0], 0.9 * -1.02 + d2[1]]
        XCTAssertEqual(s.value("a.weight")[0], p1[0] - 0.1 * buf[0], accuracy: 1e-6)
        XCTAssertEqual(s.value("a.weight")[1], p1[1] - 0.1 * buf[1], accuracy: 1e-6)
        XCTAssertEqual(s.value("a.frozen"), [5])
        s.zeroGradients()
        XCTAssertEqual(s.gradient("a.weight"), [0, 0])
    }

    func testPlainSGDKeepsNoMomentum() {
        let s = store()
        s.setGradient("a.weight", [1, 1])
        SGD(learningRate: 0.5).step(s)
        XCTAssertEqual(s.value("a.weight"), [0.5, -2.5])
    }

    func testSchedule() {
        let schedule = LearningRateSchedule(
            baseLearningRate: 0.02, warmupFactor: 0.001, warmupIterations: 10, milestones: [2, 3], gamma: 0.1)
        XCTAssertEqual(schedule.learningRate(iteration: 0, epoch: 0), 0.02 * 0.001, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(iteration: 5, epoch: 0), 0.02 * (0.001 + 0.999 * 0.5), accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(iteration: 10, epoch: 1), 0.02, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(iteration: 30, epoch: 2), 0.002, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(iteration: 40, epoch: 3), 0.0002, accuracy: 1e-12)
    }

    func testInvalidSettings() {
        XCTAssertThrowsError(try SGD(learningRate: -1).validate())
        XCTAssertThrowsError(try SGD(learningRate: 0.1, momentum: .nan).validate())
        XCTAssertThrowsError(try SGD(learningRate: 0.1, weightDecay: -1).validate())
    }
}
