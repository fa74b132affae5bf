import CSwiftRCNN

/// Swift API of the py-faster-rcnn conventions (widths are x2 - x1 + 1), as `swiftrcnn.ops.legacy`.
public enum LegacyOps {
    /// The classic anchor table: (ratios.count * scales.count, 4) around a `baseSize` box at the origin.
    public static func generateAnchors(
        baseSize: Double = 16, ratios: [Double] = [0.5, 1, 2], scales: [Double] = [8, 16, 32]
    ) throws -> Tensor<Double> {
        var out = Tensor<Double>(zeros: [ratios.count * scales.count, 4])
        let r = Tensor(ratios), s = Tensor(scales)
        try check { err in
            r.withArray { r in
                s.withArray { s in
                    out.withMutableArray { o in
                        srcnn_legacy_generate_anchors(baseSize, r, s, o, err)
                    }
                }
            }
        }
        return out
    }

    /// Regression targets (N, 4) of `gtRois` relative to `exRois`.
    public static func bboxTransform<T: FloatElement>(exRois: Tensor<T>, gtRois: Tensor<T>) throws -> Tensor<T> {
        var out = Tensor<T>(zeros: [exRois.shape.first ?? 0, 4])
        try check { err in
            exRois.withArray { e in
                gtRois.withArray { g in
                    out.withMutableArray { o in
                        srcnn_legacy_bbox_transform(e, g, o, err)
                    }
                }
            }
        }
        return out
    }

    /// Boxes (N, 4k) from `boxes` (N, 4) and `deltas` (N, 4k).
    public static func bboxTransformInv<T: FloatElement>(boxes: Tensor<T>, deltas: Tensor<T>) throws -> Tensor<T> {
        var out = Tensor<T>(zeros: deltas.shape)
        try check { err in
            boxes.withArray { b in
                deltas.withArray { d in
                    out.withMutableArray { o in
                        srcnn_legacy_bbox_transform_inv(b, d, o, err)
                    }
                }
            }
        }
        return out
    }

    /// Boxes (N, 4k) clipped to [0, imageWidth - 1] x [0, imageHeight - 1].
    public static func clipBoxes<T: FloatElement>(
        _ boxes: Tensor<T>, imageHeight: Double, imageWidth: Double
    ) throws
        -> Tensor<T>
    {
        var out = Tensor<T>(zeros: boxes.shape)
        try check { err in
            boxes.withArray { b in
                out.withMutableArray { o in
                    srcnn_legacy_clip_boxes(b, imageHeight, imageWidth, o, err)
                }
            }
        }
        return out
    }

    /// NMS of `dets` (N, 5) rows [x1, y1, x2, y2, score] with +1 areas: kept indices by decreasing score.
    public static func nms<T: FloatElement>(_ dets: Tensor<T>, threshold: Double) throws -> Tensor<Int64> {
        var keep = Tensor<Int64>(zeros: [dets.shape.first ?? 0])
        var count: Int64 = 0
        try check { err in
            dets.withArray { d in
                keep.withMutableArray { k in
                    srcnn_legacy_nms(d, threshold, k, &count, err)
                }
            }
        }
        keep.keepRows(Int(count))
        return keep
    }
}
