"""The sentiment classifier with its wide part (hashed n-grams of the token ids, rnnlab.models.ngrams)
exported to ONNX: the n-grams are computed inside the graph from ``ids`` and ``lengths``, and onnxruntime
gives rnnlab's logits at sizes other than the example's, a padded batch each text's own answer."""

from __future__ import annotations

import dataclasses

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import assert_close, padded_lengths, run, session  # noqa: E402

from rnnlab.export import to_onnx  # noqa: E402
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.xdist_group("export_wide_classifier"),
    pytest.mark.skipif(
        "ngram_order" not in {f.name for f in dataclasses.fields(ClassifierConfig)},
        reason="this classifier has no wide (n-gram) part",
    ),
]

V = 30


def _ids(B: int, T: int, seed: int, lengths: list[int] | None = None):
    g = torch.Generator().manual_seed(seed)
    if lengths is None:
        lengths = [T] + torch.randint(1, T + 1, (B - 1,), generator=g).tolist()
    L, mask = padded_lengths(lengths)
    return torch.randint(2, V, (B, T), generator=g).masked_fill(~mask, 0), L


@pytest.fixture(scope="module", params=["attention", "last"])
def wide(request, tmp_path_factory):
    torch.manual_seed(0)
    sizes = dict(vocab_size=V, num_classes=3, embedding_dim=6, hidden_size=5, attention_size=7)
    config = ClassifierConfig(**sizes, pooling=request.param, ngram_order=3, ngram_buckets=97, ngram_dim=4)
    model = RecurrentClassifier(config).eval()
    torch.nn.init.normal_(model.ngrams.table.weight)  # a wide part loud enough to show when it is missing
    path = to_onnx(model, _ids(2, 4, seed=0), tmp_path_factory.mktemp("onnx") / "wide.onnx")
    return model, path


def test_wide_classifier_file_checks(wide):
    _, path = wide
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["ids", "lengths"]


@pytest.mark.parametrize(("B", "T"), [(1, 9), (6, 3), (3, 1)])
def test_wide_classifier_matches_rnnlab_at_other_sizes(wide, B, T):
    model, path = wide
    ids, lengths = _ids(B, T, seed=B * 100 + T)
    got = run(session(path), ids=ids, lengths=lengths)
    with torch.no_grad():
        logits, _ = model(ids, lengths)
    assert_close(got["logits"], logits, "logits")


def test_wide_classifier_padded_batch_gives_each_text_its_own_answer(wide):
    _, path = wide
    ids, lengths = _ids(4, 7, seed=5, lengths=[7, 2, 5, 1])
    sess = session(path)
    batch = run(sess, ids=ids, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = run(sess, ids=ids[b : b + 1, :n], lengths=lengths[b : b + 1])
        assert_close(alone["logits"], torch.from_numpy(batch["logits"][b : b + 1]), f"text {b}: logits")
