"""Predictor: rebuilt from a checkpoint alone, agrees with the model, batching-independent, clear errors."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from rnnlab.data import CharTokenizer, DataError, Vocab
from rnnlab.inference import Predictor
from rnnlab.models import ClassifierConfig, RecurrentClassifier
from rnnlab.training.checkpoint import CheckpointError, save_checkpoint

TEXTS = ["这个东西很好用，物流也快", "质量太差了，不推荐购买", "好", "一般般吧" * 30]


def _checkpoint(path, pooling="attention", max_len=16):
    """A checkpoint as the sentiment task writes it, with untrained weights (no training needed here)."""
    tokenizer = CharTokenizer()
    vocab = Vocab.build([tokenizer(t) for t in TEXTS])
    config = ClassifierConfig(
        vocab_size=len(vocab),
        num_classes=3,
        embedding_dim=8,
        hidden_size=6,
        attention_size=4,
        ngram_buckets=64,
        ngram_dim=4,
        pooling=pooling,
    )
    torch.manual_seed(0)
    model = RecurrentClassifier(config)
    meta = {
        "task": "sentiment",
        "config": {"data": {"max_len": max_len}, "model": config.to_dict()},
        "labels": ["neg", "neutral", "pos"],
        "tokenizer": tokenizer.to_dict(),
        "vocab": vocab.to_dict(),
    }
    save_checkpoint(path / "best", model, meta)
    return model.eval(), vocab


@pytest.fixture
def run(tmp_path):
    model, vocab = _checkpoint(tmp_path)
    return tmp_path, model, vocab


def test_predictions_match_the_model(run):
    run_dir, model, vocab = run
    predictor = Predictor.from_checkpoint(run_dir)  # a run folder means its best/ checkpoint
    results = predictor.predict(TEXTS[:2])
    for text, result in zip(TEXTS[:2], results, strict=True):
        ids = torch.tensor([vocab.encode(CharTokenizer()(text)[:16])])
        with torch.no_grad():
            logits, weights = model(ids, torch.tensor([ids.shape[1]]))
        probs = torch.softmax(logits[0], -1).tolist()
        assert result["probabilities"] == pytest.approx(
            dict(zip(["neg", "neutral", "pos"], probs, strict=True))
        )
        assert result["label"] == ["neg", "neutral", "pos"][int(logits.argmax())]
        assert result["tokens"] == CharTokenizer()(text)
        assert result["attention"] == pytest.approx(weights[0].tolist(), abs=1e-6)
        assert sum(result["attention"]) == pytest.approx(1.0)


def test_results_do_not_depend_on_batching_or_order(run):
    predictor = Predictor.from_checkpoint(run[0] / "best")  # a checkpoint folder works too
    together = predictor.predict(TEXTS, batch_size=2)
    alone = [predictor.predict([t])[0] for t in reversed(TEXTS)][::-1]
    for a, b in zip(together, alone, strict=True):
        assert a["label"] == b["label"] and a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
    probs = predictor.probabilities(TEXTS)
    assert probs.shape == (4, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_long_texts_are_truncated_and_say_so(run):
    (result,) = Predictor.from_checkpoint(run[0]).predict(["好" * 5000])
    assert result["truncated"] and result["num_tokens"] == 5000
    assert len(result["tokens"]) == len(result["attention"]) == 16
    assert Predictor.from_checkpoint(run[0]).predict("好")[0]["truncated"] is False  # one string is one text


def test_no_attention_without_attention_pooling(tmp_path):
    _checkpoint(tmp_path, pooling="mean")
    (result,) = Predictor.from_checkpoint(tmp_path).predict(["好用"])
    assert result["attention"] is None and set(result["probabilities"]) == {"neg", "neutral", "pos"}


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_an_error_naming_it(run, text):
    with pytest.raises(DataError, match="text 2: empty or whitespace-only text"):
        Predictor.from_checkpoint(run[0]).predict(["好", text])


def test_missing_and_corrupted_checkpoints(run, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Predictor.from_checkpoint(tmp_path / "nowhere")
    run_dir = run[0]
    meta_path = run_dir / "best" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    del meta["vocab"]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"meta.json lacks \['vocab'\]; not a classifier"):
        Predictor.from_checkpoint(run_dir)
    (run_dir / "best" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        Predictor.from_checkpoint(run_dir)


def test_weights_that_do_not_fit_the_config(run):
    run_dir = run[0]
    meta_path = run_dir / "best" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["config"]["model"]["hidden_size"] = 7
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError, match="does not describe a valid classifier"):
        Predictor.from_checkpoint(run_dir)


def _unknown_warnings(caplog):
    return [r for r in caplog.records if "unknown to the model" in r.getMessage()]


def test_texts_mostly_of_unknown_tokens_are_warned_about(run, caplog):
    run_dir, _, vocab = run
    predictor = Predictor.from_checkpoint(run_dir)
    known = "这个东西"  # every character is in the vocabulary
    assert all(vocab.encode(CharTokenizer()(known))) and vocab.unk_id not in vocab.encode(list(known))
    half = "好用xy"  # 2 of 4 unknown: exactly one half, not more
    most = "好xyz"  # 3 of 4 unknown
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        results = predictor.predict([known, half])
    assert [r["unknown_share"] for r in results] == [0.0, 0.5]
    assert not _unknown_warnings(caplog)

    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        results = predictor.predict([known, most, "hello world"])
    assert [r["unknown_share"] for r in results] == [0.0, 0.75, 1.0]
    (record,) = _unknown_warnings(caplog)  # one warning for the call, not one per text
    message = record.getMessage()
    assert "2 of 3 texts" in message and "text 2: 75%" in message and "text 3: 100%" in message
    assert "another language or tokenization" in message
    assert f"{len(vocab)}-token vocabulary" in message and "CharTokenizer" in message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        predictor.probabilities(["xyz"])  # the other entry point warns too
    assert len(_unknown_warnings(caplog)) == 1


def test_unknown_share_counts_only_the_tokens_read(run):
    run_dir, _, _ = run
    predictor = Predictor.from_checkpoint(run_dir)  # max_len=16
    (result,) = predictor.predict(["这个东西很好用，物流也快" + "xyzw" * 10])  # the unknown tail is cut off
    assert result["truncated"] and result["unknown_share"] == pytest.approx(4 / 16)
