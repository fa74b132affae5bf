"""swiftrcnn.utils.draw_detections: the pixels it changes (box edges, captions, masks), thresholds, colours, inputs."""
import numpy as np
import pytest
from PIL import Image

from swiftrcnn.utils import class_colour, draw_detections, label_name

H, W = 120, 160


def grey():
    return np.full((3, H, W), 0.5, np.float32)


def result(masks=False):
    out = {"boxes": np.array([[20, 40, 80, 100], [90, 50, 150, 110]], np.float32),
           "labels": np.array([3, 7], np.int64), "scores": np.array([0.9, 0.3], np.float32)}
    if masks:
        m = np.zeros((2, 1, H, W), np.float32)
        m[0, 0, 60:90, 30:70] = 0.8
        m[0, 0, 50:55, 30:70] = 0.4  # below the mask threshold
        m[1, 0, 60:90, 100:140] = 0.9
        out["masks"] = m
    return out


def test_boxes_and_captions_drawn():
    before = np.full((H, W, 3), 128, np.uint8)
    out = np.asarray(draw_detections(grey(), result(), labels={3: "cat", 7: "dog"}))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    colour = class_colour(3)
    # The box's four edges are in the class colour; its inside is untouched.
    assert tuple(out[70, 20]) == colour and tuple(out[70, 79]) == colour
    assert tuple(out[99, 50]) == colour and tuple(out[40, 70]) == colour
    np.testing.assert_array_equal(out[50:90, 30:70], before[50:90, 30:70])
    # The caption band sits above the box, and its text has pixels of another colour.
    band = out[30:40, 20:50].reshape(-1, 3)
    assert (band == colour).all(axis=1).mean() > 0.4
    assert (band != colour).any(axis=1).sum() > 10
    # The 0.3 detection is below the default threshold: nothing of it is drawn.
    np.testing.assert_array_equal(out[:, 100:], before[:, 100:])
    low = np.asarray(draw_detections(grey(), result(), score_threshold=0.2))
    assert tuple(low[80, 90]) == class_colour(7)


def test_masks_overlaid():
    out = np.asarray(draw_detections(grey(), result(masks=True), score_threshold=0.0)).astype(int)
    base = np.full(3, 128)
    for (y, x), label in [((75, 50), 3), ((75, 120), 7)]:
        expected = np.rint(base * 0.55 + np.array(class_colour(label)) * 0.45)
        np.testing.assert_allclose(out[y, x], expected, atol=1)
    np.testing.assert_array_equal(out[52, 50], base)  # probability 0.4: not part of the mask
    np.testing.assert_array_equal(out[95, 50], base)
    # (N, H, W) 0/1 masks, as in a training target, are accepted too.
    target = {"boxes": result()["boxes"], "labels": result()["labels"],
              "masks": (result(masks=True)["masks"][:, 0] > 0.5).astype(np.uint8)}
    drawn = np.asarray(draw_detections(grey(), target)).astype(int)  # no scores: everything is drawn
    np.testing.assert_array_equal(drawn[75, 50], out[75, 50])
    np.testing.assert_array_equal(drawn[75, 120], out[75, 120])


def test_inputs_and_names():
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200
    as_float = rgb.transpose(2, 0, 1) / np.float32(255)
    a = np.asarray(draw_detections(as_float, result(), labels=["bg", "a", "b", "cat"]))
    b = np.asarray(draw_detections(rgb, result(), labels={3: "cat"}))
    c = draw_detections(Image.fromarray(rgb), result(), labels=("bg", "a", "b", "cat"))
    assert isinstance(c, Image.Image) and c.mode == "RGB"
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.asarray(c))
    # Another name changes the caption's pixels only.
    d = np.asarray(draw_detections(rgb, result(), labels={3: "a much longer name"}))
    assert (d != a).any() and (d[40:] == a[40:]).all()
    assert label_name(5, None) == "5" and label_name(5, ["x"]) == "5" and label_name(0, ["x"]) == "x"


def test_colours_stable_and_distinct():
    assert class_colour(1) == class_colour(1)
    colours = {class_colour(i) for i in range(1, 92)}
    assert len(colours) == 91
    near = [np.abs(np.subtract(class_colour(i), class_colour(i + 1))).sum() for i in range(1, 30)]
    assert min(near) > 60


def test_empty_and_bad_results():
    empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
             "scores": np.zeros(0, np.float32), "masks": np.zeros((0, 1, H, W), np.float32)}
    np.testing.assert_array_equal(np.asarray(draw_detections(grey(), empty)), np.full((H, W, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="labels"):
        draw_detections(grey(), {"boxes": np.zeros((2, 4)), "labels": np.zeros(3)})
    with pytest.raises(ValueError, match="masks"):
        draw_detections(grey(), dict(result(), masks=np.zeros((2, 1, 10, 10))))
    with pytest.raises(TypeError, match="result"):
        draw_detections(grey(), [result()])
    with pytest.raises(ValueError, match="image"):
        draw_detections(np.zeros((5, 5)), result())
    with pytest.raises(TypeError, match="labels"):
        draw_detections(grey(), result(), labels="coco")
