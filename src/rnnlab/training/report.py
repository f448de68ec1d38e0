"""What a training run tells the person running it: a progress bar, a per-epoch table, and the events
(early stopping, interruption) when they happen.

The conventions are the ecosystem's, so that the same code behaves in a terminal, a pipe and a notebook:

* The bar is ``tqdm.auto``'s: a text bar on a terminal, a widget in Jupyter, and, with ``disable=None``,
  nothing when stderr is a pipe or a file (a log full of carriage returns helps nobody).
* Every line is also a ``logging`` record on the ``rnnlab`` loggers: ``logger.info("epoch %d: %s", epoch,
  row)`` with the row as a dict, so a program that configured logging gets structured records and formats
  them its own way.
* A library must not configure logging (no handler added, no level changed: that is the application's
  choice). But Python drops INFO records when nobody configured anything, so a script or a notebook that
  calls ``fit`` would train in silence. So :class:`Report` asks whether logging will show a record
  (:func:`logging_shows`): when it will, logging alone prints it (no line twice, e.g. under the CLI's
  handler); when it will not, the line is printed to stderr with ``tqdm.write``, which keeps a live bar
  intact. This is what Keras' ``verbose`` does (it prints, independent of logging), made to step aside for a
  configured logging setup. ``TrainerConfig.progress=False`` turns the bar and these lines off; the logging
  records are still emitted.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["EpochTable", "Report", "logging_shows"]


def logging_shows(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` logged on ``logger`` reaches a handler that outputs it.

    Follows what ``Logger.callHandlers`` does: the logger's effective level (and ``logging.disable``), then
    the handlers up the ``propagate`` chain, each with its own level. A ``NullHandler`` outputs nothing;
    when there is no handler at all, Python's last-resort handler prints WARNING and above to stderr.
    """
    if not logger.isEnabledFor(level):
        return False
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if not isinstance(handler, logging.NullHandler) and level >= handler.level:
                return True
        current = current.parent if current.propagate else None
    return not found and logging.lastResort is not None and level >= logging.lastResort.level


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)  # nan / inf print as such


class EpochTable:
    """Per-epoch rows as aligned text: a header line when the columns change (so at the first epoch), then
    one line per epoch, every column right-aligned to its header's width (at least 9 characters), two spaces
    apart. Floats get 4 significant digits.

    >>> table = EpochTable()
    >>> print("\\n".join(table.lines({"epoch": 1, "train_loss": 0.69314, "accuracy": 0.5})))
        epoch  train_loss   accuracy
            1      0.6931        0.5
    >>> table.lines({"epoch": 2, "train_loss": 0.5, "accuracy": 0.75})
    ['        2         0.5       0.75']
    """

    def __init__(self) -> None:
        self._columns: list[str] | None = None
        self._widths: list[int] = []

    def lines(self, row: dict[str, Any]) -> list[str]:
        out = []
        if list(row) != self._columns:
            self._columns = list(row)
            self._widths = [max(len(name), 9) for name in self._columns]
            out.append("  ".join(f"{name:>{w}}" for name, w in zip(self._columns, self._widths, strict=True)))
        cells = (_cell(row[name]) for name in self._columns)
        out.append("  ".join(f"{cell:>{w}}" for cell, w in zip(cells, self._widths, strict=True)))
        return out


class Report:
    """The trainer's voice: records on ``logger``, and the same lines on stderr when logging would drop them.

    Args:
        logger: where the records go (a logger under ``rnnlab``).
        enabled: show the bar and print the lines logging would not show (``TrainerConfig.progress``, and
            rank 0 only). False: records only.
    """

    def __init__(self, logger: logging.Logger, enabled: bool) -> None:
        self.logger, self.enabled = logger, enabled
        self._table = EpochTable()

    def bar(self, total: int | None, desc: str):
        """A ``tqdm.auto`` bar over one epoch's steps: shown on a terminal or in a notebook, not in a pipe."""
        from tqdm.auto import tqdm  # lazy: tqdm ships with the 'tasks' extra

        # disable=None: tqdm's own rule, "off when the stream is not a terminal" (a notebook's widget is on).
        # leave=False: the finished bar makes room for the epoch's table row, which is the lasting record.
        return tqdm(
            total=total, desc=desc, disable=None if self.enabled else True, dynamic_ncols=True, leave=False
        )

    def _print(self, lines: list[str], level: int) -> None:
        if self.enabled and not logging_shows(self.logger, level):
            from tqdm.auto import tqdm

            for line in lines:
                tqdm.write(line, file=sys.stderr)

    def epoch(self, row: dict[str, Any]) -> None:
        """One epoch's row (``epoch``, ``train_loss``, ``lr``, ``time``, the validation metrics)."""
        self.logger.info("epoch %d: %s", row["epoch"], row)
        self._print(self._table.lines(row), logging.INFO)

    def note(self, level: int, msg: str, *args: Any) -> None:
        """An event (early stopping, interruption, nothing left to train...) as a ``%``-format message."""
        self.logger.log(level, msg, *args)
        self._print([msg % args if args else msg], level)
