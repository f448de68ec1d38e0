"""Seq2Seq: config checks, the packed encoder's states, the decoder's padding and state handling, the loss
ignoring padding, scheduled sampling, and a training step that learns."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rnnlab.models.seq2seq import (
    ATTENTION_CHOICES,
    DecoderState,
    Memory,
    Seq2Seq,
    Seq2SeqConfig,
    sequence_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")

V_SRC, V_TGT = 13, 11


def make_model(seed=0, **overrides) -> Seq2Seq:
    torch.manual_seed(seed)
    sizes = dict(
        src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, embedding_dim=8, hidden_size=12, attention_size=10
    )
    return Seq2Seq(Seq2SeqConfig(**{**sizes, "dropout": 0.0, **overrides})).eval()


def make_batch(lengths=(5, 2, 4), tgt_len=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    src = torch.randint(4, V_SRC, (B, T), generator=g)
    for b, n in enumerate(lengths):
        src[b, n:] = 0
    tgt_in = torch.randint(4, V_TGT, (B, tgt_len), generator=g)
    tgt_in[:, 0] = 2  # <bos>
    return src, torch.tensor(lengths), tgt_in


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"cell": "transformer"}, "cell"),
        ({"attention": "multihead"}, "attention"),
        ({"hidden_size": 7, "bidirectional": True}, "hidden_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"bos_id": 0}, "pad_id, bos_id, eos_id"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(overrides, key):
    with pytest.raises(ValueError, match=key):
        Seq2SeqConfig(**overrides)


def test_vocab_sizes_must_exceed_the_special_ids():
    with pytest.raises(ValueError, match="tgt_vocab_size"):
        Seq2Seq(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=3))


def test_embeddings_know_their_padding_idx():
    model = make_model()
    assert model.encoder.embedding.padding_idx == 0
    assert model.decoder.embedding.padding_idx == 0
    assert torch.equal(model.encoder.embedding.weight[0], torch.zeros(8))


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_bidirectional_encoder_final_states_are_the_annotations_at_each_end(cell, num_layers):
    """Packed: the forward half ends at the last real token, the backward half at the first; padding is 0."""
    model = make_model(cell=cell, num_layers=num_layers)
    src, lengths, _ = make_batch()
    outputs, states = model.encoder(src, lengths)
    H2 = 6
    assert outputs.shape == (3, 5, 12) and states[0].shape == (num_layers, 3, 12)
    assert len(states) == (2 if cell == "lstm" else 1)
    top = states[0][-1]  # (B, H) top layer [forward; backward]
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(top[b, :H2], outputs[b, n - 1, :H2])
        torch.testing.assert_close(top[b, H2:], outputs[b, 0, H2:])
        assert torch.equal(outputs[b, n:], torch.zeros_like(outputs[b, n:]))


def test_padded_source_gives_each_example_its_own_logits():
    model = make_model()
    src, lengths, tgt_in = make_batch()
    logits, attention = model(src, lengths, tgt_in)
    for b, n in enumerate(lengths.tolist()):
        alone_logits, alone_attention = model(src[b : b + 1, :n], lengths[b : b + 1], tgt_in[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone_logits)
        torch.testing.assert_close(attention[b : b + 1, :, :n], alone_attention)


@pytest.mark.parametrize("attention", ATTENTION_CHOICES)
def test_forward_shapes_and_attention_shapes(attention):
    model = make_model(attention=attention)
    src, lengths, tgt_in = make_batch()
    logits, weights = model(src, lengths, tgt_in)
    assert logits.shape == (3, 4, V_TGT)
    if attention == "none":
        assert weights is None and model.decoder.combine is None
    else:
        assert weights.shape == (3, 4, 5)


def test_decode_step_keeps_no_state_on_the_module():
    model = make_model()
    src, lengths, tgt_in = make_batch()
    memory, state = model.encode(src, lengths)
    first = model.decode_step(tgt_in[:, 0], state, memory)
    model.decode_step(tgt_in[:, 1], first[1], memory)  # advance once more...
    again = model.decode_step(tgt_in[:, 0], state, memory)  # ...then replay the first step
    torch.testing.assert_close(first[0], again[0])
    torch.testing.assert_close(first[1].hidden, again[1].hidden)


def test_state_and_memory_index_select_reorders_examples():
    model = make_model(cell="lstm")
    src, lengths, _ = make_batch()
    memory, state = model.encode(src, lengths)
    index = torch.tensor([2, 0, 0])
    s, m = state.index_select(index), memory.index_select(index)
    assert isinstance(s, DecoderState) and isinstance(m, Memory)
    assert torch.equal(s.hidden[:, 1], state.hidden[:, 0]) and torch.equal(s.cell[:, 0], state.cell[:, 2])
    assert torch.equal(s.feed[1], state.feed[0]) and torch.equal(m.mask[0], memory.mask[2])


def test_teacher_forcing_zero_feeds_the_models_own_argmax():
    model = make_model()
    src, lengths, tgt_in = make_batch()
    logits, _ = model(src, lengths, tgt_in, teacher_forcing=0.0)
    memory, state = model.encode(src, lengths)
    y, expected = tgt_in[:, 0], []
    for _ in range(tgt_in.shape[1]):
        step_logits, state, _ = model.decode_step(y, state, memory)
        expected.append(step_logits)
        y = step_logits.argmax(-1)
    torch.testing.assert_close(logits, torch.stack(expected, dim=1))


def test_loss_ignores_padding_and_equals_the_per_token_mean():
    logits = torch.randn(2, 3, 5)
    tgt_out = torch.tensor([[4, 3, 0], [1, 2, 3]])
    loss = sequence_loss(logits, tgt_out, pad_id=0)
    changed = logits.clone()
    changed[0, 2] = 100.0  # anything at the padded position
    assert torch.equal(sequence_loss(changed, tgt_out, pad_id=0), loss)
    logp = torch.log_softmax(logits, -1)
    picked = [logp[0, 0, 4], logp[0, 1, 3], logp[1, 0, 1], logp[1, 1, 2], logp[1, 2, 3]]
    torch.testing.assert_close(loss, -torch.stack(picked).mean())
    with pytest.raises(ValueError, match="logits"):
        sequence_loss(logits[:, :2], tgt_out, pad_id=0)


def test_input_checks_name_the_argument():
    model = make_model()
    src, lengths, tgt_in = make_batch()
    with pytest.raises(ValueError, match="src_lengths"):
        model(src, torch.tensor([5, 2]), tgt_in)
    with pytest.raises(ValueError, match="src_lengths"):
        model(src, torch.tensor([6, 2, 4]), tgt_in)
    with pytest.raises(ValueError, match="src:"):
        model(src.float(), lengths, tgt_in)
    with pytest.raises(ValueError, match="tgt_in"):
        model(src, lengths, tgt_in[:2])
    with pytest.raises(ValueError, match="teacher_forcing"):
        model(src, lengths, tgt_in, teacher_forcing=1.5)


def test_config_round_trips_and_rebuilds_the_same_model():
    model = make_model(cell="lstm", attention="general", num_layers=2)
    rebuilt = Seq2Seq(Seq2SeqConfig(**model.config_dict())).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    src, lengths, tgt_in = make_batch()
    torch.testing.assert_close(rebuilt(src, lengths, tgt_in)[0], model(src, lengths, tgt_in)[0])
    assert dataclasses.asdict(rebuilt.config) == model.config_dict()


@pytest.mark.parametrize("attention", ["additive", "none"])
def test_a_few_steps_learn_to_reverse_a_fixed_batch(attention):
    """Training reduces the loss a lot, and gradients reach every parameter."""
    model = make_model(attention=attention).train()
    src, lengths, _ = make_batch(lengths=(4, 4, 3, 2), seed=3)
    tgt = [src[b, : lengths[b]].flip(0).tolist() for b in range(4)]  # reversed source, as target ids
    S = max(map(len, tgt)) + 1
    tgt_in = torch.tensor([[2, *t] + [0] * (S - len(t) - 1) for t in tgt])
    tgt_out = torch.tensor([[*t, 3] + [0] * (S - len(t) - 1) for t in tgt]).clamp(max=V_TGT - 1)
    tgt_in = tgt_in.clamp(max=V_TGT - 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(30):
        loss = sequence_loss(model(src, lengths, tgt_in)[0], tgt_out, pad_id=0)
        opt.zero_grad()
        loss.backward()
        if not losses:
            no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert no_grad == [], no_grad
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
