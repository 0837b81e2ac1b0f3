"""Submission latency of POST /api/jobs with SQLite and with Cassandra, side by side.

Usage: ``.venv/bin/python bench/submit.py [--seconds 60] [--concurrency 50] [--backends sqlite,cassandra]``

For each backend it starts the app under gunicorn on 127.0.0.1 (scheduler off, so only the submission path is
measured: validation, create_job and the first event), runs ``--concurrency`` submitter threads for ``--seconds``,
and prints p50, p99, throughput and errors. Cassandra is a real single node started by scripts/cassandra_server.py
(its start time is printed too), or the node at ``--cassandra-url``. Client and server share the machine's cores,
so the figures are for comparing the backends on the same box, not absolute capacity.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.cassandra_server import DEFAULT_RUN_DIR, CassandraServer, fetch, free_port  # noqa: E402

log = logging.getLogger("bench.submit")


def start_app(database_url: str, workdir: Path, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """Start gunicorn serving the app on a free port; return the process and its base URL once it answers."""
    port = free_port()
    env = dict(
        os.environ, DATABASE_URL=database_url, SCHEDULER="off", SECRET_KEY="bench", LOG_LEVEL="WARNING",
        DATA_DIR=str(workdir / "data"), MAIL_OUTBOX=str(workdir / "outbox"), PUBLIC_URL=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--threads", str(threads), "--graceful-timeout", "10", "app:create_app()",
    ]  # fmt: skip
    out = open(workdir / "gunicorn.log", "ab")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {workdir / 'gunicorn.log'}")
        try:
            if requests.get(base + "/api/jobs/none", timeout=2).status_code in (404, 200):
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_process(proc)
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def hammer(base: str, seconds: float, concurrency: int) -> dict:
    """Run ``concurrency`` submitters for ``seconds``; return latencies (ms) and status counts."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def submitter(n: int) -> None:
        session = requests.Session()
        mine, counts = [], {}
        while time.monotonic() < stop_at:
            body = {"search-query": f"bench {n} {uuid.uuid4().hex[:6]}", "email": f"bench{n}@example.com",
                    "images": 5, "date": tomorrow, "time": "12:00", "timezone": "UTC"}  # fmt: skip
            began = time.perf_counter()
            try:
                code = str(session.post(base + "/api/jobs", json=body, timeout=30).status_code)
            except requests.RequestException as exc:
                code = type(exc).__name__
            mine.append((time.perf_counter() - began) * 1000)
            counts[code] = counts.get(code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, count in counts.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return {"latencies": latencies, "statuses": statuses, "seconds": seconds}


def summarize(name: str, result: dict) -> str:
    lat = sorted(result["latencies"])
    if not lat:
        return f"{name:<10} no requests completed"
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    ok = result["statuses"].get("201", 0)
    errors = {k: v for k, v in result["statuses"].items() if k != "201"}
    return (
        f"{name:<10} requests={len(lat):>6}  ok(201)={ok:>6}  {len(lat) / result['seconds']:7.1f} req/s"
        f"  p50={p50:7.1f} ms  p99={p99:8.1f} ms  max={lat[-1]:8.1f} ms  errors={errors or 0}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,cassandra")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: one per core here)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker")
    parser.add_argument("--cassandra-url", default=None, help="use this node instead of starting one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lines = [f"POST /api/jobs, {args.concurrency} concurrent submitters for {args.seconds:.0f} s, "
             f"gunicorn {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="aid-bench-") as tmp:
        workdir = Path(tmp)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            server = None
            try:
                if backend == "sqlite":
                    url = "sqlite:///" + str(workdir / "bench.sqlite3")
                elif backend == "cassandra":
                    if args.cassandra_url:
                        url = args.cassandra_url
                    else:
                        fetch()
                        server = CassandraServer(DEFAULT_RUN_DIR / f"bench-{os.getpid()}")
                        started = server.start()
                        lines.append(f"cassandra  node start to first CQL answer: {started:.1f} s")
                        url = server.url(f"bench_{uuid.uuid4().hex[:8]}")
                else:
                    raise SystemExit(f"unknown backend {backend!r}")
                proc, base = start_app(url, workdir, args.workers, args.threads)
                try:
                    log.info("%s: hammering %s for %.0f s", backend, base, args.seconds)
                    lines.append(summarize(backend, hammer(base, args.seconds, args.concurrency)))
                finally:
                    stop_process(proc)
            finally:
                if server is not None:
                    server.stop()
                    shutil.rmtree(server.run_dir, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
