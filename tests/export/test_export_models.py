"""The task models exported to ONNX: the sentiment classifier (every cell and pooling) and the seq2seq model
(encoder + one decoder step), run in onnxruntime against rnnlab at sizes other than the example's; padded
batches give each text its own answer; greedy decoding through the two files equals rnnlab's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import assert_close, op_types, padded_lengths, run, session  # noqa: E402

from rnnlab.export import ExportError, to_onnx  # noqa: E402
from rnnlab.inference.decoding import greedy_decode  # noqa: E402
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier  # noqa: E402
from rnnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig  # noqa: E402

# One worker per module under `--dist loadgroup`, so each model is exported once.
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_models")]

V = 30  # source / text vocabulary

CLASSIFIERS = {
    "lstm_bi_2layers_attention": dict(cell="lstm", num_layers=2, pooling="attention"),
    "gru_last": dict(cell="gru", bidirectional=False, pooling="last"),
    "rnn_bi_max": dict(cell="rnn", pooling="max"),
    "lstm_bi_mean": dict(cell="lstm", pooling="mean"),
}
SEQ2SEQ = {
    "gru_bi_2layers_additive_feeding": dict(cell="gru", num_layers=2, attention="additive"),
    "lstm_no_attention": dict(cell="lstm", bidirectional=False, attention="none"),
}


def _ids(B: int, T: int, seed: int, lengths: list[int] | None = None):
    """Random ids (B, T) in [2, V) padded with 0 after each length (longest = T), and the lengths."""
    g = torch.Generator().manual_seed(seed)
    if lengths is None:
        lengths = [T] + torch.randint(1, T + 1, (B - 1,), generator=g).tolist()
    L, mask = padded_lengths(lengths)
    ids = torch.randint(2, V, (B, T), generator=g)
    return ids.masked_fill(~mask, 0), L


@pytest.fixture(scope="module", params=list(CLASSIFIERS))
def classifier(request, tmp_path_factory):
    torch.manual_seed(0)
    config = ClassifierConfig(vocab_size=V, num_classes=3, embedding_dim=6, hidden_size=5, attention_size=7,
                              ngram_buckets=64, ngram_dim=4, **CLASSIFIERS[request.param])  # fmt: skip
    model = RecurrentClassifier(config).eval()
    path = to_onnx(model, _ids(2, 4, seed=0), tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return model, path


def test_classifier_file_checks_and_names_its_inputs_and_outputs(classifier):
    model, path = classifier
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert [i.name for i in graph.graph.input] == ["ids", "lengths"]
    attention = model.config.pooling == "attention"
    assert [o.name for o in graph.graph.output] == ["logits"] + (["attention"] if attention else [])
    assert {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[model.config.cell] in op_types(path)


@pytest.mark.parametrize(("B", "T"), [(1, 9), (6, 3)])
def test_classifier_matches_rnnlab_at_other_sizes(classifier, B, T):
    model, path = classifier
    ids, lengths = _ids(B, T, seed=B * 100 + T)
    got = run(session(path), ids=ids, lengths=lengths)
    with torch.no_grad():
        logits, weights = model(ids, lengths)
    assert_close(got["logits"], logits, "logits")
    if weights is not None:
        assert_close(got["attention"], weights, "attention")


def test_classifier_padded_batch_gives_each_text_its_own_answer(classifier):
    model, path = classifier
    ids, lengths = _ids(4, 7, seed=5, lengths=[7, 2, 5, 1])
    sess = session(path)
    batch = run(sess, ids=ids, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = run(sess, ids=ids[b : b + 1, :n], lengths=lengths[b : b + 1])
        assert_close(alone["logits"], torch.from_numpy(batch["logits"][b : b + 1]), f"text {b}: logits")
        if "attention" in batch:
            own = torch.from_numpy(batch["attention"][b : b + 1, :n])
            assert_close(alone["attention"], own, f"text {b}: attention")
            assert np.all(batch["attention"][b, n:] == 0), f"text {b}: attention on padding"


def test_classifier_with_a_variant_cell_raises_naming_it(tmp_path):
    config = ClassifierConfig(vocab_size=V, embedding_dim=4, hidden_size=4, attention_size=4, cell="min_gru")
    with pytest.raises(ExportError, match="min_gru"):
        to_onnx(RecurrentClassifier(config), _ids(2, 4, seed=0), tmp_path / "x.onnx")


@pytest.fixture(scope="module", params=list(SEQ2SEQ))
def seq2seq(request, tmp_path_factory):
    torch.manual_seed(0)
    config = Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=11, embedding_dim=6, hidden_size=8,
                           attention_size=7, **SEQ2SEQ[request.param])  # fmt: skip
    model = Seq2Seq(config).eval()
    paths = to_onnx(model, _ids(2, 4, seed=0), tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return model, paths


def test_seq2seq_files_check(seq2seq):
    model, (encoder, decoder) = seq2seq
    assert encoder.name.endswith(".encoder.onnx") and decoder.name.endswith(".decoder.onnx")
    for path in (encoder, decoder):
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    cell = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[model.config.cell]
    assert cell in op_types(encoder) and cell in op_types(decoder)


def _ort_greedy(model, encoder, decoder, src, lengths, max_len: int):
    """Greedy decoding with the two files; checks every step's logits and attention against rnnlab's
    decode_step on the same inputs, and returns the tokens of each example (without <eos>)."""
    c = model.config
    enc = run(session(encoder), src=src, src_lengths=lengths)
    with torch.no_grad():
        memory, state = model.encode(src, lengths)
    assert_close(enc["memory"], memory.outputs, "memory")
    assert_close(enc["h0"], state.hidden, "h0")
    if state.cell is not None:
        assert_close(enc["c0"], state.cell, "c0")
    feeds = {k: v for k, v in enc.items() if k != "memory"}
    dec = session(decoder)
    y = torch.full((src.shape[0],), c.bos_id, dtype=torch.int64)
    steps = []
    for _ in range(max_len):
        out = run(dec, y_prev=y, memory=enc["memory"], src_lengths=lengths, **feeds)
        with torch.no_grad():
            logits, state, weights = model.decode_step(y, state, memory)
        assert_close(out["logits"], logits, "logits")
        if weights is not None:
            assert_close(out["attention"], weights, "attention")
        feeds = {"h0": out["h_n"]}  # the next step's state: h_n -> h0, c_n -> c0, feed_n -> feed
        if "c_n" in out:
            feeds["c0"] = out["c_n"]
        if "feed_n" in out:
            feeds["feed"] = out["feed_n"]
        y = torch.from_numpy(out["logits"].argmax(-1))
        steps.append(y)
    tokens = torch.stack(steps, 1).tolist()
    return [row[: row.index(c.eos_id)] if c.eos_id in row else row for row in tokens]


@pytest.mark.parametrize(("B", "T"), [(1, 6), (5, 3)])
def test_seq2seq_greedy_decoding_matches_rnnlab(seq2seq, B, T):
    model, (encoder, decoder) = seq2seq
    src, lengths = _ids(B, T, seed=B * 10 + T)
    got = _ort_greedy(model, encoder, decoder, src, lengths, max_len=5)
    assert got == greedy_decode(model, src, lengths, max_len=5).tokens


def test_seq2seq_padded_batch_gives_each_source_its_own_encoding(seq2seq):
    model, (encoder, _) = seq2seq
    src, lengths = _ids(3, 6, seed=7, lengths=[6, 1, 3])
    sess = session(encoder)
    batch = run(sess, src=src, src_lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = run(sess, src=src[b : b + 1, :n], src_lengths=lengths[b : b + 1])
        own = torch.from_numpy(batch["memory"][b : b + 1, :n])
        assert_close(alone["memory"], own, f"source {b}: memory")
        assert_close(alone["h0"], torch.from_numpy(batch["h0"][:, b : b + 1]), f"source {b}: h0")
