"""swiftrcnn: Faster R-CNN and Mask R-CNN ops in Swift, on NumPy arrays, matching torchvision.

    >>> from swiftrcnn import ops
    >>> keep = ops.nms(boxes, scores, iou_threshold=0.5)

Submodules: `swiftrcnn.ops` (torchvision.ops names, arguments and defaults), `swiftrcnn.linalg` (matmul),
`swiftrcnn.models` (torchvision's Faster / Mask R-CNN builders), `swiftrcnn.weights` (torchvision checkpoints
without torch), `swiftrcnn.optim` (SGD and the reference script's schedule for training the models), and the
tools (`pip install swiftrcnn[tools]`; their packages are imported when first used): `swiftrcnn.io` (reading
pictures), `swiftrcnn.utils` (drawing detections), `swiftrcnn.datasets` (COCO-format data sets, synthetic digits),
`swiftrcnn.tools` (the `swiftrcnn detect` / `eval` commands as functions).
"""
from . import _C as _C

_isa_error = _C.isa_environment_error()
if _isa_error is not None:
    raise RuntimeError(_isa_error)

# The submodules load after the check above, so a bad SWIFTRCNN_ISA fails with its own message.
from . import ops, weights  # noqa: E402
from . import linalg  # noqa: E402
from . import models  # noqa: E402
from . import optim  # noqa: E402
from . import datasets, io, tools, utils  # noqa: E402

__version__ = _C.VERSION


def get_num_threads() -> int:
    """Threads every op uses (SWIFTRCNN_NUM_THREADS if set, else all cores)."""
    return _C.num_threads()


def set_num_threads(num_threads: int) -> None:
    """Sets the threads every op uses (1 ... 1024)."""
    _C.set_num_threads(int(num_threads))


def kept_memory() -> int:
    """Bytes of freed buffers the library keeps for reuse.

    A detector's feature maps and scratch buffers of 1 MiB and more go back to a cache when freed and are handed out
    again, so repeated calls reuse memory the process already has instead of mapping fresh pages (which the kernel
    must zero, and which on virtual machines can fault in the host). What the library has in use and keeps together
    stays within twice the most it has had in use at once (or that plus 128 MiB); SWIFTRCNN_BUFFER_CACHE_MB (read at
    start-up) caps what is kept at that many mebibytes (0 turns the cache off). `release_memory()` frees it all.
    """
    return _C.kept_memory()


def release_memory() -> int:
    """Frees the buffers the library keeps for reuse (see `kept_memory`); returns how many bytes that was.

    Like ``torch.cuda.empty_cache()``: memory in use is not affected, and later calls allocate afresh. Each thread's
    matrix-product packing buffer (a few MiB, not counted here) is freed at that thread's next product, which
    allocates one of the size it needs.
    """
    return _C.release_memory()


ISA_PATHS = ("generic", "avx2", "avx512")


def get_isa() -> str:
    """The instruction-set path the GEMM, Winograd and im2col kernels run: "generic", "avx2" or "avx512".

    Chosen at import as the fastest path this CPU supports, or the one SWIFTRCNN_ISA names.
    """
    return _C.isa()


def set_isa(isa: str) -> None:
    """Switches the instruction-set path; ValueError for an unknown name or a path this CPU lacks."""
    if not isinstance(isa, str):
        raise TypeError(f"isa: expected a str, got {type(isa).__name__}")
    _C.set_isa(isa)


def supported_isas() -> list[str]:
    """The paths this CPU can run, slowest first."""
    return [name for name in ISA_PATHS if _C.isa_supported(name)]


def config_report() -> str:
    """What `show_config()` prints, as a string."""
    import json
    import platform
    import sys
    from pathlib import Path

    import numpy

    lines = [_C.config_report()]
    build = Path(__file__).with_name("_build_config.json")
    if build.exists():
        info = json.loads(build.read_text())
        lines.append(f"swift build:         {info.get('command', '?')} "
                     f"(SWIFTRCNN_TARGET_CPU={info.get('target_cpu', '?')})")
    lines.append(f"python:              {sys.version.split()[0]} ({platform.python_implementation()}), "
                 f"numpy {numpy.__version__}")
    return "\n".join(lines)


def show_config() -> None:
    """Prints the CPU model, its instruction sets, the kernel paths and the one in use, threads and the build."""
    print(config_report())


__all__ = ["ops", "weights", "linalg", "models", "optim", "datasets", "io", "tools", "utils", "get_num_threads",
           "set_num_threads", "kept_memory", "release_memory", "get_isa", "set_isa", "supported_isas", "show_config",
           "config_report", "__version__"]
