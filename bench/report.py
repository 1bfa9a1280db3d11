"""The table and the plot of `bench/run`, from the JSON files examples/bench_run.rs writes.

    python bench/report.py --plot docs/img/bench-latency.png target/bench/sqlite.json target/bench/postgres.json

Prints Markdown: per database, every phase with its throughput, p50/p99 and the server's
peak RSS, and its requests per second as a share of the raw database baseline and of the bare
HTTP handler; then the sweep of offered journey creates. Draws p50 and p99 against offered
load, one line per database and percentile.
"""

import argparse
import json
import os

NAMES = {"sqlite": "SQLite (WAL, synchronous=FULL)", "postgres": "PostgreSQL"}


def number(x, digits=0):
    return f"{x:,.{digits}f}"


# Issue 23's targets for journey creates: a share of the reference, and p99.
TARGETS = {"sqlite": 1.00, "postgres": 0.60}
TARGET_P99_MS = 25.0


def table(r):
    db = r["database_baseline"]
    http = r["http_baseline"]
    ref = r.get("reference") or {}
    print(f"### {NAMES.get(r['database'], r['database'])}")
    print()
    print(
        f"{r['clients']} clients, {r['seconds']} s per phase, {r['cores']} cores shared by "
        f"the server, the database and the load. Idle RSS of the server: "
        f"**{r['idle_rss_mb']:.1f} MB**."
    )
    print()
    print(
        "| phase | throughput | requests/s | p50 / p99 ms | peak RSS | "
        "requests vs reference | requests vs DB baseline | requests vs bare HTTP |"
    )
    print("|---|---|---|---|---|---|---|---|")
    share = lambda row, base: (
        f"{100 * row['requests_per_s'] / base['requests_per_s']:.0f}%"
        if base.get("requests_per_s")
        else "-"
    )
    # A phase `--phases` left out measured nothing and is not shown.
    rows = [x for x in [ref, db, http] + r["scenarios"] if x.get("requests_per_s")]
    for row in rows:
        rss = f"{row['peak_rss_mb']:.1f} MB" if row["peak_rss_mb"] else "-"
        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        # pgbench reports an average latency, no percentile: shown in the p50 place.
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] else "-"
        print(
            f"| {row['name']} | {number(row['ops_per_s'])} {row['unit']}/s{errors} "
            f"| {number(row['requests_per_s'])} "
            f"| {row['p50_ms']:.1f} / {p99} | {rss} "
            f"| {share(row, ref)} | {share(row, db)} | {share(row, http)} |"
        )
    print()
    create = next((s for s in r["scenarios"] if s["name"] == "journey create"), None)
    target = TARGETS.get(r["database"])
    if create and ref.get("requests_per_s") and target:
        reached = create["requests_per_s"] / ref["requests_per_s"]
        print(
            f"Issue 23's target for journey creates: at least {100 * target:.0f}% of the reference "
            f"and p99 under {TARGET_P99_MS:.0f} ms; measured {100 * reached:.0f}% and "
            f"{create['p99_ms']:.1f} ms: **{'met' if reached >= target and create['p99_ms'] < TARGET_P99_MS else 'not met'}**."
        )
        print()


def sweep_table(results):
    print("### Journey creates: latency against offered load (open loop)")
    print()
    head = "| offered /s |" + "".join(
        f" {r['database']} achieved /s | {r['database']} p50 / p99 ms |" for r in results
    )
    print(head)
    print("|---|" + "---|---|" * len(results))
    rates = sorted({p["offered_per_s"] for r in results for p in r["sweep"]})
    for rate in rates:
        cells = []
        for r in results:
            p = next((p for p in r["sweep"] if p["offered_per_s"] == rate), None)
            if p is None:
                cells += ["-", "-"]
                continue
            errors = f" ({p['errors']} errors)" if p["errors"] else ""
            cells += [f"{number(p['achieved_per_s'])}{errors}", f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f}"]
        print(f"| {number(rate)} | " + " | ".join(cells) + " |")
    print()


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    colors = {"sqlite": "tab:blue", "postgres": "tab:orange"}
    for r in results:
        xs = [p["offered_per_s"] for p in r["sweep"]]
        color = colors.get(r["database"])
        name = NAMES.get(r["database"], r["database"])
        ax.plot(xs, [p["p50_ms"] for p in r["sweep"]], "o-", color=color, label=f"{name} p50")
        ax.plot(xs, [p["p99_ms"] for p in r["sweep"]], "s--", color=color, label=f"{name} p99")
    ax.set_yscale("log")
    ax.set_xlabel("offered journey creates per second (open loop)")
    ax.set_ylabel("latency from due time, ms (log)")
    ax.set_title("Omnirail: journey create latency against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plot", help="where to write the PNG")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    results = []
    for f in args.files:
        with open(f) as fh:
            results.append(json.load(fh))
    for r in results:
        table(r)
    sweep_table(results)
    if args.plot:
        plot(results, args.plot)
        print(f"![latency against offered load]({os.path.relpath(args.plot, 'docs')})")


if __name__ == "__main__":
    main()
