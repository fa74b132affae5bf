"""The `swiftrcnn` command.

    swiftrcnn convert IN.pth OUT.safetensors    write a torch.save checkpoint as .safetensors (no torch needed)
    swiftrcnn detect INPUT... --weights FILE    detect objects in pictures; draw them, write COCO results JSON
    swiftrcnn eval --weights FILE --annotations COCO.json --images DIR    COCO AP of a detector on a data set

`detect` and `eval` take a weight file written by `model.save` (it describes its model) or, with --model NAME, a
torchvision checkpoint of that builder. Their logic is `swiftrcnn.tools` (`detect`, `evaluate`), callable from
Python; they need `pip install swiftrcnn[tools]`.

Exit status: 0 on success, 1 when an input cannot be read, an output cannot be written or the model cannot be
built (for `detect`, also when some pictures were skipped as unreadable: the others are still processed), 2 for
usage errors. Errors are one line on stderr: `swiftrcnn <command>: error: ...`.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .tools import BUILDERS as _BUILDERS
from .weights import load_state_dict, save_safetensors


def _convert(args: argparse.Namespace) -> int:
    state = load_state_dict(args.input)
    save_safetensors(state, args.output)
    nbytes = sum(array.nbytes for array in state.values())
    print(f"wrote {len(state)} tensors ({nbytes} bytes) to {args.output}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _model(args: argparse.Namespace) -> Any:
    from . import set_num_threads, tools

    if args.threads is not None:
        set_num_threads(args.threads)
    return tools.load_model(args.weights, args.model, args.num_classes)


def _check_model_args(args: argparse.Namespace) -> None:
    if args.weights is None and args.model is not None:
        args.parser.error("--model needs --weights (the built-in model is used when neither is given)")
    if args.num_classes is not None and args.model is None:
        args.parser.error("--num-classes only applies with --model (a swiftrcnn weight file fixes the number of "
                          "classes)")


def _detect(args: argparse.Namespace) -> int:
    from . import tools
    from .utils import label_name

    _check_model_args(args)
    model = _model(args)
    command = "swiftrcnn detect"

    def on_error(path: Path, error: Exception) -> None:
        text = " ".join(str(error).split())
        print(f"{command}: skipped {text if text.startswith(str(path)) else f'{path}: {text}'}", file=sys.stderr)

    def on_result(path: Path, result: dict[str, Any], names: Any) -> None:
        n = len(result["scores"])
        found = ", ".join(f"{label_name(int(label), names)} {score:.2f}"
                          for label, score in zip(result["labels"][:20], result["scores"][:20]))
        more = f", ... ({n - 20} more)" if n > 20 else ""
        print(f"{path}: {n} detected" + (f": {found}{more}" if found else ""))

    quiet = args.out is not None or args.json is not None
    report = tools.detect(model, args.inputs, out=args.out, json_path=args.json, annotations=args.annotations,
                          labels=args.labels, score_threshold=args.score_threshold, batch_size=args.batch_size,
                          progress=None, on_error=on_error, on_result=None if quiet else on_result)
    if args.out is not None:
        pictures = [p for p in report.written if args.json is None or p != Path(args.json)]
        where = pictures[0] if len(pictures) == 1 else args.out
        print(f"wrote {len(pictures)} picture{'s' if len(pictures) != 1 else ''} to {where}")
    if args.json is not None:
        print(f"wrote {report.detections} detections of {len(report.processed)} pictures to {args.json}")
    if report.skipped:
        total = len(report.skipped) + len(report.processed)
        print(f"{command}: error: {len(report.skipped)} of {total} pictures could not be read", file=sys.stderr)
        return 1
    return 0


def _eval(args: argparse.Namespace) -> int:
    from . import tools
    from .datasets import CocoDetection

    _check_model_args(args)
    model = _model(args)
    dataset = CocoDetection(args.images, args.annotations, masks=False)
    stats = tools.evaluate(model, dataset, batch_size=args.batch_size, progress=None, results_path=args.results,
                           verbose=True)
    if args.json_out is not None:
        Path(args.json_out).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return 0


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", metavar="FILE",
                        help="weight file: one written by model.save (it describes its model), or with --model a "
                             "torchvision checkpoint (.pth/.pt or .safetensors); default: the built-in model "
                             "(swiftrcnn.models.default_model(): digits 0-9)")
    parser.add_argument("--model", choices=_BUILDERS, metavar="NAME",
                        help="builder of a plain checkpoint: " + ", ".join(_BUILDERS))
    parser.add_argument("--num-classes", type=_positive, metavar="K",
                        help="with --model: number of classes, background included (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=_positive, default=1, metavar="B",
                        help="pictures per model call (default 1)")
    parser.add_argument("--threads", type=_positive, metavar="N", help="threads (default: all cores)")


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

    detect = commands.add_parser(
        "detect", help="detect objects in pictures: draw them, write COCO results JSON",
        description="Runs a detector over pictures (files, or folders searched recursively for the formats "
                    "Pillow reads) and draws or lists what it finds. Without --out or --json, prints one line per "
                    "picture. Unreadable pictures are reported on stderr and skipped (exit status 1 at the end).",
        epilog="Image ids in --json: a picture's position in the sorted list of inputs, from 1, unless "
               "--annotations names a COCO file whose images' file_name matches the pictures (path relative to "
               "an input folder, else the file name). Example: swiftrcnn detect photos/ --weights "
               "coco.pth --model maskrcnn_resnet50_fpn --out drawn/ --json detections.json")
    detect.add_argument("inputs", nargs="+", metavar="INPUT", help="picture files or folders")
    _model_arguments(detect)
    detect.add_argument("--score-threshold", type=float, default=0.5, metavar="T",
                        help="keep detections scoring at least T, drawn and in --json (default 0.5)")
    detect.add_argument("--out", metavar="DIR|FILE",
                        help="draw the detections: a picture file for one input, else a folder (one picture per "
                             "input, same name and relative path, .jpg for JPEG inputs, .png for others)")
    detect.add_argument("--json", metavar="FILE", help="write the detections in COCO's results format")
    detect.add_argument("--labels", metavar="coco|FILE",
                        help="label names: 'coco' (torchvision's 91 COCO names), or a file (JSON list, JSON "
                             "object id->name, or one name per line from label 0); default: the weight file's "
                             "categories, COCO's for 91-class models, else the label ids")
    detect.add_argument("--annotations", metavar="FILE",
                        help="COCO annotation file giving the image ids of --json by file name")
    detect.set_defaults(run=_detect, parser=detect)

    evaluate = commands.add_parser(
        "eval", help="COCO box (and mask / keypoint) AP of a detector on a COCO-format data set",
        description="Runs the detector over the annotated images and prints pycocotools' COCOeval tables: bbox, "
                    "and segm for Mask R-CNN or keypoints for Keypoint R-CNN. The model's labels are taken as "
                    "the data set's category ids (as for torchvision's COCO models).")
    _model_arguments(evaluate)
    evaluate.add_argument("--annotations", required=True, metavar="FILE", help="COCO annotation file (JSON)")
    evaluate.add_argument("--images", required=True, metavar="DIR", help="folder the file_names are relative to")
    evaluate.add_argument("--json-out", metavar="FILE",
                          help="write the numbers as JSON: {iou_type: {AP, AP50, AP75, APs, APm, APl, AR1, ...}}")
    evaluate.add_argument("--results", metavar="FILE", help="write the detections in COCO's results format")
    evaluate.set_defaults(run=_eval, parser=evaluate)

    # `swiftrcnn train` (issue #12) is to come here: fine-tuning a model on a COCO-format data set with
    # swiftrcnn.models' training mode and swiftrcnn.optim, writing a weight file `detect` and `eval` read.

    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except (ValueError, TypeError, OSError, ImportError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"swiftrcnn {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
