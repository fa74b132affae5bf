"""What the benchmarks ran on: the CPU, its vector extensions, swiftrcnn's instruction-set path and thread count.

Shared by bench/gemm.py, bench/ops.py and bench/detector.py:

    swiftrcnn = _machine.apply_isa(args.isa)    # before anything is measured; exit code 2 if the CPU lacks it
    print(_machine.header_line(args.threads))   # CPU: AMD EPYC (family 25 model 1, x86_64, avx2 yes, ...) | ...
    meta = dict(**_machine.describe(args.threads), ...)

`apply_isa` sets SWIFTRCNN_ISA before swiftrcnn is imported (so child processes inherit the path too) and then
calls `swiftrcnn.set_isa`. Nothing here imports swiftrcnn except `apply_isa`: `describe` reports the path only if
the caller has imported it.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ISAS = ("generic", "avx2", "avx512")


def fail(message: str):
    """One line on stderr and exit code 2 (as argparse does for a bad argument), no traceback."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


def apply_isa(isa: str | None):
    """Imports swiftrcnn on instruction-set path `isa` (None: the library's default, or SWIFTRCNN_ISA if set).

    Returns the module. Exits with code 2 and a one-line message if the CPU lacks the path.
    """
    if isa:
        os.environ["SWIFTRCNN_ISA"] = isa
    try:
        import swiftrcnn
    except RuntimeError as e:  # swiftrcnn refuses to import when SWIFTRCNN_ISA names a path the CPU lacks
        if "SWIFTRCNN_ISA" not in str(e):
            raise
        fail(str(e).replace(f"SWIFTRCNN_ISA={isa}:", f"--isa {isa}:", 1) if isa else str(e))
    if isa:
        try:
            swiftrcnn.set_isa(isa)
        except ValueError as e:
            fail(f"--isa {isa}: {e}")
    return swiftrcnn


@lru_cache(maxsize=None)
def _cpuinfo() -> tuple[str, frozenset, str]:
    """(model name, flags, "family F model M") of the first processor in /proc/cpuinfo; empty where there is
    none. Family and model tell CPU generations apart where the name does not (a VM's "AMD EPYC")."""
    name, flags, family, model = "", frozenset(), "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not name:
                name = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = frozenset(value.split())
            elif key == "cpu family" and not family:
                family = value.strip()
            elif key == "model" and not model:
                model = value.strip()
            elif not line.strip() and name:  # end of the first processor
                break
    except OSError:
        pass
    return name, flags, f"family {family} model {model}" if family and model else ""


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model: /proc/cpuinfo "model name", else lscpu "Model name" (e.g. on ARM), else platform.processor()."""
    name = _cpuinfo()[0]
    if not name:
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            name = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                         if line.startswith("Model name")), "")
        except (OSError, subprocess.SubprocessError):
            pass
    return name or platform.processor() or platform.machine() or "unknown CPU"


def cpu_generation() -> str:
    """"family F model M" from /proc/cpuinfo (x86), or "" where it is not given."""
    return _cpuinfo()[2]


def cpu_flags() -> dict:
    """Whether the CPU has avx2 and avx512f (from /proc/cpuinfo flags)."""
    flags = _cpuinfo()[1]
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags}


def describe(threads: int | None = None) -> dict:
    """The machine and swiftrcnn's configuration, for a JSON result. `threads`: the benchmark's thread count
    (default: swiftrcnn's, if imported)."""
    sr = sys.modules.get("swiftrcnn")
    if threads is None and sr is not None:
        threads = sr.get_num_threads()
    return dict(
        cpu=cpu_name(),
        cpu_generation=cpu_generation(),
        cpu_flags=cpu_flags(),
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        threads=threads,
        swiftrcnn_isa=sr.get_isa() if sr is not None else None,
        swiftrcnn_supported_isas=sr.supported_isas() if sr is not None else None,
        swiftrcnn=getattr(sr, "__version__", None),
        swiftrcnn_target_cpu=library_target_cpu(sr),
        swiftrcnn_winograd=report_value(sr, "Winograd (3 x 3)"),
    )


def library_target_cpu(sr) -> str | None:
    """The CPU the library outside the per-instruction-set kernels was compiled for ("native", "generic", ...), from
    swiftrcnn's configuration report; None without swiftrcnn."""
    return report_value(sr, "library target CPU")


def report_value(sr, name: str) -> str | None:
    """The value of line `name` of swiftrcnn's configuration report (e.g. "F(2x2, 3x3) (...)" for "Winograd (3 x 3)");
    None without swiftrcnn or that line."""
    if sr is None:
        return None
    for line in sr.config_report().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def header_line(threads: int | None = None) -> str:
    """One line for a table header, e.g. "CPU: AMD EPYC (x86_64, avx2 yes, avx512f no) | swiftrcnn path: avx2
    (supported: generic, avx2), library built for: native | 2 threads"."""
    d = describe(threads)
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in d["cpu_flags"].items())
    generation = f"{d['cpu_generation']}, " if d["cpu_generation"] else ""
    parts = [f"CPU: {d['cpu']} ({generation}{d['machine']}, {flags})"]
    if d["swiftrcnn_isa"] is not None:
        parts.append(f"swiftrcnn path: {d['swiftrcnn_isa']} (supported: {', '.join(d['swiftrcnn_supported_isas'])}), "
                     f"library built for: {d['swiftrcnn_target_cpu']}")
        if d["swiftrcnn_winograd"] and d["swiftrcnn_winograd"].startswith("F(4x4"):
            parts.append("Winograd F(4x4, 3x3) (SWIFTRCNN_WINOGRAD_TILE=4)")
    parts.append(f"{d['threads']} threads")
    return " | ".join(parts)
