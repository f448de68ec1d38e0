"""The pretraining text: general lines and a task's training texts, never an excluded (validation or test)
text, compared by fingerprint; blocks shuffled with a seed."""

from __future__ import annotations

import pytest

from rnnlab.data.pretrain import build_pretrain_text, language_of, normalise, text_fingerprint

GENERAL = {
    "news": [f"新闻第{i}句，今天天气很好。" for i in range(100)],
    "plays": [f"Line {i} of a play." for i in range(50)],
}
TRAIN = [f"这个手机第{i}天就坏了" for i in range(40)]
HELD_OUT = ["物流很快，但是屏幕有划痕", "价格便宜，可惜用了两天就坏了"]


def test_fingerprints_ignore_width_case_and_spaces():
    assert (
        text_fingerprint("Ｇｏｏｄ  phone！")
        == text_fingerprint(" good phone!\n")
        != text_fingerprint("good phones!")
    )
    assert normalise("A\tB\n C") == "a b c"


def test_an_excluded_text_planted_anywhere_is_dropped_and_counted():
    general = {**GENERAL, "news": [*GENERAL["news"][:50], " " + HELD_OUT[0] + " ", *GENERAL["news"][50:]]}
    train = [*TRAIN, HELD_OUT[1].replace("，", ",")]  # the same text in half-width punctuation: NFKC equal
    built = build_pretrain_text(general, train, HELD_OUT)
    lines = built.text.splitlines()
    assert not any(text_fingerprint(line) in {text_fingerprint(t) for t in HELD_OUT} for line in lines)
    assert HELD_OUT[0] not in built.text and "可惜用了两天就坏了" not in built.text
    sources = built.info["sources"]
    assert sources["news"] == {"lines": 100, "characters": sum(map(len, GENERAL["news"])), "dropped": 1}
    assert (
        sources["task"]["dropped"] == 1
        and sources["task"]["lines"] == 40
        and sources["plays"]["dropped"] == 0
    )
    assert sorted(lines) == sorted([*GENERAL["news"], *GENERAL["plays"], *TRAIN])  # nothing else lost


def test_blocks_are_mixed_kept_together_and_seeded():
    a = build_pretrain_text(GENERAL, TRAIN, [], seed=0, block_lines=10)
    assert a.text == build_pretrain_text(GENERAL, TRAIN, [], seed=0, block_lines=10).text
    b = build_pretrain_text(GENERAL, TRAIN, [], seed=1, block_lines=10)
    assert b.text != a.text and b.info["fingerprint"] != a.info["fingerprint"]
    lines = a.text.splitlines()
    start = lines.index(GENERAL["news"][10])
    assert lines[start : start + 10] == GENERAL["news"][10:20]  # a block stays in order
    first_task = min(lines.index(t) for t in TRAIN)
    assert first_task < len(lines) - len(TRAIN)  # the task's texts are not all at the end
    with pytest.raises(ValueError, match="block_lines: expected an integer >= 1"):
        build_pretrain_text(GENERAL, TRAIN, [], block_lines=0)


def test_language_of_texts():
    assert language_of(TRAIN) == "zh" and language_of(["a fine film", "dull"]) == "en"
    assert language_of(["the iPhone is 好"]) == "en" and language_of(["iPhone 很好用"]) == "zh"  # a third: zh
