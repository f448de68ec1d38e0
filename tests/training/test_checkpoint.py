"""Checkpoints: round trip (tied weights included), atomic replacement, a clear error for each broken case."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import stat

import numpy as np
import pytest
import torch
from torch import nn

from rnnlab.training import checkpoint as ckpt_mod
from rnnlab.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    atomic_write_bytes,
    atomic_write_text,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)


class TiedLM(nn.Module):
    """Embedding and output layer share one matrix, as in a weight-tied language model."""

    def __init__(self, vocab: int = 7, dim: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, vocab)
        self.out.weight = self.embed.weight
        self.register_buffer("steps", torch.tensor(3))


META = {
    "config": {"hidden": 4, "cell": "gru"},
    "vocab": ["<pad>", "好", "差"],
    "labels": ["neg", "pos"],
    "f1": 0.5,
}


def _model(seed: int = 0) -> TiedLM:
    torch.manual_seed(seed)
    return TiedLM()


def test_round_trip_restores_weights_meta_and_trainer_state(tmp_path):
    model = _model(0)
    opt = torch.optim.AdamW(model.parameters())
    model.out(torch.randn(2, 4)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": torch.get_rng_state(), "python": (3, (1, 2), None)}
    path = save_checkpoint(tmp_path / "ck", model, META, optimizer_state=state)
    assert path == tmp_path / "ck"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "model.safetensors", "trainer_state.pt"]
    on_disk = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    assert on_disk["format"] == "rnnlab-checkpoint" and on_disk["version"] == 1
    assert on_disk["vocab"][1] == "好"  # stored as readable UTF-8, not \u escapes
    assert "好" in (path / "meta.json").read_text(encoding="utf-8")

    loaded = load_checkpoint(path)
    assert isinstance(loaded, Checkpoint)
    assert loaded.meta == META
    assert loaded.state_dict.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict[k], v), k
    assert torch.equal(loaded.trainer_state["rng"], state["rng"])
    assert loaded.trainer_state["python"] == (3, (1, 2), None)

    fresh = _model(1)
    fresh.load_state_dict(loaded.state_dict, strict=True)
    assert fresh.out.weight is fresh.embed.weight  # still tied after loading
    torch.testing.assert_close(fresh.out.weight, model.embed.weight, rtol=0, atol=0)
    opt2 = torch.optim.AdamW(fresh.parameters())
    opt2.load_state_dict(loaded.trainer_state["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_plain_state_dict_with_views_and_no_trainer_state(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    state = {"row": base[1], "col": base[:, 2], "whole": base}  # views sharing one storage
    save_checkpoint(tmp_path / "ck", state, {})
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.trainer_state is None
    assert loaded.meta == {}
    for k, v in state.items():
        assert torch.equal(loaded.state_dict[k], v)


def test_overwrite_replaces_previous_checkpoint_and_leaves_no_debris(tmp_path):
    save_checkpoint(tmp_path / "ck", _model(0), {"epoch": 1}, optimizer_state={"a": 1})
    save_checkpoint(tmp_path / "ck", _model(1), {"epoch": 2})
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.meta == {"epoch": 2}
    assert loaded.trainer_state is None  # the old directory was replaced as a whole
    assert torch.equal(loaded.state_dict["embed.weight"], _model(1).embed.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_interrupt_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", _model(0), {"epoch": 1})
    calls = []

    def interrupted_write(path, data):
        calls.append(path.name)
        if len(calls) == 2:  # weights written, then Ctrl-C while writing meta.json
            raise KeyboardInterrupt
        with open(path, "wb") as f:
            f.write(data)

    monkeypatch.setattr(ckpt_mod, "_write_synced", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", _model(1), {"epoch": 2})
    assert calls == ["model.safetensors", "meta.json"]
    assert load_checkpoint(tmp_path / "ck").meta == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # temporary directory removed


def test_interrupt_between_the_two_renames_is_recovered(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", _model(0), {"epoch": 1})
    real_replace = os.replace

    def crash_on_second_rename(src, dst):
        if ".tmp-" in os.path.basename(src):  # moving the new checkpoint into place
            raise KeyboardInterrupt  # the old checkpoint was already moved to ck.old
        real_replace(src, dst)

    monkeypatch.setattr(ckpt_mod.os, "replace", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", _model(1), {"epoch": 2})
    monkeypatch.setattr(ckpt_mod.os, "replace", real_replace)
    assert load_checkpoint(tmp_path / "ck").meta == {"epoch": 1}

    # A hard crash (no cleanup at all) at the same point: only ck.old exists; loading and saving recover it.
    real_replace(tmp_path / "ck", tmp_path / "ck.old")
    assert load_checkpoint(tmp_path / "ck").meta == {"epoch": 1}
    save_checkpoint(tmp_path / "ck", _model(1), {"epoch": 2})
    assert load_checkpoint(tmp_path / "ck").meta == {"epoch": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing_dir", "does not exist"),
        ("file_not_dir", "is not a directory"),
        ("no_weights", "model.safetensors is missing"),
        ("no_meta", "meta.json is missing"),
        ("bad_weights", "model.safetensors is corrupted"),
        ("truncated_weights", "model.safetensors is corrupted"),
        ("bad_json", "meta.json is not valid JSON"),
        ("wrong_format", "expected format 'rnnlab-checkpoint'"),
        ("wrong_version", "version 2 is not supported"),
        ("pickled_code", "weights_only=True"),
        ("unlisted_trainer_state", "trainer_state.pt is not part of this checkpoint"),
        ("no_trainer_state", "incomplete: trainer_state.pt is missing"),
        ("bad_digests", "must map file names to hex digests"),
    ],
)
def test_broken_checkpoints_raise_checkpoint_error_naming_the_path(tmp_path, breakage, message):
    path = tmp_path / "ck"
    with_state = breakage == "no_trainer_state"
    save_checkpoint(path, _model(0), {"epoch": 1}, optimizer_state={"step": 1} if with_state else None)
    weights, meta = path / "model.safetensors", path / "meta.json"
    if breakage == "missing_dir":
        path = tmp_path / "nowhere"
    elif breakage == "file_not_dir":
        path = tmp_path / "file"
        path.write_text("x")
    elif breakage == "no_weights":
        weights.unlink()
    elif breakage == "no_meta":
        meta.unlink()
    elif breakage == "bad_weights":
        weights.write_bytes(b"\x00garbage" * 10)
    elif breakage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:-20])
    elif breakage == "bad_json":
        meta.write_text('{"format": "rnnlab-checkpoint", ')
    elif breakage in ("wrong_format", "wrong_version"):
        data = json.loads(meta.read_text())
        data["format" if breakage == "wrong_format" else "version"] = (
            "other" if breakage == "wrong_format" else 2
        )
        meta.write_text(json.dumps(data))
    elif breakage == "pickled_code":
        # A pickle that would call os.system on load: weights_only=True must refuse it, not run it. The
        # digest guards against damage, not against an attacker, who can record the file's digest too.
        payload = pickle.dumps(_Exploit())
        (path / "trainer_state.pt").write_bytes(payload)
        data = json.loads(meta.read_text())
        data["sha256"]["trainer_state.pt"] = hashlib.sha256(payload).hexdigest()
        meta.write_text(json.dumps(data))
    elif breakage == "unlisted_trainer_state":
        (path / "trainer_state.pt").write_bytes(pickle.dumps({"step": 1}))
    elif breakage == "no_trainer_state":
        (path / "trainer_state.pt").unlink()
    elif breakage == "bad_digests":
        data = json.loads(meta.read_text())
        data["sha256"] = ["not", "a", "dict"]
        meta.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, RuntimeError)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a", _model(), {"format": "mine"})
    with pytest.raises(TypeError, match="JSON-serializable"):
        save_checkpoint(tmp_path / "a", _model(), {"t": torch.zeros(1)})
    with pytest.raises(TypeError, match="nn.Module or a dict"):
        save_checkpoint(tmp_path / "a", [torch.zeros(1)], {})
    with pytest.raises(TypeError, match="not tensors"):
        save_checkpoint(tmp_path / "a", {"w": 1.0}, {})
    assert not (tmp_path / "a").exists()


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "ck", {}, {}, optimizer_state={"rng": get_rng_state()})
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), np.random.randn())
    set_rng_state(load_checkpoint(tmp_path / "ck").trainer_state["rng"])  # read with weights_only=True
    again = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), np.random.randn())
    assert first == again


def test_atomic_write_helpers(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "log.csv"
    assert atomic_write_text(target, "a,b\n1,2\n") == target
    assert target.read_text() == "a,b\n1,2\n"
    atomic_write_bytes(target, "数据\n".encode())
    assert target.read_text(encoding="utf-8") == "数据\n"

    def failing_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "数据\n"  # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["log.csv"]  # no temporary left


def _tensor_data_span(weights: bytes) -> tuple[int, int]:
    """Byte range of a safetensors file's tensor data: after the u64 header length and the JSON header."""
    header_len = int.from_bytes(weights[:8], "little")
    return 8 + header_len, len(weights)


def test_bytes_overwritten_inside_the_tensor_data_are_detected(tmp_path):
    model = _model(0)
    path = save_checkpoint(tmp_path / "ck", model, {"epoch": 1}, optimizer_state={"step": 4})
    torch.testing.assert_close(load_checkpoint(path).state_dict["rnn.weight_ih_l0"], model.rnn.weight_ih_l0)

    weights = (path / "model.safetensors").read_bytes()
    start, end = _tensor_data_span(weights)
    middle = (start + end) // 2
    damaged = bytearray(weights)
    damaged[middle : middle + 4] = b"\xff\xff\xff\x7f"  # a float32 NaN pattern over one weight
    (path / "model.safetensors").write_bytes(bytes(damaged))
    from safetensors.torch import load

    assert load(bytes(damaged)).keys() == load(weights).keys()  # still parses: only the digest can tell
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted") as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    assert hashlib.sha256(weights).hexdigest() in message  # expected
    assert hashlib.sha256(bytes(damaged)).hexdigest() in message  # got

    (path / "model.safetensors").write_bytes(weights)  # repaired: loads again
    state = (path / "trainer_state.pt").read_bytes()
    (path / "trainer_state.pt").write_bytes(state[:-1] + bytes([state[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="trainer_state.pt is corrupted"):
        load_checkpoint(path)


def test_checkpoints_saved_before_the_digests_still_load(tmp_path, caplog):
    model = _model(0)
    path = save_checkpoint(tmp_path / "ck", model, {"epoch": 1}, optimizer_state={"step": 4})
    data = json.loads((path / "meta.json").read_text())
    assert set(data["sha256"]) == {"model.safetensors", "trainer_state.pt"}
    del data["sha256"]  # the format as written before this change
    (path / "meta.json").write_text(json.dumps(data))
    with caplog.at_level(logging.INFO, logger="rnnlab"):
        ckpt = load_checkpoint(path)
    assert ckpt.meta == {"epoch": 1} and ckpt.trainer_state == {"step": 4}
    torch.testing.assert_close(ckpt.state_dict["out.bias"], model.out.bias)
    notes = [r for r in caplog.records if "no file digests" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO


def test_non_finite_meta_values_are_written_as_null(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        path = save_checkpoint(tmp_path / "ck", {}, {"metrics": {"f1": float("nan"), "ppl": float("inf")}})
    text = (path / "meta.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))["metrics"] == {
        "f1": None,
        "ppl": None,
    }
    assert load_checkpoint(path).meta == {"metrics": {"f1": None, "ppl": None}}
    assert any("metrics.f1, metrics.ppl" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_checkpoint_files_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    previous = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "runs" / "ck", _model(0), {"epoch": 1}, optimizer_state={"s": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == dir_mode
    assert stat.S_IMODE(path.parent.stat().st_mode) == dir_mode  # the missing parent, made on the way
    for name in ("model.safetensors", "meta.json", "trainer_state.pt"):
        assert stat.S_IMODE((path / name).stat().st_mode) == file_mode, name
