"""``rnnlab export RUN -o FILE.onnx``: the command-line hook (argparse only; torch is imported on use)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_subcommand", "run_export"]


def add_subcommand(commands) -> None:
    """Add the ``export`` parser to the CLI's sub-parsers; its handler is ``args.func(args) -> exit code``."""
    parser = commands.add_parser(
        "export",
        help="export a trained run to ONNX, with a JSON sidecar (vocabulary, labels, preprocessing)",
        description="Write RUN's best checkpoint as FILE.onnx (a translate run: FILE.encoder.onnx and "
        "FILE.decoder.onnx) and FILE.json, the sidecar a program in another language needs.",
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN", help="a sentiment, translate, forecast or charlm run folder"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.onnx", help="file to write")
    parser.add_argument(
        "--static", action="store_true", help="fix the batch size and length (default: both free)"
    )
    parser.set_defaults(func=run_export)


def run_export(args) -> int:
    """Export ``args.run_dir`` to ``args.output``; prints the files written. Exit status 2 for an export the
    model or the installation does not allow (the message says which)."""
    try:
        import onnx  # noqa: F401 - the export extra: onnx, onnxruntime, onnxscript
        import onnxscript  # noqa: F401
    except ImportError as err:
        print(f"rnnlab: error: export needs the 'export' extra (onnx, onnxscript): {err}", file=sys.stderr)
        return 2
    import json

    from rnnlab.cli.commands import check_writable
    from rnnlab.export.exporter import ExportError
    from rnnlab.export.run import export_run

    if args.output.suffix != ".onnx":  # before the model loads: the library's own rule and words
        print(f"rnnlab: error: -o: expected a file name ending in .onnx, received {str(args.output)!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    check_writable(args.output)  # every file of the export goes into this one folder
    try:
        sidecar = export_run(args.run_dir, args.output, dynamic=not args.static)
    except ExportError as err:
        print(f"rnnlab: error: {err}", file=sys.stderr)
        return 2
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    for key in ("model", "encoder", "decoder"):
        if key in meta:
            print(sidecar.parent / meta[key])
    print(sidecar)
    return 0
