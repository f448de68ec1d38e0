"""Generated date normalisation: many English and Chinese surface forms -> ISO 8601 ``YYYY-MM-DD``.

The sequence-to-sequence task whose attention one can read (see ../shared/DATA.md)::

    "Monday, March 24, 2036"   -> "2036-03-24"
    "24/03/2036"               -> "2036-03-24"
    "二〇三六年三月二十四日"      -> "2036-03-24"

Every example is rendered from a calendar date by one of :data:`FORMS`, with a seeded
:class:`random.Random`, so a seed always gives the same examples. :func:`generate_dates` splits by
**date**: it draws distinct dates and gives each split its own, so no test date (in any form) is seen in
training and the test score measures generalisation to new dates, not recall.

Each example also records, for every target character, the span of source characters it comes from
(:attr:`DateExample.spans`): a digit copied one for one (the ``3`` of ``2036``) points at that one
character, a component written another way (``March``, ``二十四``, ``3`` for ``03``) at the whole component.
The benchmark uses the spans to score whether the attention of each output digit falls where the digit
came from.

Day-first and month-first numeric dates cannot both be used without ambiguity (``04/03/2036``); the numeric
forms here are day-first (``24/03/2036``, ``24.03.2036``) or year-first (``2036/03/24``), never month-first.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DateExample",
    "DateSplits",
    "FORMS",
    "ENGLISH_FORMS",
    "CHINESE_FORMS",
    "render_date",
    "generate_dates",
    "iso",
    "chinese_number",
]

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ZH_DIGITS = "〇一二三四五六七八九"
ZH_WEEKDAYS = "一二三四五六日"  # 星期一 ... 星期日; date.weekday() is 0 for Monday

# A rendered form is a list of segments (text, component, digitwise): component is "year", "month", "day" or
# None (punctuation, weekday, suffixes); digitwise means the text spells the component's ISO digits one
# character per digit, so each target digit aligns with one source character.
Segment = tuple[str, str | None, bool]


def iso(date: dt.date) -> str:
    """The target string ``YYYY-MM-DD``.

    >>> iso(dt.date(2036, 3, 24))
    '2036-03-24'
    """
    return f"{date.year:04d}-{date.month:02d}-{date.day:02d}"


def chinese_number(n: int) -> str:
    """A month or day number (1-31) in Chinese numerals, as written in dates.

    >>> [chinese_number(n) for n in (3, 10, 12, 20, 24, 31)]
    ['三', '十', '十二', '二十', '二十四', '三十一']
    """
    if not 1 <= n <= 99:
        raise ValueError(f"n: expected 1 <= n <= 99, received {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else ZH_DIGITS[tens] + "十")
    return head + (ZH_DIGITS[ones] if ones else "")


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return suffix


def _num(n: int, rng: random.Random) -> Segment:
    """Month or day as digits, zero-padded or not at random (``3`` or ``03``)."""
    text = f"{n:02d}" if n < 10 and rng.random() < 0.5 else str(n)
    return text, None, len(text) == 2


def _year(d: dt.date) -> Segment:
    return f"{d.year:04d}", "year", True


def _part(component: str, seg: Segment) -> Segment:
    return seg[0], component, seg[2]


def _words(text: str) -> Segment:
    return text, None, False


def _month_name(d: dt.date, short: bool) -> Segment:
    name = MONTHS[d.month - 1]
    return (name[:3] if short else name), "month", False


# -- English forms ------------------------------------------------------------------------------------------


def _long(d, rng):  # March 24, 2036
    return [_month_name(d, False), _words(" "), _part("day", _num(d.day, rng)), _words(", "), _year(d)]


def _long_weekday(d, rng):  # Monday, March 24, 2036
    return [_words(WEEKDAYS[d.weekday()] + ", "), *_long(d, rng)]


def _long_ordinal(d, rng):  # March 24th, 2036
    day = _part("day", (str(d.day), None, d.day >= 10))
    return [_month_name(d, False), _words(" "), day, _words(_ordinal(d.day) + ", "), _year(d)]


def _day_month_year(d, rng):  # 24 March 2036
    return [_part("day", _num(d.day, rng)), _words(" "), _month_name(d, False), _words(" "), _year(d)]


def _weekday_day_month_year(d, rng):  # Monday 24 March 2036
    return [_words(WEEKDAYS[d.weekday()] + " "), *_day_month_year(d, rng)]


def _the_ordinal_of(d, rng):  # the 24th of March, 2036
    day = _part("day", (str(d.day), None, d.day >= 10))
    return [
        _words("the "),
        day,
        _words(_ordinal(d.day) + " of "),
        _month_name(d, False),
        _words(", "),
        _year(d),
    ]


def _short(d, rng):  # Mar 24, 2036
    return [_month_name(d, True), _words(" "), _part("day", _num(d.day, rng)), _words(", "), _year(d)]


def _short_dmy(d, rng):  # 24 Mar 2036
    return [_part("day", _num(d.day, rng)), _words(" "), _month_name(d, True), _words(" "), _year(d)]


def _dash_short(d, rng):  # 24-Mar-2036
    return [_part("day", _num(d.day, rng)), _words("-"), _month_name(d, True), _words("-"), _year(d)]


def _short_weekday(d, rng):  # Mon, 24 Mar 2036 (RFC 2822)
    return [_words(WEEKDAYS[d.weekday()][:3] + ", "), *_short_dmy(d, rng)]


def _numeric(sep: str, year_first: bool) -> Callable:
    def form(d, rng):
        day, month = _part("day", _num(d.day, rng)), _part("month", _num(d.month, rng))
        if year_first:  # 2036/03/24
            return [_year(d), _words(sep), month, _words(sep), day]
        return [day, _words(sep), month, _words(sep), _year(d)]  # 24/03/2036

    return form


def _iso(d, rng):  # 2036-03-24
    return [
        _year(d),
        _words("-"),
        (f"{d.month:02d}", "month", True),
        _words("-"),
        (f"{d.day:02d}", "day", True),
    ]


def _compact(d, rng):  # 20360324
    return [_year(d), (f"{d.month:02d}", "month", True), (f"{d.day:02d}", "day", True)]


# -- Chinese forms ------------------------------------------------------------------------------------------


def _zh_year(d: dt.date, rng: random.Random) -> Segment:
    zero = "〇" if rng.random() < 0.8 else "零"  # 〇 is standard in dates; 零 is common in handwriting
    return "".join(zero if c == "0" else ZH_DIGITS[int(c)] for c in f"{d.year:04d}"), "year", True


def _zh_numerals(d, rng, day_word="日"):  # 二〇三六年三月二十四日
    return [
        _zh_year(d, rng),
        _words("年"),
        (chinese_number(d.month), "month", False),
        _words("月"),
        (chinese_number(d.day), "day", False),
        _words(day_word),
    ]


def _zh_hao(d, rng):  # 二〇三六年三月二十四号 (号: the spoken day suffix)
    return _zh_numerals(d, rng, "号")


def _zh_digits(d, rng):  # 2036年3月24日
    month, day = _part("month", _num(d.month, rng)), _part("day", _num(d.day, rng))
    return [_year(d), _words("年"), month, _words("月"), day, _words("日")]


def _zh_weekday(d, rng):  # 2036年3月24日星期一 or 二〇三六年三月二十四日 星期一
    body = _zh_digits(d, rng) if rng.random() < 0.5 else _zh_numerals(d, rng)
    return [*body, _words(rng.choice(("", " ")) + "星期" + ZH_WEEKDAYS[d.weekday()])]


ENGLISH_FORMS: dict[str, Callable] = {
    "long": _long,
    "long_weekday": _long_weekday,
    "long_ordinal": _long_ordinal,
    "day_month_year": _day_month_year,
    "weekday_day_month_year": _weekday_day_month_year,
    "the_ordinal_of": _the_ordinal_of,
    "short": _short,
    "short_dmy": _short_dmy,
    "dash_short": _dash_short,
    "short_weekday": _short_weekday,
    "dmy_slash": _numeric("/", year_first=False),
    "dmy_dot": _numeric(".", year_first=False),
    "ymd_slash": _numeric("/", year_first=True),
    "iso": _iso,
    "compact": _compact,
}
CHINESE_FORMS: dict[str, Callable] = {
    "zh_numerals": _zh_numerals,
    "zh_hao": _zh_hao,
    "zh_digits": _zh_digits,
    "zh_weekday": _zh_weekday,
}
# Every surface form by name: (date, rng) -> segments. Chinese forms are listed twice in the draw (see
# generate_dates) so that roughly a third of the examples are Chinese.
FORMS: dict[str, Callable] = {**ENGLISH_FORMS, **CHINESE_FORMS}
_CASINGS = (str, str, str.lower, str.upper, str.title)  # English text as written, or re-cased


@dataclass(frozen=True)
class DateExample:
    """One rendered date: the source text, its ISO target and where each target character comes from."""

    source: str  # e.g. "Monday, March 24, 2036"
    target: str  # e.g. "2036-03-24"
    date: str  # the calendar date, ISO (== target)
    form: str  # the name in FORMS
    spans: tuple  # per target character: (start, end) source-character span it comes from, or None for "-"


def render_date(date: dt.date, form: str, rng: random.Random) -> DateExample:
    """Write ``date`` in surface form ``form`` (a key of :data:`FORMS`), drawing variants from ``rng``.

    >>> ex = render_date(dt.date(2036, 3, 24), "zh_numerals", random.Random(1))
    >>> ex.source, ex.target, ex.spans[:4], ex.spans[5]
    ('二〇三六年三月二十四日', '2036-03-24', ((0, 1), (1, 2), (2, 3), (3, 4)), (5, 6))
    """
    if form not in FORMS:
        raise ValueError(f"form: expected one of {sorted(FORMS)}, received {form!r}")
    segments = FORMS[form](date, rng)
    source, where = "", {}
    for text, component, digitwise in segments:
        if component is not None:
            where[component] = (len(source), len(source) + len(text), digitwise)
        source += text
    if form in ENGLISH_FORMS:
        source = rng.choice(_CASINGS)(source)  # re-casing keeps every character's position
    target = iso(date)
    spans: list = []
    for component, width in (("year", 4), ("-", 1), ("month", 2), ("-", 1), ("day", 2)):
        if component == "-":
            spans.append(None)
            continue
        start, end, digitwise = where[component]
        digitwise = digitwise and end - start == width
        spans += [(start + k, start + k + 1) if digitwise else (start, end) for k in range(width)]
    return DateExample(source, target, target, form, tuple(spans))


@dataclass
class DateSplits:
    """Train / validation / test examples whose dates are disjoint across the splits."""

    train: list[DateExample]
    valid: list[DateExample]
    test: list[DateExample]


def generate_dates(
    n_train: int = 30000,
    n_valid: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
    first_year: int = 1900,
    last_year: int = 2099,
    forms: tuple[str, ...] | None = None,
) -> DateSplits:
    """Draw ``n_train + n_valid + n_test`` distinct dates in ``[first_year, last_year]`` and render each once.

    Dates are split before rendering, so the three splits share no date. The surface form of each example is
    drawn uniformly from ``forms`` (default: every form, Chinese forms counted twice, about 35 % Chinese).

    >>> s = generate_dates(5, 2, 3, seed=1)
    >>> len(s.train), len(s.valid), len(s.test), {e.date for e in s.train} & {e.date for e in s.test}
    (5, 2, 3, set())
    """
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name}: expected an int >= 0, received {n!r}")
    if not 1 <= first_year <= last_year <= 9999:
        raise ValueError(
            f"first_year, last_year: expected 1 <= first_year <= last_year <= 9999, "
            f"received {first_year}, {last_year}"
        )
    names = list(forms) if forms is not None else [*ENGLISH_FORMS, *CHINESE_FORMS, *CHINESE_FORMS]
    unknown = sorted(set(names) - set(FORMS))
    if unknown or not names:
        raise ValueError(f"forms: expected a non-empty subset of {sorted(FORMS)}, received {forms!r}")
    start = dt.date(first_year, 1, 1)
    n_days = (dt.date(last_year, 12, 31) - start).days + 1
    total = n_train + n_valid + n_test
    if total > n_days:
        raise ValueError(
            f"n_train + n_valid + n_test: expected at most {n_days} (the distinct dates in "
            f"{first_year}-{last_year}), received {total}; widen the years"
        )
    rng = random.Random(seed)
    offsets = rng.sample(range(n_days), total)  # distinct days: the split is by date
    examples = [render_date(start + dt.timedelta(days=k), rng.choice(names), rng) for k in offsets]
    return DateSplits(
        examples[:n_train], examples[n_train : n_train + n_valid], examples[n_train + n_valid :]
    )
