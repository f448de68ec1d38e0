"""``rnnlab export`` on tiny trained forecast and charlm runs: the sidecar and the ONNX file alone, read by a
short numpy + onnxruntime program, reproduce ``rnnlab predict RUN --json`` (forecast) and ``rnnlab sample RUN
--temperature 0`` (charlm); the sidecar's calendar recipe equals rnnlab's calendar features at every
frequency."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import run, session  # noqa: E402

from rnnlab.cli import main  # noqa: E402
from rnnlab.data.series import FREQS, calendar_features  # noqa: E402
from rnnlab.export.sidecars import CALENDAR_RECIPE  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_run_tasks")]

TINY_FORECAST = ["model.cell=lstm", "model.hidden_size=4", "model.ensemble=2", "train.epochs=2"]
TINY_FORECAST += ["train.progress=false", "data.steps_per_epoch=2", "data.horizon=12"]
TINY_CHARLM = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=3", "data.eval_batch_size=2",
               "model.hidden_size=16", "model.embedding_dim=8", "train.epochs=2", "train.warmup_steps=0",
               "train.progress=false", "train.lr=0.01"]  # fmt: skip
TEXT = "".join(
    f"{name}.\nI have {n} reasons, my lord; the {word} is {adj}.\n\n"
    for n, (name, word, adj) in enumerate([("Kent", "king", "old"), ("Lear", "storm", "wild")] * 15)
)


def _write_series(path, n=72, seed=0):
    """A monthly series with trend and season."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 0.8 * t + 12 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.4f}" for i, v in enumerate(y)]
    path.write_text("month,sales\n" + "\n".join(rows) + "\n")
    return path


def _export(capsys, run_dir, output) -> dict:
    assert main(["export", str(run_dir), "-o", str(output)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(output), str(output.with_suffix(".json"))]
    onnx.checker.check_model(onnx.load(str(output)), full_check=True)
    return json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))


# -- forecast: what a program in another language does with the sidecar ------------------------------------


def _calendar_values(times: np.ndarray) -> dict[str, np.ndarray]:
    """The sidecar's calendar values of datetime64 times, as its 'values' describe them."""
    days = times.astype("datetime64[D]")
    return {
        "month": times.astype("datetime64[M]").astype(np.int64) % 12,
        "day_of_year": (days - days.astype("datetime64[Y]")).astype(np.int64),
        "weekday": (days.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday
        "hour": times.astype("datetime64[h]").astype(np.int64) % 24,
    }


def _calendar(times: np.ndarray, features: list) -> np.ndarray:
    values = _calendar_values(times)
    columns = []
    for value, cycle in features:
        angle = 2 * np.pi * values[value].astype(np.float64) / cycle
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, -1) if columns else np.zeros((len(times), 0))  # (W, F)


def _forecast_from_sidecar(onnx_path, meta: dict) -> dict:
    """The forecast after the run's own series, from the sidecar and onnxruntime only."""
    W, unit, count = meta["window"], meta["step"]["unit"], meta["step"]["count"]
    end = np.datetime64(meta["last_time"], unit)
    times = end - np.arange(W - 1, -1, -1) * np.timedelta64(count, unit)  # (W,)
    s = meta["scaling"]
    y = np.asarray(meta["tail"], dtype=np.float64)
    z = ((np.log(y) if s["log"] else y) - s["mean"]) / s["std"]
    x = z[None].astype(np.float32)  # (1, W)
    calendar = _calendar(times, meta["calendar"]["features"])[None].astype(np.float32)  # (1, W, F)
    q = run(session(onnx_path), x=x, calendar=calendar)["quantiles"][0].astype(np.float64)  # (H, Q)
    f = q * s["std"] + s["mean"]
    q = np.sort(np.exp(f) if s["log"] else f, axis=-1)
    future = end + np.arange(1, meta["horizon"] + 1) * np.timedelta64(count, unit)
    return {
        "times": [str(t) for t in future],
        "forecast": q[:, meta["median_index"]].tolist(),
        "quantiles": {f"{level:g}": q[:, i].tolist() for i, level in enumerate(meta["quantiles"])},
    }


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    data = _write_series(folder / "sales.csv")
    assert main(["train", "forecast", "--data", str(data), "--out", str(folder / "run"), *TINY_FORECAST]) == 0
    return folder / "run"


def test_forecast_sidecar_and_onnxruntime_reproduce_rnnlab_predict(forecast_run, tmp_path, capsys):
    capsys.readouterr()
    meta = _export(capsys, forecast_run, tmp_path / "sales.onnx")
    assert meta["task"] == "forecast" and meta["model"] == "sales.onnx" and meta["freq"] == "month"
    assert (meta["window"], meta["horizon"], meta["quantiles"]) == (24, 12, [0.1, 0.5, 0.9])
    graph = onnx.load(str(tmp_path / "sales.onnx")).graph
    assert list(meta["inputs"]) == [i.name for i in graph.input] == ["x", "calendar"]
    assert list(meta["outputs"]) == [o.name for o in graph.output] == ["quantiles"]
    assert main(["predict", str(forecast_run), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    got = _forecast_from_sidecar(tmp_path / "sales.onnx", meta)
    assert got["times"] == expected["times"] == meta["forecast_times"]["after_tail"]
    for level, values in expected["quantiles"].items():
        np.testing.assert_allclose(got["quantiles"][level], values, rtol=1e-5, atol=0)
    np.testing.assert_allclose(got["forecast"], expected["forecast"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("freq", list(FREQS))
def test_the_sidecar_calendar_recipe_is_rnnlabs_at_every_frequency(freq):
    unit, count = FREQS[freq]
    start = np.datetime64("1999-12-27T05", "h").astype(f"datetime64[{unit}]")
    times = start + np.arange(400) * np.timedelta64(count, unit)
    got = _calendar(times, [[v, c] for v, c in CALENDAR_RECIPE[freq]])
    expected = calendar_features(times, freq)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


# -- charlm: greedy sampling from the sidecar ----------------------------------------------------------------


@pytest.fixture(scope="module")
def charlm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charlm")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert main(["train", "charlm", "--data", str(path), "--out", str(folder / "run"), *TINY_CHARLM]) == 0
    return folder / "run"


def _greedy_from_sidecar(onnx_path, meta: dict, prime: str, length: int) -> str:
    """``rnnlab sample --temperature 0`` from the sidecar and onnxruntime only."""
    vocab = meta["vocab"]
    index = {token: i for i, token in enumerate(vocab["tokens"])}
    ids = [index.get(ch, vocab["unk_id"]) for ch in prime] or [meta["sampling"]["empty_prime_id"]]
    L, H = meta["state"]["shape"]["L"], meta["state"]["shape"]["H"]
    state = {name: np.zeros((L, 1, H), dtype=np.float32) for name in meta["state"]["names"]}
    sess, out = session(onnx_path), []
    chunk = np.array([ids], dtype=np.int64)  # (1, P): the prime as one chunk
    for _ in range(length):
        result = run(sess, ids=chunk, **state)
        state = {name: result[nxt] for name, nxt in meta["state"]["next"].items()}
        logits = result["logits"][0, -1].copy()  # (V,)
        logits[[vocab["pad_id"], vocab["unk_id"]]] = -np.inf
        nxt = int(logits.argmax())
        out.append(vocab["tokens"][nxt])
        chunk = np.array([[nxt]], dtype=np.int64)
    return prime + "".join(out)


def test_charlm_sidecar_and_onnxruntime_reproduce_greedy_sampling(charlm_run, tmp_path, capsys):
    capsys.readouterr()
    meta = _export(capsys, charlm_run, tmp_path / "lm.onnx")
    assert meta["task"] == "charlm" and meta["state"]["names"] == ["h0", "c0"]
    assert meta["state"]["shape"] == {"L": 1, "H": 16}
    assert meta["vocab"]["tokens"][:2] == ["<pad>", "<unk>"] and "K" in meta["vocab"]["tokens"]
    graph = onnx.load(str(tmp_path / "lm.onnx")).graph
    assert list(meta["inputs"]) == [i.name for i in graph.input] == ["ids", "h0", "c0"]
    assert list(meta["outputs"]) == [o.name for o in graph.output] == ["logits", "h_n", "c_n"]
    for prime in ("Kent.", "", "Lear~"):  # "~" was never seen: <unk>; "": the newline
        assert (
            main(["sample", str(charlm_run), "--temperature", "0", "--length", "60", "--prime", prime]) == 0
        )
        expected = capsys.readouterr().out
        assert expected.endswith("\n")
        assert _greedy_from_sidecar(tmp_path / "lm.onnx", meta, prime, 60) == expected[:-1], prime
