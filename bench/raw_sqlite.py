"""The reference of issue 23: single-row durable commits per second through Python's sqlite3.

    python3 bench/raw_sqlite.py --path target/bench/raw.db --clients 32 --seconds 10

Each of `--clients` threads opens its own connection (WAL, synchronous=FULL, as the server's)
and repeats BEGIN IMMEDIATE, one INSERT, COMMIT for `--seconds`. SQLite has one writer at a
time, so this is the database's own durable single-row commit rate on this machine, with no
server in the way. Prints JSON: commits, seconds, p50_ms, p99_ms.
"""

import argparse
import json
import os
import sqlite3
import threading
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(args.path + suffix):
            os.remove(args.path + suffix)
    setup = sqlite3.connect(args.path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(
        "CREATE TABLE raw (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, created_at INTEGER NOT NULL)"
    )
    setup.close()
    latencies = [[] for _ in range(args.clients)]
    stop = time.monotonic() + args.seconds

    def client(i):
        conn = sqlite3.connect(args.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        mine = latencies[i]
        while time.monotonic() < stop:
            started = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO raw (payload, created_at) VALUES (?, ?)",
                ('{"productType":"murabaha"}', int(time.time() * 1000)),
            )
            conn.execute("COMMIT")
            mine.append(time.monotonic() - started)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    every = sorted(x for mine in latencies for x in mine)
    at = lambda p: 1000 * every[round((len(every) - 1) * p)] if every else 0.0
    print(json.dumps({"commits": len(every), "seconds": seconds, "p50_ms": at(0.5), "p99_ms": at(0.99)}))


if __name__ == "__main__":
    main()
