"""A quick tour of rnnlab: run the five seed-note examples in order and print a summary table.

Each ``examples/seedN_*.py`` reproduces the code of one of the study notes rnnlab grew from on
``import rnnlab.nn as rnn`` and asserts that every number equals torch.nn's (or the seed's own reference
code's) with the same weights. Their ``main()`` returns the comparisons it made as ``(label, max |diff|)``
rows; this script runs them in one process (torch is imported once) and summarizes.

Run: ``python examples/run_seeds.py``; exits 1 if any example fails.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, seed note, what it shows), in the order of the seed notes.
SEEDS = [
    ("seed1_rnn_lstm_gru_attn.py", "000", "nn.RNN / LSTM / GRU calls and the Attn module"),
    ("seed2_complete_program.py", "001", "RNN, RNNCell, LSTM, LSTMCell: 1 to 4 layers"),
    ("seed3_manual_lstm.py", "002", "hand-written LSTM = rnn.LSTM = functional.lstm"),
    ("seed4_bilstm_attention.py", "003", "BiLSTM + attention pooling (seed's bugs fixed)"),
    ("seed5_lstmcell_loop.py", "004", "LSTMCell loop over time = one-layer LSTM"),
]


def run_one(script: str) -> tuple[list[tuple[str, float]] | None, str]:
    """Run ``script``'s ``main()``; return its rows and "ok", or None and the error's one-line summary."""
    try:
        namespace = runpy.run_path(str(HERE / script), run_name=f"examples.{Path(script).stem}")
        return namespace["main"](), "ok"
    except Exception as err:  # report every failure, keep touring, exit non-zero at the end
        traceback.print_exc()
        return None, f"FAILED: {type(err).__name__}"


def main() -> int:
    results = []
    for script, seed, topic in SEEDS:
        print(f"=== seed {seed}: {script}  ({topic})")
        rows, status = run_one(script)
        results.append((script, seed, topic, rows, status))
        print()

    print(f"{'seed':<5} {'script':<28} {'what it shows':<48} {'checks':>6} {'max |diff|':>10}  result")
    for script, seed, topic, rows, status in results:
        checks = "-" if rows is None else str(len(rows))
        worst = "-" if not rows else f"{max(diff for _, diff in rows):.1e}"
        print(f"{seed:<5} {script:<28} {topic:<48} {checks:>6} {worst:>10}  {status}")
    failed = sum(rows is None for *_, rows, _ in results)
    total = sum(len(rows) for *_, rows, _ in results if rows is not None)
    passed = len(results) - failed
    print(f"{passed}/{len(results)} examples passed; {total} comparisons, all equal within float tolerance.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
