"""swiftrcnn vs torchvision, ONNX Runtime and OpenVINO on the full detector: same weights, same 640x480 image.

    python bench/detector.py                       # Faster R-CNN and Mask R-CNN, best of 5
    python bench/detector.py --quick               # best of 2
    python bench/detector.py --isa generic         # swiftrcnn on another instruction-set path (default: the best)
    python bench/detector.py --engines onnxruntime # only some of the extra engines ("" for none)
    python bench/detector.py --models all          # every builder (default: the two ResNet-50-FPN models)
    python bench/detector.py --keep-freed-memory   # glibc keeps freed memory in every engine's process
    python bench/detector.py --same-process        # all engines in this process (as before 2026-12-04)

Times are measured side by side with the same thread count, on the same image (default min_size=800), each engine
in a worker process of its own (so that no engine's memory use or thread pools change another's; `--same-process`
runs them all in this one instead): after a warm-up call each, the engines take turns for N rounds, one call each per
round, timed inside the worker, and each keeps its best; ratios are torchvision's time / the engine's.

ONNX Runtime and OpenVINO run the seeded torchvision model itself: exported with torch.onnx.export (the legacy
TorchScript exporter, opset 17) and run by an onnxruntime.InferenceSession (intra_op_num_threads = --threads,
inter_op_num_threads = 1);
converted by openvino.convert_model from the torch model (from the ONNX file if that fails) and compiled for "CPU"
with INFERENCE_NUM_THREADS = --threads, the latency hint and INFERENCE_PRECISION_HINT = f32: float32 throughout, as
torchvision, ONNX Runtime and swiftrcnn compute. The engine `openvino-default` (not run unless named) is the same
model at OpenVINO's default precision for the CPU, which is bfloat16 on CPUs with AVX512_BF16 or AMX (its detections
then differ from torchvision's). Both choose their own kernels: `--isa` applies to swiftrcnn only. Exported files
are cached under the temp directory (see --cache), keyed by the weights and the versions that produced them. An
engine that is not installed or fails to convert is skipped with a one-line reason. Each engine's detections are
compared with torchvision's: every torchvision detection, by decreasing score, is matched to the unmatched detection
of the same label with the highest IoU, if above 0.9; printed are the detection counts, the matches, the largest
box, score and mask probability differences over matched pairs, and how many matched masks differ by more than 0.1
anywhere.

Peak memory is measured for torchvision and swiftrcnn in one child process per library (torchvision alone; swiftrcnn
alone, without torch imported): the peak resident set size during inference minus the resident size after the model
was built, and the absolute peak. `--isa` picks swiftrcnn's kernel path (SWIFTRCNN_ISA, inherited by the child); a
path the CPU lacks exits with code 2. The header and the JSON name the CPU (model, family/model, avx2 / avx512f),
swiftrcnn's path and the threads. Writes JSON to bench/results/detector.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import _machine
import _models

ROOT = Path(__file__).resolve().parent
ENGINES = ("onnxruntime", "openvino")  # beside torchvision and swiftrcnn, which always run
# Engines run only when named: OpenVINO at its default inference precision (bfloat16 where the CPU has it).
OPTIONAL_ENGINES = ("openvino-default",)
ALL_ENGINES = ENGINES + OPTIONAL_ENGINES  # each named after its Python module, then "-variant" if any
OUTPUTS = dict(fasterrcnn=("boxes", "labels", "scores"), maskrcnn=("boxes", "labels", "scores", "masks"))
ONNX_OPSET = 17
SETTLE_SECONDS = 0.3  # pause before timing each engine: thread pools keep spinning on the cores after a call
MATCH_IOU = 0.9
# ... or every coordinate within this many pixels: random weights give some models (ResNet-50 C4) boxes a hundredth
# of a pixel wide, whose IoU falls below MATCH_IOU when two engines' coordinates differ by a thousandth.
MATCH_PIXELS = 0.02
# Added to the box predictor's class-1 logit: random weights detect nothing above box_score_thresh, so one class is
# favoured to give the heads (and the mask branch) a realistic load of up to 100 detections. 8 rather than more: with
# 12, VGG16's scores were all within 2e-5 of 0.9994, tied at float32 resolution, and which of two tied overlapping
# boxes survives NMS was arbitrary (32 of 36 matched instead of 36).
FAVOURED_CLASS_BIAS = 8.0
MASK_OFF = 0.1  # a matched detection's mask counts as differing if a probability differs by more than this


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--isa", choices=_machine.ISAS, default=None,
                   help="swiftrcnn's instruction-set path (default: the library's, i.e. the best this CPU has)")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help=f"comma-separated engines beside torchvision and swiftrcnn, of {', '.join(ALL_ENGINES)}"
                        f" (default: {', '.join(ENGINES)})")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "swiftrcnn-bench"),
                   help="directory for exported ONNX / OpenVINO files (default: %(default)s)")
    p.add_argument("--json", default=str(ROOT / "results" / "detector.json"))
    p.add_argument("--models", default=",".join(_models.DEFAULT),
                   help=f"comma-separated builders, or 'all': {', '.join(_models.ALL)} (default: %(default)s)")
    p.add_argument("--same-process", action="store_true",
                   help="run every engine in this process instead of one worker process each")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="tell glibc in every worker to keep freed memory in the process (MALLOC_MMAP_THRESHOLD_, "
                        "MALLOC_TRIM_THRESHOLD_): each engine then reuses memory as with an allocator cache of its "
                        "own, which is the faster setting on VMs where fresh memory is slow")
    p.add_argument("--child", nargs=3, metavar=("LIBRARY", "MODEL", "WEIGHTS"), help=argparse.SUPPRESS)
    p.add_argument("--worker", nargs=4, metavar=("ENGINE", "MODEL", "WEIGHTS", "STEM"), help=argparse.SUPPRESS)
    return p.parse_args()


def image(seed=0):
    """A 640 x 480 test image with some structure (smooth blobs), values in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640] / 100.0
    channels = [0.5 + 0.5 * np.sin(x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2) + rng.uniform(0, 6))
                for _ in range(3)]
    return np.clip(np.stack(channels) + rng.normal(0, 0.05, (3, 480, 640)), 0, 1).astype(np.float32)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_kib():
    """Peak resident size of this process image (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_child(library, name, weights_path, threads, isa):
    """Builds one library's model, runs it 3 times, prints JSON with memory figures."""
    img = image()
    info = {}
    if library == "torchvision":
        import torch
        torch.set_num_threads(threads)
        model = _models.torchvision_model(name)
        model.load_state_dict(torch.load(weights_path))
        base = rss_kib()
        with torch.no_grad():
            for _ in range(3):
                model([torch.from_numpy(img)])
    else:
        swiftrcnn = _machine.apply_isa(isa)
        from swiftrcnn import models
        swiftrcnn.set_num_threads(threads)
        info["isa"] = swiftrcnn.get_isa()
        del models
        model = _models.swiftrcnn_model(name, weights_path)
        base = rss_kib()
        for _ in range(3):
            model([img])
        assert "torch" not in sys.modules
    print(json.dumps(dict(after_build_kib=base, peak_kib=peak_kib(), **info)))


def child_memory(library, kind, weights_path, threads, isa):
    cmd = [sys.executable, __file__, "--threads", str(threads), "--child", library, kind, weights_path]
    if isa:
        cmd += ["--isa", isa]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---- one engine per worker process ---------------------------------------------------------------------------------
#
# The parent and a worker talk in lines: the parent writes "run" (the worker answers with the seconds of one call),
# "result PATH" (the worker saves one call's outputs to PATH with numpy.savez and answers "saved") or "quit"; the
# worker first answers "ready INFO-JSON" or "error MESSAGE". The worker's answers start with WORKER_TAG on its stdout;
# anything else an engine prints there is passed on to the parent's stderr.

WORKER_TAG = "@@swiftrcnn-bench "
# glibc: no fresh mapping per allocation below 1 GiB, no trimming of the heap below 4 GiB free (--keep-freed-memory).
KEEP_FREED_MEMORY = dict(MALLOC_MMAP_THRESHOLD_="1073741824", MALLOC_TRIM_THRESHOLD_="4294967296")


def engine_runner(engine, name, weights_path, stem, img, threads, isa):
    """run() -> dict of NumPy outputs for `engine` on model `name` with the weights at `weights_path`; and a
    description. torch is imported only for torchvision itself and for exporting what is not cached under `stem`."""
    kind = _models.kind(name)
    if engine == "swiftrcnn":
        swiftrcnn = _machine.apply_isa(isa)
        swiftrcnn.set_num_threads(threads)
        model = _models.swiftrcnn_model(name, weights_path)
        return (lambda: model([img])[0]), dict(isa=swiftrcnn.get_isa())
    loaded = {}

    def tv_model():
        if "model" not in loaded:
            import torch
            torch.set_num_threads(threads)
            model = _models.torchvision_model(name)
            model.load_state_dict(torch.load(weights_path))
            loaded["model"], loaded["timg"] = model, torch.from_numpy(img)
        return loaded["model"]

    if engine == "torchvision":
        import torch
        model = tv_model()

        def run():
            with torch.no_grad():
                return {k: v.numpy() for k, v in model([loaded["timg"]])[0].items()}
        return run, {}
    onnx_path = stem.with_suffix(".onnx")

    def onnx_file():
        if onnx_path.exists():
            return onnx_path
        return export_onnx(tv_model(), kind, loaded["timg"], onnx_path)

    if engine == "onnxruntime":
        return onnxruntime_engine(onnx_file(), kind, img, threads)
    ir_stem = openvino_ir_stem(stem, __import__("openvino").__version__)
    cached = any(ir_stem.with_name(f"{ir_stem.name}-{src}.xml").exists() for src in ("torch", "onnx"))
    source_model = None if cached else tv_model()
    return openvino_engine(source_model, kind, loaded.get("timg"), onnx_file, ir_stem, threads,
                           float32=engine == "openvino", img=img)


def run_worker(engine, name, weights_path, stem, threads, isa):
    """The worker's side (see WORKER_TAG): builds the engine, makes one warm-up call, then answers the parent."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # engines' own prints go to stderr

    def answer(text):
        out.write(WORKER_TAG + text + "\n")
        out.flush()
    img = image()
    try:
        run, info = engine_runner(engine, name, weights_path, Path(stem), img, threads, isa)
        run()
    except Exception as e:  # noqa: BLE001 - reported to the parent, which skips the engine
        answer("error " + one_line(e))
        return
    if engine == "swiftrcnn":
        assert "torch" not in sys.modules
    answer("ready " + json.dumps(info))
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            t0 = time.perf_counter()
            run()
            answer(repr(time.perf_counter() - t0))
        elif command == "result":
            np.savez(argument, **{k: np.asarray(v) for k, v in run().items()})
            answer("saved")
        else:
            break


class Worker:
    """One engine in a worker process of its own (see WORKER_TAG)."""

    def __init__(self, engine, name, weights_path, stem, threads, isa, keep_freed_memory=False):
        cmd = [sys.executable, __file__, "--threads", str(threads), "--worker", engine, name, weights_path, str(stem)]
        if isa:
            cmd += ["--isa", isa]
        env = dict(os.environ, **KEEP_FREED_MEMORY) if keep_freed_memory else None
        self.engine = engine
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                        env=env)
        status, _, rest = self.answer().partition(" ")
        if status != "ready":
            self.close()
            raise RuntimeError(rest or "the worker failed")
        self.info = json.loads(rest)

    def answer(self):
        for line in self.process.stdout:
            if line.startswith(WORKER_TAG):
                return line[len(WORKER_TAG):].rstrip("\n")
            sys.stderr.write(line)
        raise RuntimeError(f"the {self.engine} worker exited (code {self.process.wait()})")

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.answer()

    def run(self):
        """Seconds of one call, timed in the worker."""
        return float(self.ask("run"))

    def result(self, directory):
        path = os.path.join(directory, f"{self.engine}.npz")
        if self.ask(f"result {path}") != "saved":
            raise RuntimeError(f"the {self.engine} worker did not save its result")
        with np.load(path) as saved:
            return {k: saved[k] for k in saved.files}

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---- ONNX Runtime and OpenVINO: the torchvision model, exported ---------------------------------------------------

def one_line(e):
    """An exception as one short line, for a skip message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def tensor_model(tv_model, kind):
    """tv_model as image tensor -> (boxes, labels, scores[, masks]): the exporters trace tensors in and out, not the
    list of images and list of dicts of the eval-mode forward."""
    import torch

    class Outputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = tv_model

        def forward(self, x):
            out = self.model([x])[0]
            return tuple(out[k] for k in OUTPUTS[kind])

    return Outputs().eval()


def cache_key(tv_model, img):
    """Names the exported files after what produced them: the weights, the input shape, torch and torchvision."""
    import torch
    import torchvision
    h = hashlib.sha1(f"{torch.__version__} {torchvision.__version__} {ONNX_OPSET} {img.shape}".encode())
    for name, v in tv_model.state_dict().items():
        h.update(name.encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def export_onnx(tv_model, kind, timg, path):
    """The ONNX file at `path`, exported now unless cached."""
    import torch
    if not path.exists():
        print(f"  exporting {kind} to {path} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(tensor_model(tv_model, kind), (timg,), str(tmp), dynamo=False,
                                  opset_version=ONNX_OPSET, input_names=["image"], output_names=list(OUTPUTS[kind]))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def onnxruntime_engine(onnx_path, kind, img, threads):
    """run() -> dict of NumPy outputs, on an onnxruntime.InferenceSession of the exported model; and a description."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # the mask-pasting Loop warns about output shapes on every iteration
    session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run():
        return dict(zip(OUTPUTS[kind], session.run(None, {name: img})))
    return run, dict(version=ort.__version__, source="onnx")


def openvino_ir_stem(stem, version):
    """Where OpenVINO's converted files for the model at `stem` and OpenVINO `version` are cached."""
    safe = re.sub(r"[^\w.]+", "_", version)  # the version has "/" in it
    return stem.with_name(f"{stem.name}-openvino-{safe}")


def openvino_engine(tv_model, kind, timg, onnx_file, ir_stem, threads, float32=True, img=None):
    """run() -> dict of NumPy outputs, on the model converted by OpenVINO (from torch; from the ONNX file, which
    onnx_file() returns, if that fails; or the IR cached by an earlier run) and compiled for the CPU, at float32
    precision or (float32=False) OpenVINO's default for the CPU; and a description."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints
    model = source = None
    for src in ("torch", "onnx"):  # a cached IR first
        xml = ir_stem.with_name(f"{ir_stem.name}-{src}.xml")
        if xml.exists() and xml.with_suffix(".bin").exists():
            model, source = ov.Core().read_model(str(xml)), src
            break
    if model is None:
        print(f"  converting {kind} with OpenVINO {ov.__version__} ...", file=sys.stderr, flush=True)
        try:
            import torch
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, source = ov.convert_model(tensor_model(tv_model, kind), example_input=(timg,)), "torch"
        except Exception as e:  # noqa: BLE001 - any converter failure: fall back to the ONNX file
            print(f"openvino: converting {kind} from torch failed ({one_line(e)}); converting the ONNX file",
                  flush=True)
            model, source = ov.convert_model(str(onnx_file())), "onnx"
        xml = ir_stem.with_name(f"{ir_stem.name}-{source}.xml")
        tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.tmp.xml")
        try:
            ov.save_model(model, str(tmp), compress_to_fp16=False)  # keep float32 weights
            tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
            tmp.replace(xml)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_suffix(".bin").unlink(missing_ok=True)
    config = {props.inference_num_threads(): threads, hints.performance_mode(): hints.PerformanceMode.LATENCY}
    if float32:
        config[hints.inference_precision()] = ov.Type.f32
    compiled = ov.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    outputs = compiled.outputs
    if img is None:
        img = timg.numpy()

    def run():
        result = request.infer([img])
        return {k: result[o] for k, o in zip(OUTPUTS[kind], outputs)}
    return run, dict(version=ov.__version__, source=source,
                     threads=compiled.get_property(props.inference_num_threads()),
                     precision=str(compiled.get_property(hints.inference_precision())))


def box_iou(a, b):
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def agreement(ref, out):
    """Compares an engine's detections with torchvision's (`ref`): each torchvision detection, by decreasing score,
    is matched to an unmatched engine detection of the same label: the nearest of those whose coordinates are all
    within MATCH_PIXELS if any, else the one with the highest IoU if above MATCH_IOU."""
    ref = {k: np.asarray(v, np.float64) for k, v in ref.items()}
    out = {k: np.asarray(v, np.float64) for k, v in out.items()}
    rank = None  # how well each engine detection fits each torchvision one; a match needs more than MATCH_IOU
    if len(ref["boxes"]) and len(out["boxes"]):
        apart = np.abs(ref["boxes"][:, None, :] - out["boxes"][None, :, :]).max(axis=2)
        # boxes within MATCH_PIXELS rank first, the nearest highest; then the others by IoU
        rank = np.where(apart <= MATCH_PIXELS, 3.0 - apart, box_iou(ref["boxes"], out["boxes"]))
    used = np.zeros(len(out["boxes"]), bool)
    pairs = []
    for i in np.argsort(-ref["scores"], kind="stable"):
        if rank is None:
            break
        cand = np.where(used | (out["labels"] != ref["labels"][i]), -1.0, rank[i])
        j = int(np.argmax(cand))
        if cand[j] > MATCH_IOU:
            used[j] = True
            pairs.append((i, j))
    i, j = (np.array(v, int) for v in zip(*pairs)) if pairs else (np.zeros(0, int),) * 2

    def max_diff(key):
        if key not in ref or key not in out:
            return None
        return float(np.max(np.abs(ref[key][i] - out[key][j]))) if len(i) else 0.0
    masks_off = None
    if "masks" in ref and "masks" in out:
        masks_off = sum(int(np.max(np.abs(ref["masks"][a] - out["masks"][b])) > MASK_OFF) for a, b in pairs)
    return dict(detections=len(out["boxes"]), torchvision_detections=len(ref["boxes"]), matched=len(pairs),
                max_box_diff=max_diff("boxes"), max_score_diff=max_diff("scores"), max_mask_diff=max_diff("masks"),
                masks_differing=masks_off)


def best_times(runs, repeats, timed_inside=False):
    """Best time per engine over `repeats` rounds in which the engines take turns, one timed call each (after one
    warm-up call each): the machine's speed drifts over minutes on shared hosts, and taking turns makes a slow
    stretch cost every engine alike instead of whichever ran then. With `timed_inside`, each call returns its own
    seconds (a worker's)."""
    if not timed_inside:
        for fn in runs.values():
            time.sleep(SETTLE_SECONDS)
            fn()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            time.sleep(SETTLE_SECONDS)
            t0 = time.perf_counter()
            seconds = fn()
            best[name] = min(best[name], seconds if timed_inside else time.perf_counter() - t0)
    return best


def main():
    args = parse_args()
    if args.child:
        run_child(*args.child, args.threads, args.isa)
        return
    if args.worker:
        run_worker(*args.worker, args.threads, args.isa)
        return
    if args.keep_freed_memory and args.same_process:
        _machine.fail("--keep-freed-memory applies to the workers: it cannot be used with --same-process (set "
                      "MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ for this process instead)")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    model_names = list(_models.ALL) if args.models == "all" else [m.strip() for m in args.models.split(",")
                                                                   if m.strip()]
    for m in model_names:
        if m not in _models.ALL:
            _machine.fail(f"--models: unknown model {m!r}; expected some of {', '.join(_models.ALL)}")
    for e in engines:
        if e not in ALL_ENGINES:
            _machine.fail(f"--engines: unknown engine {e!r}; expected some of {', '.join(ALL_ENGINES)}")
    swiftrcnn = _machine.apply_isa(args.isa)  # exits with code 2 if the CPU lacks the path
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    swiftrcnn.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    img = image()
    rows = []
    cache = Path(args.cache)
    if engines:
        cache.mkdir(parents=True, exist_ok=True)
    names = ["torchvision", "swiftrcnn"] + engines
    versions = dict(torch=torch.__version__, torchvision=torchvision.__version__, swiftrcnn=swiftrcnn.__version__)
    for e in engines:
        try:
            versions[e] = __import__(e.split("-")[0]).__version__
        except ImportError as err:
            versions[e] = None
            print(f"{e}: skipped ({one_line(err)})")
    print(f"detector on one 640x480 image, min_size 800, {args.threads} threads, best of {repeats}, "
          f"{'all engines in one process' if args.same_process else 'each engine in a worker process of its own'}"
          f"{', glibc keeping freed memory' if args.keep_freed_memory else ''}")
    print(_machine.header_line(args.threads))
    print(", ".join(f"{k} {v.split('-')[0]}" for k, v in versions.items() if v))  # openvino's is long
    width = max(len(m) for m in model_names)
    header = f"{'model':<{width}} {'torchvision s':>13} {'swiftrcnn s':>12} {'ratio':>6}" + \
             "".join(f" {e + ' s':>{len(e) + 4}} {'ratio':>6}" for e in engines) + \
             f"  {'tv peak MiB':>11} {'sr peak MiB':>11}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in model_names:
            kind = _models.kind(name)
            torch.manual_seed(0)
            tv_model = _models.torchvision_model(name)
            _models.calibrate_batch_norm(name, tv_model, torch.from_numpy(img))
            with torch.no_grad():
                tv_model.roi_heads.box_predictor.cls_score.bias[1] += FAVOURED_CLASS_BIAS
            weights_path = os.path.join(tmp, f"{name}.pth")
            torch.save(tv_model.state_dict(), weights_path)
            timg = torch.from_numpy(img)
            info, skipped = {}, {}
            stem = cache / f"{name}-{cache_key(tv_model, img)}" if engines else Path(tmp) / name
            onnx_export = {}

            def onnx_file():
                """The exported ONNX file: exported on first use (once, failure included) unless cached."""
                if "result" not in onnx_export:
                    try:
                        onnx_export["result"] = export_onnx(tv_model, kind, timg, stem.with_suffix(".onnx"))
                    except Exception as err:  # noqa: BLE001 - reported by the engine that needs the file
                        onnx_export["result"] = err
                if isinstance(onnx_export["result"], Exception):
                    raise onnx_export["result"]
                return onnx_export["result"]

            for e in engines:
                if versions[e] is None:
                    skipped[e] = "not installed"
            if args.same_process:
                sr_model = _models.swiftrcnn_model(name, weights_path)

                def tv_run():
                    with torch.no_grad():
                        return {k: v.numpy() for k, v in tv_model([timg])[0].items()}

                runs = dict(torchvision=tv_run, swiftrcnn=lambda: sr_model([img])[0])
                for e in engines:
                    if e in skipped:
                        continue
                    try:
                        if e == "onnxruntime":
                            runs[e], info[e] = onnxruntime_engine(onnx_file(), kind, img, args.threads)
                        else:
                            ir_stem = openvino_ir_stem(stem, versions[e])
                            runs[e], info[e] = openvino_engine(tv_model, kind, timg, onnx_file, ir_stem,
                                                               args.threads, float32=e == "openvino")
                        runs[e]()  # fails here rather than in the timing loop
                    except Exception as err:  # noqa: BLE001 - skip the engine, say why
                        runs.pop(e, None)
                        skipped[e] = one_line(err)
                        print(f"{e}: skipped for {name} ({skipped[e]})", flush=True)
                seconds = best_times(runs, repeats)
                ref = tv_run()
                agree = {name: agreement(ref, fn()) for name, fn in runs.items() if name != "torchvision"}
            else:
                workers = {}
                try:
                    for e in ["torchvision", "swiftrcnn"] + [e for e in engines if e not in skipped]:
                        try:
                            # Exported here, so that a worker imports torch only to convert for OpenVINO (which
                            # falls back to the ONNX file, and so does not need it).
                            if e == "onnxruntime":
                                onnx_file()
                            elif e.startswith("openvino"):
                                try:
                                    onnx_file()
                                except Exception:  # noqa: BLE001 - OpenVINO converts from torch first
                                    pass
                            workers[e] = Worker(e, name, weights_path, stem, args.threads, args.isa,
                                                args.keep_freed_memory)
                            info[e] = workers[e].info
                        except Exception as err:  # noqa: BLE001 - skip the engine, say why
                            if e in ("torchvision", "swiftrcnn"):
                                raise
                            skipped[e] = one_line(err)
                            print(f"{e}: skipped for {name} ({skipped[e]})", flush=True)
                    seconds = best_times({e: w.run for e, w in workers.items()}, repeats, timed_inside=True)
                    results = {e: w.result(tmp) for e, w in workers.items()}
                finally:
                    for w in workers.values():
                        w.close()
                ref = results["torchvision"]
                agree = {e: agreement(ref, out) for e, out in results.items() if e != "torchvision"}
                if info["swiftrcnn"].get("isa") != swiftrcnn.get_isa():
                    raise RuntimeError(f"the swiftrcnn worker ran path {info['swiftrcnn'].get('isa')}, not "
                                       f"{swiftrcnn.get_isa()}")
                info.pop("torchvision", None)
                info.pop("swiftrcnn", None)
            tv_mem = child_memory("torchvision", name, weights_path, args.threads, args.isa)
            sr_mem = child_memory("swiftrcnn", name, weights_path, args.threads, args.isa)
            if sr_mem["isa"] != swiftrcnn.get_isa():
                raise RuntimeError(f"the swiftrcnn child ran path {sr_mem['isa']}, not {swiftrcnn.get_isa()}")
            tv_s, sr_s = seconds["torchvision"], seconds["swiftrcnn"]
            row = dict(model=name, torchvision_s=tv_s, swiftrcnn_s=sr_s, ratio=tv_s / sr_s,
                       torchvision_peak_mib=tv_mem["peak_kib"] / 1024, swiftrcnn_peak_mib=sr_mem["peak_kib"] / 1024,
                       torchvision_inference_mib=(tv_mem["peak_kib"] - tv_mem["after_build_kib"]) / 1024,
                       swiftrcnn_inference_mib=(sr_mem["peak_kib"] - sr_mem["after_build_kib"]) / 1024,
                       detections=[agree["swiftrcnn"]["torchvision_detections"], agree["swiftrcnn"]["detections"]],
                       engines={name: dict(seconds=seconds.get(name), ratio=tv_s / seconds[name] if name in seconds
                                           else None, skipped=skipped.get(name), **info.get(name, {}),
                                           **agree.get(name, {}))
                                for name in names})
            for e in engines:
                row[f"{e}_s"] = seconds.get(e)
            rows.append(row)
            cells = "".join(f" {seconds[e]:{len(e) + 4}.3f} {tv_s / seconds[e]:6.2f}" if e in seconds
                            else f" {'-':>{len(e) + 4}} {'-':>6}" for e in engines)
            print(f"{name:<{width}} {tv_s:13.3f} {sr_s:12.3f} {tv_s / sr_s:6.2f}{cells}  "
                  f"{row['torchvision_peak_mib']:11.0f} {row['swiftrcnn_peak_mib']:11.0f}", flush=True)

    print(f"\nagreement with torchvision (each torchvision detection matched, by decreasing score, to one of the same "
          f"label with IoU > {MATCH_IOU} or every coordinate within {MATCH_PIXELS} px):")
    header = f"{'model':<{width}} {'engine':<16} {'detections (tv / engine)':>24} {'matched':>7} " \
             f"{'max|box diff|':>13} {'max|score diff|':>15} {'max|mask diff|':>14}  masks off by > {MASK_OFF}"
    print(header)
    print("-" * len(header))
    fmt = lambda v: f"{v:.1e}" if v is not None else "-"  # noqa: E731
    for row in rows:
        for name, e in row["engines"].items():
            if name == "torchvision" or e.get("matched") is None:
                continue
            print(f"{row['model']:<{width}} {name:<16} {e['torchvision_detections']:>11} / {e['detections']:<10} "
                  f"{e['matched']:7d} {fmt(e['max_box_diff']):>13} {fmt(e['max_score_diff']):>15} "
                  f"{fmt(e['max_mask_diff']):>14}  {'-' if e['masks_differing'] is None else e['masks_differing']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**_machine.describe(args.threads), "repeats": repeats, "python": sys.version.split()[0], **versions,
            "processes": "one for all engines" if args.same_process else "one worker per engine",
            "glibc_keeps_freed_memory": bool(args.keep_freed_memory),
            "onnx_opset": ONNX_OPSET, "match_iou": MATCH_IOU, "match_pixels": MATCH_PIXELS,
            "favoured_class_bias": FAVOURED_CLASS_BIAS}
    out.write_text(json.dumps(dict(threads=args.threads, repeats=repeats, meta=meta, rows=rows), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
