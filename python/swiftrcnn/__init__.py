"""swiftrcnn: Faster R-CNN and Mask R-CNN ops in Swift, on NumPy arrays, matching torchvision.

    >>> from swiftrcnn import ops
    >>> keep = ops.nms(boxes, scores, iou_threshold=0.5)

Submodules: `swiftrcnn.ops` (torchvision.ops names, arguments and defaults), `swiftrcnn.linalg` (matmul),
`swiftrcnn.models` (torchvision's Faster / Mask R-CNN builders), `swiftrcnn.weights` (torchvision checkpoints
without torch).
"""
from . import _C
from . import ops, weights
from . import linalg
from . import models

__version__ = _C.version


def get_num_threads() -> int:
    """Threads every op uses (SWIFTRCNN_NUM_THREADS if set, else all cores)."""
    return _C.num_threads()


def set_num_threads(num_threads: int) -> None:
    """Sets the threads every op uses (1 ... 1024)."""
    _C.set_num_threads(int(num_threads))


__all__ = ["ops", "weights", "linalg", "models", "get_num_threads", "set_num_threads", "__version__"]
