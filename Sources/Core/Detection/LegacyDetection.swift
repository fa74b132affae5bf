import SwiftRCNNOps

// faster-rcnn.pytorch's inference conventions (`Architecture.legacy`), where they differ from torchvision's: the
// "+1" pixel boxes of py-faster-rcnn (`Legacy` in SwiftRCNNOps), its anchor table, its proposal layer
// (`proposal_layer.py`) and its test-time postprocessing (`test_net.py`), as ../shared/seeds/003 describes them.

extension RegionProposalNetwork {
    /// The base size of py-faster-rcnn's anchor table (`generate_anchors(base_size=16)`): anchors are centred on
    /// pixel 7.5 of each stride-16 cell, and an anchor size s is the table's scale s / 16.
    static let legacyBaseSize = 16.0

    /// py-faster-rcnn's cell anchors for `sizes` × `ratios`: `generate_anchors(16, ratios, sizes / 16)`, ratio-major
    /// (torchvision's order too). Not zero-centred: the grid adds the cell's offset (x · stride, y · stride).
    static func legacyCellAnchors(sizes: [Float], ratios: [Float]) -> [Float] {
        let r = ratios.map(Double.init), s = sizes.map { Double($0) / legacyBaseSize }
        var table = [Double](repeating: 0, count: 4 * r.count * s.count)
        r.withUnsafeBufferPointer { rp in
            s.withUnsafeBufferPointer { sp in
                table.withUnsafeMutableBufferPointer { t in
                    Legacy.generateAnchors(
                        baseSize: legacyBaseSize, ratios: rp.baseAddress!, count: r.count, scales: sp.baseAddress!,
                        count: s.count, into: t.baseAddress!)
                }
            }
        }
        return table.map(Float.init)
    }

    /// faster-rcnn.pytorch's proposal layer (test mode), per image on the single level: every anchor decoded with
    /// "+1" boxes (`bbox_transform_inv`, no clamp), clipped to [0, W - 1] × [0, H - 1] of the resized image, boxes
    /// narrower or lower than `legacyMinSize` × the image's scale dropped (py-faster-rcnn's `_filter_boxes`, width
    /// x2 - x1 + 1), the rest sorted by decreasing objectness (ties to the lower anchor index), the first
    /// `preNMSTopN` kept, "+1" NMS at `nmsThresh`, the first `postNMSTopN` kept. Objectness is the sigmoid of the
    /// logit (the foreground probability of a two-way softmax over (background, foreground) logits is the sigmoid
    /// of their difference). Boxes or scores that are NaN are dropped (the original code has no answer for them).
    func legacyProposals(
        heads: [FeatureMap], batchHW: (Int, Int), imageSizes: [(Int, Int)], imageScales: [Double]
    ) -> [(boxes: [Float], scores: [Float])] {
        precondition(heads.count == 1, "RPN: the legacy proposal layer works on one feature map")
        let head = heads[0], a = numAnchors, plane = head.plane, count = plane * a
        let anchors = levelAnchors(level: 0, map: head, batchHW: batchHW)
        var results = [(boxes: [Float], scores: [Float])](repeating: ([], []), count: imageSizes.count)
        results.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forEachChunk(imageSizes.count) { images in
                for n in images {
                    out[n] = legacyFilter(
                        head: head, image: n, anchors: anchors, count: count, imageSize: imageSizes[n],
                        minSize: config.legacyMinSize * Float(imageScales[n]))
                }
            }
        }
        return results
    }

    private func legacyFilter(
        head: FeatureMap, image n: Int, anchors: [Float], count: Int, imageSize: (Int, Int), minSize: Float
    ) -> (boxes: [Float], scores: [Float]) {
        let a = numAnchors, plane = head.plane
        var deltas = [Float](repeating: 0, count: 4 * count), scores = [Float](repeating: 0, count: count)
        head.data.withUnsafeBufferPointer { hb in
            let base = hb.baseAddress! + n * 5 * a * plane
            for i in 0..<count {
                let (p, anchor) = (i / a, i % a)
                scores[i] = 1 / (1 + Float.exp(-base[anchor * plane + p]))
                for c in 0..<4 { deltas[4 * i + c] = base[(a + 4 * anchor + c) * plane + p] }
            }
        }
        var boxes = [Float](repeating: 0, count: 4 * count)
        anchors.withUnsafeBufferPointer { ab in
            deltas.withUnsafeBufferPointer { db in
                boxes.withUnsafeMutableBufferPointer { bb in
                    Legacy.bboxTransformInv(
                        boxes: ab.baseAddress!, deltas: db.baseAddress!, count: count, groups: 1,
                        into: bb.baseAddress!)
                    Legacy.clipBoxes(
                        UnsafePointer(bb.baseAddress!), values: 4 * count, maxY: Float(imageSize.0 - 1),
                        maxX: Float(imageSize.1 - 1), into: bb.baseAddress!)
                }
            }
        }
        var kept = [Int]()
        for i in 0..<count where !scores[i].isNaN {
            let b = boxes[(4 * i)..<(4 * i + 4)]
            guard !b.contains(where: \.isNaN) else { continue }
            let w = boxes[4 * i + 2] - boxes[4 * i] + 1, h = boxes[4 * i + 3] - boxes[4 * i + 1] + 1
            if w >= minSize && h >= minSize { kept.append(i) }
        }
        kept.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        let top = kept.prefix(max(0, config.preNMSTopN))
        let order = Self.legacyNMS(boxes: boxes, scores: scores, rows: Array(top), threshold: Float(config.nmsThresh))
        var outBoxes = [Float](), outScores = [Float]()
        for i in order.prefix(max(0, config.postNMSTopN)) {
            outBoxes += boxes[(4 * i)..<(4 * i + 4)]
            outScores.append(scores[i])
        }
        return (outBoxes, outScores)
    }

    /// `Legacy.nms` over `rows` of `boxes` (flat (n, 4)) with their `scores`, already in decreasing score order
    /// (ties in that order): the kept rows, in order.
    static func legacyNMS(boxes: [Float], scores: [Float], rows: [Int], threshold: Float) -> [Int] {
        guard !rows.isEmpty else { return [] }
        var dets = [Float]()
        dets.reserveCapacity(5 * rows.count)
        for i in rows { dets += [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], scores[i]] }
        var keep = [Int64](repeating: 0, count: rows.count)
        let kept = dets.withUnsafeBufferPointer { d in
            keep.withUnsafeMutableBufferPointer { k in
                Legacy.nms(dets: d.baseAddress!, count: rows.count, threshold: threshold, keep: k.baseAddress!)
            }
        }
        return keep.prefix(kept).map { rows[Int($0)] }
    }
}

extension RoIHeads {
    /// faster-rcnn.pytorch's test-time postprocessing (`test_net.py`) for one image whose proposals are rows
    /// `firstRow ..< firstRow + P` of the predictions: class probabilities by softmax; deltas times the
    /// normalisation stds (1 / `boxWeights`: 0.1, 0.1, 0.2, 0.2), decoded per class with "+1" boxes (no clamp) and
    /// clipped to [0, W - 1] × [0, H - 1]; per class j >= 1, the proposals with probability > `scoreThresh` by
    /// decreasing probability, "+1" NMS at `nmsThresh`; then, when more than `detectionsPerImage` remain, only those
    /// scoring at least the `detectionsPerImage`-th highest score (`max_per_image`; ties at it all stay). The result
    /// is ordered by decreasing score (ties by class, then NMS order). No minimum box size.
    static func legacyDetect(
        scores: [Float], boxRegression: [Float], firstRow: Int, proposals: [Float],
        imageSize: (Int, Int), numClasses: Int, config: RoIHeadsConfig
    ) -> Detections {
        let p = proposals.count / 4
        let threshold = Float(config.scoreThresh)
        let (w0, w1, w2, w3) = config.boxWeights
        let stds: [Float] = [1 / w0, 1 / w1, 1 / w2, 1 / w3]
        var boxes = [Float](), kept = [(score: Float, label: Int64, row: Int)]()
        for j in 1..<max(1, numClasses) {
            let rows = (0..<p).filter { scores[(firstRow + $0) * numClasses + j] > threshold }
            guard !rows.isEmpty else { continue }
            var codes = [Float](), references = [Float]()
            for i in rows {
                let code = 4 * ((firstRow + i) * numClasses + j)
                for c in 0..<4 {
                    codes.append(boxRegression[code + c] * stds[c])
                    references.append(proposals[4 * i + c])
                }
            }
            var decoded = [Float](repeating: 0, count: codes.count)
            codes.withUnsafeBufferPointer { cb in
                references.withUnsafeBufferPointer { rb in
                    decoded.withUnsafeMutableBufferPointer { db in
                        Legacy.bboxTransformInv(
                            boxes: rb.baseAddress!, deltas: cb.baseAddress!, count: rows.count, groups: 1,
                            into: db.baseAddress!)
                        Legacy.clipBoxes(
                            UnsafePointer(db.baseAddress!), values: db.count, maxY: Float(imageSize.0 - 1),
                            maxX: Float(imageSize.1 - 1), into: db.baseAddress!)
                    }
                }
            }
            // NaN boxes out; then by decreasing score, ties in proposal order.
            let classScores = rows.map { scores[(firstRow + $0) * numClasses + j] }
            var local = rows.indices.filter { q in !decoded[(4 * q)..<(4 * q + 4)].contains(where: \.isNaN) }
            local.sort { classScores[$0] > classScores[$1] || (classScores[$0] == classScores[$1] && $0 < $1) }
            let survivors = RegionProposalNetwork.legacyNMS(
                boxes: decoded, scores: classScores, rows: local, threshold: Float(config.nmsThresh))
            for q in survivors {
                kept.append((classScores[q], Int64(j), boxes.count / 4))
                boxes += decoded[(4 * q)..<(4 * q + 4)]
            }
        }
        let limit = max(0, config.detectionsPerImage)
        if kept.count > limit {
            let imageThresh = limit == 0 ? Float.infinity : kept.map(\.score).sorted(by: >)[limit - 1]
            kept = kept.filter { $0.score >= imageThresh }
        }
        // Stable: ties keep class order, then NMS order.
        let order = kept.indices.sorted {
            kept[$0].score > kept[$1].score || (kept[$0].score == kept[$1].score && $0 < $1)
        }
        var result = Detections(boxes: [], scores: [], labels: [])
        for q in order {
            let row = kept[q].row
            result.boxes += boxes[(4 * row)..<(4 * row + 4)]
            result.scores.append(kept[q].score)
            result.labels.append(kept[q].label)
        }
        return result
    }
}
