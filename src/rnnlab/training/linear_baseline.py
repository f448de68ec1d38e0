"""The linear baseline a recurrent text classifier has to beat: TF-IDF n-grams + logistic regression.

A user training a recurrent model wants to know whether it earned its cost over what a few seconds of
scikit-learn give on the same split (Wang & Manning 2012: bigram linear models are strong on sentiment).
:func:`tfidf_logistic_regression` fits TF-IDF over the task tokenizer's n-grams (1..``ngram_max`` tokens,
sublinear term frequencies) and a logistic regression on the training texts, and scores held-out texts.
scikit-learn is optional (the ``tasks`` extra); without it :func:`tfidf_logistic_regression` returns None.

Reference:
    Wang & Manning (2012), Baselines and bigrams: simple, good sentiment and topic classification.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

__all__ = ["NGRAM_MAX", "available", "token_ngrams", "tfidf_logistic_regression"]

# n-gram orders by tokenizer: characters carry less each, so Chinese needs up to trigrams to see words
NGRAM_MAX = {"char": 3, "word": 2}


def available() -> bool:
    """Whether scikit-learn can be imported here."""
    return importlib.util.find_spec("sklearn") is not None


def token_ngrams(tokens: Sequence[str], ngram_max: int) -> list[str]:
    """Every run of 1..``ngram_max`` consecutive tokens, joined by a space.

    Example:
        >>> token_ngrams(["not", "good", "at", "all"], 2)
        ['not', 'good', 'at', 'all', 'not good', 'good at', 'at all']
    """
    if ngram_max < 1:
        raise ValueError(f"ngram_max: expected an integer >= 1, received {ngram_max!r}")
    out = []
    for n in range(1, ngram_max + 1):
        out += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return out


def tfidf_logistic_regression(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    tokenizer: Callable[[str], list[str]],
    ngram_max: int,
    C: float = 4.0,
) -> dict | None:
    """Fit TF-IDF n-grams + logistic regression on the training texts and score the test texts.

    Args:
        train_texts, train_labels: what to fit on (labels: any strings).
        test_texts, test_labels: what to score.
        tokenizer: text -> tokens (the task's own, so both models read the same tokens).
        ngram_max: longest n-gram, in tokens.
        C: inverse L2 strength of the logistic regression.

    Returns:
        ``accuracy``, ``macro_f1``, ``n`` (test texts), ``model`` (a description); None without scikit-learn.
    """
    if not available():
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    if len(set(train_labels)) < 2:
        raise ValueError(f"train_labels: expected at least 2 classes, received {sorted(set(train_labels))}")
    vectorizer = TfidfVectorizer(
        analyzer=lambda text: token_ngrams(tokenizer(text), ngram_max), sublinear_tf=True
    )
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=C, max_iter=3000).fit(features, list(train_labels))
    predicted = classifier.predict(vectorizer.transform(test_texts))
    return {
        "accuracy": float(accuracy_score(list(test_labels), predicted)),
        "macro_f1": float(f1_score(list(test_labels), predicted, average="macro")),
        "n": len(test_texts),
        "model": f"TF-IDF 1-{ngram_max}-grams + logistic regression (C={C:g})",
    }
