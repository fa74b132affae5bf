"""Checkpoints without PyTorch: torchvision state dicts as NumPy arrays.

    >>> from swiftrcnn import weights
    >>> state = weights.load_state_dict("fasterrcnn_resnet50_fpn_coco.pth")   # {name: np.ndarray}
    >>> weights.check_state_dict(state, {"backbone.body.conv1.weight": (64, 3, 7, 7), ...})
    >>> weights.save_safetensors(state, "fasterrcnn_resnet50_fpn_coco.safetensors")

Sources, told apart by content (not by file name):

- torch.save files: a zip holding `<archive>/data.pkl` (a pickle of the state dict) and one raw entry
  `<archive>/data/<key>` per storage (torch >= 1.6), or the legacy layout of older torch (several pickles followed by
  the raw storages), which many published torchvision weights still use. A checkpoint is untrusted input, so the
  pickle is read by a restricted unpickler that knows only the globals a state dict needs (an ordered dict, tensor
  and parameter rebuilds, the storage types), each mapped to a function of this module that builds a description
  of the tensor and checks it against its storage; any other global is refused before anything is called, and
  storage bytes are read only once the whole pickle has passed. Nothing of torch is imported or needed.
- .safetensors files, read with the safetensors package's NumPy API (bfloat16 tensors, which NumPy lacks, from
  their stored bits).
- Mappings of names to array-likes.

Results are C-contiguous arrays that own their data, in the checkpoint's dtype (bfloat16 becomes float32, which
holds every bfloat16 value exactly). Malformed input raises ValueError naming the file and what is wrong;
filesystem problems raise the usual OSError (FileNotFoundError, IsADirectoryError, ...).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, NoReturn

import numpy as np
import numpy.typing as npt

from ._typing import PathLike, StateDictSource

__all__ = ["load_state_dict", "check_state_dict", "read_metadata", "save_safetensors"]

# Size of a state dict's pickle: one entry costs about 100 bytes, so this holds over half a million tensors.
_MAX_PICKLE_BYTES = 64 << 20
# Dimensions of one tensor (numpy 1.x supports 32).
_MAX_DIMS = 32
# Elements all tensors together may hold: this many times their storages' elements (views of one storage, e.g. tied
# weights, repeat data) plus a fixed allowance (stride-0 expansions), so that a small file cannot make the loader
# allocate without bound.
_MAX_VIEW_FACTOR = 4
_MAX_EXPANDED_ELEMENTS = 1 << 27
# Deflate cannot expand data by more than about 1032:1; a compressed entry that claims more lies.
_MAX_DEFLATE_RATIO = 1100
# Largest integer accepted as a size, stride, offset or element count, and as a dict key.
_MAX_INDEX = 1 << 62
# safetensors' own limit on its JSON header.
_MAX_SAFETENSORS_HEADER = 100_000_000

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# torch.save's legacy format starts with this number, pickled (protocol 2 or above, so the file starts with PROTO).
_LEGACY_NUMBER = 0x1950A86A20F9469CFC6C


# --- what the restricted unpickler builds -------------------------------------------------------------------------

class _StorageType:
    """Stands for `torch.<Name>Storage`: the element type of a storage, as a little- or big-endian numpy dtype."""
    __slots__ = ("name", "code", "bfloat16")

    def __init__(self, name: str, code: str, bfloat16: bool = False) -> None:
        self.name, self.code, self.bfloat16 = name, code, bfloat16

    def dtype(self, byteorder: str) -> np.dtype[Any]:
        return np.dtype(self.code).newbyteorder("<" if byteorder == "little" else ">")


class _Storage:
    """A storage named by the pickle, checked against the file; its bytes are read after unpickling."""
    __slots__ = ("key", "type", "numel")

    def __init__(self, key: str, storage_type: _StorageType, numel: int) -> None:
        self.key, self.type, self.numel = key, storage_type, numel


class _Tensor:
    """A tensor rebuilt from a storage: element offset, size and stride, all checked to stay inside the storage."""
    __slots__ = ("storage", "offset", "size", "stride", "negate")

    def __init__(self, storage: object, offset: object, size: object, stride: object) -> None:
        if not isinstance(storage, _Storage):
            raise _Malformed(f"a tensor is rebuilt from a {type(storage).__name__}, not a storage")
        size, stride = _index_tuple(size, "size"), _index_tuple(stride, "stride")
        offset = _index(offset, "storage offset")
        if len(size) != len(stride):
            raise _Malformed(f"tensor size {size} and stride {stride} have different lengths")
        if 0 in size:
            if offset > storage.numel:
                raise _Malformed(f"empty tensor's offset {offset} is beyond its storage of {storage.numel} elements")
        else:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel:
                raise _Malformed(f"tensor (offset {offset}, size {size}, stride {stride}) reaches element {last} "
                                 f"of storage '{storage.key}', which holds {storage.numel}")
        self.storage, self.offset, self.size, self.stride, self.negate = storage, offset, size, stride, False

    def elements(self) -> int:
        return int(np.prod(self.size, dtype=object))


class _PickledDict(dict):
    """What `collections.OrderedDict()` builds (a dict keeps insertion order); its attributes are ignored."""


class _Malformed(ValueError):
    """The pickle does not describe a state dict; the message says why."""


def _index(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < _MAX_INDEX:
        shown = (value if abs(value) < _MAX_INDEX << 8 else "a huge integer") if type(value) is int else \
            type(value).__name__
        raise _Malformed(f"tensor {what} must be a non-negative integer, got {shown}")
    return value


def _index_tuple(values: Any, what: str) -> tuple[int, ...]:
    if type(values) not in (tuple, list):
        raise _Malformed(f"tensor {what} must be a tuple of integers, got {type(values).__name__}")
    if len(values) > _MAX_DIMS:
        raise _Malformed(f"tensor {what} has {len(values)} entries (at most {_MAX_DIMS} dimensions supported)")
    return tuple(_index(v, what) for v in values)


# The allowed globals. Each maps to a function of this module with the signature torch uses, so that a checkpoint
# written by torch.save rebuilds; nothing of torch is ever imported or called.

def _rebuild_tensor(storage: object, storage_offset: object, size: object, stride: object) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: object, storage_offset: object, size: object, stride: object, requires_grad: object,
                       backward_hooks: object, metadata: object = None) -> _Tensor:
    tensor = _Tensor(storage, storage_offset, size, stride)
    if metadata:
        # torch records lazy negation/conjugation bits here; the stored values are those before the negation.
        if not isinstance(metadata, dict) or not set(metadata) <= {"neg", "conj"}:
            raise _Malformed("tensor metadata other than the 'neg'/'conj' bits is not supported")
        if metadata.get("conj"):
            raise _Malformed("conjugated (complex) tensors are not supported")
        if metadata.get("neg"):
            if tensor.storage.type.name == "BoolStorage":
                raise _Malformed("a bool tensor cannot carry a negation bit")
            tensor.negate = True
    return tensor


def _rebuild_parameter(data: object, requires_grad: object, backward_hooks: object) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise _Malformed(f"a parameter wraps a {type(data).__name__}, not a tensor")
    return data


def _rebuild_parameter_with_state(data: object, requires_grad: object, backward_hooks: object,
                                  state: object) -> _Tensor:
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _ordered_dict(*items: object) -> _PickledDict:
    if items:
        raise _Malformed("collections.OrderedDict is built with arguments; torch.save never writes that")
    return _PickledDict()


_STORAGE_TYPES = {name: _StorageType(name, code, name == "BFloat16Storage") for name, code in [
    ("FloatStorage", "f4"), ("DoubleStorage", "f8"), ("HalfStorage", "f2"), ("BFloat16Storage", "u2"),
    ("LongStorage", "i8"), ("IntStorage", "i4"), ("ShortStorage", "i2"), ("CharStorage", "i1"),
    ("ByteStorage", "u1"), ("BoolStorage", "u1")]}

_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    **{("torch", name): storage_type for name, storage_type in _STORAGE_TYPES.items()},
}


# --- the restricted unpickler -------------------------------------------------------------------------------------

class _Opcodes(dict):
    def __missing__(self, code: int) -> NoReturn:
        raise _Malformed(f"pickle opcode {bytes([code])!r} is not used by state dicts (or is not an opcode)")


# Opcodes that build plain data, name globals, call them, and refer to storages: everything torch.save writes.
# Left out: object construction without a global check (INST, OBJ, NEWOBJ, NEWOBJ_EX), the extension registry
# (EXT1/2/4), sets, out-of-band buffers and text persistent ids.
_ALLOWED_OPCODES = [
    pickle.PROTO, pickle.FRAME, pickle.STOP, pickle.MARK, pickle.POP, pickle.POP_MARK, pickle.DUP,
    pickle.NONE, pickle.NEWTRUE, pickle.NEWFALSE, pickle.INT, pickle.BININT, pickle.BININT1, pickle.BININT2,
    pickle.LONG, pickle.LONG1, pickle.LONG4, pickle.FLOAT, pickle.BINFLOAT,
    pickle.STRING, pickle.BINSTRING, pickle.SHORT_BINSTRING, pickle.UNICODE, pickle.BINUNICODE,
    pickle.SHORT_BINUNICODE, pickle.BINUNICODE8, pickle.BINBYTES, pickle.SHORT_BINBYTES, pickle.BINBYTES8,
    pickle.EMPTY_TUPLE, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3,
    pickle.EMPTY_LIST, pickle.LIST, pickle.APPEND, pickle.APPENDS, pickle.EMPTY_DICT,
    pickle.GET, pickle.BINGET, pickle.LONG_BINGET, pickle.PUT, pickle.BINPUT, pickle.LONG_BINPUT, pickle.MEMOIZE,
    pickle.GLOBAL, pickle.STACK_GLOBAL, pickle.REDUCE, pickle.BINPERSID,
]


def _check_key(key: object) -> object:
    # Dict keys are limited to strings (hashed with a random seed) and small integers, so that a pickle cannot
    # fill a dict with keys of equal hash and make loading quadratic.
    if not (type(key) is str or (type(key) is int and -_MAX_INDEX < key < _MAX_INDEX)):
        raise _Malformed(f"a dict key is a {type(key).__name__}; state dicts have string keys")
    return key


class _Unpickler(pickle._Unpickler):
    """Python's pickle machine with a reduced instruction set: find_class resolves only `_GLOBALS`, dict items are
    checked, BUILD only attaches attributes (ignored) to an ordered dict, and persistent ids resolve to storages of
    the checkpoint through `storage`."""

    # Set by pickle's machine (not in its type stubs): the stack, its bound `append`, and the mark pop.
    stack: list[Any]
    append: Callable[[Any], None]
    pop_mark: Callable[[], list[Any]]

    def __init__(self, file: IO[bytes], storage: Callable[[Any], _Storage]) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> object:
        target = _GLOBALS.get((module, name)) if type(module) is str and type(name) is str else None
        if target is None:
            raise _Malformed(f"checkpoint refers to global '{_shorten(f'{module}.{name}')}', which a state dict "
                             "never needs; refusing to load")
        return target

    def persistent_load(self, pid: object) -> _Storage:
        return self._storage(pid)

    def _setitems(self, items: list[Any]) -> None:
        target = self.stack[-1]
        if not isinstance(target, dict):
            raise _Malformed(f"dict items are set on a {type(target).__name__}")
        if len(items) % 2:
            raise _Malformed("dict items come as an odd number of keys and values")
        for i in range(0, len(items), 2):
            target[_check_key(items[i])] = items[i + 1]

    def _load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._setitems([key, value])

    def _load_setitems(self) -> None:
        self._setitems(self.pop_mark())

    def _load_dict(self) -> None:
        items = self.pop_mark()
        self.append({})
        self._setitems(items)

    def _load_build(self) -> None:
        self.stack.pop()
        if type(self.stack[-1]) is not _PickledDict:
            raise _Malformed(f"pickle sets the state of a {type(self.stack[-1]).__name__}; state dicts never do")

    dispatch = _Opcodes({op[0]: pickle._Unpickler.dispatch[op[0]] for op in _ALLOWED_OPCODES})
    dispatch.update({pickle.SETITEM[0]: _load_setitem, pickle.SETITEMS[0]: _load_setitems,
                     pickle.DICT[0]: _load_dict, pickle.BUILD[0]: _load_build})


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- torch checkpoints --------------------------------------------------------------------------------------------

def _unpickle(file: IO[bytes], storage: Callable[[Any], _Storage], what: str) -> Any:
    try:
        return _Unpickler(file, storage).load()
    except (_Malformed, MemoryError):
        raise
    except Exception as e:
        raise _Malformed(f"{what} is corrupt ({type(e).__name__}: {_shorten(str(e))})") from None


def _nbytes(storage: _Storage) -> int:
    return storage.numel * np.dtype(storage.type.code).itemsize


def _no_storage(pid: object) -> NoReturn:
    raise _Malformed("a header or key-list pickle refers to a storage")


class _Checkpoint:
    """What the zip and the legacy layout share: storages declared by the pickle, tensors copied out of them.
    Subclasses resolve persistent ids (`storage`), read the pickle (`unpickle`) and yield (key, bytes) once for
    each storage key asked for, checked against its declared size (`blobs`)."""
    byteorder = "little"

    def __init__(self) -> None:
        self.storages: dict[tuple[str, str], _Storage] = {}

    def blobs(self, keys: set[str]) -> Iterator[tuple[str, bytes]]:
        """Yields (key, bytes) once for each storage key in `keys` (subclasses)."""
        raise NotImplementedError

    def declare(self, storage_type: object, key: object, location: object, numel: object) -> _Storage:
        if not isinstance(storage_type, _StorageType):
            raise _Malformed(f"storage type is a {type(storage_type).__name__}, not a torch storage type")
        if type(key) is not str or type(location) is not str:
            raise _Malformed("storage key and location must be strings")
        if type(numel) is not int or not 0 <= numel < _MAX_INDEX:
            raise _Malformed(f"storage '{_shorten(key)}' has an invalid element count")
        cached = self.storages.get((key, storage_type.name))
        if cached is not None:
            if cached.numel != numel:
                raise _Malformed(f"storage '{_shorten(key)}' is declared with {cached.numel} and {numel} elements")
            return cached
        storage = self.storages[key, storage_type.name] = _Storage(key, storage_type, numel)
        self.check(storage)
        return storage

    def check(self, storage: _Storage) -> None:
        """Checks a newly declared storage against the file, before any tensor uses it (where the layout allows)."""

    def arrays(self, tensors: dict[str, _Tensor]) -> dict[str, npt.NDArray[Any]]:
        """Reads each storage once and copies every tensor out of it (views of one storage share the read)."""
        stored = sum({id(t.storage): t.storage.numel for t in tensors.values()}.values())
        total = sum(t.elements() for t in tensors.values())
        if total > _MAX_VIEW_FACTOR * stored + _MAX_EXPANDED_ELEMENTS:
            raise ValueError(f"the tensors hold {total} elements, far more than their storages' {stored} (at most "
                             f"{_MAX_VIEW_FACTOR} x that + {_MAX_EXPANDED_ELEMENTS} allowed)")
        by_key: dict[str, list] = {}
        for name, tensor in tensors.items():
            by_key.setdefault(tensor.storage.key, []).append(name)
        out = {}
        for key, raw in self.blobs(set(by_key)):
            for name in by_key[key]:
                out[name] = self._array(tensors[name], raw)
        return {name: out[name] for name in tensors}

    def _array(self, tensor: _Tensor, raw: bytes) -> npt.NDArray[Any]:
        kind = tensor.storage.type
        dtype = kind.dtype(self.byteorder)
        if 0 in tensor.size:
            view = np.empty(tensor.size, dtype)
        else:
            base = np.frombuffer(raw, dtype, count=tensor.storage.numel)
            view = np.lib.stride_tricks.as_strided(base[tensor.offset:], shape=tensor.size,
                                                   strides=[s * dtype.itemsize for s in tensor.stride],
                                                   writeable=False)
        if kind.name == "BoolStorage":
            return np.array(view != 0, order="C")
        if kind.bfloat16:
            array = _bfloat16_as_float32(view)
        else:
            array = np.array(view, dtype=dtype.newbyteorder("="), order="C")
        if tensor.negate:
            np.negative(array, out=array)
        return array


class _ZipCheckpoint(_Checkpoint):
    """torch >= 1.6: `<archive>/data.pkl`, one entry `<archive>/data/<key>` per storage, `<archive>/byteorder`."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        super().__init__()
        self.zf = zf
        infos = zf.infolist()
        self.entries = {info.filename: info for info in infos}
        if len(self.entries) != len(infos):
            raise ValueError("the zip holds several entries with the same name")
        pickles = [name for name in self.entries if name.endswith("/data.pkl") and name.count("/") == 1]
        if not pickles:
            raise ValueError("no '<archive>/data.pkl' entry; not a checkpoint written by torch.save")
        if len(pickles) > 1:
            raise ValueError(f"several pickles ({', '.join(sorted(pickles))}); expected one '<archive>/data.pkl'")
        self.prefix = pickles[0][: -len("data.pkl")]
        if self.prefix + "byteorder" in self.entries:
            order = self.read(self.entries[self.prefix + "byteorder"], 16)
            if order not in (b"little", b"big"):
                raise ValueError(f"byteorder record is {_shorten(repr(order))}, expected b'little' or b'big'")
            self.byteorder = order.decode()

    def read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        if info.file_size > limit:
            raise ValueError(f"entry '{info.filename}' holds {info.file_size} bytes, more than the {limit} expected")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise ValueError(f"stored entry '{info.filename}' has inconsistent sizes")
        elif info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 64:
            raise ValueError(f"compressed entry '{info.filename}' claims an impossible size")
        data = self.zf.read(info)
        if len(data) != info.file_size:
            raise ValueError(f"entry '{info.filename}' is truncated")
        return data

    def entry(self, key: str) -> zipfile.ZipInfo:
        info = self.entries.get(f"{self.prefix}data/{key}")
        if info is None:
            raise _Malformed(f"storage '{_shorten(key)}' has no entry '{_shorten(self.prefix)}data/{_shorten(key)}'")
        return info

    def storage(self, pid: object) -> _Storage:
        """Resolves a persistent id ('storage', storage type, key, location, numel) without reading the data."""
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            shown = f"a {len(pid)}-tuple" if type(pid) is tuple else f"a {type(pid).__name__}"
            raise _Malformed(f"persistent id is {shown}, not ('storage', type, key, location, numel)")
        return self.declare(*pid[1:])

    def check(self, storage: _Storage) -> None:
        size = self.entry(storage.key).file_size
        if size != _nbytes(storage):
            raise _Malformed(f"storage '{_shorten(storage.key)}' declares {storage.numel} elements of "
                             f"{storage.type.name} ({_nbytes(storage)} bytes) but its entry holds {size} bytes")

    def unpickle(self) -> object:
        data = self.read(self.entries[self.prefix + "data.pkl"], _MAX_PICKLE_BYTES)
        return _unpickle(io.BytesIO(data), self.storage, "data.pkl")

    def blobs(self, keys: set[str]) -> Iterator[tuple[str, bytes]]:
        for key in keys:
            info = self.entry(key)
            yield key, self.read(info, info.file_size)


class _LegacyCheckpoint(_Checkpoint):
    """torch < 1.6 (and `_use_new_zipfile_serialization=False`): five pickles in a row -- magic number, protocol
    version, system info, the object, the sorted storage keys -- then, for each key in that order, the storage's
    element count (int64) and its elements, both little-endian."""
    _PROTOCOL_VERSION = 1001

    def __init__(self, file: IO[bytes], file_size: int) -> None:
        super().__init__()
        self.file, self.file_size = file, file_size
        if _unpickle(file, _no_storage, "the header") != _LEGACY_NUMBER:
            raise ValueError("a pickle, but not one written by torch.save (no magic number)")
        version = _unpickle(file, _no_storage, "the header")
        if version != self._PROTOCOL_VERSION:
            raise ValueError(f"legacy protocol version {_shorten(repr(version))}, expected {self._PROTOCOL_VERSION}")
        info = _unpickle(file, _no_storage, "the header")
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise ValueError("written on a big-endian machine or with a malformed system record; re-save it with "
                             "torch >= 1.6 on a little-endian machine")

    def storage(self, pid: object) -> _Storage:
        """Resolves ('storage', storage type, key, location, numel, view) -- checked against the data later."""
        if type(pid) is not tuple or len(pid) != 6 or pid[0] != "storage":
            shown = f"a {len(pid)}-tuple" if type(pid) is tuple else f"a {type(pid).__name__}"
            raise _Malformed(f"persistent id is {shown}, not ('storage', type, key, location, numel, view)")
        if pid[5] is not None:
            raise _Malformed("storage views (slices of a storage) are not supported")
        return self.declare(*pid[1:5])

    def unpickle(self) -> object:
        obj = _unpickle(self.file, self.storage, "the pickle")
        self.keys = _unpickle(self.file, _no_storage, "the storage key list")
        if type(self.keys) is not list or not all(type(key) is str for key in self.keys):
            raise _Malformed("the storage key list is not a list of strings")
        if len(set(self.keys)) != len(self.keys):
            raise _Malformed("the storage key list repeats keys")
        return obj

    def blobs(self, keys: set[str]) -> Iterator[tuple[str, bytes]]:
        declared: dict[str, _Storage] = {}
        for storage in self.storages.values():
            other = declared.setdefault(storage.key, storage)
            if _nbytes(other) != _nbytes(storage):
                raise _Malformed(f"storage '{_shorten(storage.key)}' is declared with two different sizes")
        listed = set(self.keys)
        missing = [key for key in declared if key not in listed]
        if missing:
            raise _Malformed(f"storage '{_shorten(missing[0])}' has no data")
        for key in self.keys:
            found = declared.get(key)
            if found is None:
                raise _Malformed(f"storage key list names '{_shorten(key)}', which no tensor uses")
            storage = found
            header = self.file.read(8)
            if len(header) != 8:
                raise _Malformed(f"the file ends before storage '{_shorten(key)}'")
            numel = int.from_bytes(header, "little", signed=True)
            if numel != storage.numel:
                raise _Malformed(f"storage '{_shorten(key)}' is declared with {storage.numel} elements but its data "
                                 f"holds {numel}")
            size = _nbytes(storage)
            if size > self.file_size - self.file.tell():
                raise _Malformed(f"the file ends inside storage '{_shorten(key)}' (truncated)")
            if key not in keys:
                self.file.seek(size, os.SEEK_CUR)
                continue
            data = self.file.read(size)
            if len(data) != size:
                raise _Malformed(f"the file ends inside storage '{_shorten(key)}' (truncated)")
            yield key, data


def _state_tensors(obj: object) -> dict[str, _Tensor]:
    """The state dict in an unpickled checkpoint: a dict of tensors, or one held under 'state_dict' or 'model'."""
    if not isinstance(obj, dict):
        raise _Malformed(f"the checkpoint holds a {type(obj).__name__}, not a state dict")
    if not all(isinstance(v, _Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, _Tensor) for v in inner.values()):
                obj = inner
                break
    bad_keys = [repr(k) for k in obj if type(k) is not str]
    if bad_keys:
        raise _Malformed(f"state dict keys must be strings, got {_shorten(', '.join(bad_keys))}")
    others = [f"'{k}' ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, _Tensor)]
    if others:
        raise _Malformed(f"the state dict holds entries that are not tensors: {_shorten(', '.join(others), 600)}")
    return obj


def _load_torch(path: str, legacy: bool) -> dict[str, npt.NDArray[Any]]:
    try:
        if legacy:
            with open(path, "rb") as f:
                checkpoint = _LegacyCheckpoint(f, os.fstat(f.fileno()).st_size)
                return checkpoint.arrays(_state_tensors(checkpoint.unpickle()))
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise ValueError(f"not a readable zip archive ({e}); the file is truncated or corrupt") from None
        with zf:
            archive = _ZipCheckpoint(zf)
            return archive.arrays(_state_tensors(archive.unpickle()))
    except MemoryError:
        raise
    except OSError as e:
        if e.errno is not None:  # the filesystem; bz2 reports a corrupt stream as an OSError without an errno
            raise
        raise ValueError(f"{path}: corrupt torch checkpoint ({type(e).__name__}: {_shorten(str(e))})") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # zipfile: CRC errors, offsets past the end, unsupported compression, ...
        raise ValueError(f"{path}: corrupt torch checkpoint ({type(e).__name__}: {_shorten(str(e))})") from None


# --- safetensors and mappings -------------------------------------------------------------------------------------

def _bfloat16_as_float32(bits: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """bfloat16 values given by their 16-bit patterns, as float32: bfloat16 is the upper half of a float32, so every
    value is held exactly."""
    out = np.empty(bits.shape, np.float32)
    np.left_shift(bits.astype(np.uint32), 16, out=out.view(np.uint32))
    return out


def _is_safetensors(head: bytes, file_size: int) -> bool:
    if len(head) < 9:
        return False
    (header,) = struct.unpack("<Q", head[:8])
    return 2 <= header <= _MAX_SAFETENSORS_HEADER and 8 + header <= file_size and head[8:9] == b"{"


def _load_safetensors(path: str) -> dict[str, npt.NDArray[Any]]:
    from safetensors import safe_open

    try:
        out = {}
        # safe_open checks the header (offsets inside the file, sizes matching dtypes and shapes) before any read.
        with safe_open(path, framework="numpy") as f, open(path, "rb") as raw:
            header = None
            for name in f.keys():
                if f.get_slice(name).get_dtype() != "BF16":
                    out[name] = np.array(f.get_tensor(name), order="C")
                    continue
                # NumPy has no bfloat16: its stored bits, widened.
                if header is None:
                    (size,) = struct.unpack("<Q", raw.read(8))
                    header, data_start = json.loads(raw.read(size)), 8 + size
                begin, end = header[name]["data_offsets"]
                raw.seek(data_start + begin)
                bits = np.frombuffer(raw.read(end - begin), "<u2").reshape(f.get_slice(name).get_shape())
                out[name] = _bfloat16_as_float32(bits)
        return out
    except MemoryError:
        raise
    except Exception as e:  # SafetensorError: malformed header or offsets; TypeError: a dtype NumPy lacks
        raise ValueError(f"{path}: corrupt or unsupported .safetensors file ({type(e).__name__}: "
                         f"{_shorten(str(e))})") from None


def _from_mapping(source: Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[Any]]:
    out = {}
    for name, value in source.items():
        if type(name) is not str:
            raise TypeError(f"state dict keys must be strings, got {type(name).__name__} {_shorten(repr(name))}")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"state dict entry '{name}' has dtype {array.dtype}; expected bool, integer or float")
        out[name] = np.array(array, order="C")
    return out


def load_state_dict(source: StateDictSource) -> dict[str, npt.NDArray[Any]]:
    """Reads a state dict as `{name: np.ndarray}` (C-contiguous arrays owning their data) in checkpoint order.

    `source` is a path to a torch.save checkpoint (`.pth`/`.pt`; the zip format of torch >= 1.6 or the legacy
    one) or a `.safetensors` file -- the format is recognised from the content -- or a mapping of names to
    array-likes. A checkpoint whose top level holds the state dict under 'state_dict' or 'model' is unwrapped.
    dtypes are kept, except bfloat16, which becomes float32.

    Raises ValueError, naming the file, for anything that is not a well-formed state dict: truncated or corrupt
    files, pickles that name any global besides the tensor rebuilds (nothing in them is executed), storages shorter
    than declared, tensors reaching outside their storage; TypeError for other sources.
    """
    if isinstance(source, Mapping):
        return _from_mapping(source)
    if not isinstance(source, (str, bytes, os.PathLike)):
        raise TypeError(f"source must be a path or a mapping of names to arrays, got {type(source).__name__}")
    path = os.fsdecode(source)
    with open(path, "rb") as f:
        head = f.read(64)
        file_size = os.fstat(f.fileno()).st_size
    if not head:
        raise ValueError(f"{path}: the file is empty")
    if head.startswith(_ZIP_MAGIC):
        return _load_torch(path, legacy=False)
    if _is_safetensors(head, file_size):
        return _load_safetensors(path)
    if head.startswith(pickle.PROTO):
        return _load_torch(path, legacy=True)
    raise ValueError(f"{path}: neither a torch.save checkpoint nor a .safetensors file (it starts with "
                     f"{head[:16]!r}); the file is corrupt or of another format")


def check_state_dict(state: Mapping[str, npt.ArrayLike], expected: Mapping[str, Iterable[int]]) -> None:
    """Checks `state` ({name: array}) against `expected` ({name: shape}) like torch's
    `load_state_dict(strict=True)`: raises one ValueError listing every missing key, every unexpected key and every
    shape mismatch (with both shapes)."""
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    mismatched = [(name, tuple(expected[name]), tuple(np.shape(state[name])))
                  for name in expected if name in state and tuple(np.shape(state[name])) != tuple(expected[name])]
    if not (missing or unexpected or mismatched):
        return
    lines = ["the state dict does not match the model:"]
    if missing:
        lines.append(f"  {len(missing)} missing key(s): " + ", ".join(f"'{n}'" for n in missing))
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected key(s): " + ", ".join(f"'{n}'" for n in unexpected))
    for name, want, got in mismatched:
        lines.append(f"  shape mismatch for '{name}': expected {want}, got {got}")
    raise ValueError("\n".join(lines))


def save_safetensors(state: Mapping[str, npt.ArrayLike], path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> None:
    """Writes `state` ({name: array-like}) to `path` as .safetensors, with `metadata` ({str: str}, optional) as
    the file's `__metadata__` header. The file is replaced atomically: a failure leaves no partial file. Its
    permissions are those `open` gives: an existing file's, or 0666 less the umask for a new one."""
    from safetensors.numpy import save_file

    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in metadata.items()):
            raise TypeError("metadata: expected a mapping of str to str")
        metadata = dict(metadata)
    arrays = _from_mapping(state)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".swiftrcnn-", suffix=".safetensors.tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=metadata)
        os.chmod(tmp, _mode_for(path))  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _mode_for(path: str) -> int:
    """Permission bits for a file written to `path`: the existing file's, else 0666 less the process's umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # reading the umask means setting it; restored at once
        os.umask(umask)
        return 0o666 & ~umask


_REQUIRED = object()


def metadata_json(metadata: Mapping[str, str], key: str, where: str, default: Any = _REQUIRED) -> Any:
    """The JSON value of `key` in a file's metadata (`read_metadata`); `default` when the key is absent (if given).
    ValueError naming `where` and the key when it is missing (no default) or not JSON."""
    if key not in metadata:
        if default is _REQUIRED:
            raise ValueError(f"{where}: no '{key}' in the swiftrcnn metadata")
        return default
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: metadata '{key}' is not JSON ({e})") from None


def read_metadata(path: PathLike) -> dict[str, str]:
    """The `__metadata__` map of a .safetensors file's header ({} when it has none, or for a torch.save
    checkpoint, which has no such map). ValueError naming the file for a corrupt header."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a checkpoint path, got {type(path).__name__}")
    name = os.fsdecode(path)
    with open(name, "rb") as f:
        head = f.read(9)
        file_size = os.fstat(f.fileno()).st_size
        if not _is_safetensors(head, file_size):
            return {}
        (size,) = struct.unpack("<Q", head[:8])
        f.seek(8)
        try:
            header = json.loads(f.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{name}: corrupt .safetensors header ({e})") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{name}: corrupt .safetensors header (__metadata__ is not a map of strings)")
    return dict(metadata)
