"""The `swiftrcnn` command.

    swiftrcnn convert IN.pth OUT.safetensors    write a torch.save checkpoint as .safetensors (no torch needed)
    swiftrcnn detect INPUT... --weights FILE    detect objects in pictures; draw them, write COCO results JSON
    swiftrcnn eval --weights FILE --annotations COCO.json --images DIR    COCO AP of a detector on a data set
    swiftrcnn train --annotations COCO.json --images DIR --weights FILE --epochs E --out FILE    train a detector

`detect`, `eval` and `train` take a weight file written by `model.save` (it describes its model) or, with --model
NAME, a torchvision checkpoint of that builder (`train` also `--weights random`). Their logic is `swiftrcnn.tools`
(`detect`, `evaluate`) and `swiftrcnn.training` (`build_model`, `fit`, `load_checkpoint`), callable from Python;
they need `pip install swiftrcnn[tools]`.

Exit status: 0 on success, 1 when an input cannot be read, an output cannot be written or the model cannot be
built (for `detect`, also when some pictures were skipped as unreadable: the others are still processed; for
`train`, also when a loss is not finite), 2 for usage errors. Errors are one line on stderr:
`swiftrcnn <command>: error: ...`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
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


def _real(low: float, strict: bool) -> Callable[[str], float]:
    """An argparse type: a finite float above `low` (or at least `low` unless `strict`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected a number {'>' if strict else '>='} {low:g}, got {text}")
        return value
    return parse


def _count(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


def _train(args: argparse.Namespace) -> int:
    from . import set_num_threads, training
    from .datasets import CocoDetection

    parser = args.parser
    if args.weights is None and args.resume is None:
        parser.error("one of --weights or --resume is required")
    if args.resume is None and args.weights == "random" and args.model is None:
        parser.error("--weights random needs --model NAME (the builder to initialise, e.g. maskrcnn_small)")
    if (args.val_annotations is None) != (args.val_images is None):
        parser.error("--val-annotations and --val-images go together")
    if args.threads is not None:
        set_num_threads(args.threads)
    dataset = CocoDetection(args.images, args.annotations)
    state = None
    if args.resume is not None:
        if args.weights is not None or args.model is not None:
            print(f"swiftrcnn train: note: resuming from {args.resume}; --weights and --model are not read",
                  file=sys.stderr)
        model, state = training.load_checkpoint(args.resume)
        for option, key in (("--num-classes", "num_classes"),
                            ("--trainable-backbone-layers", "trainable_backbone_layers")):
            value = getattr(args, key)
            if value is not None and value != model.config[key]:
                raise ValueError(f"{option}: the resumed run's model has {model.config[key]}, not {value}")
    else:
        if args.num_classes is not None and args.num_classes < dataset.num_classes:
            raise ValueError(f"--num-classes: {args.num_classes} classes (background included), but the data set's "
                             f"category ids reach {dataset.num_classes - 1}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = training.build_model(args.weights, args.model, args.num_classes or dataset.num_classes,
                                         seed=args.seed, trainable_backbone_layers=args.trainable_backbone_layers)
        for warning in caught:
            print("swiftrcnn train: note: " + " ".join(str(warning.message).split()), file=sys.stderr)
    dataset.masks = model.kind == "mask"
    val = None
    if args.val_annotations is not None:
        val = CocoDetection(args.val_images, args.val_annotations, masks=False)
    training.fit(model, dataset, args.epochs, out=args.out, batch_size=args.batch_size, lr=args.lr,
                 momentum=args.momentum, weight_decay=args.weight_decay, lr_steps=args.lr_steps,
                 lr_gamma=args.lr_gamma, warmup_iters=args.warmup_iters, flip=args.flip,
                 aspect_ratio_group_factor=args.aspect_ratio_group_factor, seed=args.seed, resume=state,
                 val_dataset=val, progress=None, log=lambda line: print(line, flush=True))
    print(f"wrote {args.out} (and its training state, {training.state_path(args.out)})")
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

    train = commands.add_parser(
        "train", help="train a detector on a COCO-format data set (torchvision's reference recipe)",
        description="Trains a Faster or Mask R-CNN on a COCO-format data set with torchvision's detection reference "
                    "recipe: SGD with momentum, a linear warm-up, the rate times --lr-gamma at --lr-steps, "
                    "horizontal flips, batches grouped by aspect ratio; labels are the category ids. After each "
                    "epoch it writes the weights to --out (a file detect and eval read) and the training state "
                    "beside it (OUT.state.safetensors), and evaluates on the validation set if given. Every random "
                    "choice is seeded: --resume OUT continues a run exactly as if it had not stopped.",
        epilog="Example: swiftrcnn train --annotations digits/annotations.json --images digits/images --weights "
               "random --model maskrcnn_small --epochs 12 --lr-steps 8 11 --no-flip --out digits.safetensors")
    train.add_argument("--annotations", required=True, metavar="FILE", help="COCO annotation file of the training set")
    train.add_argument("--images", required=True, metavar="DIR", help="folder the file_names are relative to")
    train.add_argument("--weights", metavar="FILE|random",
                       help="the model to start from: a weight file written by model.save (it describes its "
                            "model), with --model a torchvision checkpoint of that builder, or 'random' with --model "
                            "(torchvision's initialisation, from --seed); not needed with --resume")
    train.add_argument("--model", choices=_BUILDERS, metavar="NAME",
                       help="builder of a plain checkpoint or of --weights random: " + ", ".join(_BUILDERS))
    train.add_argument("--num-classes", type=_positive, metavar="K",
                       help="classes, background included (default: the data set's largest category id + 1); "
                            "other than the weights' re-initialises the predictors (fine-tuning)")
    train.add_argument("--epochs", required=True, type=_positive, metavar="E",
                       help="epochs in all (a resumed run continues up to E)")
    train.add_argument("--out", required=True, metavar="FILE",
                       help="weight file written after each epoch (.safetensors), with its training state beside it")
    train.add_argument("--batch-size", type=_positive, metavar="B", help="images per iteration (default 2)")
    train.add_argument("--lr", type=_real(0, True), metavar="LR", help="learning rate (default 0.02 * B / 16)")
    train.add_argument("--momentum", type=_real(0, False), metavar="M", help="SGD momentum (default 0.9)")
    train.add_argument("--weight-decay", type=_real(0, False), metavar="WD", help="weight decay (default 1e-4)")
    train.add_argument("--lr-steps", type=_count(0), nargs="+", metavar="E",
                       help="epochs after which the rate is multiplied by --lr-gamma (default 16 22)")
    train.add_argument("--lr-gamma", type=_real(0, False), metavar="G", help="rate factor at --lr-steps (default 0.1)")
    train.add_argument("--warmup-iters", type=_count(0), metavar="N",
                       help="iterations of linear warm-up from 0.001 x the rate (default min(1000, iterations per "
                            "epoch - 1))")
    train.add_argument("--seed", type=_count(0), metavar="S",
                       help="seeds the initialisation, the model's samplers, the data order and the flips (default: "
                            "the weight file's, else 0)")
    train.add_argument("--resume", metavar="CKPT",
                       help="continue the run that wrote CKPT (its --out) from its next epoch, with its settings "
                            "(options given must match them)")
    train.add_argument("--val-annotations", metavar="FILE", help="COCO annotation file of a validation set")
    train.add_argument("--val-images", metavar="DIR", help="folder of the validation set's pictures")
    train.add_argument("--no-flip", dest="flip", action="store_const", const=False, default=None,
                       help="no horizontal flips (default: each image flipped with probability 0.5)")
    train.add_argument("--aspect-ratio-group-factor", type=_count(-1), metavar="F",
                       help="batch images of similar aspect ratio: 2F+2 groups (default 3; -1: no grouping)")
    train.add_argument("--trainable-backbone-layers", type=int, choices=range(6), metavar="N",
                       help="ResNet-50-FPN layers trained, 0 to 5 (default: the weight file's, 5 for random weights, "
                            "else 3)")
    train.add_argument("--threads", type=_positive, metavar="N", help="threads (default: all cores)")
    train.set_defaults(run=_train, parser=train)

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
