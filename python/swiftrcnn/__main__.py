"""The `swiftrcnn` command.

    swiftrcnn convert IN.pth OUT.safetensors    write a torch.save checkpoint as .safetensors (no torch needed)

Exit status: 0 on success, 1 when the input cannot be read or the output cannot be written, 2 for usage errors.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .weights import load_state_dict, save_safetensors


def _convert(args: argparse.Namespace) -> int:
    state = load_state_dict(args.input)
    save_safetensors(state, args.output)
    nbytes = sum(array.nbytes for array in state.values())
    print(f"wrote {len(state)} tensors ({nbytes} bytes) to {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swiftrcnn", description="swiftrcnn utilities")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    convert = commands.add_parser(
        "convert", help="write a checkpoint (.pth/.pt or .safetensors) as .safetensors",
        description="Reads a state dict saved by torch.save (torch is not needed; the pickle may only rebuild "
                    "tensors) and writes it as .safetensors. bfloat16 tensors become float32.")
    convert.add_argument("input", help="checkpoint to read (.pth, .pt or .safetensors)")
    convert.add_argument("output", help=".safetensors file to write (replaced if it exists)")
    convert.set_defaults(run=_convert)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as e:
        print(f"swiftrcnn {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
