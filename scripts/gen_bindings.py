#!/usr/bin/env python3
"""Generates the CPython bindings of swiftrcnn.h: Sources/CPython/extension/bindings.gen.c and their type stub
python/swiftrcnn/_C.pyi.

The header is where an op is declared: every `int32_t srcnn_NAME(..., char *err)` whose parameters are all of the
kinds below becomes `swiftrcnn._C.NAME`, taking the parameters in the header's order, except `err`, the `int64_t *`
counts (returned: one count as an int, several as a tuple, none as None) and the lengths of `SRCNN_LIST`
parameters (taken from the lists):

    const srcnn_array *x                  input array (any buffer: C-contiguous float32/float64/int64/uint8)
    srcnn_array *x                        output array (writable buffer)
    SRCNN_OPTIONAL ... *x                 either of the above, or None (NULL)
    SRCNN_LIST(n) const srcnn_array *x    a sequence of arrays; its length is passed as `n`
    SRCNN_LIST(n) const char *const *x    a sequence of str; its length is passed as `n`
    int32_t / int64_t / uint64_t / double x, const char *x
    int64_t *x                            a count the function writes

The header's enum constants and integer / string #defines become module constants without the SRCNN_ prefix
(`_C.FLOAT32`, `_C.GENERALIZED_IOU`, `_C.MAX_ELEMENTS`, `_C.VERSION`). Functions of other shapes (the model
handles) are bound by hand in models.c; the script lists them with --verbose.

    python3 scripts/gen_bindings.py           # rewrite the generated file
    python3 scripts/gen_bindings.py --check   # exit 1 if it is not current (CI)
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "Sources/CPython/include/swiftrcnn.h"
OUTPUT = ROOT / "Sources/CPython/extension/bindings.gen.c"
STUB = ROOT / "python/swiftrcnn/_C.pyi"

# The functions bound by hand (module.c, models.c, init.c): their Python signatures for the stub.
HAND_BOUND = """
class TakenArray:
    # An array moved out of a model result (models.c); numpy.asarray wraps it without a copy.
    def __buffer__(self, flags: int, /) -> memoryview: ...

def num_threads() -> int: ...
def kept_memory() -> int: ...
def release_memory() -> int: ...
def isa() -> str: ...
def isa_supported(name: str, /) -> bool: ...
def isa_environment_error() -> str | None: ...
def config_report() -> str: ...
def model_create(config: tuple[Any, ...], names: Sequence[str], arrays: Sequence[Array], /) -> object: ...
def trainer_create(config: tuple[Any, ...], training: tuple[Any, ...], names: Sequence[str],
                   arrays: Sequence[Array], /) -> object: ...
def trainer_forward(trainer: object, images: Sequence[Array], boxes: Sequence[Array], labels: Sequence[Array],
                    masks: Sequence[Array] | None, backward: bool, /) -> object: ...
def trainer_backward(trainer: object, /) -> None: ...
def trainer_zero_grad(trainer: object, /) -> None: ...
def trainer_sgd_step(trainer: object, lr: float, momentum: float, weight_decay: float, /) -> None: ...
def trainer_state(trainer: object, which: int, /) -> object: ...
def trainer_restore(trainer: object, names: Sequence[str], momentum: Sequence[Array], steps: int, /) -> None: ...
def trainer_detect(trainer: object, images: Sequence[Array], /) -> object: ...
def model_transform(model: object, images: Sequence[Array], /) -> object: ...
def model_features(model: object, images: Sequence[Array], /) -> object: ...
def model_detect(model: object, images: Sequence[Array], /) -> object: ...
def initial_state(kind: int, num_classes: int, seed: int, predictors_only: bool, architecture: str | None,
                  /) -> object: ...
def arrays_info(result: object, /) -> list[tuple[str, int, tuple[int, ...]]]: ...
def arrays_read(result: object, index: int, out: Array, /) -> None: ...
def arrays_take(result: object, index: int, /) -> TakenArray: ...
"""
PY_TYPES = {
    "EXT_ARRAY_IN": "Array",
    "EXT_ARRAY_OUT": "Array",
    "EXT_ARRAY_LIST": "Sequence[Array]",
    "EXT_STRING_LIST": "Sequence[str]",
    "EXT_INT32": "int",
    "EXT_INT64": "int",
    "EXT_UINT64": "int",
    "EXT_DOUBLE": "float",
    "EXT_STRING": "str",
}

# C type (annotations removed) -> (marshaller kind, ext_value field)
SCALARS = {
    "int32_t": ("EXT_INT32", "i32"),
    "int64_t": ("EXT_INT64", "i64"),
    "uint64_t": ("EXT_UINT64", "u64"),
    "double": ("EXT_DOUBLE", "f64"),
    "const char *": ("EXT_STRING", "str"),
}


@dataclass
class Param:
    name: str
    kind: str  # EXT_* of marshal.h
    field: str  # ext_value member passed to the function
    optional: bool = False
    list_of: str | None = None  # name of the length parameter of a SRCNN_LIST parameter


@dataclass
class Function:
    name: str
    params: list[Param]
    doc: str


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), text, flags=re.S)


def parse_param(text: str) -> Param | None:
    text = " ".join(text.split())
    optional = "SRCNN_OPTIONAL" in text
    text = text.replace("SRCNN_OPTIONAL", "").strip()
    list_of = None
    m = re.search(r"SRCNN_LIST\((\w+)\)", text)
    if m:
        list_of = m.group(1)
        text = (text[: m.start()] + text[m.end():]).strip()
    m = re.fullmatch(r"(.*?)(\w+)", text)
    if not m:
        return None
    ctype, name = " ".join(m.group(1).replace("*", " * ").split()).replace("* *", "**"), m.group(2)
    if list_of:
        if ctype == "const srcnn_array *":
            return Param(name, "EXT_ARRAY_LIST", "arrays", list_of=list_of)
        if ctype == "const char * const *":
            return Param(name, "EXT_STRING_LIST", "strings", list_of=list_of)
        return None
    if ctype == "const srcnn_array *":
        return Param(name, "EXT_ARRAY_IN", "array", optional)
    if ctype == "srcnn_array *":
        return Param(name, "EXT_ARRAY_OUT", "array", optional)
    if ctype == "int64_t *":
        return Param(name, "EXT_COUNT", "count")
    if ctype == "char *" and name == "err":
        return Param(name, "EXT_ERR", "")
    if ctype in SCALARS and not optional:
        kind, field = SCALARS[ctype]
        return Param(name, kind, field)
    return None


def parse_header(text: str) -> tuple[list[Function], list[str], list[tuple[str, bool]]]:
    """The bindable functions, the names of the others, and the constants (name, C expression)."""
    functions, skipped = [], []
    code = strip_comments(text)
    for m in re.finditer(r"\bint32_t\s+(srcnn_\w+)\s*\(([^;{]*?)\)\s*;", code):
        name, params_text = m.group(1), m.group(2)
        raw = split_params(params_text)
        params = [parse_param(p) for p in raw]
        # A status function: `err` last, after at least one other parameter (functions whose only parameter is
        # `err` return something else: bound by hand).
        if len(raw) < 2 or any(p is None for p in params) or params[-1].kind != "EXT_ERR":
            skipped.append(name)
            continue
        params = params[:-1]
        lengths = {p.list_of for p in params if p.list_of}
        for p in params:
            if p.name in lengths:
                if p.kind != "EXT_INT64":
                    raise SystemExit(f"{name}: list length {p.name} must be int64_t")
                p.kind, p.field = "EXT_LENGTH", "i64"
        doc = doc_comment(text, m.start())
        functions.append(Function(name[len("srcnn_"):], params, doc))
    others = re.findall(r"^\s*(?:const\s+)?(?:void|int64_t|int32_t|char|srcnn_\w+)\s*\**\s*(srcnn_\w+)\s*\(",
                        code, re.M)
    skipped += [n for n in others if n[len("srcnn_"):] not in {f.name for f in functions} and n not in skipped]
    constants = []
    for m in re.finditer(r"^#define\s+SRCNN_(\w+)[ \t]+(\S.*?)\s*$", code, re.M):
        value = m.group(2)
        if value.startswith('"'):
            constants.append((m.group(1), True))
        elif re.fullmatch(r"[\d\s()<>LlUu]+", value):
            constants.append((m.group(1), False))
    for body in re.findall(r"typedef\s+enum\s+\w*\s*\{(.*?)\}", code, re.S):
        for m in re.finditer(r"\bSRCNN_(\w+)\s*=", body):
            constants.append((m.group(1), False))
    return functions, skipped, constants


def split_params(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip() and cur.strip() != "void":
        out.append(cur)
    return out


def doc_comment(text: str, position: int) -> str:
    """The comment block right above the prototype at `position`, as one line."""
    before = text[:position].rstrip()
    if not before.endswith("*/"):
        return ""
    start = before.rfind("/*")
    comment = before[start + 2: -2]
    return " ".join(line.strip().lstrip("*").strip() for line in comment.splitlines()).strip()


def c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def python_signature(f: Function) -> str:
    shown = [p.name + ("=None" if p.optional else "") for p in f.params if p.kind not in ("EXT_COUNT", "EXT_LENGTH")]
    counts = [p.name for p in f.params if p.kind == "EXT_COUNT"]
    result = " -> " + (counts[0] if len(counts) == 1 else f"({', '.join(counts)})") if counts else ""
    return f"{f.name}({', '.join(shown)}){result}"


def generate(functions: list[Function], constants: list[tuple[str, bool]]) -> str:
    lines = [
        "/* Generated by scripts/gen_bindings.py from swiftrcnn.h: do not edit (CI checks it is current).",
        "   One descriptor per function of the header; marshal.c turns Python arguments into the C call. */",
        '#include "marshal.h"',
        "",
    ]
    for f in functions:
        index = {p.name: i for i, p in enumerate(f.params)}
        args = []
        for p in f.params:
            args.append(f"v[{index[p.name]}].{p.field}")
        args.append("err")
        lines.append(f"static int32_t call_{f.name}(ext_value *v, char *err) {{")
        call = f"    return srcnn_{f.name}({', '.join(args)});"
        lines += wrap(call, "        ")
        lines.append("}")
        lines.append(f"static const ext_param params_{f.name}[] = {{")
        for p in f.params:
            flags = " | EXT_OPTIONAL" if p.optional else ""
            length = index[p.list_of] if p.list_of else -1
            lines.append(f"    {{{c_string(p.name)}, {p.kind}{flags}, {length}}},")
        if not f.params:
            lines.append("    {NULL, 0, -1},")
        lines.append("};")
        lines.append("")
    lines.append("const ext_op ext_ops[] = {")
    for f in functions:
        doc = python_signature(f) + ("\n--\n\n" + f.doc if f.doc else "\n--\n\n")
        lines.append(f"    {{{c_string(f.name)}, params_{f.name}, {len(f.params)}, call_{f.name},")
        lines.append(f"     {c_string(doc)}}},")
    lines.append("    {NULL, NULL, 0, NULL, NULL},")
    lines.append("};")
    lines.append("")
    lines.append("const ext_constant ext_constants[] = {")
    for name, is_string in constants:
        value = f"0, SRCNN_{name}" if is_string else f"SRCNN_{name}, NULL"
        lines.append(f"    {{{c_string(name)}, {value}}},")
    lines.append("    {NULL, 0, NULL},")
    lines.append("};")
    return "\n".join(lines) + "\n"


def generate_stub(functions: list[Function], constants: list[tuple[str, bool]]) -> str:
    lines = [
        "# Generated by scripts/gen_bindings.py from swiftrcnn.h: do not edit (CI checks it is current).",
        "from collections.abc import Sequence",
        "from typing import Any",
        "",
        "import numpy.typing as npt",
        "",
        "Array = npt.NDArray[Any]",
        "",
    ]
    for name, is_string in constants:
        lines.append(f"{name}: {'str' if is_string else 'int'}")
    lines.append("")
    for f in functions:
        params = []
        for p in f.params:
            if p.kind in ("EXT_COUNT", "EXT_LENGTH"):
                continue
            t = PY_TYPES[p.kind]
            params.append(f"{p.name}: {t} | None" if p.optional else f"{p.name}: {t}")
        counts = sum(p.kind == "EXT_COUNT" for p in f.params)
        result = "None" if counts == 0 else "int" if counts == 1 else f"tuple[{', '.join(['int'] * counts)}]"
        lines += wrap(f"def {f.name}({', '.join(params + ['/'])}) -> {result}: ...", " " * (len(f.name) + 5))
    lines += HAND_BOUND.strip().splitlines()
    return "\n".join(lines) + "\n"


def wrap(line: str, indent: str, width: int = 120) -> list[str]:
    if len(line) <= width:
        return [line]
    head, _, rest = line.partition("(")
    out, cur = [], head + "("
    for part in rest.split(", "):
        piece = part if cur.endswith("(") else ", " + part
        if len(cur) + len(piece) > width - 1 and not cur.endswith("("):
            out.append(cur + ",")
            cur = indent + part
        else:
            cur += piece
    out.append(cur)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the generated file is not current")
    ap.add_argument("--verbose", action="store_true", help="list the functions bound by hand")
    args = ap.parse_args()
    functions, skipped, constants = parse_header(HEADER.read_text())
    outputs = {OUTPUT: generate(functions, constants), STUB: generate_stub(functions, constants)}
    if args.verbose:
        print("generated:", ", ".join(f.name for f in functions))
        print("bound by hand (models.c, module.c):", ", ".join(skipped))
    stale = [path for path, text in outputs.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not current: run python3 scripts/gen_bindings.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
