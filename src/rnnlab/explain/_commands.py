"""``rnnlab shapes`` and ``rnnlab explain``: argument parsing only; torch is imported inside the handlers.

::

    rnnlab shapes LSTM input_size=5 hidden_size=6 num_layers=2 [bidirectional=true] [batch_first=true]
                  [proj_size=3] [--input 4,2,5] [--h0 2,2,6] [--c0 2,2,6]
    rnnlab explain LSTM|GRU|RNN [--input-size 2] [--hidden-size 3] [--seed 0] [--lengths 3,1,2]

Both take ``--lang en|zh`` (default: the locale's language, Chinese under a ``zh`` locale): the notes, gate
names and error sentences in Chinese for the study notes' readers (:mod:`rnnlab.explain._zh`).
``key=value`` pairs are the layer's constructor arguments, values read as int, float, bool or text; the
options (``--input`` ...) come after them. Without ``--input`` the layer runs on ``T = 4`` steps of a batch of
``B = 2`` (a cell on ``B = 2``). A shape the layer rejects prints ``rnnlab: error: <one sentence>``, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from rnnlab.explain._zh import LANGS, resolve_lang, translate

__all__ = ["DEFAULT_B", "DEFAULT_T", "LAYERS", "add_subcommands", "main"]

DEFAULT_T = 4  # time steps of the default input
DEFAULT_B = 2  # batch of the default input
LAYERS = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
MAX_EXPLAIN_SIZE = 8  # explain prints every weight: beyond this the lines stop being readable
MAX_LENGTH = 40


class _UsageError(Exception):
    """A mistake in the command line's values: ``rnnlab: error: <message>``, exit 2."""


def add_subcommands(commands: argparse._SubParsersAction) -> None:
    """Add the ``shapes`` and ``explain`` sub-commands; each sets ``func(args) -> exit status``."""
    shapes = commands.add_parser(
        "shapes",
        help="every shape a recurrent layer takes and returns, found by running it",
        description="Print every parameter of a recurrent layer with its shape, the shapes it expects for "
        "input, h0 (and c0) and the shapes it returns, each dimension named with the README's legend "
        "(T, B, H_in, H, P, D*L ...). The layer runs on zeros; nothing is computed from a formula.",
        epilog="example: rnnlab shapes LSTM input_size=5 hidden_size=6 num_layers=2 --h0 2,2,6",
    )
    shapes.add_argument("layer", choices=LAYERS, metavar="LAYER", help=f"one of {', '.join(LAYERS)}")
    shapes.add_argument(
        "options",
        nargs="*",
        metavar="key=value",
        help="constructor arguments, e.g. input_size=5 hidden_size=6",
    )
    shapes.add_argument(
        "--input", metavar="N,N,N", help=f"the input's shape (default: T={DEFAULT_T} steps, B={DEFAULT_B})"
    )
    shapes.add_argument("--h0", metavar="N,N,N", help="the initial hidden state's shape (hx for a cell)")
    shapes.add_argument("--c0", metavar="N,N,N", help="the initial cell state's shape (LSTM, LSTMCell)")
    _add_lang(shapes)
    shapes.set_defaults(func=run_shapes)

    explain = commands.add_parser(
        "explain",
        help="one time step of a tiny layer, as its equations with the numbers substituted",
        description="Print one time step of a tiny layer as the equations of rnnlab/nn/functional.py with "
        "the numbers substituted, computed from the layer's weights and checked against the layer's own "
        "output. With --lengths: which steps of a packed batch are computed, and proof that padding is not.",
        epilog="example: rnnlab explain GRU --hidden-size 3 --input-size 2 --seed 0",
    )
    explain.add_argument("layer", choices=("RNN", "LSTM", "GRU"), metavar="LAYER", help="RNN, LSTM or GRU")
    explain.add_argument("--input-size", type=int, default=2, help="H_in (default 2)")
    explain.add_argument("--hidden-size", type=int, default=3, help="H (default 3)")
    explain.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default 0)")
    explain.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh", help="RNN only")
    explain.add_argument("--lengths", metavar="N,N,...", help="packed sequences of these lengths, e.g. 3,1,2")
    _add_lang(explain)
    explain.set_defaults(func=run_explain)


def _add_lang(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang",
        choices=LANGS,
        default=None,
        help="language of the notes and errors: en or zh, 中文 (default: the locale's, zh under LANG=zh_*)",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m rnnlab.explain shapes|explain ...``: the two sub-commands without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="rnnlab", description="Shapes and steps of recurrent layers.")
    add_subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.func(args)


def _sizes(text: str, option: str, *, positive: bool = False) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < (1 if positive else 0) for s in sizes):
        kind = "positive whole numbers" if positive else "sizes"
        raise _UsageError(f"{option} must be {kind} separated by commas, like 3,1,2; got {text!r}")
    return sizes


def _value(text: str) -> int | float | bool | str:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _constructor_arguments(pairs: list[str]) -> dict[str, int | float | bool | str]:
    kwargs: dict[str, int | float | bool | str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise _UsageError(f"constructor arguments are key=value pairs like hidden_size=6; got {pair!r}")
        if key in kwargs:
            raise _UsageError(f"{key} is given twice")
        kwargs[key] = _value(text)
    return kwargs


def _fail(message: str, lang: str = "en") -> int:
    print(translate(f"rnnlab: error: {message}", lang), file=sys.stderr)
    return 2


def run_shapes(args: argparse.Namespace) -> int:
    """Handler of ``rnnlab shapes``: build the layer, run :func:`rnnlab.explain.shapes`, print the table."""
    lang = resolve_lang(args.lang)
    try:
        kwargs = _constructor_arguments(args.options)
        given = {name: getattr(args, name) for name in ("input", "h0", "c0")}
        sizes = {name: _sizes(text, f"--{name}") for name, text in given.items() if text is not None}
    except _UsageError as err:
        return _fail(str(err), lang)
    import rnnlab.nn as rnn
    from rnnlab.explain._shapes import ShapeError, shapes

    missing = [name for name in ("input_size", "hidden_size") if name not in kwargs]
    if missing:
        return _fail(
            f"{args.layer} needs {' and '.join(f'{m}=N' for m in missing)}, e.g. input_size=5 hidden_size=6",
            lang,
        )
    try:
        module = getattr(rnn, args.layer)(**kwargs)
    except (TypeError, ValueError) as err:
        return _fail(f"{args.layer}({', '.join(args.options)}) cannot be built: {err}", lang)
    is_lstm = args.layer.startswith("LSTM")
    if "c0" in sizes and not is_lstm:
        return _fail(f"--c0 is only for LSTM and LSTMCell; {args.layer} has no cell state", lang)
    if "input" in sizes:
        shape = sizes["input"]
    elif args.layer.endswith("Cell"):
        shape = (DEFAULT_B, module.input_size)
    else:
        shape = (DEFAULT_B, DEFAULT_T) if module.batch_first else (DEFAULT_T, DEFAULT_B)
        shape += (module.input_size,)
    try:
        hx = None
        if is_lstm and ("h0" in sizes or "c0" in sizes):
            # The state not given is zeros of the expected shape, so only the given one is checked.
            expected = shapes(module, shape).expects
            hx = (sizes.get("h0", expected[1].shape), sizes.get("c0", expected[2].shape))
        elif "h0" in sizes:
            hx = sizes["h0"]
        table = shapes(module, shape, hx)
    except ShapeError as err:
        return _fail(f"{err}.", lang)
    print(translate(str(table), lang))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Handler of ``rnnlab explain``: one step worked out in numbers, or the packed-sequence view."""
    lang = resolve_lang(args.lang)
    try:
        for option, size in (("--input-size", args.input_size), ("--hidden-size", args.hidden_size)):
            if not 1 <= size <= MAX_EXPLAIN_SIZE:
                raise _UsageError(
                    f"{option} must be between 1 and {MAX_EXPLAIN_SIZE} (a tiny layer), got {size}"
                )
        lengths = None if args.lengths is None else _sizes(args.lengths, "--lengths", positive=True)
        if lengths is not None and (max(lengths) > MAX_LENGTH or len(lengths) > MAX_LENGTH):
            raise _UsageError(f"--lengths: at most {MAX_LENGTH} sequences of at most {MAX_LENGTH} steps")
    except _UsageError as err:
        return _fail(str(err), lang)
    options = dict(input_size=args.input_size, hidden_size=args.hidden_size, seed=args.seed)
    if args.layer == "RNN":
        options["nonlinearity"] = args.nonlinearity
    if lengths is None:
        from rnnlab.explain._step import step

        result = step(args.layer, **options)
    else:
        from rnnlab.explain._packed import packed

        result = packed(args.layer, lengths, **options)
    print(translate(str(result), lang))
    return 0 if result.matches else 1
