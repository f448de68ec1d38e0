"""Every metric against values computed by hand (the arithmetic is written out beside each expectation)."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.training import metrics as M

# Six examples, three classes.
TARGET = torch.tensor([0, 0, 1, 1, 2, 2])
PRED = torch.tensor([0, 1, 1, 1, 2, 0])


def test_accuracy_from_labels_and_from_logits():
    assert M.accuracy(PRED, TARGET) == pytest.approx(4 / 6)
    logits = torch.nn.functional.one_hot(PRED, 3).float() * 2.0 - 0.5  # argmax == PRED
    assert M.accuracy(logits, TARGET) == pytest.approx(4 / 6)
    assert M.accuracy([1, 0], [1, 1]) == 0.5
    with pytest.raises(ValueError, match=r"shape of target \(6,\)"):
        M.accuracy(PRED[:5], TARGET)


def test_confusion_matrix_rows_are_true_classes():
    expected = torch.tensor(
        [
            [1, 1, 0],  # class 0: one right, one predicted as 1
            [0, 2, 0],
            [1, 0, 1],  # class 2: one predicted as 0
        ]
    )
    assert torch.equal(M.confusion_matrix(PRED, TARGET, 3), expected)
    with pytest.raises(ValueError, match=r"num_classes=2"):
        M.confusion_matrix(PRED, TARGET, 2)


def test_f1_per_class_and_macro():
    # class 0: TP=1 FP=1 FN=1 -> 2/(2+1+1) = 0.5; class 1: TP=2 FP=1 FN=0 -> 4/5
    # class 2: TP=1 FP=0 FN=1 -> 2/3
    assert M.f1_per_class(PRED, TARGET, 3) == pytest.approx([0.5, 0.8, 2 / 3])
    assert M.macro_f1(PRED, TARGET) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # A class absent from both pred and target is left out of the mean, so num_classes does not matter.
    assert M.macro_f1(PRED, TARGET, num_classes=5) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert M.f1_per_class(PRED, TARGET, 4)[3] == 0.0
    # All predictions wrong for a class that only the prediction has: F1 of that class is 0 and it counts.
    assert M.macro_f1(torch.tensor([1, 1]), torch.tensor([0, 0])) == 0.0


def test_token_accuracy_and_exact_match_ignore_padding():
    pad = 0
    target = torch.tensor([[5, 6, 7, pad], [5, 6, pad, pad], [8, 8, 8, 8]])
    pred = torch.tensor([[5, 6, 7, 3], [5, 9, 4, pad], [8, 8, 8, 8]])
    # non-pad positions: 3 + 2 + 4 = 9, correct: 3 + 1 + 4 = 8
    assert M.token_accuracy(pred, target, pad_id=pad) == pytest.approx(8 / 9)
    # counting every position: 12 positions, correct 3 + 1 (5) + 1 (the pad/pad match) + 4 = 9
    assert M.token_accuracy(pred, target, pad_id=None) == pytest.approx(9 / 12)
    # row 0 matches on its non-pad positions, row 1 does not, row 2 does
    assert M.exact_match(pred, target, pad_id=pad) == pytest.approx(2 / 3)
    assert M.exact_match(pred, target) == pytest.approx(1 / 3)
    logits = torch.nn.functional.one_hot(pred, 10).float()  # (B, S, V)
    assert M.exact_match(logits, target, pad_id=pad) == pytest.approx(2 / 3)
    assert M.exact_match(["a b", "c"], ["a b", "d"]) == 0.5
    assert M.exact_match([["我", "好"], ["x"]], [["我", "好"], ["x"]]) == 1.0
    with pytest.raises(ValueError, match="other than pad_id=0"):
        M.token_accuracy(torch.zeros(2, 2), torch.zeros(2, 2), pad_id=0)


def test_corpus_bleu_hand_computed():
    # hyp "a b c d e" vs ref "a b c d f": 1-grams 4/5, 2-grams 3/4, 3-grams 2/3, 4-grams 1/2; no brevity
    # penalty (equal lengths)
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    for use in (None, False):
        assert M.corpus_bleu(["a b c d e"], ["a b c d f"], use_sacrebleu=use) == pytest.approx(
            expected, abs=1e-6
        )
        assert M.corpus_bleu([list("abcde")], [list("abcdf")], use_sacrebleu=use) == pytest.approx(
            expected, abs=1e-6
        )
        perfect = M.corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"], use_sacrebleu=use)
        assert perfect == pytest.approx(100.0)
    # Brevity penalty: hyp "a b c d" vs ref "a b c d e f" -> precisions 1, BP = exp(1 - 6/4)
    assert M.corpus_bleu(["a b c d"], ["a b c d e f"], use_sacrebleu=False) == pytest.approx(
        100 * math.exp(1 - 6 / 4)
    )


def test_corpus_bleu_fallback_equals_sacrebleu_on_a_corpus():
    pytest.importorskip("sacrebleu")
    hyps = [list("我很喜欢这本书"), list("今天天气好"), list("他走了"), list("完全不一样的句子")]
    refs = [list("我非常喜欢这本书"), list("今天天气很好"), list("他已经走了"), list("这是参考译文")]
    ours = M.corpus_bleu(hyps, refs, use_sacrebleu=False)
    theirs = M.corpus_bleu(hyps, refs, use_sacrebleu=True)
    assert 0.0 < ours < 100.0
    assert ours == pytest.approx(theirs, abs=1e-9)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        M.corpus_bleu(["a", "b"], ["a"])


def test_perplexity_and_bits_per_char():
    assert M.perplexity(0.0) == 1.0
    assert M.perplexity(math.log(50.0)) == pytest.approx(50.0)
    assert M.perplexity(torch.tensor(math.log(4.0))) == pytest.approx(4.0)
    assert M.perplexity(1e4) == math.inf
    assert M.bits_per_char(math.log(2.0)) == pytest.approx(1.0)
    assert M.bits_per_char(math.log(256.0)) == pytest.approx(8.0)  # uniform over bytes


def test_forecast_errors():
    target = torch.tensor([1.0, 2.0, 4.0, -2.0])
    pred = torch.tensor([2.0, 2.0, 1.0, -1.0])
    # errors: 1, 0, -3, 1 -> |e| = 1, 0, 3, 1; e^2 = 1, 0, 9, 1
    assert M.mae(pred, target) == pytest.approx(5 / 4)
    assert M.rmse(pred, target) == pytest.approx(math.sqrt(11 / 4))
    # |e| / |y| = 1, 0, 0.75, 0.5 -> mean 0.5625 -> 56.25 %
    assert M.mape(pred, target) == pytest.approx(56.25)
    with pytest.raises(ValueError, match=r"shape of target \(4,\)"):
        M.mae(pred[:3], target)


def test_mase_with_seasonality():
    history = torch.tensor([1.0, 3.0, 2.0, 6.0, 4.0])
    target = torch.tensor([5.0, 7.0])
    pred = torch.tensor([6.0, 4.0])  # MAE = (1 + 3) / 2 = 2
    # m=1: naive errors |3-1|, |2-3|, |6-2|, |4-6| = 2, 1, 4, 2 -> scale 9/4 -> MASE = 2 / 2.25
    assert M.mase(pred, target, history) == pytest.approx(2 / 2.25)
    # m=2: |2-1|, |6-3|, |4-2| = 1, 3, 2 -> scale 2 -> MASE = 1
    assert M.mase(pred, target, history, seasonality=2) == pytest.approx(1.0)
    # Two series: each scaled by its own history, then averaged: (2 / 2.25 + 2 / 1) / 2
    hist2 = torch.stack([history, torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])])
    pred2, target2 = torch.stack([pred, pred]), torch.stack([target, target])
    assert M.mase(pred2, target2, hist2) == pytest.approx((2 / 2.25 + 2.0) / 2)
    with pytest.raises(ValueError, match="T > seasonality=5"):
        M.mase(pred, target, history, seasonality=5)
