"""bench/detector.py's comparison of an engine's detections with torchvision's: the benchmark's "matched" column is
only as honest as this matching."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import detector  # noqa: E402


def dets(boxes, scores, labels):
    return dict(boxes=np.array(boxes, np.float32), scores=np.array(scores, np.float32),
                labels=np.array(labels, np.int64))


def test_boxes_matched_by_iou_and_label():
    ref = dets([[10, 10, 50, 50], [100, 100, 150, 180]], [0.9, 0.8], [1, 2])
    out = dets([[100.5, 100, 150, 180], [10, 10.2, 50, 50]], [0.8, 0.9], [2, 1])
    a = detector.agreement(ref, out)
    assert a["matched"] == 2
    assert abs(a["max_box_diff"] - 0.5) < 1e-6 and a["max_score_diff"] < 1e-6
    # the same boxes under other labels do not match
    assert detector.agreement(ref, dets(out["boxes"], out["scores"], [1, 2]))["matched"] == 0
    # nor boxes that overlap by less than MATCH_IOU
    assert detector.agreement(ref, dets([[10, 10, 50, 42], [100, 100, 150, 180]], [0.9, 0.8], [1, 2]))["matched"] == 1


def test_slivers_matched_by_coordinates():
    # boxes a hundredth of a pixel wide: a few thousandths apart leave an IoU far below MATCH_IOU
    ref = dets([[12.340, 321.19, 12.350, 322.19], [58.52, 301.0, 58.53, 302.9]], [0.99, 0.98], [79, 79])
    out = dets([[12.343, 321.19, 12.350, 322.19], [58.52, 301.0, 58.533, 302.9]], [0.99, 0.98], [79, 79])
    assert detector.box_iou(ref["boxes"][:1], out["boxes"][:1])[0, 0] < detector.MATCH_IOU
    a = detector.agreement(ref, out)
    assert a["matched"] == 2 and a["max_score_diff"] < 1e-6


def test_nearest_sliver_wins_and_far_ones_do_not_match():
    ref = dets([[206.26, 470.95, 206.27, 472.47]], [0.51], [79])
    # a neighbour 0.009 px off and the true counterpart 0.001 px off: the nearer is taken
    out = dets([[206.269, 470.95, 206.279, 472.47], [206.261, 470.95, 206.27, 472.47]], [0.40, 0.51], [79, 79])
    a = detector.agreement(ref, out)
    assert a["matched"] == 1 and a["max_score_diff"] < 1e-6
    # only a neighbour 0.09 px off (another detection): no match
    far = dets([[206.35, 470.95, 206.36, 472.47]], [0.40], [79])
    assert detector.agreement(ref, far)["matched"] == 0
