"""swiftrcnn.io.read_image on real files written by Pillow: formats, modes, EXIF orientation, corrupt input."""
import numpy as np
import pytest
from PIL import Image

from swiftrcnn.io import read_image, to_float_image


def gradient(h=12, w=20):
    """An (H, W, 3) uint8 picture with every pixel distinct enough to check orientation."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 12, y * 20, (x + y) * 5], axis=2).astype(np.uint8)


def test_png_rgb(tmp_path):
    rgb = gradient()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.float32 and out.shape == (3, 12, 20) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    assert read_image(str(tmp_path / "a.png")).shape == (3, 12, 20)


def test_jpeg_exif_rotation(tmp_path):
    # A wide picture whose EXIF orientation tag says "rotate 90 degrees clockwise to view" (6): read as tall.
    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:8, :16] = (255, 0, 0)  # a red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "r.jpg", quality=95, exif=exif.tobytes())
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (3, 64, 40)
    # Stored top-left ends up at the viewed top-right after a clockwise turn.
    assert out[0, :16, -8:].mean() > 0.8 and out[1, :16, -8:].mean() < 0.2
    assert out[0, :16, :8].mean() < 0.2
    # Without the tag the stored layout is kept.
    Image.fromarray(rgb).save(tmp_path / "plain.jpg", quality=95)
    assert read_image(tmp_path / "plain.jpg").shape == (3, 40, 64)


def test_greyscale_and_bilevel(tmp_path):
    grey = gradient()[:, :, 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 12, 20)
    for c in range(3):
        np.testing.assert_array_equal(out[c], grey / np.float32(255))
    Image.fromarray(grey > 100).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png")[1], (grey > 100).astype(np.float32))


def test_sixteen_bit_greyscale(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(out[2, 0], values[0] / 65535, rtol=1e-6)


def test_rgba_and_palette(tmp_path):
    rgb = gradient()
    rgba = np.concatenate([rgb, np.full((12, 20, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb.transpose(2, 0, 1) / np.float32(255))
    pal = Image.fromarray(rgb).quantize(16)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "p.gif")
    expected = np.asarray(pal.convert("RGB")).transpose(2, 0, 1) / np.float32(255)
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)
    np.testing.assert_array_equal(read_image(tmp_path / "p.gif"), expected)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture at all")
    with pytest.raises(ValueError, match="bad.png"):
        read_image(bad)
    Image.fromarray(gradient(64, 64)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.png")
    with pytest.raises(TypeError, match="path"):
        read_image(3)


def test_to_float_image():
    rgb = gradient()
    expected = rgb.transpose(2, 0, 1) / np.float32(255)
    np.testing.assert_array_equal(to_float_image(rgb), expected)
    np.testing.assert_array_equal(to_float_image(Image.fromarray(rgb)), expected)
    np.testing.assert_array_equal(to_float_image(expected.astype(np.float64)), expected)
    with pytest.raises(ValueError, match="image"):
        to_float_image(np.zeros((4, 5, 3), np.float32))


_WITHOUT_EXTRAS = r"""
import sys
for name in ("PIL", "tqdm", "pycocotools", "skimage"):
    sys.modules[name] = None          # import of these now raises ImportError
import numpy as np
import swiftrcnn
from swiftrcnn import datasets, io, models, ops, tools, utils
from swiftrcnn.datasets import synthetic
assert len(ops.nms(np.array([[0, 0, 1, 1.0]]), np.array([1.0]), 0.5)) == 1
for call in (lambda: io.read_image("x.png"), lambda: utils.draw_detections(np.zeros((3, 4, 4)), {}),
             lambda: synthetic.scene(0), lambda: tools.to_coco_results({"boxes": np.zeros((1, 4)),
             "scores": np.ones(1), "labels": np.ones(1), "masks": np.zeros((1, 1, 4, 4))}, 1)):
    try:
        call()
    except ImportError as e:
        assert "pip install swiftrcnn[tools]" in str(e), e
    else:
        raise AssertionError("expected ImportError")
print("ok")
"""


def test_core_without_optional_packages():
    """`import swiftrcnn` (and the tool modules) needs NumPy only; the tools say which extra to install."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
