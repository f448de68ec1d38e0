"""Stateful TBPTT batches: each row reads consecutive chunks of one stream, targets are the next ids, and
a model's carried state over the chunks equals one long pass; the step function carries and resets it."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data.streams import StreamBatches
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.tasks.charlm import StatefulStep, score_ids

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rows_read_consecutive_chunks_of_one_stream():
    ids = torch.arange(103)
    batches = StreamBatches(ids, batch_size=4, bptt=5)
    chunks = list(batches)
    assert len(chunks) == len(batches) == (103 // 4 - 1) // 5
    for b in range(4):
        row = torch.cat([c.x[b] for c in chunks])
        start = b * (103 // 4)
        assert torch.equal(row, ids[start : start + row.numel()])  # consecutive, no gap, no overlap
        assert torch.equal(torch.cat([c.y[b] for c in chunks]), row + 1)  # the next id after each
    assert [c.reset for c in chunks] == [True] + [False] * (len(chunks) - 1)


def test_epochs_walk_on_through_the_stream_and_reset_at_the_wrap():
    batches = StreamBatches(torch.arange(200), batch_size=2, bptt=10, steps_per_epoch=3)
    first = [c.x[0, 0].item() for c in batches]
    batches.set_epoch(1)
    second = list(batches)
    assert [c.x[0, 0].item() for c in second] == [first[-1] + 10 * k for k in (1, 2, 3)]
    assert second[0].reset and not second[1].reset
    batches.set_epoch(3)  # chunk 9 = (9 chunks per pass) wraps to chunk 0
    assert [c.reset for c in batches][0] and list(batches)[0].x[0, 0].item() == 0


def test_a_text_shorter_than_one_chunk_is_refused():
    with pytest.raises(ValueError, match="too short"):
        StreamBatches(torch.arange(20), batch_size=4, bptt=8)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_equals_one_long_pass(cell):
    torch.manual_seed(0)
    model = CharLM(
        CharLMConfig(vocab_size=11, cell=cell, hidden_size=8, embedding_dim=4, num_layers=2)
    ).eval()
    ids = torch.randint(2, 11, (3 * 41,))
    batches = StreamBatches(ids, batch_size=3, bptt=8)
    rows = batches.rows[:, : 8 * len(batches)]
    whole, _ = model(rows)  # (3, T, V): one pass over each row
    step, pieces = StatefulStep(), []
    with torch.no_grad():
        for batch in batches:
            if batch.reset:
                step.state = None
            logits, state = model(batch.x, step.state)
            step.state = state
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, 1), whole, rtol=1e-5, atol=1e-5)


def test_step_carries_detached_state_and_resets_when_told():
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=7, hidden_size=6, embedding_dim=3))
    batches = list(StreamBatches(torch.randint(2, 7, (80,)), batch_size=2, bptt=5))
    step = StatefulStep()
    step(model, batches[0]).backward()
    carried = step.state
    assert not carried[0].requires_grad  # detached: the next backward stops at the chunk boundary
    step(model, batches[1]).backward()
    assert not torch.equal(step.state[0], carried[0])
    step(model, batches[0])  # reset=True: starts from zeros again, so the state equals the first one
    torch.testing.assert_close(step.state[0], carried[0])


def test_score_counts_every_prediction_once_and_bpc_is_loss_over_ln2():
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=9, hidden_size=5, embedding_dim=3))
    ids = torch.randint(2, 9, (101,))
    scores = score_ids(model, ids, rows=4, bptt=7)
    assert scores["characters"] == 4 * (101 // 4 - 1)
    assert scores["bpc"] == pytest.approx(scores["loss"] / torch.log(torch.tensor(2.0)).item())
    one_row = score_ids(model, ids, rows=1, bptt=1000)
    logits, _ = model.eval()(ids[:-1].view(1, -1))
    expected = torch.nn.functional.cross_entropy(logits[0], ids[1:]).item()
    assert one_row["loss"] == pytest.approx(expected, rel=1e-5)
