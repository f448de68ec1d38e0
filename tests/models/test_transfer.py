"""Transfer from character LMs into the classifier (rnnlab.models.transfer): the mapped embedding rows and the
recurrent weights are copied exactly, unseen characters keep their init, a backward LM lands in the reverse
direction, and at the start each direction computes exactly its LM's states. The LMs are tiny charlm runs."""

from __future__ import annotations

import json

import pytest
import torch

from lm_runs import train_lm
from rnnlab.data import Vocab
from rnnlab.models import ClassifierConfig, RecurrentClassifier
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.models.transfer import PretrainedLM, load_encoder, matching_sizes
from rnnlab.training import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

UNSEEN = ["龘", "z"]  # characters the LMs never read
TEXT = "这个东西很好用就是退货很慢"  # every character known to the LMs


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """A forward and a backward 2-layer LSTM LM (E = 6, H = 8), read as PretrainedLM."""
    folder = tmp_path_factory.mktemp("lms")
    out = []
    for name, reverse in (("fwd", False), ("bwd", True)):
        run = train_lm(folder / name, "model.num_layers=2", reverse=reverse)
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        out.append(PretrainedLM.from_checkpoint(load_checkpoint(run / "best"), config, source=str(run)))
    return out


def _vocab(lm: PretrainedLM) -> list[str]:
    """A classifier vocabulary: some of the LM's characters, in another order, and two it never saw."""
    known = [t for t in lm.tokens[2:] if t.strip()][::-1]
    return ["<pad>", "<unk>", *known[:10], *UNSEEN, *known[10:]]


def _classifier(tokens, **overrides) -> RecurrentClassifier:
    torch.manual_seed(0)
    config = ClassifierConfig(vocab_size=len(tokens), embedding_dim=12, hidden_size=8, num_layers=2)
    config.attention_size, config.ngram_buckets, config.ngram_dim = 4, 64, 4
    for key, value in overrides.items():
        setattr(config, key, value)
    return RecurrentClassifier(config).eval()


def test_mapped_rows_are_copied_and_unseen_characters_keep_their_init(lms):
    fwd, bwd = lms
    tokens = _vocab(fwd)
    model = _classifier(tokens)
    before = model.embedding.weight.detach().clone()
    report = load_encoder(model, tokens, fwd, bwd)
    weight = model.embedding.weight
    E = 6
    for i, token in enumerate(tokens):
        if token in UNSEEN or i < 2:  # <pad> (zero), <unk> and the unseen keep the classifier's init
            torch.testing.assert_close(weight[i], before[i], rtol=0, atol=0)
            continue
        torch.testing.assert_close(weight[i, :E], fwd.state_dict["embedding.weight"][fwd.tokens.index(token)])
        torch.testing.assert_close(weight[i, E:], bwd.state_dict["embedding.weight"][bwd.tokens.index(token)])
    assert torch.count_nonzero(weight[0]) == 0
    assert report.mapped == {"forward": len(tokens) - 4, "reverse": len(tokens) - 4}
    assert report.coverage["forward"] == pytest.approx((len(tokens) - 4) / (len(tokens) - 2))
    assert report.unseen == UNSEEN and report.notes == []


def test_the_recurrent_weights_land_in_their_direction(lms):
    fwd, bwd = lms
    tokens = _vocab(fwd)
    model = _classifier(tokens)
    load_encoder(model, tokens, fwd, bwd)
    enc = dict(model.encoder.named_parameters())
    for lm, suffix, d in ((fwd, "", 0), (bwd, "_reverse", 1)):
        state = lm.rnn_state
        for layer in (0, 1):
            for kind in ("weight_hh", "bias_ih", "bias_hh"):
                torch.testing.assert_close(enc[f"{kind}_l{layer}{suffix}"], state[f"{kind}_l{layer}"])
        W0, W1 = enc[f"weight_ih_l0{suffix}"], enc[f"weight_ih_l1{suffix}"]  # (4H, 2E), (4H, 2H)
        torch.testing.assert_close(W0[:, 6 * d : 6 * d + 6], state["weight_ih_l0"])
        torch.testing.assert_close(W1[:, 8 * d : 8 * d + 8], state["weight_ih_l1"])
        assert torch.count_nonzero(W0[:, 6 * (1 - d) : 6 * (1 - d) + 6]) == 0  # the other LM's vectors
        assert torch.count_nonzero(W1[:, 8 * (1 - d) : 8 * (1 - d) + 8]) == 0  # the other direction


def _lm_states(lm: PretrainedLM, text: str) -> torch.Tensor:
    """The LM's last-layer states over ``text`` (its own reading order), (T, H)."""
    config = CharLMConfig.from_dict({k: v for k, v in lm.config.items() if k != "reverse"})
    model = CharLM(config).eval()
    model.load_state_dict(lm.state_dict)
    ids = torch.tensor([[lm.tokens.index(ch) for ch in text]])  # (1, T)
    with torch.no_grad():
        out, _ = model.rnn(model.embedding(ids))  # (1, T, H)
    return out[0]


def test_at_the_start_each_direction_computes_its_lms_states(lms):
    fwd, bwd = lms
    tokens = _vocab(fwd)
    model = _classifier(tokens)
    load_encoder(model, tokens, fwd, bwd)
    ids = torch.tensor([[tokens.index(ch) for ch in TEXT]])  # (1, T)
    with torch.no_grad():
        outputs, _ = model.encode(ids, torch.tensor([len(TEXT)]))  # (1, T, 2H)
    torch.testing.assert_close(outputs[0, :, :8], _lm_states(fwd, TEXT))
    # the backward LM read the text reversed: its states, put back in text order, are the reverse direction's
    torch.testing.assert_close(outputs[0, :, 8:], _lm_states(bwd, TEXT[::-1]).flip(0))


def test_one_forward_lm_leaves_the_reverse_direction_alone_and_says_so(lms):
    fwd, _ = lms
    tokens = _vocab(fwd)
    model = _classifier(tokens, embedding_dim=6)
    before = {k: v.detach().clone() for k, v in model.encoder.named_parameters() if k.endswith("_reverse")}
    report = load_encoder(model, tokens, fwd)
    after = dict(model.encoder.named_parameters())
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert (
        report.sources == {"forward": fwd.source}
        and "reverse direction starts from random" in report.notes[0]
    )
    torch.testing.assert_close(after["weight_ih_l0"], fwd.rnn_state["weight_ih_l0"])  # all E columns


def test_a_shape_mismatch_names_both_sides(lms):
    fwd, bwd = lms
    tokens = _vocab(fwd)
    with pytest.raises(
        ValueError, match=r"gives model.hidden_size=8 .* the classifier has model.hidden_size=6"
    ):
        load_encoder(_classifier(tokens, hidden_size=6), tokens, fwd, bwd)
    with pytest.raises(ValueError, match=r"model.embedding_dim=6, the language models give 6 \+ 6 = 12"):
        load_encoder(_classifier(tokens, embedding_dim=6), tokens, fwd, bwd)
    with pytest.raises(ValueError, match=r"gives model.cell='lstm' .* the classifier has model.cell='gru'"):
        load_encoder(_classifier(tokens, cell="gru"), tokens, fwd, bwd)
    with pytest.raises(ValueError, match="a backward LM .* was given as the forward one"):
        load_encoder(_classifier(tokens), tokens, bwd, fwd)
    with pytest.raises(ValueError, match="needs a bidirectional classifier"):
        load_encoder(_classifier(tokens, bidirectional=False), tokens, fwd, bwd)
    with pytest.raises(ValueError, match=r"vocab_tokens: expected \d+ tokens"):
        load_encoder(_classifier(tokens), tokens[:-1], fwd, bwd)
    assert matching_sizes(fwd, bwd) == {
        "embedding_dim": 12,
        "hidden_size": 8,
        "num_layers": 2,
        "cell": "lstm",
        "bidirectional": True,
    }


@pytest.mark.parametrize("cell", ["gru", "variational_dropout_lstm"])
def test_weight_drop_names_and_other_cells_transfer(cell):
    """A WeightDrop LM stores ``rnn.weight_hh_l0_raw`` and ``rnn.module.*``: torch.nn's names once undone."""
    tokens = ["<pad>", "<unk>", "好", "差"]
    torch.manual_seed(0)
    lm_config = CharLMConfig(vocab_size=4, embedding_dim=4, hidden_size=5, cell=cell)
    lm_config.weight_drop = 0.5 if cell == "gru" else 0.0
    lm = PretrainedLM(CharLM(lm_config).state_dict(), lm_config.to_dict(), ["<pad>", "<unk>", "差", "好"])
    classifier_cell = "lstm" if cell == "variational_dropout_lstm" else cell
    model = _classifier(tokens, embedding_dim=4, hidden_size=5, num_layers=1, cell=classifier_cell)
    load_encoder(model, tokens, lm)
    state = lm.rnn_state
    assert sorted(state) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    torch.testing.assert_close(dict(model.encoder.named_parameters())["weight_hh_l0"], state["weight_hh_l0"])
    torch.testing.assert_close(model.embedding.weight[2], lm.state_dict["embedding.weight"][3])  # 好


def test_a_layernorm_lm_is_refused_by_name():
    lm = PretrainedLM({}, {"cell": "layernorm_lstm", "embedding_dim": 4, "hidden_size": 4, "num_layers": 1},
                      Vocab.build([["a"]]).tokens, source="runs/ln")  # fmt: skip
    with pytest.raises(ValueError, match="runs/ln: model.cell='layernorm_lstm' cannot be transferred"):
        matching_sizes(lm)
