import CSwiftRCNN

// Swift API of the box utilities and suppression ops: torchvision.ops.boxes with Swift names. Boxes are (N, 4)
// tensors of (x1, y1, x2, y2); every function validates through the C ABI and throws `SwiftRCNNError`.

public typealias FloatElement = KernelFloat & TensorElement

/// Area of each box: (N, 4) -> (N,).
public func boxArea<T: FloatElement>(_ boxes: Tensor<T>) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: [boxes.shape.first ?? 0])
    try check { err in boxes.withArray { b in out.withMutableArray { o in srcnn_box_area(b, o, err) } } }
    return out
}

private func pairwise<T: FloatElement>(
    _ kind: srcnn_iou_kind, _ boxes1: Tensor<T>, _ boxes2: Tensor<T>, eps: Double
) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: [boxes1.shape.first ?? 0, boxes2.shape.first ?? 0])
    try check { err in
        boxes1.withArray { a in
            boxes2.withArray { b in
                out.withMutableArray { o in
                    srcnn_box_iou(a, b, Int32(kind.rawValue), eps, o, err)
                }
            }
        }
    }
    return out
}

/// Pairwise IoU: (N, 4), (M, 4) -> (N, M).
public func boxIoU<T: FloatElement>(_ boxes1: Tensor<T>, _ boxes2: Tensor<T>) throws -> Tensor<T> {
    try pairwise(SRCNN_IOU, boxes1, boxes2, eps: 0)
}

/// Pairwise generalized IoU: (N, 4), (M, 4) -> (N, M).
public func generalizedBoxIoU<T: FloatElement>(_ boxes1: Tensor<T>, _ boxes2: Tensor<T>) throws -> Tensor<T> {
    try pairwise(SRCNN_GENERALIZED_IOU, boxes1, boxes2, eps: 0)
}

/// Pairwise distance IoU: (N, 4), (M, 4) -> (N, M).
public func distanceBoxIoU<T: FloatElement>(
    _ boxes1: Tensor<T>, _ boxes2: Tensor<T>, eps: Double = 1e-7
) throws
    -> Tensor<T>
{
    try pairwise(SRCNN_DISTANCE_IOU, boxes1, boxes2, eps: eps)
}

/// Pairwise complete IoU: (N, 4), (M, 4) -> (N, M).
public func completeBoxIoU<T: FloatElement>(
    _ boxes1: Tensor<T>, _ boxes2: Tensor<T>, eps: Double = 1e-7
) throws
    -> Tensor<T>
{
    try pairwise(SRCNN_COMPLETE_IOU, boxes1, boxes2, eps: eps)
}

/// Converts (N, 4) boxes between formats.
public func boxConvert<T: FloatElement>(
    _ boxes: Tensor<T>, from: Boxes.Format, to: Boxes.Format
) throws
    -> Tensor<T>
{
    var out = Tensor<T>(zeros: boxes.shape)
    try check { err in
        boxes.withArray { b in out.withMutableArray { o in srcnn_box_convert(b, from.rawValue, to.rawValue, o, err) } }
    }
    return out
}

/// Clips (N, 4) boxes to an image of `height` x `width`.
public func clipBoxesToImage<T: FloatElement>(_ boxes: Tensor<T>, height: Int, width: Int) throws -> Tensor<T> {
    var out = Tensor<T>(zeros: boxes.shape)
    try check { err in
        boxes.withArray { b in
            out.withMutableArray { o in
                srcnn_clip_boxes_to_image(b, Int64(height), Int64(width), o, err)
            }
        }
    }
    return out
}

/// Indices of the boxes whose sides are both >= `minSize`.
public func removeSmallBoxes<T: FloatElement>(_ boxes: Tensor<T>, minSize: Double) throws -> Tensor<Int64> {
    var keep = Tensor<Int64>(zeros: [boxes.shape.first ?? 0])
    var count: Int64 = 0
    try check { err in
        boxes.withArray { b in keep.withMutableArray { k in srcnn_remove_small_boxes(b, minSize, k, &count, err) } }
    }
    keep.keepRows(Int(count))
    return keep
}

/// Greedy non-maximum suppression: indices of the kept boxes in decreasing score order.
public func nms<T: FloatElement>(boxes: Tensor<T>, scores: Tensor<T>, iouThreshold: Double) throws -> Tensor<Int64> {
    var keep = Tensor<Int64>(zeros: [boxes.shape.first ?? 0])
    var count: Int64 = 0
    try check { err in
        boxes.withArray { b in
            scores.withArray { s in
                keep.withMutableArray { k in
                    srcnn_nms(b, s, iouThreshold, k, &count, err)
                }
            }
        }
    }
    keep.keepRows(Int(count))
    return keep
}

/// Non-maximum suppression per category `idxs` (N,).
public func batchedNMS<T: FloatElement>(
    boxes: Tensor<T>, scores: Tensor<T>, idxs: Tensor<Int64>, iouThreshold: Double
) throws -> Tensor<Int64> {
    var keep = Tensor<Int64>(zeros: [boxes.shape.first ?? 0])
    var count: Int64 = 0
    try check { err in
        boxes.withArray { b in
            scores.withArray { s in
                idxs.withArray { c in
                    keep.withMutableArray { k in
                        srcnn_batched_nms(b, s, c, iouThreshold, k, &count, err)
                    }
                }
            }
        }
    }
    keep.keepRows(Int(count))
    return keep
}

/// Soft-NMS: the selected indices and their decayed scores, in selection order.
public func softNMS<T: FloatElement>(
    boxes: Tensor<T>, scores: Tensor<T>, method: SoftNMS.Method = .gaussian, iouThreshold: Double = 0.3,
    sigma: Double = 0.5, scoreThreshold: Double = 0.001
) throws -> (keep: Tensor<Int64>, scores: Tensor<T>) {
    let n = boxes.shape.first ?? 0
    var keep = Tensor<Int64>(zeros: [n])
    var kept = Tensor<T>(zeros: [n])
    var count: Int64 = 0
    try check { err in
        boxes.withArray { b in
            scores.withArray { s in
                keep.withMutableArray { k in
                    kept.withMutableArray { ks in
                        srcnn_soft_nms(b, s, method.rawValue, iouThreshold, sigma, scoreThreshold, k, ks, &count, err)
                    }
                }
            }
        }
    }
    keep.keepRows(Int(count))
    kept.keepRows(Int(count))
    return (keep, kept)
}
