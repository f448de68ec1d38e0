"""The character model: shapes and state of every cell, tied weights shared, regularizers off in eval,
config errors naming the field."""

from __future__ import annotations

import pytest
import torch

from rnnlab.models.charlm import CELLS, CharLM, CharLMConfig, detach_state

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("cell", list(CELLS))
def test_every_cell_returns_logits_and_a_state_to_carry(cell):
    torch.manual_seed(0)
    cfg = CharLMConfig(vocab_size=10, cell=cell, hidden_size=6, embedding_dim=4, num_layers=2, dropout=0.2)
    model = CharLM(cfg).eval()
    ids = torch.randint(0, 10, (3, 5))
    logits, state = model(ids)
    assert logits.shape == (3, 5, 10)
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (2, 3, 6) and isinstance(state, tuple) == model.has_cell_state
    # carrying the state over a split equals one pass
    first, mid = model(ids[:, :2])
    second, _ = model(ids[:, 2:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), logits, rtol=1e-5, atol=1e-5)


def test_tied_weights_share_one_matrix_and_project_when_sizes_differ():
    model = CharLM(CharLMConfig(vocab_size=12, hidden_size=8, embedding_dim=4, tie_weights=True))
    assert model.decoder.weight is model.embedding.weight
    assert model.proj is not None and model.proj.out_features == 4
    untied = CharLM(CharLMConfig(vocab_size=12, hidden_size=8, embedding_dim=4))
    assert untied.decoder.weight is not untied.embedding.weight and untied.proj is None
    n_tied = sum(p.numel() for p in model.parameters())
    assert n_tied < sum(p.numel() for p in untied.parameters())


def test_weight_drop_changes_training_outputs_only():
    torch.manual_seed(0)
    model = CharLM(
        CharLMConfig(vocab_size=8, hidden_size=6, embedding_dim=4, weight_drop=0.5, output_dropout=0)
    )
    ids = torch.randint(0, 8, (2, 6))
    assert any(name.endswith("weight_hh_l0_raw") for name, _ in model.named_parameters())
    model.eval()
    torch.testing.assert_close(model(ids)[0], model(ids)[0])
    model.train()
    torch.manual_seed(1)
    a = model(ids)[0]
    torch.manual_seed(2)
    assert not torch.allclose(a, model(ids)[0])


def test_step_states_match_the_batched_pass():
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=8, hidden_size=5, embedding_dim=3)).eval()
    ids = torch.randint(2, 8, (7,))
    logits, cells = model.step_states(ids)
    full, (h, c) = model(ids.view(1, -1))
    torch.testing.assert_close(logits, full[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cells[-1], c[-1, 0], rtol=1e-5, atol=1e-5)


def test_detach_state_cuts_the_graph():
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    assert not detach_state(h).requires_grad
    assert all(not s.requires_grad for s in detach_state((h, h)))
    assert detach_state(None) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cell", "tcn", "model.cell: expected one of"),
        ("hidden_size", -1, "model.hidden_size"),  # 0 means "sized by the task for its budget"
        ("weight_drop", 1.0, "model.weight_drop"),
        ("vocab_size", 2, "model.vocab_size"),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        CharLMConfig(**{"vocab_size": 10, field: value}).validate()
