"""The plan, the clock, the test runner and the report of ``benchmarks/speed.py --device cuda``.

No torch here: :mod:`speed_cuda` measures, this module decides what to measure in which order, keeps the
one deadline, runs the compiled triton tests in parallel child processes and writes the table, so the
tests check all of it on any machine with a fake clock and stub measurements.

* :func:`plan`: every row of the grid, most informative first. Each dimension's values come in order of
  preference (the first is the headline shape); a row's rank is how far it strays from the headline in all
  dimensions together, so the run measures the headline, then each single change from it (batch 1
  first: it has its own target), and so on. LayerNormLSTM rows are interleaved, the first of them second.
* :class:`Deadline`: one clock over all phases (the tests included); a row starts only if the longest row
  of its kind measured so far still fits (:func:`execute`).
* :func:`run_parallel`: commands as concurrent child processes, each in its own process group, all killed
  at the deadline.
* :class:`Report`: the markdown, rewritten whole (atomically) after every row, so that a run cut short
  still leaves a complete table of what it measured; its :meth:`Report.targets` are the issue's targets,
  each met / not met / not measured.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Deadline", "Report", "Row", "execute", "pytest_summary", "plan", "run_parallel"]


@dataclass(frozen=True)
class Row:
    """One measurement: a recurrent layer against cuDNN (``kind="rnn"``), or LayerNormLSTM's fused path
    against its Python loop (``kind="ln"``: ``cell`` is ``"LayerNormLSTM"``, one layer, float32)."""

    kind: str
    cell: str
    dtype: str
    layers: int
    bidirectional: bool
    B: int
    H: int

    @property
    def config(self) -> str:
        return f"{self.layers}{' bidir' if self.bidirectional else ''}"

    def label(self) -> str:
        return f"{self.cell} {self.dtype} {self.config} B{self.B} H{self.H}"


def plan(cells, dtypes, configs, batches, hidden, ln_shapes) -> list[Row]:
    """Every row of the grid (``configs``: ``(layers, bidirectional)``; ``ln_shapes``: ``(B, H)``), most
    informative first: sorted by the sum of each value's position in its (preference-ordered) list, ties
    broken by which dimension strays (batch, then cell, dtype, configuration, hidden size)."""
    keyed = []
    for ci, cell in enumerate(cells):
        for di, dtype in enumerate(dtypes):
            for ki, (layers, bidi) in enumerate(configs):
                for bi, B in enumerate(batches):
                    for hi, H in enumerate(hidden):
                        key = (ci + di + ki + bi + hi, -bi, -ci, -di, -ki, -hi)
                        keyed.append((key, Row("rnn", cell, dtype, layers, bidi, B, H)))
    for i, (B, H) in enumerate(ln_shapes):
        keyed.append(((1 + i, -99), Row("ln", "LayerNormLSTM", "fp32", 1, False, B, H)))
    return [row for _, row in sorted(keyed, key=lambda kr: kr[0])]


class Deadline:
    """One deadline over every phase of the run; ``clock`` is injectable (the tests use a fake one)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds = seconds
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()


def pytest_summary(text: str) -> dict[str, int]:
    """The counts in pytest's summary lines of ``text``: ``{"passed": 12, "failed": 1, ...}``, summed."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not re.search(r"\b(passed|failed|error|errors|skipped|no tests ran)\b.* in [\d.]+s", line):
            continue
        for n, what in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)", line):
            what = "errors" if what.startswith("error") else what
            counts[what] = counts.get(what, 0) + int(n)
    return counts


def run_parallel(commands: Sequence[Sequence[str]], timeout_s: float, cwd: Path, env: dict,
                 log: Path | None = None) -> tuple[bool, str]:  # fmt: skip
    """Run ``commands`` at once, each in its own process group; past ``timeout_s`` every one still
    running is killed with its children. Returns (all exited 0 in time, one line saying so); the output
    of all of them goes to ``log``. Each child writes to a file, not a pipe: a pipe that nobody reads
    while the parent waits for another child would stall a child with much to say."""
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8")) for _ in commands]
        procs = [
            subprocess.Popen(
                list(cmd), cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )  # fmt: skip
            for cmd, f in zip(commands, files, strict=True)
        ]
        timed_out = False
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, timeout_s - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
                    os.killpg(proc.pid, signal.SIGKILL)  # its own group: only its processes
                proc.wait()
        seconds = time.monotonic() - start
        outputs = []
        for f in files:
            f.seek(0)
            outputs.append(f.read())
    if log is not None:
        text = "\n".join(f"$ {' '.join(cmd)}\n{out}" for cmd, out in zip(commands, outputs, strict=True))
        _write_atomic(log, text)
    counts = pytest_summary("\n".join(outputs))
    said = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no pytest summary"
    ok = not timed_out and all(p.returncode == 0 for p in procs)
    if timed_out:
        return False, f"stopped at the deadline after {seconds:.0f} s ({said} by then)"
    codes = "" if ok else f"; exit statuses {[p.returncode for p in procs]}"
    return ok, f"{said} in {seconds:.0f} s, {len(procs)} process{'es' if len(procs) > 1 else ''}{codes}"


def execute(rows: Sequence[Row], measure: Callable[[Row], dict], deadline: Deadline,
            on_row: Callable[[Row, dict | None], None], first_guess_s: float = 20.0,
            ) -> list[Row]:  # fmt: skip
    """Measure ``rows`` in order while the deadline allows; ``on_row`` after each row (its result, or
    None when it was skipped). A row is skipped when the longest row of its kind so far (``first_guess_s``
    before any) no longer fits in what remains. A row whose measurement raises gets ``{"note": the
    error}`` and the run goes on: on a first run the other rows are worth having. Returns the skipped
    rows."""
    longest: dict[str, float] = {}
    skipped = []
    for row in rows:
        expected = longest.get(row.kind, max(longest.values(), default=first_guess_s))
        if deadline.remaining() < expected:
            skipped.append(row)
            on_row(row, None)
            continue
        start = deadline.elapsed()
        try:
            result = measure(row)
        except Exception as e:  # noqa: BLE001 (any failure of one row is reported in its row)
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            result = {"note": f"**failed**: {type(e).__name__}: {first}".rstrip(": ")}
        longest[row.kind] = max(longest.get(row.kind, 0.0), deadline.elapsed() - start)
        on_row(row, result)
    return skipped


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.tmp")  # written whole, then renamed: never half a file
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


@dataclass
class Report:
    """The markdown of one run. ``rnn`` rows hold ``{"fwd": (cuDNN ms, rnnlab ms), "f+b": (...)}``, ``ln``
    rows ``{"fwd": (loop ms, fused ms), "f+b": (...)}``; either may be ``{"note": why it has no figure}``
    instead (a failure, or a shape the fused path does not take)."""

    path: Path
    header: list[str]
    plan: list[Row]  # every row the run means to measure, in order
    deadline_s: float
    tests: tuple[bool, str] | None = None  # None: not run (yet)
    results: list[tuple[Row, dict]] = field(default_factory=list)
    skipped: list[Row] = field(default_factory=list)
    finished: bool = False
    elapsed_s: float = 0.0

    def targets(self) -> list[str]:
        """The issue's four targets, one line each: the figure measured and met / NOT met, or why not."""
        suspect = "" if self.tests is None or self.tests[0] else " (the triton tests failed: suspect)"
        rnn = [(r, v) for r, v in self.results if r.kind == "rnn" and "note" not in v]
        total = sum(1 for r in self.plan if r.kind == "rnn")
        lines = []
        if rnn:
            ratios = [v["f+b"][1] / v["f+b"][0] for _, v in rnn]
            median = statistics.median(ratios)
            by = "; ".join(
                f"{d} {statistics.median(x):.2f}x"
                for d in dict.fromkeys(r.dtype for r, _ in rnn)
                if (x := [v["f+b"][1] / v["f+b"][0] for r, v in rnn if r.dtype == d])
            )
            lines.append(
                f"- forward + backward vs cuDNN, median over {len(rnn)} of {total} shapes ({by}): "
                f"**{median:.2f}x** (target <= 1.25x): {_met(median <= 1.25 and not suspect)}{suspect}"
            )
        else:
            lines.append("- forward + backward vs cuDNN (target median <= 1.25x): not measured")
        one = [max(v["fwd"][1] / v["fwd"][0], v["f+b"][1] / v["f+b"][0]) for r, v in rnn if r.B == 1]
        if one:
            lines.append(
                f"- batch 1, slowest of fwd and f+b over {len(one)} shapes: **{max(one):.2f}x** of cuDNN "
                f"(target <= 1x): {_met(max(one) <= 1.0 and not suspect)}{suspect}"
            )
        else:
            lines.append("- batch 1 (target no slower than cuDNN): not measured")
        ln = [v for r, v in self.results if r.kind == "ln" and "note" not in v]
        if ln:
            worst = min(min(v["fwd"][0] / v["fwd"][1], v["f+b"][0] / v["f+b"][1]) for v in ln)
            lines.append(
                f"- LayerNormLSTM vs its Python loop, smallest speed-up of fwd and f+b over {len(ln)} "
                "shapes: "
                f"**{worst:.1f}x** (target >= 10x): {_met(worst >= 10 and not suspect)}{suspect}"
            )
        else:
            lines.append("- LayerNormLSTM vs its Python loop (target >= 10x): not measured")
        complete = self.finished and not self.skipped and self.tests is not None
        lines.append(
            f"- this run: {len(self.results)} of {len(self.plan)} rows and the tests in "
            f"{self.elapsed_s:.0f} s "
            f"(target: a complete table within 480 s, on a fresh machine in one call): "
            + (_met(complete and self.elapsed_s <= 480) if self.finished else "running")
        )
        return lines

    def text(self) -> str:
        out = list(self.header)
        if self.finished:
            state = f"finished in {self.elapsed_s:.0f} s"
            if self.skipped:
                state += f"; **{len(self.skipped)} rows skipped** at the {self.deadline_s:.0f} s deadline"
        else:
            state = f"**in progress** ({self.elapsed_s:.0f} s): a run cut short leaves this table as it was"
        out += ["", f"Status: {len(self.results)} of {len(self.plan)} rows measured, {state}."]
        if self.tests is None:
            out += ["", "The triton tests compiled on the device: not run."]
        else:
            ok, line = self.tests
            said = f"passed ({line})." if ok else f"**FAILED** ({line}): every figure below is suspect."
            out += ["", f"**Correctness first**, the triton tests compiled on the device: {said}"]
        out += ["", "## Targets", "", *self.targets()]
        out += [
            "",
            "## rnnlab (Triton) against torch.nn (cuDNN), most informative rows first",
            "",
            "| cell | dtype | layers | B | H | cuDNN fwd | rnnlab fwd | ratio "
            "| cuDNN f+b | rnnlab f+b | ratio |",
            "|" + "---|" * 11,
        ]
        for row, v in self.results:
            if row.kind == "rnn" and "note" in v:
                out.append(
                    f"| {row.cell} | {row.dtype} | {row.config} | {row.B} | {row.H} | {v['note']} |"
                    + " |" * 5
                )
            elif row.kind == "rnn":
                (cf, rf), (cb, rb) = v["fwd"], v["f+b"]
                out.append(
                    f"| {row.cell} | {row.dtype} | {row.config} | {row.B} | {row.H} | {cf:.3g} | {rf:.3g} "
                    f"| **{rf / cf:.2f}x** | {cb:.3g} | {rb:.3g} | **{rb / cb:.2f}x** |"
                )
        out += [
            "",
            "## LayerNormLSTM (one layer, float32): fused Triton path against its Python loop",
            "",
            "| B | H | loop fwd | fused fwd | speed-up | loop f+b | fused f+b | speed-up |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row, v in self.results:
            if row.kind == "ln":
                if "note" in v:
                    out.append(f"| {row.B} | {row.H} | {v['note']} | | | | | |")
                    continue
                (lf, ff), (lb, fb) = v["fwd"], v["f+b"]
                out.append(
                    f"| {row.B} | {row.H} | {lf:.3g} | {ff:.3g} | **{lf / ff:.1f}x** | {lb:.3g} | {fb:.3g} "
                    f"| **{lb / fb:.1f}x** |"
                )
        if self.skipped:
            out += ["", "Skipped at the deadline: " + "; ".join(r.label() for r in self.skipped) + "."]
        return "\n".join(out) + "\n"

    def write(self) -> None:
        _write_atomic(self.path, self.text())
