"""Builds swiftrcnn: the Swift library (release, Swift runtime linked statically) and the thin CPython extension.

`pip install .` runs `swift build` for the `swiftrcnn_capi` product, copies libswiftrcnn_capi.so into the package and
links `swiftrcnn._C` against it with an `$ORIGIN` rpath, so the installed package needs no LD_LIBRARY_PATH.

Environment:
  SWIFTRCNN_TARGET_CPU   CPU to generate the library's code for (default: `native`, i.e. the building machine;
                         `generic` for a portable build). The GEMM, Winograd and im2col kernels are compiled for
                         every instruction-set path regardless and chosen at run time (see Package.swift).
  SWIFTRCNN_SWIFT_FLAGS  extra flags passed to swiftc.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
LIB_NAME = "swiftrcnn_capi"
LIB_FILE = f"lib{LIB_NAME}.so" if sys.platform != "darwin" else f"lib{LIB_NAME}.dylib"


def swift_build_command():
    # -static-stdlib links the Swift runtime into the shared library itself.
    cmd = ["swift", "build", "-c", "release", "--product", LIB_NAME, "-Xswiftc", "-static-stdlib"]
    for flag in os.environ.get("SWIFTRCNN_SWIFT_FLAGS", "").split():
        cmd += ["-Xswiftc", flag]
    return cmd


def target_cpu():
    return os.environ.get("SWIFTRCNN_TARGET_CPU", "native") or "generic"


def run_swift(cmd, cpu):
    # Package.swift reads SWIFTRCNN_TARGET_CPU and applies it to every module but the per-instruction-set kernels.
    subprocess.check_call(cmd, cwd=ROOT, env={**os.environ, "SWIFTRCNN_TARGET_CPU": cpu})


class SwiftBuildExt(build_ext):
    def run(self):
        cmd = swift_build_command()
        cpu = target_cpu()
        print(f"building the Swift library (SWIFTRCNN_TARGET_CPU={cpu}):", " ".join(cmd), flush=True)
        try:
            run_swift(cmd, cpu)
        except subprocess.CalledProcessError:
            if "SWIFTRCNN_TARGET_CPU" in os.environ or cpu == "generic":
                raise
            # The toolchain may not know this CPU: fall back to a portable build.
            print("retrying with SWIFTRCNN_TARGET_CPU=generic", flush=True)
            cpu = "generic"
            run_swift(cmd, cpu)
        bin_path = subprocess.check_output(
            ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True,
            env={**os.environ, "SWIFTRCNN_TARGET_CPU": cpu},
        ).strip()
        self.build_info = {"target_cpu": cpu, "command": " ".join(cmd)}
        self.swift_bin = Path(bin_path)
        for ext in self.extensions:
            ext.library_dirs.append(str(self.swift_bin))
        super().run()
        # Put the Swift library beside the extension module (also when the extension itself was up to date).
        for ext in self.extensions:
            dest_dir = Path(self.get_ext_fullpath(ext.name)).parent
            dest_dir.mkdir(parents=True, exist_ok=True)
            # Copied beside and renamed over: a process that has the old library loaded keeps its (unlinked) file,
            # where overwriting it in place would crash that process.
            staging = dest_dir / (LIB_FILE + ".new")
            shutil.copy2(self.swift_bin / LIB_FILE, staging)
            os.replace(staging, dest_dir / LIB_FILE)
            (dest_dir / "_build_config.json").write_text(json.dumps(self.build_info, indent=1) + "\n")


extension = Extension(
    "swiftrcnn._C",
    sources=sorted(str(p.relative_to(ROOT)) for p in (ROOT / "Sources/CPython/extension").glob("*.c")),
    include_dirs=["Sources/CPython/include", "Sources/CPython/extension"],
    libraries=[LIB_NAME],
    extra_compile_args=["-std=c11", "-O2", "-Wall"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"] if sys.platform != "darwin" else ["-Wl,-rpath,@loader_path"],
)

def header_version() -> str:
    """SRCNN_VERSION of swiftrcnn.h: the one place the version is written."""
    text = (ROOT / "Sources/CPython/include/swiftrcnn.h").read_text()
    match = re.search(r'^#define SRCNN_VERSION "([^"]+)"', text, re.M)
    if not match:
        raise RuntimeError("swiftrcnn.h: no SRCNN_VERSION")
    return match.group(1)


setup(
    version=header_version(),
    ext_modules=[extension],
    cmdclass={"build_ext": SwiftBuildExt},
)
