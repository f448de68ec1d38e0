"""Decoding properties: beam width 1 is greedy; stepping with carried state equals the teacher-forced pass; a
padded batch decodes as each source alone; a beam wider than the search space finds the exact optimum;
attention rows are distributions that give padding nothing."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnlab.inference.decoding import beam_search, greedy_decode, length_penalty_factor
from rnnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, sequence_loss

pytestmark = pytest.mark.usefixtures("one_thread")

V_SRC, V_TGT, EOS = 13, 9, 3


def make_model(seed=0, dtype=torch.float64, **overrides) -> Seq2Seq:
    """float64: decoding compares argmaxes across batch shapes, so no near-tie may flip by rounding."""
    torch.manual_seed(seed)
    sizes = dict(
        src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, embedding_dim=8, hidden_size=12, attention_size=10
    )
    model = Seq2Seq(Seq2SeqConfig(**{**sizes, "dropout": 0.0, **overrides})).to(dtype).eval()
    with torch.no_grad():  # a strong <eos> bias: random models should end within the tests' max_len
        model.decoder.out.bias[EOS] += 1.5
    return model


def make_source(lengths=(6, 2, 4, 1), seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V_SRC, (len(lengths), max(lengths)), generator=g)
    for b, n in enumerate(lengths):
        src[b, n:] = 0
    return src, torch.tensor(lengths)


CASES = [
    {"cell": cell, "attention": attention, "input_feeding": feeding, "num_layers": layers}
    for cell, attention, feeding, layers in [
        ("gru", "additive", True, 1),
        ("lstm", "dot", False, 2),
        ("rnn", "general", True, 1),
        ("gru", "concat", False, 1),
        ("lstm", "none", False, 1),
        ("gru", "additive", False, 2),
    ]
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_beam_width_one_equals_greedy(overrides):
    model = make_model(**overrides)
    src, lengths = make_source()
    greedy = greedy_decode(model, src, lengths, max_len=12)
    beam = beam_search(model, src, lengths, beam_size=1, max_len=12)
    assert beam.tokens == greedy.tokens
    assert beam.finished == greedy.finished
    torch.testing.assert_close(torch.tensor(beam.log_probs), torch.tensor(greedy.log_probs))
    for a, b in zip(beam.attention, greedy.attention, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_stepping_with_carried_state_equals_the_teacher_forced_pass(overrides):
    model = make_model(**overrides)
    src, lengths = make_source()
    g = torch.Generator().manual_seed(5)
    tgt_in = torch.randint(4, V_TGT, (4, 7), generator=g)
    tgt_in[:, 0] = 2
    logits, attention = model(src, lengths, tgt_in)  # one pass (all steps at once without input feeding)
    memory, state = model.encode(src, lengths)
    step_logits, step_weights = [], []
    for t in range(tgt_in.shape[1]):
        out, state, w = model.decode_step(tgt_in[:, t], state, memory)
        step_logits.append(out)
        step_weights.append(w)
    torch.testing.assert_close(torch.stack(step_logits, dim=1), logits)
    if attention is None:
        assert all(w is None for w in step_weights)
    else:
        torch.testing.assert_close(torch.stack(step_weights, dim=1), attention)


@pytest.mark.parametrize("decode", ["greedy", "beam"])
@pytest.mark.parametrize("overrides", CASES[:3], ids=lambda o: "-".join(map(str, o.values())))
def test_padded_batch_decodes_the_same_as_each_source_alone(decode, overrides):
    model = make_model(**overrides)
    src, lengths = make_source()

    def run(s, n):
        if decode == "greedy":
            return greedy_decode(model, s, n, max_len=10)
        return beam_search(model, s, n, beam_size=3, length_penalty=0.6, max_len=10)

    batch = run(src, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = run(src[b : b + 1, :n], lengths[b : b + 1])
        assert batch.tokens[b] == alone.tokens[0]
        assert batch.finished[b] == alone.finished[0]
        torch.testing.assert_close(batch.scores[b], alone.scores[0])
        torch.testing.assert_close(batch.attention[b], alone.attention[0])


def sequence_log_prob(model, src, lengths, tokens):
    """log P(tokens <eos> | src) by one teacher-forced pass."""
    tgt_in = torch.tensor([[2, *tokens]])
    tgt_out = torch.tensor([[*tokens, EOS]])
    logp = torch.log_softmax(model(src, lengths, tgt_in)[0].double(), dim=-1)  # (1, S, V)
    return logp.gather(-1, tgt_out.unsqueeze(-1)).sum().item()


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wider_than_the_search_space_finds_the_best_output(alpha):
    """Every output of at most 2 tokens + <eos> is scored by brute force; beam search must find the best."""
    model = make_model(seed=3, attention="general")
    src, lengths = make_source(lengths=(3,))
    best_score, best = -float("inf"), None
    for n in range(3):
        for tokens in itertools.product(range(V_TGT), repeat=n):
            if EOS in tokens:
                continue
            score = sequence_log_prob(model, src, lengths, list(tokens)) / length_penalty_factor(n + 1, alpha)
            if score > best_score:
                best_score, best = score, list(tokens)
    out = beam_search(model, src, lengths, beam_size=V_TGT**2, length_penalty=alpha, max_len=3)
    assert out.finished == [True]
    assert out.tokens[0] == best
    assert out.scores[0] == pytest.approx(best_score, abs=1e-9)
    assert out.log_probs[0] == pytest.approx(sequence_log_prob(model, src, lengths, best), abs=1e-9)


def test_scores_are_log_probabilities_of_the_returned_outputs():
    model = make_model(seed=2)
    src, lengths = make_source()
    for out in (greedy_decode(model, src, lengths, 12), beam_search(model, src, lengths, 4, 0.0, 12)):
        for b, n in enumerate(lengths.tolist()):
            if out.finished[b]:
                expected = sequence_log_prob(model, src[b : b + 1, :n], lengths[b : b + 1], out.tokens[b])
                assert out.log_probs[b] == pytest.approx(expected, abs=1e-9)


def test_length_penalty_normalizes_the_score():
    model = make_model(seed=2)
    src, lengths = make_source()
    out = beam_search(model, src, lengths, beam_size=3, length_penalty=0.8, max_len=12)
    for b in range(4):
        n = len(out.tokens[b]) + out.finished[b]
        assert out.scores[b] == pytest.approx(out.log_probs[b] / ((5 + n) / 6) ** 0.8)


@pytest.mark.parametrize("decode", [greedy_decode, beam_search])
def test_attention_rows_sum_to_one_and_padding_gets_zero(decode):
    model = make_model()
    src, lengths = make_source()
    out = decode(model, src, lengths, max_len=8)
    for b, n in enumerate(lengths.tolist()):
        a = out.attention[b]
        assert a.shape == (len(out.tokens[b]) + out.finished[b], n)  # one row per output step, <eos> too
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[0]))
    # in the model's own weights, padded source positions get exactly zero
    memory, state = model.encode(src, lengths)
    _, _, weights = model.decode_step(torch.full((4,), 2), state, memory)
    assert torch.all(weights[~memory.mask] == 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, dtype=weights.dtype))


def test_outputs_cut_at_max_len_are_unfinished():
    model = make_model()
    with torch.no_grad():
        model.decoder.out.bias[EOS] = -1e4  # never ends
    src, lengths = make_source()
    for out in (greedy_decode(model, src, lengths, 5), beam_search(model, src, lengths, 2, 0.0, 5)):
        assert out.finished == [False] * 4
        assert all(len(t) == 5 for t in out.tokens)
        assert all(a.shape[0] == 5 for a in out.attention)


def test_no_attention_model_returns_none_attention_and_decoding_restores_train_mode():
    model = make_model(attention="none").train()
    src, lengths = make_source()
    out = beam_search(model, src, lengths, beam_size=2, max_len=6)
    assert out.attention == [None] * 4
    assert model.training


def test_arguments_are_checked():
    model = make_model()
    src, lengths = make_source()
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, lengths, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, src, lengths, max_len=0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(model, src, lengths, length_penalty=-1.0)
    with pytest.raises(TypeError, match="model"):
        greedy_decode(torch.nn.Linear(2, 2), src, lengths)


def test_loss_of_a_padded_batch_is_the_token_weighted_mean_of_each_pair_alone():
    model = make_model(attention="dot")
    src, lengths = make_source()
    targets = [[5, 6, 7], [4], [8, 8], [5, 4, 6, 7]]
    S = max(map(len, targets)) + 1
    tgt_in = torch.tensor([[2, *t] + [0] * (S - 1 - len(t)) for t in targets])
    tgt_out = torch.tensor([[*t, EOS] + [0] * (S - 1 - len(t)) for t in targets])
    batch_loss = sequence_loss(model(src, lengths, tgt_in)[0], tgt_out, pad_id=0)
    total = 0.0
    for b, t in enumerate(targets):
        n = lengths[b : b + 1]
        one = model(src[b : b + 1, : int(n)], n, tgt_in[b : b + 1, : len(t) + 1])[0]
        total += sequence_loss(one, tgt_out[b : b + 1, : len(t) + 1], pad_id=0) * (len(t) + 1)
    torch.testing.assert_close(batch_loss, total / sum(len(t) + 1 for t in targets))
