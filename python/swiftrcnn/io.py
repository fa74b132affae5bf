"""Reading pictures as the detectors take them: (3, H, W) float32 RGB in [0, 1], torchvision's layout.

    >>> from swiftrcnn.io import read_image
    >>> image = read_image("street.jpg")          # (3, H, W) float32, EXIF orientation applied
    >>> (result,) = model([image])

Decoding uses Pillow (`pip install swiftrcnn[tools]`), imported when first needed: `import swiftrcnn` works with
NumPy alone.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ._typing import PathLike

__all__ = ["read_image", "to_float_image", "IMAGE_EXTENSIONS"]

# File name extensions of the formats `read_image` looks for in folders (Pillow reads these; lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
                    ".pnm", ".jp2", ".tga", ".ico")

_TOOLS_HINT = "pip install swiftrcnn[tools]"


def require(module: str, feature: str) -> Any:
    """Imports an optional dependency by name, or raises ImportError saying which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = {"PIL": "Pillow", "skimage": "scikit-image"}.get(module.split(".")[0], module.split(".")[0])
        raise ImportError(f"{feature} needs {package}, which is not installed: {_TOOLS_HINT}") from e


def _pil_to_array(image: Any) -> npt.NDArray[np.float32]:
    """A decoded PIL image (any mode) as (3, H, W) float32 RGB in [0, 1]; alpha is dropped."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale (PNG, TIFF): Pillow's convert("RGB") would clip it at 255; scale the full range instead.
        grey = np.asarray(image, dtype=np.float64) / 65535.0
        grey = np.clip(grey, 0.0, 1.0).astype(np.float32)
        return np.ascontiguousarray(np.broadcast_to(grey, (3, *grey.shape)))
    if mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.ascontiguousarray(np.broadcast_to(grey, (3, *grey.shape)))
    if mode in ("P", "PA"):
        image = image.convert("RGBA")  # a palette's transparency, without Pillow's warning about it
    if image.mode != "RGB":
        image = image.convert("RGB")
    rgb = np.asarray(image, dtype=np.uint8)
    out = np.empty((3, rgb.shape[0], rgb.shape[1]), np.float32)
    np.divide(rgb.transpose(2, 0, 1), 255.0, out=out, dtype=np.float32)
    return out


def read_image(path: PathLike) -> npt.NDArray[np.float32]:
    """Reads a picture file as a (3, H, W) float32 array of RGB values in [0, 1] (torchvision's
    `read_image(path, ImageReadMode.RGB) / 255`, channel-major).

    The EXIF orientation tag is applied (the array is the picture as a viewer shows it). Greyscale, bilevel and
    palette pictures become RGB (three equal channels for greys); an alpha channel is dropped; 16-bit greyscale is
    scaled by 1/65535; CMYK and YCbCr are converted by Pillow. Multi-frame files (GIF, TIFF) give their first frame.

    Raises ValueError naming `path` when the file cannot be decoded (not a picture, truncated, corrupt), and
    FileNotFoundError / OSError as `open` does when it cannot be read at all."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    Image = require("PIL.Image", "read_image")  # noqa: N806 (the module's name)
    ImageOps = require("PIL.ImageOps", "read_image")  # noqa: N806
    name = os.fsdecode(path)
    with open(name, "rb") as f:
        try:
            with Image.open(f) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
                return _pil_to_array(image)
        except (Image.UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise ValueError(f"{name}: not a picture Pillow can read ({e})") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or corrupt data
            raise ValueError(f"{name}: corrupt or truncated picture ({type(e).__name__}: {e})") from None


def to_float_image(image: Any, name: str = "image") -> npt.NDArray[np.float32]:
    """A picture given as a PIL image, an (H, W, 3) uint8 array or a (3, H, W) float array in [0, 1], as the
    (3, H, W) float32 array the models take."""
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image (Pillow need not be imported here)
        return _pil_to_array(image)
    a = np.asarray(image)
    if a.ndim == 3 and a.dtype == np.uint8 and a.shape[2] in (3, 4):
        return np.ascontiguousarray(a[:, :, :3].transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
    if a.ndim == 3 and a.dtype.kind == "f" and a.shape[0] == 3:
        return np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 2 and a.dtype == np.uint8:
        return np.ascontiguousarray(np.broadcast_to(a, (3, *a.shape)), dtype=np.float32) / np.float32(255)
    raise ValueError(f"{name}: expected a PIL image, an (H, W, 3) uint8 array or a (3, H, W) float array in [0, 1], "
                     f"got {a.dtype} array of shape {a.shape}")
