"""Tiny runs shared by the task, serve and export tests: a labelled CSV of short reviews and tiny configs."""

from __future__ import annotations

import csv
import random
from pathlib import Path

__all__ = ["TINY_SENTIMENT", "TINY_TRANSLATE", "write_reviews"]

# A sentiment model small enough to train in about a second on 80 rows.
TINY_SENTIMENT = [
    "model.embedding_dim=8",
    "model.hidden_size=8",
    "model.attention_size=8",
    "data.batch_size=16",
    "model.ngram_buckets=1024",  # the default 2^18-row n-gram table would make each checkpoint ~33 MB
    "model.ngram_dim=4",
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
