"""Helpers for the task tests: a tiny labelled CSV, tiny configs, the CLI captured, a folder's snapshot."""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

from rnnlab.cli import main

# A sentiment model small enough to train in about a second on 80 rows.
TINY_SENTIMENT = [
    "model.embedding_dim=8",
    "model.hidden_size=8",
    "model.attention_size=8",
    "data.batch_size=16",
]
TINY_SENTIMENT += ["data.min_freq=1", "train.epochs=1", "train.lr=0.01", "train.progress=false"]
# A translate model on a few dozen dates.
TINY_TRANSLATE = ["data.n_train=48", "data.n_valid=4", "data.n_test=4", "model.hidden_size=8"]
TINY_TRANSLATE += ["model.embedding_dim=4", "model.attention_size=4"]
TINY_TRANSLATE += ["train.epochs=1", "train.progress=false"]
TINY_TRANSLATE += ["data.batch_size=48", "decode.max_len=12"]  # an ISO date is 10 tokens and <eos>


def write_reviews(path: Path, n: int = 80, labels=("neg", "pos"), seed: int = 0) -> Path:
    """A CSV of ``n`` short Chinese reviews whose label shows in one cue word."""
    rng = random.Random(seed)
    cues = {"pos": ["好用", "很棒", "满意", "推荐"], "neg": ["太差", "失望", "退货", "很慢"], "meh": ["一般"]}
    filler = list("这个东西我们买了一次然后就是的还有")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = labels[i % len(labels)]
            words = [rng.choice(filler) for _ in range(rng.randint(3, 12))]
            words.insert(rng.randrange(len(words)), rng.choice(cues[label]))
            writer.writerow(["".join(words) + str(i), label])
    return path


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``rnnlab ARGS``; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def staging_left(run_dir: Path) -> list[str]:
    """Hidden staging folders of ``run_dir`` still beside it."""
    return sorted(p.name for p in run_dir.parent.iterdir() if p.name.startswith(f".{run_dir.name}.rnnlab-"))


def assert_user_error(code: int, err: str, match: str) -> None:
    """Exit status 2 and one line on stderr, ``rnnlab...: error: ...`` holding ``match``, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines and "error: " in lines[-1] and match in lines[-1], err
    assert "Traceback" not in err
    assert len([line for line in lines if "error:" in line]) == 1, err
