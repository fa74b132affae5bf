import CSwiftRCNN

// Swift API of the RoI ops: torchvision.ops.roi_align, roi_pool, ps_roi_align, ps_roi_pool and
// MultiScaleRoIAlign. `input` is (N, C, H, W); `rois` is (K, 5) rows [batch_index, x1, y1, x2, y2].

/// RoIAlign: (K, C, pooledH, pooledW). `samplingRatio <= 0` samples adaptively, `aligned` shifts by half a pixel.
public func roiAlign<T: FloatElement>(
    _ input: Tensor<T>, rois: Tensor<T>, pooledHeight: Int, pooledWidth: Int, spatialScale: Double = 1,
    samplingRatio: Int = -1, aligned: Bool = false
) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: try roiOutputShape(input, rois, pooledHeight, pooledWidth, channels: nil))
    try check { err in
        input.withArray { x in
            rois.withArray { r in
                out.withMutableArray { o in
                    srcnn_roi_align(
                        x, r, Int64(pooledHeight), Int64(pooledWidth), spatialScale, Int64(samplingRatio),
                        aligned ? 1 : 0, o, err)
                }
            }
        }
    }
    return out
}

/// Gradient of `roiAlign` with respect to its input, of shape `inputShape` (N, C, H, W).
public func roiAlignBackward<T: FloatElement>(
    _ gradOutput: Tensor<T>, rois: Tensor<T>, inputShape: [Int], spatialScale: Double = 1, samplingRatio: Int = -1,
    aligned: Bool = false
) throws -> Tensor<T> {
    var grad = Tensor<T>(zeros: try validShape(inputShape, rank: 4, "input_shape"))
    try check { err in
        gradOutput.withArray { g in
            rois.withArray { r in
                grad.withMutableArray { gi in
                    srcnn_roi_align_backward(g, r, spatialScale, Int64(samplingRatio), aligned ? 1 : 0, gi, err)
                }
            }
        }
    }
    return grad
}

/// RoIPool: the pooled maxima (K, C, pooledH, pooledW) and their argmax (index in the H*W plane, -1 if empty).
public func roiPool<T: FloatElement>(
    _ input: Tensor<T>, rois: Tensor<T>, pooledHeight: Int, pooledWidth: Int, spatialScale: Double = 1
) throws -> (output: Tensor<T>, argmax: Tensor<Int64>) {
    let shape = try roiOutputShape(input, rois, pooledHeight, pooledWidth, channels: nil)
    var out = Tensor<T>(zeros: shape)
    var argmax = Tensor<Int64>(zeros: shape)
    try check { err in
        input.withArray { x in
            rois.withArray { r in
                out.withMutableArray { o in
                    argmax.withMutableArray { a in
                        srcnn_roi_pool(x, r, Int64(pooledHeight), Int64(pooledWidth), spatialScale, o, a, err)
                    }
                }
            }
        }
    }
    return (out, argmax)
}

/// Gradient of `roiPool`; `rois` gives each RoI's image and may be nil for a single image.
public func roiPoolBackward<T: FloatElement>(
    _ gradOutput: Tensor<T>, argmax: Tensor<Int64>, inputShape: [Int], rois: Tensor<T>? = nil
) throws -> Tensor<T> {
    var grad = Tensor<T>(zeros: try validShape(inputShape, rank: 4, "input_shape"))
    try check { err in
        gradOutput.withArray { g in
            argmax.withArray { a in
                grad.withMutableArray { gi in
                    if let rois {
                        return rois.withArray { r in srcnn_roi_pool_backward(g, r, a, gi, err) }
                    }
                    return srcnn_roi_pool_backward(g, nil, a, gi, err)
                }
            }
        }
    }
    return grad
}

/// Position-sensitive RoIAlign: (K, C / (pooledH * pooledW), pooledH, pooledW).
public func psRoIAlign<T: FloatElement>(
    _ input: Tensor<T>, rois: Tensor<T>, pooledHeight: Int, pooledWidth: Int, spatialScale: Double = 1,
    samplingRatio: Int = -1
) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: try roiOutputShape(input, rois, pooledHeight, pooledWidth, channels: .positionSensitive))
    try check { err in
        input.withArray { x in
            rois.withArray { r in
                out.withMutableArray { o in
                    srcnn_ps_roi_align(
                        x, r, Int64(pooledHeight), Int64(pooledWidth), spatialScale, Int64(samplingRatio), o, err)
                }
            }
        }
    }
    return out
}

/// Gradient of `psRoIAlign`, of shape `inputShape`.
public func psRoIAlignBackward<T: FloatElement>(
    _ gradOutput: Tensor<T>, rois: Tensor<T>, inputShape: [Int], spatialScale: Double = 1, samplingRatio: Int = -1
) throws -> Tensor<T> {
    var grad = Tensor<T>(zeros: try validShape(inputShape, rank: 4, "input_shape"))
    try check { err in
        gradOutput.withArray { g in
            rois.withArray { r in
                grad.withMutableArray { gi in
                    srcnn_ps_roi_align_backward(g, r, spatialScale, Int64(samplingRatio), gi, err)
                }
            }
        }
    }
    return grad
}

/// Position-sensitive RoIPool: (K, C / (pooledH * pooledW), pooledH, pooledW).
public func psRoIPool<T: FloatElement>(
    _ input: Tensor<T>, rois: Tensor<T>, pooledHeight: Int, pooledWidth: Int, spatialScale: Double = 1
) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: try roiOutputShape(input, rois, pooledHeight, pooledWidth, channels: .positionSensitive))
    try check { err in
        input.withArray { x in
            rois.withArray { r in
                out.withMutableArray { o in
                    srcnn_ps_roi_pool(x, r, Int64(pooledHeight), Int64(pooledWidth), spatialScale, o, err)
                }
            }
        }
    }
    return out
}

/// Gradient of `psRoIPool`, of shape `inputShape`.
public func psRoIPoolBackward<T: FloatElement>(
    _ gradOutput: Tensor<T>, rois: Tensor<T>, inputShape: [Int], spatialScale: Double = 1
) throws -> Tensor<T> {
    var grad = Tensor<T>(zeros: try validShape(inputShape, rank: 4, "input_shape"))
    try check { err in
        gradOutput.withArray { g in
            rois.withArray { r in
                grad.withMutableArray { gi in
                    srcnn_ps_roi_pool_backward(g, r, spatialScale, gi, err)
                }
            }
        }
    }
    return grad
}

/// MultiScaleRoIAlign over FPN levels `features` (each (B, C, H_l, W_l)), for `rois` (K, 5) from images of
/// `imageShapes` (h, w) before padding: (K, C, pooledH, pooledW).
public func multiScaleRoIAlign<T: FloatElement>(
    features: [Tensor<T>], rois: Tensor<T>, imageShapes: [(Int, Int)], pooledHeight: Int, pooledWidth: Int,
    samplingRatio: Int, canonicalScale: Int = 224, canonicalLevel: Int = 4
) throws -> Tensor<T> {
    guard let first = features.first else { throw SwiftRCNNError.invalidValue("features: expected at least one level") }
    var out = Tensor<T>(zeros: try roiOutputShape(first, rois, pooledHeight, pooledWidth, channels: nil))
    let shapes = Tensor<Int64>(imageShapes.flatMap { [Int64($0.0), Int64($0.1)] }, shape: [imageShapes.count, 2])
    // Describe every level; the storage of each tensor stays alive for the duration of the call.
    var levels = [srcnn_array]()
    func describeAll(_ i: Int, _ body: () -> Int32) -> Int32 {
        if i == features.count { return body() }
        return features[i].withArray { a in
            levels.append(a.pointee)
            return describeAll(i + 1, body)
        }
    }
    try check { err in
        describeAll(0) {
            rois.withArray { r in
                shapes.withArray { s in
                    out.withMutableArray { o in
                        srcnn_multiscale_roi_align(
                            levels, Int64(levels.count), r, s, Int64(pooledHeight), Int64(pooledWidth),
                            Int64(samplingRatio), Int64(canonicalScale), Int64(canonicalLevel), o, err)
                    }
                }
            }
        }
    }
    return out
}

enum RoIChannels { case positionSensitive }

/// Output shape of a RoI op, or an error naming the argument when the inputs cannot give one. Full validation
/// happens in the C ABI; this only needs enough to size the output.
func roiOutputShape<T>(
    _ input: Tensor<T>, _ rois: Tensor<T>, _ ph: Int, _ pw: Int, channels: RoIChannels?
) throws
    -> [Int]
{
    guard input.shape.count == 4 else {
        throw SwiftRCNNError.invalidValue("input: expected shape (N, C, H, W), got \(input.shape)")
    }
    guard ph > 0 && pw > 0 else {
        throw SwiftRCNNError.invalidValue("output_size: expected positive sizes, got (\(ph), \(pw))")
    }
    let k = rois.shape.first ?? 0
    var c = input.shape[1]
    if channels == .positionSensitive { c /= ph * pw }
    let (count, overflow) = k.multipliedReportingOverflow(by: c * ph * pw)
    guard !overflow && count <= maxElements else {
        throw SwiftRCNNError.tooLarge("output: (\(k), \(c), \(ph), \(pw)) has too many elements")
    }
    return [k, c, ph, pw]
}

func validShape(_ shape: [Int], rank: Int, _ name: String) throws -> [Int] {
    guard shape.count == rank, shape.allSatisfy({ $0 >= 0 }) else {
        throw SwiftRCNNError.invalidValue("\(name): expected \(rank) non-negative sizes, got \(shape)")
    }
    var total = 1
    for d in shape {
        let (p, o) = total.multipliedReportingOverflow(by: d)
        guard !o && p <= maxElements else { throw SwiftRCNNError.tooLarge("\(name): \(shape) has too many elements") }
        total = p
    }
    return shape
}
