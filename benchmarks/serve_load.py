"""Load and faults for ``rnnlab serve``, on the loopback only, on the trained runs of every task.

For each run (``--run``, once per run: a sentiment, translate, charlm or forecast run folder), 32 concurrent
clients (threads, one keep-alive connection each) send the run's endpoint requests built from the run's own
training part (reviews, date strings, primes cut from the training text, histories that end inside the
training part; never its validation or test part), a tenth of them bad (malformed JSON, non-UTF-8 bytes,
wrong types, options out of range, a body over the size limit, ...). A character LM's requests alternate
between a whole text and server-sent events (``"stream": true``), each asking for 200 characters.

Three servers per run, one after the other: micro-batching (the defaults), ``--max-batch-size 1`` (every
request alone) and ``--workers 2`` (micro-batching in each worker). Checked on every round: 0 errors on
good requests (a 200 with the expected answer: a stream with as many characters as asked), the right 4xx
on every bad one, no dropped connection, exit 0 after SIGTERM and no traceback. Reported: throughput,
p50 / p99 latency of the good requests (a stream's: until its last event; its first character's too),
the server's resident memory after a warm-up round and after each of three equal rounds
(growth: the last reading above the highest earlier one; the allocator moves RSS by a few MiB either way
from round to round, a leak only up), and the ratios the serving targets are stated in. Writes a Markdown
report (``--out``).

    python benchmarks/serve_load.py --run runs/zh --run runs/dates --run runs/shakespeare --run runs/air
    python benchmarks/serve_load.py --quick      # trains a small sentiment run first (about ten seconds)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERSIZED = b'{"texts": ["' + b"a" * (1 << 20) + b'"]}'  # over max_body_bytes (1 MiB)
COMMON_BAD = [(b'{"texts": ["unclosed', 400), (b'{"texts": ["\xff\xfe bad bytes"]}', 400), (OVERSIZED, 413)]
PREDICT_BAD = [
    *COMMON_BAD,
    (b'{"texts": "not a list"}', 422),
    (b'{"texts": []}', 422),
    (b'{"texts": ["   "]}', 422),
    (json.dumps({"texts": ["好"] * 300}).encode(), 413),  # over max_texts (256)
    (json.dumps({"texts": ["长" * 10_001]}).encode(), 413),  # over max_text_chars
]
GENERATE_BAD = [
    *COMMON_BAD,
    (b'{"length": 0}', 422),
    (b'{"length": 5000}', 422),  # over max_generate_length
    (b'{"temperature": -1}', 422),
    (b'{"top_p": 1.5}', 422),
    (json.dumps({"prime": "\u2603\u2603"}).encode(), 422),  # no character of it was seen in training
    (b'{"stream": "yes"}', 422),
    (json.dumps({"prime": "a" * 10_001}).encode(), 413),  # over max_text_chars
]
FORECAST_BAD = [
    *COMMON_BAD,
    (b'{"history": [1, 2]}', 422),  # shorter than the window
    (b'{"history": "not a list"}', 422),
    (b'{"history": [NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}', 422),
    (json.dumps({"history": [0] * 100_001}).encode(), 413),  # over max_history
    (b'{"history": null, "unknown": 1}', 422),
]
ROUND = {"sentiment": 2000, "translate": 1000, "charlm": 320, "forecast": 2000}  # good + bad, per round


@dataclass
class Workload:
    """What the clients send to one run: good bodies (with whether each is a stream and, for a stream, how
    many characters it must bring) and bad bodies with the status each must get."""

    task: str
    path: str
    good: list[tuple[bytes, int]]  # (body, characters a stream must bring; 0: a plain JSON answer)
    bad: list[tuple[bytes, int]]


def _reviews(path: Path, n: int = 400, seed: int = 0) -> list[str]:
    """Synthetic reviews with a cue word (the smoke run's data)."""
    rng = random.Random(seed)
    cues = {"pos": ["好用", "很棒", "满意", "推荐"], "neg": ["太差", "失望", "退货", "很慢"]}
    filler = list("这个东西我们买了一次然后就是的还有质量价格物流包装")
    rows = []
    for i in range(n):
        label = ("neg", "pos")[i % 2]
        words = [rng.choice(filler) for _ in range(rng.randint(5, 60))]
        words.insert(rng.randrange(len(words)), rng.choice(cues[label]))
        rows.append(("".join(words), label))
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows), encoding="utf-8")
    return [t for t, _ in rows]


def texts_workload(texts: list[str], task: str = "sentiment") -> Workload:
    return Workload(
        task, "/v1/predict", [(json.dumps({"texts": [t]}).encode(), 0) for t in texts], PREDICT_BAD
    )


def run_workload(run: Path, n: int = 2000, seed: int = 1) -> Workload:
    """The requests for a trained run, from its training part only (loaded as its task loads it)."""
    from rnnlab.tasks import task_of_run

    rng = random.Random(seed)
    task = task_of_run(run)
    if task == "sentiment":
        from rnnlab.tasks import sentiment

        texts = sentiment.load_splits(sentiment.load_run_config(run).data).train.texts
        return texts_workload(rng.sample(list(texts), min(n, len(texts))), task)
    if task == "translate":
        from rnnlab.data.pairs import load_parallel
        from rnnlab.tasks import translate

        pairs = load_parallel(translate.load_run_config(run).data.parallel()).train
        return texts_workload([s for s, _ in rng.sample(list(pairs), min(n, len(pairs)))], task)
    if task == "charlm":
        from rnnlab.data.corpora import load_corpus
        from rnnlab.tasks import charlm

        cfg = charlm.load_run_config(run).data
        text = load_corpus(cfg.dataset, cfg.valid_fraction, cfg.test_fraction).train
        good = []
        for i in range(n):
            start = rng.randrange(len(text) - 64)
            prime = text[start : start + rng.randint(1, 40)]
            body = {"prime": prime, "length": 200, "temperature": 0.8, "seed": i, "stream": i % 2 == 0}
            good.append((json.dumps(body).encode(), 200 if i % 2 == 0 else 0))
        return Workload(task, "/v1/generate", good, GENERATE_BAD)
    if task == "forecast":
        from rnnlab.tasks import forecast

        config = forecast.load_run_config(run)
        series = forecast.load_run_series(config.data)
        split = forecast.make_split(series, config.data, config.model.window)
        good = []
        for i in range(n):
            if i % 4 == 0:  # the run's own series: no history sent
                good.append((b"{}", 0))
                continue
            end = rng.randint(split.window, split.valid_start)  # histories end inside the training part
            history = series.values[:end].tolist()
            good.append(
                (json.dumps({"history": history, "last_time": str(series.times[end - 1])}).encode(), 0)
            )
        return Workload(task, "/v1/forecast", good, FORECAST_BAD)
    raise SystemExit(f"--run {run}: task {task!r} has no load workload here")


def _train(folder: Path) -> Path:
    _reviews(folder / "reviews.csv")
    out = folder / "run"
    args = ["model.embedding_dim=64", "model.hidden_size=128", "data.min_freq=1", "train.epochs=2"]
    args += ["train.progress=false"]
    cmd = [sys.executable, "-m", "rnnlab", "train", "sentiment", "--data", str(folder / "reviews.csv")]
    subprocess.run([*cmd, "--out", str(out), *args], check=True, capture_output=True)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and of its child processes (the workers of ``--workers N``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.is_file() else []
    total = 0.0
    for one in (pid, *kids):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


class Server:
    def __init__(self, run: Path, *args: str) -> None:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "rnnlab", "serve", str(run), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become healthy")

    def stop(self) -> tuple[int, str]:
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(60)
        return code, self.proc.stderr.read()


def _read_stream(r: http.client.HTTPResponse, start: float) -> tuple[int, float | None]:
    """Characters of a server-sent event stream up to its ``event: done``, and when the first came."""
    chars, first = 0, None
    while True:
        line = r.readline()
        if not line:
            return -1, first  # ended without its done event
        if line.startswith(b"data: "):
            text = json.loads(line[6:]).get("text")
            if text is not None:
                chars += len(text)
                first = first or time.perf_counter() - start
        elif line.startswith(b"event: done"):
            r.read()
            return chars, first


def _round(port: int, work: Workload | list[str], clients: int, requests: int, bad_every: int) -> dict:
    """One round: ``requests`` requests (every ``bad_every``-th bad) shared out over ``clients`` threads."""
    if not isinstance(work, Workload):  # a list of texts: the sentiment endpoint
        work = texts_workload(list(work))
    plan = [(i % bad_every == bad_every - 1, i) for i in range(requests)]
    lock = threading.Lock()
    stats = {"lat": [], "first": [], "good_errors": 0, "bad_not_4xx": 0, "dropped": 0, "bad": 0}

    def client(share):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for bad, i in share:
            body, want = work.bad[i // bad_every % len(work.bad)] if bad else work.good[i % len(work.good)]
            start, first = time.perf_counter(), None
            try:
                conn.request("POST", work.path, body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                status = r.status
                ok = status == 200
                if not bad and want and ok:  # a stream: every character it asked for, then done
                    chars, first = _read_stream(r, start)
                    ok = chars == want
                else:
                    ok = bool(json.loads(r.read())) and (ok or bad)  # an error's JSON too
            except (OSError, http.client.HTTPException, ValueError):
                with lock:
                    stats["dropped"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            elapsed = time.perf_counter() - start
            with lock:
                if bad:
                    stats["bad"] += 1
                    stats["bad_not_4xx"] += not (400 <= status < 500 and status == want)
                else:
                    stats["lat"].append(elapsed)
                    stats["good_errors"] += not ok
                    if first is not None:
                        stats["first"].append(first)
        conn.close()

    threads = [threading.Thread(target=client, args=(plan[c::clients],)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat, first = sorted(stats.pop("lat")), sorted(stats.pop("first"))

    def pct(xs, q):
        return 1000 * xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    return {
        **stats,
        "good": len(lat),
        "wall_s": wall,
        "rps": requests / wall,
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "latencies_ms": [1000 * x for x in lat],
        "first_p50_ms": pct(first, 0.5),
        "first_p99_ms": pct(first, 0.99),
    }


CONFIGS = {
    "micro": ("micro-batching (max batch 32, wait 5 ms)", []),
    "single": ("batch size 1", ["--max-batch-size", "1"]),
    "workers": ("micro-batching, --workers 2", ["--workers", "2"]),
}


def measure(
    run: Path, work: Workload, clients: int, requests: int, bad_every: int, configs, rounds: int = 3
) -> dict:
    """Every server config of ``configs`` on one run: a warm-up round, then ``rounds`` equal rounds, and
    the server's memory after each."""
    rows, memory = {}, {}
    for name in configs:
        label, args = CONFIGS[name]
        server = Server(run, *args)
        try:
            warm = requests if name == "micro" else max(requests // 4, 20)
            _round(server.port, work, clients, warm, bad_every)  # warm-up, not reported
            rss = [_rss_mib(server.proc.pid)]
            for k in range(rounds):
                rows[(name, k)] = _round(server.port, work, clients, requests, bad_every)
                rss.append(_rss_mib(server.proc.pid))
        finally:
            code, log = server.stop()
        memory[name] = (rss, code, "Traceback" in log)
    return {"rows": rows, "memory": memory}


def report(task: str, run: Path, result: dict, clients: int, requests: int) -> tuple[list[str], list[str]]:
    """The run's section of the report, and its rows of the targets table."""
    rows, memory = result["rows"], result["memory"]
    lines = [
        f"## {task}: `{run.name}`",
        "",
        f"{clients} clients x {requests} requests per round.",
        "",
        "| server | good | errors on good | bad | bad without its 4xx | dropped | req/s | p50 ms | p99 ms | "
        "first char p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (name, k), r in rows.items():
        first = (
            "-"
            if r["first_p50_ms"] != r["first_p50_ms"]
            else f"{r['first_p50_ms']:.1f} / {r['first_p99_ms']:.1f}"
        )
        lines.append(
            f"| {CONFIGS[name][0]}, round {k + 1} | {r['good']} | {r['good_errors']} | {r['bad']} | "
            f"{r['bad_not_4xx']} | {r['dropped']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{first} |"
        )
    lines += ["", "| server | RSS after warm-up, then each round (MiB) | exit after SIGTERM | traceback |"]
    lines += ["|---|---|---:|---|"]
    for name, (rss, code, tb) in memory.items():
        lines.append(
            f"| {CONFIGS[name][0]} | {' -> '.join(f'{m:.1f}' for m in rss)} | {code} | "
            f"{'yes' if tb else 'no'} |"
        )
    targets = []

    def pooled(name: str) -> tuple[float, float] | None:
        """The p99 latency of every good request of a config's rounds together, and its mean req/s."""
        mine = [r for (n, _), r in rows.items() if n == name]
        if not mine:
            return None
        lat = sorted(x for r in mine for x in r["latencies_ms"])
        return lat[min(len(lat) - 1, int(0.99 * len(lat)))], sum(r["rps"] for r in mine) / len(mine)

    micro, single, workers = pooled("micro"), pooled("single"), pooled("workers")
    if micro and single:
        targets.append(
            f"| {task} | micro-batching p99 <= batch size 1's (all rounds pooled) | {micro[0]:.1f} vs "
            f"{single[0]:.1f} ms | {'met' if micro[0] <= single[0] else 'not met'} |"
        )
        targets.append(
            f"| {task} | micro-batching throughput >= 1.5x batch size 1 (mean of rounds) | "
            f"{micro[1] / single[1]:.2f}x ({micro[1]:.1f} vs {single[1]:.1f} req/s) | "
            f"{'met' if micro[1] >= 1.5 * single[1] else 'not met'} |"
        )
    if micro and workers:
        targets.append(
            f"| {task} | `--workers 2` throughput >= 1.5x one worker (mean of rounds) | "
            f"{workers[1] / micro[1]:.2f}x ({workers[1]:.1f} vs {micro[1]:.1f} req/s) | "
            f"{'met' if workers[1] >= 1.5 * micro[1] else 'not met'} |"
        )
    errors = sum(r["good_errors"] + r["bad_not_4xx"] + r["dropped"] for r in rows.values())
    bad_exit = sum(code != 0 or tb for _, code, tb in memory.values())
    rss = memory.get("micro", ([0.0],))[0]
    growth = rss[-1] - max(rss[:-1]) if len(rss) > 1 else 0.0
    targets.append(
        f"| {task} | 0 errors on good requests, 0 wrong answers to bad ones, 0 dropped, clean exits | "
        f"{errors} faults, {bad_exit} unclean exits | {'met' if errors == bad_exit == 0 else 'not met'} |"
    )
    targets.append(
        f"| {task} | no memory growth over equal rounds (the last RSS at most 1 % above the highest "
        f"earlier one) | {' -> '.join(f'{m:.1f}' for m in rss)} MiB ({growth:+.1f}) | "
        f"{'not met' if growth > 0.01 * max(rss[:-1] or [0.0]) else 'met'} |"
    )
    return lines, targets


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, action="append", help="a trained run folder (repeat for several)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, help="requests per round (default: by task, see ROUND)")
    p.add_argument("--bad-every", type=int, default=10, help="every N-th request is bad")
    p.add_argument("--rounds", type=int, default=3, help="equal rounds per server, after a warm-up")
    p.add_argument(
        "--configs", default="micro,single,workers", help="servers to measure, of " + ",".join(CONFIGS)
    )
    p.add_argument("--quick", action="store_true", help="8 clients x 200 requests (a smoke run)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.md")
    a = p.parse_args(argv)
    configs = [c for c in a.configs.split(",") if c]
    if unknown := [c for c in configs if c not in CONFIGS]:
        p.error(f"--configs: expected names of {', '.join(CONFIGS)}, received {', '.join(unknown)}")
    if a.quick:
        a.clients, a.requests = 8, a.requests or 200
    sections, targets, ok = [], [], True
    with tempfile.TemporaryDirectory() as tmp:
        runs = a.run or [_train(Path(tmp))]
        for run in runs:
            work = run_workload(run) if a.run else texts_workload(_reviews(Path(tmp) / "texts.csv", seed=1))
            requests = a.requests or ROUND[work.task]
            result = measure(run, work, a.clients, requests, a.bad_every, configs, a.rounds)
            lines, rows = report(work.task, run, result, a.clients, requests)
            sections += ["", *lines]
            targets += rows
            ok = ok and all(
                r["good_errors"] == r["bad_not_4xx"] == r["dropped"] == 0 for r in result["rows"].values()
            )
            ok = ok and all(code == 0 and not tb for _, code, tb in result["memory"].values())
    lines = [
        "# rnnlab serve under load (loopback)",
        "",
        f"`python benchmarks/serve_load.py{' --quick' if a.quick else ''}"
        + "".join(f" --run {r.name}" for r in a.run or [])
        + f"`: {a.clients} concurrent keep-alive clients, 1 request in {a.bad_every} bad, "
        f"{os.cpu_count()} CPUs shared by the clients and the server.",
        "",
        "| task | target | measured | status |",
        "|---|---|---|---|",
        *targets,
        *sections,
    ]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
