"""The recurrent classifier: padding never changes a text's output, attention is a distribution over its
tokens, configs validate and round-trip, and the model learns."""

from __future__ import annotations

import pytest
import torch

import rnnlab.nn
from rnnlab.data import collate
from rnnlab.models import ClassifierConfig, RecurrentClassifier
from rnnlab.models.classifier import VARIANTS, PaddedEncoder, _reverse_within_lengths


def _model(**overrides) -> RecurrentClassifier:
    torch.manual_seed(0)
    config = ClassifierConfig(vocab_size=30, num_classes=3, embedding_dim=8, hidden_size=6, attention_size=5)
    config.ngram_buckets, config.ngram_dim = 64, 4  # a small wide part: these tests are about the deep one
    for key, value in overrides.items():
        setattr(config, key, value)
    return RecurrentClassifier(config).eval()


SEQUENCES = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12], [2]]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention", "concat"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_text_alone(cell, pooling, bidirectional):
    """Packing keeps padding out of the recurrence and the pooling: batching changes no text's logits."""
    model = _model(cell=cell, pooling=pooling, bidirectional=bidirectional, num_layers=2)
    batch = collate(SEQUENCES)
    with torch.no_grad():
        logits, weights = model(batch.ids, batch.lengths)
        for row, seq in enumerate(SEQUENCES):
            alone, alone_weights = model(torch.tensor([seq]), torch.tensor([len(seq)]))
            torch.testing.assert_close(logits[row], alone[0], atol=1e-6, rtol=1e-5)
            if pooling == "attention":
                torch.testing.assert_close(weights[row, : len(seq)], alone_weights[0], atol=1e-6, rtol=1e-5)
    assert logits.shape == (4, 3)
    assert (weights is None) == (pooling != "attention")


@pytest.mark.parametrize("cell", sorted(VARIANTS))
@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_variant_encoders_are_padding_invariant_in_both_directions(cell, pooling):
    """The variants take padded input: the reverse direction must still start at each text's own end."""
    model = _model(cell=cell, pooling=pooling, bidirectional=True, num_layers=2)
    assert isinstance(model.encoder, PaddedEncoder)
    batch = collate(SEQUENCES)
    with torch.no_grad():
        logits, _ = model(batch.ids, batch.lengths)
        for row, seq in enumerate(SEQUENCES):
            alone, _ = model(torch.tensor([seq]), torch.tensor([len(seq)]))
            torch.testing.assert_close(logits[row], alone[0], atol=1e-5, rtol=1e-4)


def test_reversing_within_lengths_keeps_padding_in_place():
    index = _reverse_within_lengths(torch.tensor([3, 1, 2]), 3)
    assert index.tolist() == [[2, 1, 0], [0, 1, 2], [1, 0, 2]]


def test_attention_weights_are_a_distribution_over_the_tokens():
    model = _model()
    batch = collate(SEQUENCES)
    with torch.no_grad():
        _, weights = model(batch.ids, batch.lengths)
    assert weights.shape == batch.ids.shape
    assert torch.all(weights[~batch.mask] == 0)  # exactly zero on padding
    torch.testing.assert_close(weights.sum(-1), torch.ones(4))
    assert weights[3, 0] == 1.0  # a one-token text puts all its weight on that token


def test_last_pooling_reads_each_direction_at_its_end():
    """'last' = forward state after the last token and backward state after the first token."""
    model = _model(pooling="last", bidirectional=True)
    ids, lengths = torch.tensor([[3, 4, 5]]), torch.tensor([3])
    with torch.no_grad():
        outputs, last = model.encode(ids, lengths)  # (1, 3, 2H), (1, 2H)
    H = model.config.hidden_size
    torch.testing.assert_close(last[0, :H], outputs[0, -1, :H])
    torch.testing.assert_close(last[0, H:], outputs[0, 0, H:])


def test_concat_pooling_is_last_max_and_mean_side_by_side():
    """ULMFiT's concat pooling, by hand from the encoder's outputs: (B, 3*D*H) into the output layer."""
    model = _model(pooling="concat", bidirectional=True, ngram_order=0)
    ids, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    with torch.no_grad():
        outputs, last = model.encode(ids, lengths)  # (2, 3, 2H), (2, 2H)
        logits, weights = model(ids, lengths)
    pooled = torch.stack(
        [
            torch.cat([last[b], outputs[b, :n].max(0).values, outputs[b, :n].mean(0)])
            for b, n in enumerate((3, 2))
        ]
    )  # (2, 6H)
    assert model.output.in_features == 3 * 2 * 6 and weights is None
    torch.testing.assert_close(logits, model.output(pooled))


@pytest.mark.parametrize("cell", ["lstm", "layernorm_lstm"])
def test_layer_groups_go_bottom_to_top_and_hold_every_parameter_once(cell):
    model = _model(cell=cell, num_layers=2)
    groups = model.layer_groups()
    assert len(groups) == 4  # embedding, layer 0, layer 1, head
    assert [id(p) for p in groups[0]] == [id(model.embedding.weight)]
    assert sorted(id(p) for g in groups for p in g) == sorted(id(p) for p in model.parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    if cell == "lstm":  # both directions of a layer in its group
        assert sorted(names[id(p)] for p in groups[2]) == sorted(
            f"encoder.{k}_l1{s}"
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for s in ("", "_reverse")
        )
    else:
        assert all(names[id(p)].startswith("encoder.layers.1.") for p in groups[2])
    assert {names[id(p)].split(".")[0] for p in groups[3]} == {"pool", "ngrams", "output"}


def test_the_encoder_is_rnnlab_not_torch_nn():
    for cell, cls in [("rnn", rnnlab.nn.RNN), ("lstm", rnnlab.nn.LSTM), ("gru", rnnlab.nn.GRU)]:
        assert type(_model(cell=cell).encoder) is cls
    assert isinstance(_model().pool, rnnlab.nn.AttentionPooling)


def test_config_round_trip_and_rebuild_from_it():
    model = _model(cell="gru", pooling="max")
    rebuilt = RecurrentClassifier(ClassifierConfig.from_dict(model.config.to_dict()))
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    ids, lengths = torch.tensor([[3, 4, 5]]), torch.tensor([3])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(ids, lengths)[0], model(ids, lengths)[0])
    with pytest.raises(ValueError, match=r"model config: unknown keys \['hiden_size'\]"):
        ClassifierConfig.from_dict({"hiden_size": 3})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_size", 0, "model.hidden_size: expected an integer >= 1, received 0"),
        ("num_classes", 1, "model.num_classes: expected an integer >= 2, received 1"),
        ("cell", "transformer", "model.cell: expected one of rnn, lstm, gru, .*received 'transformer'"),
        (
            "pooling",
            "sum",
            "model.pooling: expected one of last, mean, max, attention, concat, received 'sum'",
        ),
        (
            "init",
            "  ",
            r"model.init: expected a charlm run folder \(or two, FWD,BWD\) or None, received '  '",
        ),
        ("dropout", 1.0, r"model.dropout: expected a probability in \[0, 1\), received 1.0"),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    config = ClassifierConfig(vocab_size=10)
    setattr(config, field, value)
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_model_needs_a_vocabulary_and_checks_its_inputs():
    with pytest.raises(ValueError, match="model.vocab_size: expected >= 2"):
        RecurrentClassifier(ClassifierConfig())  # vocab_size 0: not set from a vocabulary yet
    model = _model()
    with pytest.raises(ValueError, match=r"ids: expected shape \(B, T\), received \(3,\)"):
        model(torch.tensor([1, 2, 3]), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 2\], received \[0\]"):
        model(torch.tensor([[1, 2]]), torch.tensor([0]))


def test_a_few_steps_learn_a_keyword_rule():
    """Label = whether token 2 occurs: the loss falls and the training texts end up classified right."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    seqs = [
        torch.randint(3, 20, (int(n),), generator=gen).tolist()
        for n in torch.randint(2, 9, (64,), generator=gen)
    ]
    labels = [i % 2 for i in range(64)]
    for seq, label in zip(seqs, labels, strict=True):
        if label:
            seq[len(seq) // 2] = 2
    batch = collate(seqs, labels=labels)
    model = RecurrentClassifier(
        ClassifierConfig(vocab_size=20, embedding_dim=16, hidden_size=16, attention_size=8, ngram_buckets=64)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        logits, _ = model(batch.ids, batch.lengths)
        loss = torch.nn.functional.cross_entropy(logits, batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(batch.ids, batch.lengths)[0].argmax(-1) == batch.labels).float().mean().item()
    assert losses[-1] < 0.5 * losses[0] and accuracy >= 0.95
