"""Generated dates: every surface form, golden renderings, alignment spans, determinism, split by date."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from rnnlab.data.dates import (
    CHINESE_FORMS,
    ENGLISH_FORMS,
    FORMS,
    ZH_DIGITS,
    chinese_number,
    generate_dates,
    iso,
    render_date,
)

DAY = dt.date(2036, 3, 24)  # a Monday


def test_there_are_many_english_and_chinese_forms():
    assert len(ENGLISH_FORMS) >= 12 and len(CHINESE_FORMS) >= 4
    assert set(FORMS) == set(ENGLISH_FORMS) | set(CHINESE_FORMS)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_renders_to_the_iso_target(form):
    rng = random.Random(0)
    for k in range(0, 4000, 97):
        date = dt.date(1900, 1, 1) + dt.timedelta(days=k * 7)
        ex = render_date(date, form, rng)
        assert ex.target == ex.date == iso(date) and len(ex.target) == 10
        assert ex.form == form and ex.source
        assert len(ex.spans) == 10 and ex.spans[4] is None and ex.spans[7] is None


@pytest.mark.parametrize(
    "form, expected",
    [
        ("long_weekday", "monday, march 24, 2036"),
        ("the_ordinal_of", "the 24th of march, 2036"),
        ("short_weekday", "mon, 24 mar 2036"),
        ("dash_short", "24-mar-2036"),
        ("dmy_dot", "24.03.2036"),
        ("ymd_slash", "2036/03/24"),
        ("compact", "20360324"),
        ("iso", "2036-03-24"),
        ("zh_digits", "2036年3月24日"),
    ],
)
def test_golden_renderings(form, expected):
    sources = {render_date(DAY, form, random.Random(seed)).source.lower() for seed in range(40)}
    assert expected in sources


def test_chinese_numerals_and_weekday():
    sources = {render_date(DAY, "zh_numerals", random.Random(s)).source for s in range(40)}
    assert sources == {"二〇三六年三月二十四日", "二零三六年三月二十四日"}  # 〇 or 零 for zero
    weekday = render_date(DAY, "zh_weekday", random.Random(0)).source
    assert weekday.endswith("星期一")
    assert [chinese_number(n) for n in (1, 10, 11, 19, 20, 21, 30, 31)] == [
        "一", "十", "十一", "十九", "二十", "二十一", "三十", "三十一",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="n:"):
        chinese_number(0)


def test_weekdays_are_the_real_ones():
    rng = random.Random(1)
    for k in range(60):
        date = dt.date(1999, 12, 1) + dt.timedelta(days=k)
        src = render_date(date, "long_weekday", rng).source.lower()
        assert src.startswith(date.strftime("%A").lower())


def _digit_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ZH_DIGITS.index(ch) if ch in ZH_DIGITS else {"零": 0}[ch]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_spans_point_at_the_source_of_each_target_digit(form):
    rng = random.Random(2)
    for k in range(40):
        date = dt.date(1950, 1, 1) + dt.timedelta(days=k * 389)
        ex = render_date(date, form, rng)
        for ch, span in zip(ex.target, ex.spans, strict=True):
            if span is None:
                assert ch == "-"
                continue
            start, end = span
            assert 0 <= start < end <= len(ex.source)
            if ex.spans.count(span) == 1:  # a span of its own: the digit was copied one for one
                assert end - start == 1 and _digit_value(ex.source[start]) == int(ch)
            else:  # shared by the component's digits: the component as written ("March", "4", "二十四")
                assert ex.source[start:end].strip() == ex.source[start:end]
    # components written otherwise cover the whole word: "March" for both digits of the month
    ex = render_date(DAY, "long", random.Random(0))
    assert ex.source[slice(*ex.spans[5])].lower() == "march" and ex.spans[5] == ex.spans[6]


def test_generation_is_seeded():
    a, b = generate_dates(50, 5, 5, seed=3), generate_dates(50, 5, 5, seed=3)
    assert a == b
    assert generate_dates(50, 5, 5, seed=4).train != a.train


def test_splits_share_no_date_and_have_the_requested_sizes():
    s = generate_dates(3000, 300, 600, seed=0)
    assert (len(s.train), len(s.valid), len(s.test)) == (3000, 300, 600)
    train, valid, test = ({e.date for e in part} for part in (s.train, s.valid, s.test))
    assert len(train) == 3000  # distinct dates
    assert not train & test and not train & valid and not valid & test
    years = {int(e.date[:4]) for e in s.train}
    assert min(years) >= 1900 and max(years) <= 2099
    forms = {e.form for e in s.train}
    assert forms == set(FORMS)
    chinese = sum(e.form in CHINESE_FORMS for e in s.train) / len(s.train)
    assert 0.25 < chinese < 0.45


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="n_train"):
        generate_dates(-1)
    with pytest.raises(ValueError, match="first_year"):
        generate_dates(10, first_year=2000, last_year=1999)
    with pytest.raises(ValueError, match="widen the years"):
        generate_dates(400, 0, 0, first_year=2000, last_year=2000)
    with pytest.raises(ValueError, match="forms"):
        generate_dates(10, forms=("klingon",))
    with pytest.raises(ValueError, match="form"):
        render_date(DAY, "klingon", random.Random(0))
