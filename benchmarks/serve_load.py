"""Load and faults for ``rnnlab serve``, on the loopback only.

50 concurrent clients (threads, one keep-alive connection each) send 2,000 ``/v1/predict`` requests per
round, a tenth of them bad (malformed JSON, non-UTF-8 bytes, wrong types, an empty list, an empty text, too
many texts, a text too long, a body over the size limit). Checked: 0 errors on good requests, a 4xx on every
bad one, no dropped connection; reported: throughput, p50/p99 latency of the good requests, resident memory
of the server after a warm-up and after each of two equal rounds, and micro-batching's throughput gain
over a server with ``--max-batch-size 1``. Writes a Markdown table (``--out``).

    python benchmarks/serve_load.py [--run RUN] [--clients 50] [--requests 2000] [--workers 2] [--quick]

``--workers N`` adds a round of ``rnnlab serve --workers N`` (micro-batching in each worker) and reports its
throughput against one worker's (resident memory: the parent and its workers together).

Without ``--run`` it trains a small sentiment run on synthetic reviews first (about ten seconds).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = [
    (b'{"texts": ["unclosed', 400),
    (b'{"texts": ["\xff\xfe bad bytes"]}', 400),
    (b'{"texts": "not a list"}', 422),
    (b'{"texts": []}', 422),
    (b'{"texts": ["   "]}', 422),
    (json.dumps({"texts": ["好"] * 300}).encode(), 413),  # over max_texts (256)
    (json.dumps({"texts": ["长" * 10_001]}).encode(), 413),  # over max_text_chars
    (b'{"texts": ["' + b"a" * (1 << 20) + b'"]}', 413),  # over max_body_bytes (1 MiB)
]


def _reviews(path: Path, n: int = 400, seed: int = 0) -> list[str]:
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


def _round(port: int, texts: list[str], clients: int, requests: int, bad_every: int) -> dict:
    plan = [(i % bad_every == bad_every - 1, i) for i in range(requests)]
    lock, stats = threading.Lock(), {"lat": [], "good_errors": 0, "bad_not_4xx": 0, "dropped": 0, "bad": 0}

    def client(share):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for bad, i in share:
            body, want = (
                BAD[i // bad_every % len(BAD)]
                if bad
                else (json.dumps({"texts": [texts[i % len(texts)]]}).encode(), 200)
            )
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                with lock:
                    stats["dropped"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            elapsed = time.perf_counter() - start
            with lock:
                if bad:
                    stats["bad"] += 1
                    stats["bad_not_4xx"] += not (400 <= status < 500 and status == want)
                else:
                    stats["lat"].append(elapsed)
                    stats["good_errors"] += status != 200
        conn.close()

    threads = [threading.Thread(target=client, args=(plan[c::clients],)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(stats.pop("lat"))
    return {
        **stats,
        "good": len(lat),
        "wall_s": wall,
        "rps": requests / wall,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a sentiment run folder (default: train a small one)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=2000, help="requests per round")
    p.add_argument("--bad-every", type=int, default=10, help="every N-th request is bad")
    p.add_argument("--workers", type=int, default=0, help="also a round with --workers N (N >= 2)")
    p.add_argument("--quick", action="store_true", help="8 clients x 200 requests (a smoke run)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.md")
    a = p.parse_args(argv)
    if a.quick:
        a.clients, a.requests = 8, 200
    with tempfile.TemporaryDirectory() as tmp:
        run = a.run or _train(Path(tmp))
        texts = _reviews(Path(tmp) / "texts.csv", seed=1)
        rows, memory = [], {}
        configs = [
            ("micro-batching (max batch 32, wait 5 ms)", []),
            ("batch size 1", ["--max-batch-size", "1"]),
        ]
        if a.workers > 1:
            configs.append((f"micro-batching, --workers {a.workers}", ["--workers", str(a.workers)]))
        for label, args in configs:
            server = Server(run, *args)
            _round(server.port, texts, a.clients, max(a.requests // 10, 20), a.bad_every)  # warm-up
            rss = [_rss_mib(server.proc.pid)]
            for k in range(2 if not rows else 1):
                result = _round(server.port, texts, a.clients, a.requests, a.bad_every)
                rss.append(_rss_mib(server.proc.pid))
                rows.append((f"{label}, round {k + 1}", result))
            code, log = server.stop()
            memory[label] = (rss, code, "Traceback" in log)
    batched = sum(r["rps"] for _, r in rows[:2]) / 2  # the mean of the two micro-batching rounds
    single = rows[2][1]["rps"]
    lines = [
        "# rnnlab serve under load (loopback)",
        "",
        f"{a.clients} concurrent clients x {a.requests} requests per round, 1 in {a.bad_every} bad; "
        f"`python benchmarks/serve_load.py{' --quick' if a.quick else ''}`; {os.cpu_count()} CPUs, "
        "clients and server on the same machine.",
        "",
        "| server | good | errors on good | bad | bad without its 4xx | dropped | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['good']} | {r['good_errors']} | {r['bad']} | {r['bad_not_4xx']} | "
            f"{r['dropped']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    lines += [
        "",
        "| server | RSS after warm-up, then each round (MiB) | exit after SIGTERM | traceback |",
        "|---|---|---:|---|",
    ]
    for label, (rss, code, tb) in memory.items():
        lines.append(
            f"| {label} | {' -> '.join(f'{m:.1f}' for m in rss)} | {code} | {'yes' if tb else 'no'} |"
        )
    lines += [
        "",
        f"Micro-batching's throughput gain over batch size 1 (mean of its two rounds): "
        f"**{batched / single:.2f}x**.",
    ]
    if a.workers > 1:
        lines.append(
            f"`--workers {a.workers}` against one worker (both micro-batching): "
            f"**{rows[3][1]['rps'] / batched:.2f}x**."
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    ok = all(r["good_errors"] == 0 and r["bad_not_4xx"] == 0 and r["dropped"] == 0 for _, r in rows)
    return 0 if ok and all(code == 0 for _, code, _ in memory.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
