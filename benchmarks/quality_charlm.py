"""Character language models on held-out Shakespeare plays: the default charlm model against an interpolated
character 5-gram and a causal transformer of the same parameter count, trained for the same CPU time.

    python benchmarks/quality_charlm.py --budget-s 1800 --out benchmarks/results/quality_charlm.md

Every model sees the same split (rnnlab.data.corpora: training plays / validation plays / test plays) and the
same vocabulary; scores are bits per character on the test plays (Hamlet, The Tempest).

* ``5-gram``: interpolated absolute discounting (D = 0.75) over character contexts of length 0..4, down to
  a uniform distribution (rnnlab.models.char_ngram, the baseline ``train charlm`` prints).
* ``charlm``: the task's default config (rnnlab.tasks.charlm), stateful TBPTT, scored with the state carried
  over the test plays. Its hidden size comes from the task's budget rule (``--hidden-size 0``, the default:
  rnnlab.tasks.charlm_budget, for ``--budget-s / --threads`` wall seconds), and its lr decays to zero over
  the CPU budget (rnnlab.training.schedules), as ``rnnlab train charlm`` does over its wall budget.
* ``transformer``: torch.nn.TransformerEncoder layers with a causal mask and learned positions, its width
  chosen so that its parameter count is within 10 % of charlm's, the same batches (32 x 128 characters),
  AdamW with warmup and cosine decay over the same budget; scored over windows of 128 characters (each
  position sees the characters before it in its window).

The budget is process CPU time (user + system of this process), not wall time: the machine this ran on may
be shared, and CPU time is what a model gets. ``--budget-s 1800`` is 15 minutes on 2 fully used cores.
Each neural model is scored on the validation plays every ``--eval-every`` steps: the curve of bpc against
CPU time goes in the table and a PNG beside it.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data import Vocab
from rnnlab.data.corpora import load_shakespeare
from rnnlab.data.streams import StreamBatches
from rnnlab.models.char_ngram import ngram_bpc
from rnnlab.models.charlm import CharLM
from rnnlab.tasks.charlm import Config, StatefulStep, score_ids
from rnnlab.tasks.charlm_budget import choose_hidden_size
from rnnlab.training.schedules import budget_lr_factor

LN2 = math.log(2)


class CausalTransformer(nn.Module):
    """Embedding + learned positions -> pre-norm causal TransformerEncoder -> linear (logits (B, T, V))."""

    def __init__(self, vocab: int, d: int, layers: int, heads: int, context: int) -> None:
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.1, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm, self.out = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, ids):
        T = ids.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T)  # (T, T): -inf above the diagonal
        x = self.embed(ids) + self.pos(torch.arange(T))
        return self.out(self.norm(self.blocks(x, mask=mask, is_causal=True)))


@torch.no_grad()
def transformer_bpc(model, ids: torch.Tensor, context: int) -> float:
    model.eval()
    n = (ids.numel() - 1) // context
    x = ids[: n * context].view(n, context)
    y = ids[1 : n * context + 1].view(n, context)
    total = 0.0
    for k in range(0, n, 64):
        logits = model(x[k : k + 64])
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y[k : k + 64].reshape(-1), reduction="sum"
        )
    model.train()
    return float(total) / y.numel() / LN2


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(name, model, batches, loss_fn, score_fn, budget_s, eval_every, lr):
    """AdamW (warmup, then cosine over the CPU budget) until the budget is spent; returns the curve."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0}], lr=lr
    )
    curve, step, spent, start = [], 0, 0.0, time.process_time()
    wall0 = time.perf_counter()
    best = (math.inf, None)
    while spent < budget_s:
        batches.set_epoch(step // len(batches))
        for batch in batches:
            for g in opt.param_groups:
                g["lr"] = lr * budget_lr_factor(step, spent / budget_s, 50, "cosine")
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            spent = time.process_time() - start
            if step % eval_every == 0 or spent >= budget_s:
                bpc = score_fn(model)
                if bpc < best[0]:
                    best = (bpc, {k: v.clone() for k, v in model.state_dict().items()})
                curve.append(
                    {"step": step, "cpu_s": spent, "wall_s": time.perf_counter() - wall0, "valid_bpc": bpc}
                )
                print(f"{name}: step {step}  cpu {spent:.0f}s  valid {bpc:.3f} bpc", flush=True)
            if spent >= budget_s:
                break
    model.load_state_dict(best[1])  # the best validation checkpoint, as the task keeps it
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=1800.0, help="CPU seconds per neural model")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validation scores")
    parser.add_argument("--valid-chars", type=int, default=60000, help="validation characters per score")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden-size", type=int, default=0, help="charlm's H; 0: the task's budget rule")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quality_charlm.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_shakespeare()
    vocab = Vocab.build([list(corpus.train)])
    enc = lambda text: torch.tensor(vocab.encode(list(text)))  # noqa: E731
    train, valid, test = enc(corpus.train), enc(corpus.valid)[: args.valid_chars], enc(corpus.test)
    cfg = Config()
    cfg.model.vocab_size = len(vocab)
    d = cfg.data
    cfg.model.hidden_size = args.hidden_size
    if cfg.model.hidden_size == 0:  # the rule, for the wall seconds the CPU budget is on --threads cores
        cfg.train.budget_s = args.budget_s / args.threads
        cfg.model.hidden_size, record = choose_hidden_size(cfg, train)
        print(f"charlm: hidden size {cfg.model.hidden_size} by the budget rule ({record})", flush=True)
    rows = {}

    t0 = time.process_time()
    rows["5-gram"] = {
        "bpc": ngram_bpc(train.tolist(), test.tolist(), len(vocab)),
        "params": "-",
        "cpu_s": time.process_time() - t0,
        "steps": "-",
    }
    print(f"5-gram: {rows['5-gram']['bpc']:.3f} bpc", flush=True)

    torch.manual_seed(0)
    lstm = CharLM(cfg.model)
    batches = StreamBatches(train, d.batch_size, d.bptt, d.steps_per_epoch)
    step = StatefulStep()
    curve_lstm = fit(
        "charlm",
        lstm,
        batches,
        step,
        lambda m: score_ids(m, valid, d.eval_batch_size, d.eval_bptt)["bpc"],
        args.budget_s,
        args.eval_every,
        cfg.train.lr,
    )
    lstm_test = score_ids(lstm, test, d.eval_batch_size, d.eval_bptt)["bpc"]
    rows[f"charlm (default config, H={cfg.model.hidden_size})"] = {
        "bpc": lstm_test,
        "params": n_params(lstm),
        "cpu_s": curve_lstm[-1]["cpu_s"],
        "steps": curve_lstm[-1]["step"],
    }

    target = n_params(lstm)
    layers, heads = 3, 4
    width = min(
        range(64, 512, 8),
        key=lambda w: abs(n_params(CausalTransformer(len(vocab), w, layers, heads, d.bptt)) - target),
    )
    torch.manual_seed(0)
    tf = CausalTransformer(len(vocab), width, layers, heads, d.bptt)

    def tf_loss(m, batch):
        logits = m(batch.x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1))

    curve_tf = fit(
        f"transformer d={width}",
        tf,
        batches,
        tf_loss,
        lambda m: transformer_bpc(m, valid, d.bptt),
        args.budget_s,
        args.eval_every,
        1e-3,
    )
    rows[f"causal transformer ({layers} x {width}, {heads} heads)"] = {
        "bpc": transformer_bpc(tf, test, d.bptt),
        "params": n_params(tf),
        "cpu_s": curve_tf[-1]["cpu_s"],
        "steps": curve_tf[-1]["step"],
    }
    write_report(args, rows, {"charlm": curve_lstm, "transformer": curve_tf}, corpus, len(vocab))


def write_report(args, rows, curves, corpus, vocab_size) -> None:
    lines = [
        "# Character language models on held-out Shakespeare plays",
        "",
        f"`python benchmarks/quality_charlm.py --budget-s {args.budget_s:g} --threads {args.threads}`: "
        f"training plays {len(corpus.train):,} characters ({len(corpus.info['train'])} plays), validation "
        f"{', '.join(corpus.info['valid'])} (first {args.valid_chars:,} characters per score), test "
        f"{', '.join(corpus.info['test'])} ({len(corpus.test):,} characters), {vocab_size} symbols. "
        "CPU seconds are this process's user + system time.",
        "",
        "| model | parameters | steps | CPU s | test bpc | test nats/char |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        params = f"{r['params']:,}" if isinstance(r["params"], int) else "-"
        lines.append(
            f"| {name} | {params} | {r['steps']} | {r['cpu_s']:.0f} | {r['bpc']:.3f} | {r['bpc'] * LN2:.3f} |"
        )
    lines += [
        "",
        "## Validation bpc against training CPU time",
        "",
        "| model | step | CPU s | wall s | valid bpc |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, curve in curves.items():
        lines += [
            f"| {name} | {p['step']} | {p['cpu_s']:.0f} | {p['wall_s']:.0f} | {p['valid_bpc']:.3f} |"
            for p in curve
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot([p["cpu_s"] for p in curve], [p["valid_bpc"] for p in curve], marker="o", label=name)
    ax.axhline(rows["5-gram"]["bpc"], color="gray", linestyle="--", label="5-gram (test)")
    ax.set_xlabel("training CPU seconds")
    ax.set_ylabel("validation bits per character")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=110)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
