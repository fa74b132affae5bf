"""swiftrcnn.weights and `swiftrcnn convert`: torch.save checkpoints and .safetensors read without torch (in
subprocesses that block importing it), compared exactly with the tensors torch saved; strict key/shape checks; and
hostile or broken files, which must raise ValueError without executing anything (run in the `isolated` worker or
a subprocess, so that a crash fails the test)."""
import collections
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

import swiftrcnn
import pytest
import safetensors.torch
import torch
import torchvision

from swiftrcnn.weights import check_state_dict, load_state_dict, save_safetensors

# Where the swiftrcnn under test lives (the installed package, or the in-place build of scripts/dev.sh):
# subprocesses must import that one, not the unbuilt source tree.
PYTHON_DIR = Path(swiftrcnn.__file__).resolve().parents[1]

# Run first in every subprocess that must work without torch: importing torch (or any torch.*) fails.
_BLOCK_TORCH = r"""
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""

# argv: a JSON list of [source, expected.npz] pairs; source "mapping:<npz>" loads the npz as a mapping.
_COMPARE = _BLOCK_TORCH + r"""
import json
import numpy as np
from swiftrcnn.weights import load_state_dict
report = []
for source, expected_path in json.loads(sys.argv[1]):
    with np.load(expected_path) as expected_file:
        expected = {k: expected_file[k] for k in expected_file.files}
    loaded = load_state_dict(dict(np.load(source[8:])) if source.startswith("mapping:") else source)
    assert list(loaded) == list(expected) or sorted(loaded) == sorted(expected), (sorted(loaded), sorted(expected))
    for name, want in expected.items():
        got = loaded[name]
        assert isinstance(got, np.ndarray) and got.flags.c_contiguous and got.flags.owndata, name
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape, want.dtype, want.shape)
        assert np.array_equal(got, want), name
    report.append([len(loaded), list(loaded) == list(expected)])
assert "torch" not in sys.modules
print(json.dumps(report))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def compare_without_torch(pairs):
    """Loads each source in a torch-free subprocess and compares it exactly with its .npz; returns per pair
    [number of tensors, whether the key order matched]."""
    proc = subprocess.run([sys.executable, "-c", _COMPARE, json.dumps([[str(s), str(e)] for s, e in pairs])],
                          capture_output=True, text=True, env=_env(), timeout=240)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def swiftrcnn_cli(*args):
    return subprocess.run([sys.executable, "-m", "swiftrcnn", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=240)


def as_numpy(state):
    """The arrays a load must produce: torch's values, bfloat16 as float32."""
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().resolve_neg().numpy() for k, v in state.items()}


def save_expected(state, path):
    np.savez(path, **as_numpy(state))
    return path


@pytest.fixture(scope="module")
def detection_checkpoints(tmp_path_factory):
    """(name, .pth, legacy-format .pth, expected .npz, {name: shape}) for seeded Faster R-CNN and Mask R-CNN state
    dicts (published torchvision weights come in both torch.save formats)."""
    folder = tmp_path_factory.mktemp("detection")
    out = []
    for name, build in [("fasterrcnn", torchvision.models.detection.fasterrcnn_resnet50_fpn),
                        ("maskrcnn", torchvision.models.detection.maskrcnn_resnet50_fpn)]:
        torch.manual_seed(0)
        state = build(weights=None, weights_backbone=None).state_dict()
        assert hasattr(state, "_metadata")
        torch.save(state, folder / f"{name}.pth")
        torch.save(state, folder / f"{name}_legacy.pth", _use_new_zipfile_serialization=False)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        out.append((name, folder / f"{name}.pth", folder / f"{name}_legacy.pth",
                    save_expected(state, folder / f"{name}.npz"), shapes))
    yield out
    shutil.rmtree(folder)  # about 1 GB


def test_torchvision_checkpoints_without_torch(detection_checkpoints):
    pairs, counts = [], []
    for _name, pth, legacy, npz, shapes in detection_checkpoints:
        converted = pth.with_suffix(".safetensors")
        proc = swiftrcnn_cli("convert", pth, converted)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"wrote {len(shapes)} tensors")
        pairs += [(pth, npz), (legacy, npz), (converted, npz), (f"mapping:{npz}", npz)]
        counts += [len(shapes)] * 4
    report = compare_without_torch(pairs)
    assert [count for count, _ in report] == counts
    assert all(report[i][1] for i in [0, 1, 4, 5])  # both .pth formats keep the state dict's order
    # The converted files are ordinary .safetensors: torch's reader agrees.
    for _, pth, _, npz, _ in detection_checkpoints:
        theirs = safetensors.torch.load_file(pth.with_suffix(".safetensors"))
        with np.load(npz) as expected:
            assert sorted(theirs) == sorted(expected.files)
            assert all(np.array_equal(theirs[k].numpy(), expected[k]) for k in expected.files)


def test_loaded_torchvision_state_passes_strict_check(detection_checkpoints):
    (_, pth, _, _, shapes), (*_, mask_shapes) = detection_checkpoints
    state = load_state_dict(pth)
    check_state_dict(state, shapes)
    with pytest.raises(ValueError) as info:
        check_state_dict(state, mask_shapes)
    mask_only = [k for k in mask_shapes if k not in shapes]
    assert mask_only and all(f"'{k}'" in str(info.value) for k in mask_only)


def tensor_zoo():
    base = torch.arange(20.0).reshape(4, 5)
    state = collections.OrderedDict(
        a=base, b=base[:, 1:3], c=base.t(), d=base[1::2, ::2], row=base[2], elem=base[3, 4],
        f64=torch.randn(3, 2, dtype=torch.float64), f16=torch.randn(5, dtype=torch.float16),
        bf16=torch.randn(2, 3).to(torch.bfloat16), i64=torch.tensor([-(2 ** 62), 7, 2 ** 40]),
        i32=torch.tensor([-5, 6], dtype=torch.int32), i16=torch.tensor([-300], dtype=torch.int16),
        i8=torch.tensor([-128, 127], dtype=torch.int8), u8=torch.arange(250, 256, dtype=torch.uint8),
        flags=torch.tensor([[True, False], [False, True]]), scalar=torch.tensor(2.5), long_scalar=torch.tensor(3),
        empty=torch.zeros(0, 3), empty_bool=torch.zeros(2, 0, dtype=torch.bool), slice_of_nothing=base[4:, :],
        expanded=torch.tensor([1.0, 2.0]).expand(3, 2), negated=torch._neg_view(torch.tensor([1.0, -2.0])),
        negated_bf16=torch._neg_view(torch.tensor([1.0, -2.0]).to(torch.bfloat16)),
        param=torch.nn.Parameter(torch.ones(2, 2)), frozen=torch.nn.Parameter(torch.ones(3), requires_grad=False),
    )
    state._metadata = {"": {"version": 1}}
    return state


@pytest.mark.parametrize("zip_format", [True, False])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_dtypes_views_and_shared_storages(tmp_path, protocol, zip_format):
    state = tensor_zoo()
    pth = tmp_path / "zoo.pth"
    torch.save(state, pth, pickle_protocol=protocol, _use_new_zipfile_serialization=zip_format)
    npz = save_expected(state, tmp_path / "zoo.npz")
    converted = tmp_path / "zoo.safetensors"
    assert swiftrcnn_cli("convert", pth, converted).returncode == 0
    report = compare_without_torch([(pth, npz), (converted, npz)])
    assert report[0] == [len(state), True] and report[1][0] == len(state)


def test_training_checkpoint_unwrapped(tmp_path):
    for key in ["model", "state_dict"]:
        state = {"w": torch.randn(2, 3), "b": torch.zeros(3, dtype=torch.int64)}
        torch.save({key: state, "epoch": 7, "lr": 0.1, "history": [1.0, 2.0]}, tmp_path / "ckpt.pth")
        loaded = load_state_dict(tmp_path / "ckpt.pth")
        assert list(loaded) == ["w", "b"]
        np.testing.assert_array_equal(loaded["w"], state["w"].numpy())


def test_mapping_source():
    base = np.arange(12.0).reshape(3, 4)
    source = {"view": base[:, ::2], "fortran": np.asfortranarray(base), "list": [[1, 2], [3, 4]],
              "tensor": torch.arange(3), "readonly": np.frombuffer(b"\x01\x02", np.uint8)}
    loaded = load_state_dict(source)
    assert list(loaded) == list(source)
    for name, array in loaded.items():
        assert array.flags.c_contiguous and array.flags.owndata and array.flags.writeable
        np.testing.assert_array_equal(array, np.asarray(source[name]))
    assert loaded["list"].dtype == np.int64 and loaded["tensor"].dtype == np.int64
    with pytest.raises(TypeError, match="'names'.*dtype <U1"):
        load_state_dict({"names": np.array(["a"])})
    with pytest.raises(TypeError, match="keys must be strings"):
        load_state_dict({1: np.zeros(2)})
    with pytest.raises(TypeError, match="path or a mapping"):
        load_state_dict(42)


def test_save_safetensors_round_trip(tmp_path):
    state = {"x": np.arange(6, dtype=np.float32).reshape(2, 3).T, "s": np.float64(2.0), "e": np.zeros((0, 4)),
             "m": np.array([True, False])}
    path = tmp_path / "out.safetensors"
    save_safetensors(state, path)
    loaded = load_state_dict(path)
    assert sorted(loaded) == sorted(state)
    for name, value in state.items():
        assert loaded[name].dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(loaded[name], value)
    assert os.listdir(tmp_path) == ["out.safetensors"]
    with pytest.raises(TypeError):
        save_safetensors({"o": np.array([object()])}, tmp_path / "bad.safetensors")
    assert os.listdir(tmp_path) == ["out.safetensors"]


def test_save_safetensors_permissions(tmp_path):
    """A new file gets 0666 less the umask, as `open` gives it (not mkstemp's 0600); a replaced one keeps its mode."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "new.safetensors"
        save_safetensors({"x": np.zeros(2)}, path)
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        save_safetensors({"x": np.zeros(2)}, tmp_path / "private.safetensors")
        assert (tmp_path / "private.safetensors").stat().st_mode & 0o777 == 0o600
        path.chmod(0o640)
        save_safetensors({"x": np.ones(2)}, path)
        assert path.stat().st_mode & 0o777 == 0o640
        np.testing.assert_array_equal(load_state_dict(path)["x"], np.ones(2))
    finally:
        os.umask(old)


# --- check_state_dict --------------------------------------------------------------------------------------------

def test_check_state_dict_lists_every_problem():
    expected = {"a": (2, 3), "b": (4,), "c": (1,), "d": (), "e": (5, 5)}
    state = {"a": np.zeros((3, 2)), "b": np.zeros(4), "d": np.zeros(1), "x": np.zeros(1), "y": np.zeros(2)}
    with pytest.raises(ValueError) as info:
        check_state_dict(state, expected)
    message = str(info.value)
    assert "2 missing key(s): 'c', 'e'" in message
    assert "2 unexpected key(s): 'x', 'y'" in message
    assert "'a': expected (2, 3), got (3, 2)" in message and "'d': expected (), got (1,)" in message
    assert "'b'" not in message


@pytest.mark.parametrize("state, expected, fragment", [
    ({"a": np.zeros(1)}, {}, "1 unexpected key(s): 'a'"),
    ({}, {"a": [1]}, "1 missing key(s): 'a'"),
    ({"a": np.zeros((2, 2))}, {"a": [2, 3]}, "'a': expected (2, 3), got (2, 2)"),
])
def test_check_state_dict_single_problem(state, expected, fragment):
    with pytest.raises(ValueError) as info:
        check_state_dict(state, expected)
    assert fragment in str(info.value) and str(info.value).count("\n") == 1


def test_check_state_dict_accepts_matching_state():
    assert check_state_dict({"a": np.zeros((2, 3)), "s": np.float32(1)}, {"a": [2, 3], "s": ()}) is None
    assert check_state_dict({}, {}) is None


# --- hand-made checkpoints ---------------------------------------------------------------------------------------

class FakeStorage:
    """A storage as the pickle names it: key, element count, storage type, or a raw persistent id `pid`."""

    def __init__(self, key, numel, kind=torch.FloatStorage, pid=None):
        self.key, self.numel, self.kind, self.pid = key, numel, kind, pid


class FakeTensor:
    """Pickles like a tensor (torch._utils._rebuild_tensor_v2 on a storage) with any offset, size and stride."""

    def __init__(self, storage, offset, size, stride, metadata=None):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())
        if metadata is not None:
            self.args += (metadata,)

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class Call:
    """Pickles as a call of `func(*args)`: how a hostile checkpoint runs code under an unrestricted unpickler."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Pickler(pickle.Pickler):
    """Writes FakeStorages as torch's persistent ids; the legacy format's carry a sixth field (a view, None)."""

    def __init__(self, file, protocol, legacy=False):
        super().__init__(file, protocol=protocol)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, FakeStorage):
            return None
        return obj.pid or ("storage", obj.kind, obj.key, "cpu", obj.numel) + ((None,) if self.legacy else ())


def dumps(obj, protocol=2, legacy=False):
    buffer = io.BytesIO()
    _Pickler(buffer, protocol, legacy).dump(obj)
    return buffer.getvalue()


def write_checkpoint(path, obj=None, storages=None, protocol=2, pickle_bytes=None, extra=None, archive="archive",
                     byteorder=b"little"):
    """A zip laid out like torch.save's: `<archive>/data.pkl` (obj pickled, or raw bytes), `<archive>/data/<key>`
    for each storage, the byteorder and version records, and any `extra` {name: bytes} entries."""
    if pickle_bytes is None:
        pickle_bytes = dumps(obj, protocol)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{archive}/data.pkl", pickle_bytes)
        zf.writestr(f"{archive}/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"{archive}/data/{key}", data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        zf.writestr(f"{archive}/version", b"3\n")
    return path


FLOATS = np.arange(4, dtype=np.float32).tobytes()


def test_hand_made_checkpoint_loads_like_torch(tmp_path):
    """The helper's files are real checkpoints: torch and we read the same tensors (so the broken variants below
    fail for the reason they were built for)."""
    storage = FakeStorage("0", 4)
    state = collections.OrderedDict(a=FakeTensor(storage, 1, (3,), (1,)), b=FakeTensor(storage, 0, (2, 2), (1, 2)),
                                    n=FakeTensor(storage, 0, (2,), (2,), {"neg": True}))
    path = write_checkpoint(tmp_path / "made.pth", state, {"0": FLOATS}, archive="some_name")
    theirs = torch.load(path, weights_only=True)
    ours = load_state_dict(path)
    assert list(ours) == ["a", "b", "n"]
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name].resolve_neg().numpy())


def run_load(isolated, path, exc_type, *fragments):
    return isolated.expect_error(f"from swiftrcnn.weights import load_state_dict\nload_state_dict({str(path)!r})",
                                 exc_type, *fragments)


# Protocol 0 cannot write tensors (its persistent ids are text), so the nested case starts at protocol 2.
@pytest.mark.parametrize("protocol, target", [
    (protocol, target) for protocol in [0, 2, 4]
    for target in ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "nested os.system", "torch.load"]
    if (protocol, target) != (0, "nested os.system")])
def test_hostile_globals_are_refused_without_running(isolated, tmp_path, protocol, target):
    marker = tmp_path / "MARKER"
    shell = f"touch {marker}"
    payload = {
        "os.system": Call(os.system, shell),
        "builtins.eval": Call(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": Call(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Call(subprocess.Popen, ["touch", str(marker)]),
        # Hidden inside an otherwise valid state dict, after a good tensor.
        "nested os.system": collections.OrderedDict(
            ok=FakeTensor(FakeStorage("0", 4), 0, (4,), (1,)),
            bad=FakeTensor(FakeStorage("0", 4), 0, (4,), (1,), {"neg": Call(os.system, shell)})),
        "torch.load": Call(torch.load, str(marker)),
    }[target]
    path = write_checkpoint(tmp_path / "evil.pth", payload, {"0": FLOATS}, protocol=protocol)
    message = run_load(isolated, path, ValueError, str(path), "refers to global", "refusing to load")
    assert target.split(".")[-1] in message
    assert not marker.exists()


def test_hostile_global_via_cli(tmp_path):
    marker, out = tmp_path / "MARKER", tmp_path / "out.safetensors"
    path = write_checkpoint(tmp_path / "evil.pth", Call(os.system, f"touch {marker}"))
    proc = swiftrcnn_cli("convert", path, out)
    assert proc.returncode == 1
    assert "swiftrcnn convert: error:" in proc.stderr and "refusing to load" in proc.stderr
    assert not marker.exists() and not out.exists()


def malformed_cases():
    s4 = FakeStorage("0", 4)

    def state(*tensors):
        return collections.OrderedDict((f"t{i}", t) for i, t in enumerate(tensors))

    return {
        "numel lie": (state(FakeTensor(FakeStorage("0", 100), 0, (4,), (1,))), "declares 100 elements"),
        "size beyond storage": (state(FakeTensor(s4, 0, (5,), (1,))), "reaches element 4"),
        "offset beyond storage": (state(FakeTensor(s4, 4, (1,), (1,))), "reaches element 4"),
        "stride beyond storage": (state(FakeTensor(s4, 0, (2, 2), (3, 1))), "reaches element 4"),
        "scalar beyond storage": (state(FakeTensor(s4, 9, (), ())), "reaches element 9"),
        "empty tensor offset": (state(FakeTensor(s4, 5, (0,), (1,))), "beyond its storage"),
        "negative stride": (state(FakeTensor(s4, 3, (4,), (-1,))), "non-negative integer, got -1"),
        "negative size": (state(FakeTensor(s4, 0, (-1,), (1,))), "non-negative integer, got -1"),
        "negative offset": (state(FakeTensor(s4, -1, (1,), (1,))), "non-negative integer, got -1"),
        "float size": (state(FakeTensor(s4, 0, (2.0,), (1,))), "got float"),
        "huge size": (state(FakeTensor(s4, 0, (2 ** 70,), (0,))), "non-negative integer"),
        "rank mismatch": (state(FakeTensor(s4, 0, (2, 2), (1,))), "different lengths"),
        "too many dims": (state(FakeTensor(s4, 0, (1,) * 40, (1,) * 40)), "40 entries"),
        "expansion bomb": (state(FakeTensor(s4, 0, (2 ** 40,), (0,))), "far more than their storages' 4"),
        "missing storage": (state(FakeTensor(FakeStorage("7", 4), 0, (4,), (1,))), "storage '7' has no entry"),
        "bad persistent id": (state(FakeTensor(FakeStorage("0", 4, pid=("module", "x")), 0, (4,), (1,))),
                              "persistent id is a 2-tuple"),
        "storage type not allowed": (state(FakeTensor(FakeStorage("0", 2, torch.ComplexFloatStorage), 0, (2,), (1,))),
                                     "'torch.ComplexFloatStorage'"),
        "inconsistent numel": (state(FakeTensor(s4, 0, (4,), (1,)), FakeTensor(FakeStorage("0", 3), 0, (1,), (1,))),
                               "declared with 4 and 3 elements"),
        "unknown metadata": (state(FakeTensor(s4, 0, (4,), (1,), {"sparse": True})), "tensor metadata"),
        "not a dict": ([FakeTensor(s4, 0, (4,), (1,))], "holds a list, not a state dict"),
        "non-tensor entries": (collections.OrderedDict(w=FakeTensor(s4, 0, (4,), (1,)), step=3, name="x"),
                               "not tensors: 'step' (int), 'name' (str)"),
        "non-string key": ({1: FakeTensor(s4, 0, (4,), (1,))}, "keys must be strings"),
        "tuple dict key": ({(1, 2): 3}, "dict key is a tuple"),
        "parameter of non-tensor": (state(Call(torch._utils._rebuild_parameter, 5, False, collections.OrderedDict())),
                                    "parameter wraps a int"),
        "ordered dict with items": (Call(collections.OrderedDict, [("a", 1)]), "built with arguments"),
    }


@pytest.mark.parametrize("case", list(malformed_cases()))
def test_malformed_state_dicts(isolated, tmp_path, case):
    obj, fragment = malformed_cases()[case]
    path = write_checkpoint(tmp_path / "bad.pth", obj, {"0": FLOATS})
    run_load(isolated, path, ValueError, str(path), fragment)


def test_many_views_of_one_storage_are_bounded(isolated, tmp_path):
    """Tensors may hold 4 x their storages' elements + 2**27 in all: 133 full views of a 2**20-element storage are
    one view too many; a few views (tied weights) load."""
    numel = 1 << 20
    storage = FakeStorage("0", numel)
    for count in [133, 10]:
        views = collections.OrderedDict((f"v{i}", FakeTensor(storage, 0, (numel,), (1,))) for i in range(count))
        write_checkpoint(tmp_path / f"views{count}.pth", views, {"0": bytes(4 * numel)})
    run_load(isolated, tmp_path / "views133.pth", ValueError, f"hold {133 * numel} elements, far more than")
    assert len(load_state_dict(tmp_path / "views10.pth")) == 10


NESTED = 100_000


@pytest.mark.parametrize("pickle_bytes, fragment", [
    (b"\x80\x02\x82\x01.", "opcode b'\\x82'"),                             # EXT1: the extension registry
    (b"\x80\x02cos\nsystem\n)\x81.", "'os.system'"),                     # NEWOBJ on a refused global
    (b"\x80\x02]q\x00(K\x01i__main__\nX\n.", "opcode b'i'"),             # INST
    (b"\x80\x04\x8f\x94.", "opcode b'\\x8f'"),                           # EMPTY_SET
    (b"\x80\x02}}b.", "state of a dict"),                                # BUILD on a plain dict
    (b"\x80\x02}(K\x01u.", "odd number"),                                # SETITEMS with a key and no value
    (b"\x80\x06}.", "unsupported pickle protocol"),
    (b"\x80\x02}q\x00X\x01\x00\x00\x00a", "data.pkl is corrupt"),        # truncated: no STOP
    (b"\x80\x02h\x05.", "data.pkl is corrupt"),                          # memo entry that was never stored
    (b"\xff\xfe", "opcode b'\\xff'"),
    (b"", "data.pkl is corrupt"),
    (b"\x80\x02" + b"]" * NESTED + b"a" * (NESTED - 1) + b".", "holds a list"),  # deeply nested lists
])
def test_malformed_pickles(isolated, tmp_path, pickle_bytes, fragment):
    path = write_checkpoint(tmp_path / "bad.pth", pickle_bytes=pickle_bytes)
    run_load(isolated, path, ValueError, str(path), fragment)


def test_malformed_archives(isolated, tmp_path):
    good = {"0": FLOATS}
    state = collections.OrderedDict(a=FakeTensor(FakeStorage("0", 4), 0, (4,), (1,)))
    no_pickle = tmp_path / "arrays.npz"
    np.savez(no_pickle, a=np.zeros(2))
    run_load(isolated, no_pickle, ValueError, "no '<archive>/data.pkl' entry")
    two = write_checkpoint(tmp_path / "two.pth", state, good, extra={"other/data.pkl": b"\x80\x02}."})
    run_load(isolated, two, ValueError, "several pickles")
    order = write_checkpoint(tmp_path / "order.pth", state, good, byteorder=b"middle")
    run_load(isolated, order, ValueError, "byteorder record is b'middle'")


SYS_INFO = {"protocol_version": torch.serialization.PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
LEGACY_HEADER = (torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION, SYS_INFO)


def write_legacy(path, obj, storages=(), keys=None, header=LEGACY_HEADER, protocol=2):
    """torch.save's legacy layout: pickles of the header, the object and the storage keys, then each storage as
    (element count, bytes); `storages` is [(key, element count, bytes)] in file order."""
    parts = [dumps(item, protocol) for item in header]
    parts += [dumps(obj, protocol, legacy=True), dumps([k for k, _, _ in storages] if keys is None else keys)]
    for _, numel, data in storages:
        parts += [numel.to_bytes(8, "little", signed=True), data]
    path.write_bytes(b"".join(parts))
    return path


def legacy_state(numel=4, key="0"):
    storage = FakeStorage(key, numel)
    return collections.OrderedDict(a=FakeTensor(storage, 1, (3,), (1,)), b=FakeTensor(storage, 0, (2, 2), (1, 2)))


def test_hand_made_legacy_checkpoint_loads_like_torch(tmp_path):
    path = write_legacy(tmp_path / "legacy.pth", legacy_state(), [("0", 4, FLOATS)])
    theirs = torch.load(path, weights_only=True)
    ours = load_state_dict(path)
    assert list(ours) == ["a", "b"]
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name].numpy())


def legacy_cases():
    good = [("0", 4, FLOATS)]
    return {
        "hostile object": (dict(obj=Call(os.system, "true")), "'posix.system'"),
        "hostile header": (dict(header=(Call(os.system, "true"),) + LEGACY_HEADER[1:]), "'posix.system'"),
        "hostile key list": (dict(keys=Call(os.system, "true")), "'posix.system'"),
        "not torch's magic": (dict(header=(12345,) + LEGACY_HEADER[1:]), "no magic number"),
        "protocol version": (dict(header=LEGACY_HEADER[:1] + (1000, SYS_INFO)), "legacy protocol version 1000"),
        "big endian": (dict(header=LEGACY_HEADER[:2] + ({**SYS_INFO, "little_endian": False},)), "big-endian"),
        "storage in header": (dict(header=(FakeStorage("0", 4),) + LEGACY_HEADER[1:]), "key-list pickle refers"),
        "zip persistent id": (dict(obj=collections.OrderedDict(a=FakeTensor(
            FakeStorage("0", 4, pid=("storage", torch.FloatStorage, "0", "cpu", 4)), 0, (4,), (1,)))),
            "persistent id is a 5-tuple"),
        "storage view": (dict(obj=collections.OrderedDict(a=FakeTensor(
            FakeStorage("0", 4, pid=("storage", torch.FloatStorage, "0", "cpu", 4, ("v", 0, 2))), 0, (2,), (1,)))),
            "storage views"),
        "element count mismatch": (dict(storages=[("0", 5, FLOATS + FLOATS[:4])]),
                                   "declared with 4 elements but its data holds 5"),
        "key not listed": (dict(keys=[]), "storage '0' has no data"),
        "unused key": (dict(keys=["0", "9"], storages=good + [("9", 1, FLOATS[:4])]), "'9', which no tensor uses"),
        "key list not strings": (dict(keys=[0]), "not a list of strings"),
        "repeated key": (dict(keys=["0", "0"], storages=good + good), "repeats keys"),
        "truncated data": (dict(storages=[("0", 4, FLOATS[:10])]), "ends inside storage '0'"),
        "no data": (dict(keys=["0"], storages=[]), "ends before storage '0'"),
        # A huge declared storage in a small file: refused before any allocation.
        "huge storage": (dict(obj=legacy_state(numel=2 ** 50), storages=[("0", 2 ** 50, FLOATS)]),
                         "ends inside storage '0'"),
        "tensor beyond storage": (dict(obj=collections.OrderedDict(a=FakeTensor(FakeStorage("0", 4), 2, (3,), (1,)))),
                                  "reaches element 4"),
    }


@pytest.mark.parametrize("case", list(legacy_cases()))
def test_malformed_legacy_checkpoints(isolated, tmp_path, case):
    kwargs, fragment = legacy_cases()[case]
    kwargs = {"obj": legacy_state(), "storages": [("0", 4, FLOATS)], **kwargs}
    path = write_legacy(tmp_path / "bad.pth", **kwargs)
    run_load(isolated, path, ValueError, str(path), fragment)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    state = {"w": torch.arange(64, dtype=torch.float32) + 0.5, "b": torch.arange(8, dtype=torch.int64)}
    torch.save(state, folder / "small.pth")
    return folder / "small.pth", state


def test_big_endian_byteorder(tmp_path):
    values = np.array([1.5, -2.0, 3.25], dtype=">f4")
    state = collections.OrderedDict(a=FakeTensor(FakeStorage("0", 3), 0, (3,), (1,)))
    path = write_checkpoint(tmp_path / "be.pth", state, {"0": values.tobytes()}, byteorder=b"big")
    loaded = load_state_dict(path)["a"]
    assert loaded.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(loaded, values)


@pytest.mark.parametrize("damage, fragment", [
    ("truncate half", "not a readable zip archive"),
    ("truncate tail", "not a readable zip archive"),
    ("flip storage byte", "Bad CRC-32"),
    ("flip pickle byte", "Bad CRC-32"),
    ("garbage", "neither a torch.save checkpoint"),
    ("empty", "the file is empty"),
    ("plain pickle", "not one written by torch.save"),
    ("pickle of arrays", "'numpy._core.multiarray._reconstruct'"),
    ("truncated legacy", "(truncated)"),
])
def test_damaged_files(isolated, tmp_path, small_checkpoint, damage, fragment):
    source, state = small_checkpoint
    data = source.read_bytes()
    path = tmp_path / "damaged.pth"
    if damage == "truncate half":
        data = data[: len(data) // 2]
    elif damage == "truncate tail":
        data = data[:-10]
    elif damage.startswith("flip"):
        needle = state["w"].numpy().tobytes()[8:16] if "storage" in damage else b"_rebuild_tensor_v2"
        at = data.index(needle) + 2
        data = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]
    elif damage == "garbage":
        data = np.random.default_rng(0).bytes(5000)
    elif damage == "empty":
        data = b""
    elif damage == "plain pickle":
        data = pickle.dumps({"w": [1.0, 2.0]})
    elif damage == "pickle of arrays":
        data = pickle.dumps({"w": np.zeros(3)})
    elif damage == "truncated legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
        data = path.read_bytes()[:-10]
    path.write_bytes(data)
    run_load(isolated, path, ValueError, str(path), fragment)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_corrupt_compressed_entries(isolated, tmp_path, small_checkpoint, method):
    """Issue #9: a corrupt bzip2 entry raised a bare OSError without the file name; every compression method now
    gives the ValueError that names the file (and intact entries of each load)."""
    source, state = small_checkpoint
    path = tmp_path / "compressed.pth"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=method)
    np.testing.assert_array_equal(load_state_dict(path)["w"], state["w"].numpy())
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data/0"))
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data[start:start + 8] = bytes(b ^ 0x5A for b in data[start:start + 8])
    path.write_bytes(bytes(data))
    run_load(isolated, path, ValueError, str(path), "corrupt torch checkpoint")


def test_paths_that_are_not_files(isolated, tmp_path):
    run_load(isolated, tmp_path / "missing.pth", FileNotFoundError, "missing.pth")
    run_load(isolated, tmp_path, IsADirectoryError, str(tmp_path))


def safetensors_file(header, data=b""):
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize("content, fragment", [
    ("truncate data", "corrupt or unsupported .safetensors"),
    ("truncate header", "neither a torch.save checkpoint"),
    (safetensors_file({"a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}, b"\0" * 8),
     "corrupt or unsupported .safetensors"),
    (safetensors_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
     "corrupt or unsupported .safetensors"),
    (safetensors_file({"a": {"dtype": "F32", "shape": [2 ** 62, 8], "data_offsets": [0, 8]}}, b"\0" * 8),
     "corrupt or unsupported .safetensors"),
    (safetensors_file({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4),
     "corrupt or unsupported .safetensors"),
    (safetensors_file({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2),
     "corrupt or unsupported .safetensors"),
])
def test_damaged_safetensors(isolated, tmp_path, content, fragment):
    path = tmp_path / "bad.safetensors"
    if isinstance(content, str):
        save_safetensors({"w": np.arange(100, dtype=np.float32)}, path)
        data = path.read_bytes()
        content = data[:-40] if content == "truncate data" else data[:20]
    path.write_bytes(content)
    run_load(isolated, path, ValueError, str(path), fragment)


def test_bfloat16_safetensors(tmp_path):
    """Issue #9: a bfloat16 .safetensors file was a ValueError (NumPy has no bfloat16); it loads as float32, as a
    .pth does, without torch. Other dtypes are kept."""
    g = torch.Generator().manual_seed(0)
    state = collections.OrderedDict(
        w=torch.randn(4, 3, generator=g).to(torch.bfloat16), f16=torch.randn(5, generator=g).half(),
        f32=torch.randn(2, generator=g), empty=torch.zeros(0, 3, dtype=torch.bfloat16),
        scalar=torch.tensor(-2.5, dtype=torch.bfloat16),
        special=torch.tensor([float("inf"), -0.0, 1e-40, 3e38]).to(torch.bfloat16))
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file(state, path)
    npz = save_expected(state, tmp_path / "bf16.npz")
    assert compare_without_torch([(path, npz)])[0][0] == len(state)


def test_cli_errors(tmp_path, small_checkpoint):
    source, _ = small_checkpoint
    out = tmp_path / "out.safetensors"
    missing = swiftrcnn_cli("convert", tmp_path / "nope.pth", out)
    assert missing.returncode == 1 and "nope.pth" in missing.stderr and not out.exists()
    (tmp_path / "bad.pth").write_bytes(b"PK\x03\x04 not really")
    corrupt = swiftrcnn_cli("convert", tmp_path / "bad.pth", out)
    assert corrupt.returncode == 1 and "not a readable zip archive" in corrupt.stderr and not out.exists()
    unwritable = swiftrcnn_cli("convert", source, tmp_path / "no_such_dir" / "out.safetensors")
    assert unwritable.returncode == 1 and "no_such_dir" in unwritable.stderr
    assert swiftrcnn_cli().returncode == 2
    assert swiftrcnn_cli("convert", source).returncode == 2
    # Converting over an existing output replaces it.
    out.write_bytes(b"old")
    assert swiftrcnn_cli("convert", source, out).returncode == 0
    assert sorted(load_state_dict(out)) == ["b", "w"]
