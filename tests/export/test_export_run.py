"""``export_run`` and ``rnnlab export``: a tiny trained sentiment run becomes an ONNX file and a JSON sidecar
with which texts are classified from the sidecar alone, giving the Predictor's probabilities and attention;
a tiny translate run becomes encoder + decoder files whose greedy output equals rnnlab's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import run, session  # noqa: E402

from rnnlab.export import ExportError, add_subcommand, export_run  # noqa: E402
from rnnlab.inference.predictor import Predictor  # noqa: E402
from rnnlab.models.classifier import ClassifierConfig  # noqa: E402
from rnnlab.tasks import sentiment  # noqa: E402
from rnnlab.training import TrainerConfig  # noqa: E402
from rnnlab.training.checkpoint import CheckpointError  # noqa: E402
from tiny_runs import write_reviews  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_run")]

TEXTS = ["这个东西很好用，推荐", "质量太差了，很失望", "一般", "OK 好 😀 物流很快很快很快很快很快很快很快"]


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentiment")
    config = sentiment.SentimentConfig(
        data=sentiment.DataConfig(
            dataset=str(write_reviews(folder / "reviews.csv", n=60)), min_freq=1, max_len=12, batch_size=16
        ),  # fmt: skip
        model=ClassifierConfig(
            embedding_dim=8, hidden_size=6, attention_size=8, ngram_buckets=64, ngram_dim=4
        ),
        train=TrainerConfig(epochs=1, lr=0.01, progress=False),
    )
    sentiment.train(config, folder / "run")
    return folder / "run"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture(scope="module")
def exported(sentiment_run, tmp_path_factory):
    """``rnnlab export RUN -o FILE.onnx`` through the sub-command's handler (which calls export_run)."""
    output = tmp_path_factory.mktemp("onnx") / "sentiment.onnx"
    args = _parser().parse_args(["export", str(sentiment_run), "-o", str(output)])
    assert args.func(args) == 0
    return output, output.with_suffix(".json")


def _encode_from_sidecar(texts: list[str], meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """What a program in another language does with the sidecar: tokenize, map, truncate, pad."""
    pre = meta["preprocessing"]
    assert pre["tokenizer"]["name"] == "char"
    index = {token: i for i, token in enumerate(meta["vocab"]["tokens"])}
    rows = []
    for text in texts:
        text = text.lower() if pre["tokenizer"]["lower"] else text
        tokens = [ch for ch in text if not ch.isspace()][: pre["max_len"]]
        rows.append([index.get(t, pre["unk_id"]) for t in tokens] or [pre["unk_id"]])
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.full((len(rows), int(lengths.max())), pre["pad_id"], dtype=np.int64)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = r
    return ids, lengths


def test_export_run_writes_a_checked_model_and_its_sidecar(sentiment_run, exported):
    output, sidecar = exported
    assert sidecar.is_file()
    onnx.checker.check_model(onnx.load(str(output)), full_check=True)
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    predictor = Predictor.from_checkpoint(sentiment_run)
    assert meta["format"] == "rnnlab-onnx" and meta["task"] == "sentiment" and meta["model"] == output.name
    assert meta["labels"] == predictor.label_names == ["neg", "pos"]
    assert meta["vocab"]["tokens"] == predictor.vocab.tokens
    assert meta["preprocessing"]["max_len"] == 12
    assert list(meta["inputs"]) == ["ids", "lengths"] and list(meta["outputs"]) == ["logits", "attention"]


def test_onnxruntime_with_the_sidecar_gives_the_predictors_answers(sentiment_run, exported):
    output, sidecar = exported
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    ids, lengths = _encode_from_sidecar(TEXTS, meta)
    got = run(session(output), ids=ids, lengths=lengths)
    logits = got["logits"]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    predictor = Predictor.from_checkpoint(sentiment_run)
    expected = predictor.probabilities(TEXTS).numpy()
    assert np.abs(probabilities - expected).max() <= 1e-5
    results = predictor.predict(TEXTS)
    for b, r in enumerate(results):
        assert meta["labels"][int(logits[b].argmax())] == r["label"]
        n = int(lengths[b])
        assert np.abs(got["attention"][b, :n] - np.array(r["attention"])).max() <= 1e-5
        assert np.all(got["attention"][b, n:] == 0)


def test_the_export_subcommand_reports_a_bad_output_name(sentiment_run, tmp_path, capsys):
    args = _parser().parse_args(["export", str(sentiment_run), "-o", str(tmp_path / "m.txt"), "--static"])
    assert args.static and args.func(args) == 2
    assert "expected a file name ending in .onnx" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_unwritable_output_is_one_line_and_nothing_half_written(sentiment_run, tmp_path, monkeypatch):
    from rnnlab.cli import main
    from rnnlab.export import run as export_module

    if Path("/proc").is_dir():  # `rnnlab export RUN -o /proc/x.onnx`: once a FileNotFoundError traceback
        assert main(["export", str(sentiment_run), "-o", "/proc/x.onnx"]) == 2

    # the model written, then its sidecar fails: the export is undone and named in one ExportError
    def no_room(path, sidecar):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(export_module, "_write_sidecar", no_room)
    with pytest.raises(ExportError, match=r"output_path .*m\.onnx.*No space left on device"):
        export_run(sentiment_run, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_run_on_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(CheckpointError):
        export_run(tmp_path, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="output_path"):
        export_run(tmp_path, tmp_path / "m")


def test_a_translate_run_exports_encoder_and_decoder(tmp_path):
    from rnnlab.inference.decoding import greedy_decode
    from rnnlab.models.seq2seq import Seq2SeqConfig
    from rnnlab.tasks import translate

    config = translate.TranslateConfig(
        data=translate.DataConfig(n_train=48, n_valid=8, n_test=8, batch_size=24, eval_batch_size=24),
        model=Seq2SeqConfig(cell="lstm", embedding_dim=8, hidden_size=8, attention_size=8, dropout=0.0),
        train=TrainerConfig(epochs=1, lr=1e-2, patience=None, monitor="auto", progress=False),
    )
    translate.train(config, tmp_path / "run")
    sidecar = export_run(tmp_path / "run", tmp_path / "dates.onnx")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    assert (meta["encoder"], meta["decoder"]) == ("dates.encoder.onnx", "dates.decoder.onnx")
    for io, path in (
        ("encoder_io", meta["encoder"]),
        ("decoder_io", meta["decoder"]),
    ):  # names as in the files
        graph = onnx.load(str(tmp_path / path)).graph
        assert meta[io]["inputs"] == [i.name for i in graph.input]
        assert meta[io]["outputs"] == [o.name for o in graph.output]
    t = translate.load_translator(tmp_path / "run")
    assert (
        meta["src_vocab"]["tokens"] == t.src_vocab.tokens
        and meta["tgt_vocab"]["tokens"] == t.tgt_vocab.tokens
    )
    src_index = {token: i for i, token in enumerate(meta["src_vocab"]["tokens"])}
    text = "march 5, 2031"
    src = np.array([[src_index.get(ch, meta["preprocessing"]["unk_id"]) for ch in text if not ch.isspace()]])
    pre = meta["preprocessing"]
    enc = run(session(tmp_path / meta["encoder"]), src=src, src_lengths=np.array([src.shape[1]]))
    state_names = meta["encoder_io"]["outputs"][1:]  # h0, c0, feed: the decoder's state inputs
    assert state_names == ["h0", "c0", "feed"]
    feeds = {name: enc[name] for name in state_names}
    dec, y, tokens = session(tmp_path / meta["decoder"]), np.array([pre["bos_id"]]), []
    for _ in range(pre["max_len"]):
        out = run(dec, y_prev=y, memory=enc["memory"], src_lengths=np.array([src.shape[1]]), **feeds)
        next_names = meta["decoder_io"]["outputs"][1 : 1 + len(state_names)]  # h_n, c_n, feed_n
        feeds = {name: out[next_name] for name, next_name in zip(state_names, next_names, strict=True)}
        y = out["logits"].argmax(-1)
        if int(y[0]) == pre["eos_id"]:
            break
        tokens.append(int(y[0]))
    expected = greedy_decode(t.model, torch.from_numpy(src), torch.tensor([src.shape[1]]), pre["max_len"])
    assert tokens == expected.tokens[0]
