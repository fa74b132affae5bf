"""Pickling models: a model `models.load` built pickles as its weight file's path (with its load settings and the
file's SHA-256) and unpickles by loading the file again; other models refuse to pickle, saying how to save them."""
import copy
import pickle
import pickletools

import numpy as np
import pytest

from swiftrcnn import models
from tool_utils import small_model

DIGITS = ["__background__"] + [str(d) for d in range(10)]


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "mask.safetensors"
    small_model(num_classes=11, mask=True, categories=DIGITS).save(path)
    return path


def image(seed=0):
    return np.random.default_rng(seed).random((3, 64, 96), dtype=np.float32)


def test_round_trip_reloads_the_file(saved):
    model = models.load(saved, box_score_thresh=0.2)
    data = pickle.dumps(model)
    assert len(data) < 1000                                          # a path and settings, no arrays
    opcodes = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    names = [name for name, _ in opcodes]
    strings = [arg for name, arg in opcodes if "UNICODE" in name]
    # One global, the loading function, called once; the rest is plain data.
    assert names.count("STACK_GLOBAL") == 1 and names.count("REDUCE") == 1 and "GLOBAL" not in names
    assert strings[:2] == ["swiftrcnn.models._saved", "reload"]
    assert str(saved.resolve()) in strings
    clone = pickle.loads(data)
    assert type(clone) is models.MaskRCNN and clone.config == model.config and clone.categories == DIGITS
    ours, theirs = model([image()])[0], clone([image()])[0]
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert len(ours["scores"]) > 0 and ours["scores"].min() >= 0.2

    model.categories = [f"c{i}" for i in range(11)]                  # settings changed after loading travel too
    assert pickle.loads(pickle.dumps(model)).categories == model.categories
    assert copy.deepcopy(model).config == model.config
    assert pickle.loads(pickle.dumps(clone)).config == model.config  # an unpickled model pickles again


def test_models_not_backed_by_a_file_refuse(saved, tmp_path):
    built = small_model(num_classes=11, mask=True)
    random = models.maskrcnn_small(weights="random")
    with pytest.warns(UserWarning, match="re-initialised"):
        other_classes = models._saved.build(saved, 5)
    trained = models.load(saved)
    trained.train()
    trained.eval()
    for model, reason in ((built, "not loaded from a weight file"), (random, "not loaded from a weight file"),
                          (other_classes, "not loaded from a weight file"), (trained, "training mode")):
        with pytest.raises(TypeError, match=reason) as e:
            pickle.dumps(model)
        assert "model.save(path)" in str(e.value) and "swiftrcnn.models.load(path)" in str(e.value)


def test_file_replaced(saved):
    model = models.load(saved)
    data = pickle.dumps(model)
    small_model(num_classes=11, mask=True, seed=1).save(saved)       # same size, other weights
    with pytest.raises(ValueError, match="changed since the model was pickled"):
        pickle.loads(data)
    with pytest.raises(TypeError, match="rewritten since the model was loaded"):
        pickle.dumps(model)
    saved.unlink()
    with pytest.raises(ValueError, match="cannot read the weight file"):
        pickle.loads(data)
