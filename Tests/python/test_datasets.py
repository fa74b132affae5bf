"""swiftrcnn.datasets: CocoDetection on hand-written COCO files (polygons, RLEs, crowds, degenerate boxes) and the
synthetic digits data set (reproducible bytes, masks and boxes consistent, readable by pycocotools and
CocoDetection). Real files, real Pillow and pycocotools."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_api
from pycocotools.coco import COCO

from swiftrcnn.datasets import COCO_CATEGORIES, CocoDetection, synthetic


def write_coco(tmp_path, annotations, size=(40, 30), images=None):
    """A one-image COCO data set in tmp_path: a (30, 40) picture and the given annotations."""
    w, h = size
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(folder / "a.png")
    data = {"images": images or [{"id": 7, "file_name": "a.png", "width": w, "height": h}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
            "annotations": annotations}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return folder, path


def test_coco_detection_target_conversion(tmp_path):
    rect = np.zeros((30, 40), np.uint8)
    rect[5:15, 10:30] = 1
    rle = mask_api.encode(np.asfortranarray(rect))
    rle = {"size": rle["size"], "counts": rle["counts"].decode()}
    anns = [
        # a polygon in two parts -> their union
        {"id": 1, "image_id": 7, "category_id": 1, "bbox": [2, 3, 10, 5], "area": 50.0, "iscrowd": 0,
         "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8], [20, 20, 25, 20, 25, 25, 20, 25]]},
        # a compressed RLE, box reaching past the image (clipped)
        {"id": 2, "image_id": 7, "category_id": 3, "bbox": [10, 5, 40, 10], "area": 200.0, "iscrowd": 0,
         "segmentation": rle},
        # a crowd (dropped) and a box without width (dropped)
        {"id": 3, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25.0, "iscrowd": 1,
         "segmentation": rle},
        {"id": 4, "image_id": 7, "category_id": 1, "bbox": [5, 5, 0, 4], "area": 0.0, "iscrowd": 0,
         "segmentation": []},
        # an uncompressed RLE
        {"id": 5, "image_id": 7, "category_id": 3, "bbox": [0, 0, 1, 2], "area": 2.0, "iscrowd": 0,
         "segmentation": {"size": [30, 40], "counts": [0, 2, 1198]}},
    ]
    folder, path = write_coco(tmp_path, anns)
    data = CocoDetection(folder, path)
    assert len(data) == 1 and data.image_ids == [7] and data.categories == {1: "cat", 3: "dog"}
    assert data.num_classes == 4
    image, target = data[0]
    assert image.shape == (3, 30, 40) and image.dtype == np.float32
    np.testing.assert_array_equal(target["boxes"], [[2, 3, 12, 8], [10, 5, 40, 15], [0, 0, 1, 2]])
    assert target["boxes"].dtype == np.float32
    np.testing.assert_array_equal(target["labels"], [1, 3, 3])
    assert target["labels"].dtype == np.int64
    assert target["image_id"] == 7
    np.testing.assert_array_equal(target["area"], [50, 200, 2])
    np.testing.assert_array_equal(target["iscrowd"], [0, 0, 0])
    masks = target["masks"]
    assert masks.shape == (3, 30, 40) and masks.dtype == np.uint8
    expected0 = mask_api.decode(mask_api.merge(mask_api.frPyObjects(anns[0]["segmentation"], 30, 40)))
    np.testing.assert_array_equal(masks[0], expected0)
    assert masks[0][22, 22] == 1 and masks[0][5, 5] == 1  # both parts
    np.testing.assert_array_equal(masks[1], rect)
    assert masks[2].sum() == 2 and masks[2][0, 0] == 1 and masks[2][1, 0] == 1
    # masks=False leaves them out; the COCO object is pycocotools'.
    _, target = CocoDetection(folder, path, masks=False)[-1]
    assert "masks" not in target
    assert isinstance(data.coco, COCO) and data.coco.getAnnIds(imgIds=[7]) == [1, 2, 3, 4, 5]


def test_coco_detection_empty_image_and_transforms(tmp_path):
    folder, path = write_coco(tmp_path, [])
    calls = []

    def transforms(image, target):
        calls.append(target["image_id"])
        return image[:, ::2], target

    image, target = CocoDetection(folder, path, transforms=transforms)[0]
    assert image.shape == (3, 15, 40) and calls == [7]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,) and target["masks"].shape == (0, 30, 40)


def test_coco_detection_errors(tmp_path):
    folder, path = write_coco(tmp_path, [])
    with pytest.raises(ValueError, match="images"):
        CocoDetection(tmp_path / "nowhere", path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="annotations.*bad.json"):
        CocoDetection(folder, bad)
    bad.write_text(json.dumps({"images": [{"file_name": "a.png"}]}))
    with pytest.raises(ValueError, match=r"images\[0\]"):
        CocoDetection(folder, bad)
    data = CocoDetection(folder, path)
    with pytest.raises(IndexError):
        data[1]
    with pytest.raises(TypeError, match="index"):
        data["0"]
    with pytest.raises(TypeError, match="transforms"):
        CocoDetection(folder, path, transforms=3)


def test_coco_categories_are_torchvisions():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    assert list(COCO_CATEGORIES) == FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return root, synthetic.make_scenes(root, 6, seed=3)


def test_synthetic_reproducible(digits, tmp_path):
    root, path = digits
    again = synthetic.make_scenes(tmp_path / "again", 6, seed=3)
    assert again.read_bytes() == path.read_bytes()
    for i in range(1, 7):
        name = f"images/{i:06d}.png"
        assert (tmp_path / "again" / name).read_bytes() == (root / name).read_bytes(), name
    # Scene i depends on (seed, i) alone: a shorter run gives the same first scenes.
    rgb, target = synthetic.scene(3, 4)
    np.testing.assert_array_equal(np.asarray(Image.open(root / "images/000005.png")), rgb)
    other = synthetic.make_scenes(tmp_path / "other", 2, seed=4)
    assert (tmp_path / "other/images/000001.png").read_bytes() != (root / "images/000001.png").read_bytes()
    assert json.loads(other.read_text())["info"]["seed"] == 4


def test_synthetic_masks_boxes_consistent(digits):
    root, path = digits
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"]] == [str(d) for d in range(10)]
    assert [c["id"] for c in data["categories"]] == list(range(1, 11))
    per_image = {}
    for ann in data["annotations"]:
        assert ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= 10
        mask = mask_api.decode(ann["segmentation"])
        assert mask.shape == (240, 320)
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0], "the box is the visible mask's tight box"
        assert ann["area"] == mask.sum()
        assert 28 * 0.5 <= y1 - y0 <= 140
        per_image.setdefault(ann["image_id"], []).append(mask)
    for masks in per_image.values():
        assert 1 <= len(masks) <= 6
        assert np.stack(masks).sum(axis=0).max() == 1, "visible masks do not overlap"
    # The masks are the visible pixels: the image changes colour at most of a mask's pixels' borders.
    rgb, target = synthetic.scene(3, 0)
    for m in target["masks"]:
        inside = rgb[m.astype(bool)].astype(float)
        assert inside.std(axis=0).max() < 40, "a digit is filled with one colour (occluders excluded)"


def test_synthetic_read_by_pycocotools_and_coco_detection(digits):
    root, path = digits
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == list(range(1, 7)) and len(coco.getCatIds()) == 10
    data = CocoDetection(root / "images", path)
    assert len(data) == 6 and data.categories == {i + 1: str(i) for i in range(10)}
    for index in range(len(data)):
        image, target = data[index]
        rgb, expected = synthetic.scene(3, index)
        np.testing.assert_array_equal(image, rgb.transpose(2, 0, 1) / np.float32(255))
        np.testing.assert_array_equal(target["boxes"], expected["boxes"])
        np.testing.assert_array_equal(target["labels"], expected["labels"])
        np.testing.assert_array_equal(target["masks"], expected["masks"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[target["image_id"]]))
        np.testing.assert_array_equal(target["area"], [a["area"] for a in anns])


def test_synthetic_options_and_errors(tmp_path):
    rgb, target = synthetic.scene(0, 0, size=(96, 64), objects=(3, 3), heights=(20, 40), max_rotation=0)
    assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint8
    assert target["masks"].shape[1:] == (64, 96) and len(target["labels"]) <= 3
    with pytest.raises(ValueError, match="heights"):
        synthetic.scene(0, 0, size=(64, 64))
    with pytest.raises(ValueError, match="size"):
        synthetic.scene(0, 0, size=(8, 64))
    with pytest.raises(ValueError, match="objects"):
        synthetic.scene(0, 0, objects=(3, 2))
    with pytest.raises(ValueError, match="count"):
        synthetic.make_scenes(tmp_path, -1)
    with pytest.raises(ValueError, match="seed"):
        synthetic.make_scenes(tmp_path, 1, seed=-1)
