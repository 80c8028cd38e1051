"""Rewrites the results table of docs/PERFORMANCE.md from one scripts/bench run.

    python3 write_performance.py RESULTS_DIR docs/PERFORMANCE.md

RESULTS_DIR holds the JSON records the run wrote (ours, grpc-swift-2's, Redis's CSV,
memory, CPU) and machine.json. Only the part between the BEGIN/END markers changes.
"""

import csv
import glob
import json
import os
import sys

BEGIN = "<!-- BEGIN scripts/bench results -->"
END = "<!-- END scripts/bench results -->"


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def redis(directory, name):
    """{test: {rps, p50_us}} from a redis-benchmark --csv file."""
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            rows[row["test"]] = {"rps": float(row["rps"]), "p50_us": float(row["p50_latency_ms"]) * 1000}
    return rows


def fmt_rate(value):
    return "—" if value is None else "{:,.0f}".format(value)


def fmt_us(value):
    return "—" if value is None else "{:,.1f}".format(value)


def ratio(ours, theirs):
    if ours is None or theirs in (None, 0):
        return "—"
    return "{:.2f}×".format(ours / theirs)


def main():
    directory, document = sys.argv[1], sys.argv[2]
    machine = load(directory, "machine.json") or {}
    ours = {os.path.basename(p)[:-5]: json.load(open(p)) for p in glob.glob(os.path.join(directory, "W*.json"))}
    # The W1 and W5 rounds (w1-*, w5-*) are summarized in W1.json, W5-10.json and
    # W5-10000.json: each the round with the median p50, with every round's p50.
    # (grpc-w1-* are the W1 rounds, summarized in grpc-W1.json.)
    grpc = {os.path.basename(p)[5:-5]: json.load(open(p)) for p in glob.glob(os.path.join(directory, "grpc-W*.json"))}
    # GET -c 1: the median round of those run alternating with W1.
    r1 = {**redis(directory, "redis-c1-ping.csv"), **redis(directory, "redis-c1-get.csv")}
    r1rounds = load(directory, "redis-c1-get-rounds.json")
    r64 = redis(directory, "redis-c64.csv")
    rp = redis(directory, "redis-c50-P16.csv")
    memory = load(directory, "memory.json") or {}
    cpu = load(directory, "cpu.json") or {}
    noread = load(directory, "noread.json") or {}
    pgbench = load(directory, "pgbench.json") or {}
    mail = load(directory, "mail.json") or {}
    source = load(directory, "smtp-source.json") or {}

    def o(name, key):
        return ours.get(name, {}).get(key)

    def g(name, key):
        return grpc.get(name, {}).get(key)

    # (workload, shape, our record, grpc-swift-2's record)
    rows = [
        ("W1", "Health/Check, 1 connection × 1 in flight", "W1", "W1"),
        ("W2", "Health/Check, 1 connection × 64 in flight", "W2", "W2"),
        ("W3", "Health/Check, 64 connections × 1 in flight", "W3", "W3"),
        ("W3", "the same, each call carrying a session token (checked)", "W3-session", None),
        ("W4", "Health/Check, 50 connections × 16 in flight, pipelined in batches of 16 (`unaryBatch`)", "W4", "W4"),
        ("W4", "Health/Check, 50 connections × 16 in flight, 16 tasks each calling on its own", "W4-tasks", "W4"),
        ("W5", "Companies/Get, 10 companies stored, 1 × 1", "W5-10", None),
        ("W5", "Companies/Get, 10,000 companies stored, 1 × 1", "W5-10000", None),
        ("W6", "Companies/Update (durable commit, audit and change-feed rows), 1 × 16", "W6", None),
        ("W6", "the same, built without audit and change-feed rows (reference)", "W6-nojournal", None),
        ("W5", "Companies/Get, 10 companies, on PostgreSQL, 1 × 1", "W5-pg", None),
        ("W5", "the same on SQLite, in alternation with it", "W5-sqlite", None),
        ("W6", "Companies/Update on PostgreSQL (durable commit, audit and change-feed rows), 1 × 16", "W6-pg", None),
        ("W7", "Health/Check over TLS, 1 × 64", "W7", None),
    ]
    redis_peer = {
        "W1": ("GET -c 1", r1.get("GET")),
        "W2": ("GET -c 64", r64.get("GET")),
        "W3": ("GET -c 64", r64.get("GET")),
        "W4": ("GET -c 50 -P 16", rp.get("GET")),
    }
    lines = []
    idle = ", cpuidle governor " + machine["idle"] if machine.get("idle") else ""
    lines.append("Run of {} on {} ({} cores, {} memory{}); {} s per workload after a {} s warm-up.".format(
        machine.get("date", "?"), machine.get("host", "?"), machine.get("cores", "?"), machine.get("memory", "?"),
        idle, machine.get("duration", "?"), machine.get("warmup", "?")))
    lines.append("")
    lines.append("| workload | shape | calls/s | p50 µs | p99 µs | grpc-swift-2 calls/s | p50 µs | ratio calls/s | "
                 "ratio p50 | Redis | calls/s | p50 µs | ratio calls/s | ratio p50 |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for workload, shape, key, grpc_key in rows:
        peer, rdata = redis_peer.get(workload, ("", None))
        rrate = rdata["rps"] if rdata else None
        rp50 = rdata["p50_us"] if rdata else None
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            workload, shape, fmt_rate(o(key, "calls_per_second")), fmt_us(o(key, "p50_us")), fmt_us(o(key, "p99_us")),
            fmt_rate(g(grpc_key, "calls_per_second")), fmt_us(g(grpc_key, "p50_us")),
            ratio(o(key, "calls_per_second"), g(grpc_key, "calls_per_second")),
            ratio(o(key, "p50_us"), g(grpc_key, "p50_us")),
            peer or "—", fmt_rate(rrate), fmt_us(rp50),
            ratio(o(key, "calls_per_second"), rrate), ratio(o(key, "p50_us"), rp50)))
    if r1.get("PING_MBULK"):
        lines.append("")
        lines.append("Redis `PING_MBULK -c 1`: {} calls/s, p50 {} µs.".format(
            fmt_rate(r1["PING_MBULK"]["rps"]), fmt_us(r1["PING_MBULK"]["p50_us"])))
    if pgbench:
        lines.append("")
        lines.append("PostgreSQL {} `pgbench`, {} clients, one UPDATE per transaction (W6's peer): {} tps, "
                     "average latency {} ms; W6 ÷ pgbench {}.".format(
                         pgbench.get("version", ""), pgbench.get("clients", 16), fmt_rate(pgbench["tps"]),
                         pgbench.get("latency_avg_ms"), ratio(o("W6", "calls_per_second"), pgbench["tps"])))
        if o("W6-pg", "calls_per_second"):
            lines.append("W6 on PostgreSQL ÷ pgbench {}.".format(ratio(o("W6-pg", "calls_per_second"), pgbench["tps"])))
    if mail:
        lines.append("")
        lines.append("The mail queue (MAIL-2): {} messages with a {} KiB attachment queued through Mail/Enqueue and "
                     "sent by the worker into Postfix's smtp-sink over one reused connection: {} messages/s "
                     "(rounds {}); `smtp-source -s 1` with a message of the same size ({} bytes): {} messages/s "
                     "(rounds {}); ratio {}.".format(
                         mail.get("messages"), mail.get("attachment_kib"), fmt_rate(mail.get("messages_per_second")),
                         ", ".join("%.0f" % v for v in mail.get("rounds_messages_per_second", [])),
                         source.get("message_bytes"), fmt_rate(source.get("messages_per_second")),
                         ", ".join("%.0f" % v for v in source.get("rounds_messages_per_second", [])),
                         ratio(mail.get("messages_per_second"), source.get("messages_per_second"))))
    lines.append("")
    lines.append("Ratios are ours ÷ the peer's: higher is better for calls/s, lower for latency.")
    lines.append("")
    lines.append("| target | this run | |")
    lines.append("|---|---:|---|")

    def target(name, value, goal, higher_is_better):
        if value is None:
            lines.append("| {} | — | not measured |".format(name))
            return
        met = value >= goal if higher_is_better else value <= goal
        # Three decimals: a ratio on its line must not print as the line itself.
        lines.append("| {} | {:.3f} | {} |".format(name, value, "met" if met else "**missed**"))

    def div(a, b):
        return None if a is None or b in (None, 0) else a / b

    target("W2 calls/s ≥ 5 × grpc-swift-2", div(o("W2", "calls_per_second"), g("W2", "calls_per_second")), 5, True)
    target("W1 p50 ≤ 0.1 × grpc-swift-2", div(o("W1", "p50_us"), g("W1", "p50_us")), 0.1, False)
    r1get = r1.get("GET")
    target("W1 p50 ≤ 1.5 × Redis GET -c 1", div(o("W1", "p50_us"), r1get and r1get["p50_us"]), 1.5, False)
    r64get = r64.get("GET")
    target("W3 calls/s ≥ 1.0 × Redis GET -c 64", div(o("W3", "calls_per_second"), r64get and r64get["rps"]), 1.0, True)
    target("W3 with a session token ≥ 0.9 × W3 without",
           div(o("W3-session", "calls_per_second"), o("W3", "calls_per_second")), 0.9, True)
    rpget = rp.get("GET")
    target("W4 calls/s ≥ 0.5 × Redis GET -c 50 -P 16", div(o("W4", "calls_per_second"), rpget and rpget["rps"]), 0.5, True)
    target("W5 p50, 10,000 ÷ 10 companies ≤ 1.1", div(o("W5-10000", "p50_us"), o("W5-10", "p50_us")), 1.1, False)
    target("W6 calls/s ≥ 1.0 × pgbench (16 clients, 1 UPDATE per transaction)",
           div(o("W6", "calls_per_second"), pgbench.get("tps")), 1.0, True)
    target("W6 with audit and change rows ≥ 0.8 × W6 without",
           div(o("W6", "calls_per_second"), o("W6-nojournal", "calls_per_second")), 0.8, True)
    target("W5 p50 on PostgreSQL ≤ 1.2 × on SQLite (alternating rounds)",
           div(o("W5-pg", "p50_us"), o("W5-sqlite", "p50_us")), 1.2, False)
    target("W6 on PostgreSQL calls/s ≥ 0.5 × pgbench (16 clients, 1 UPDATE per transaction)",
           div(o("W6-pg", "calls_per_second"), pgbench.get("tps")), 0.5, True)
    target("mail queue messages/s ≥ 0.5 × smtp-source (100 KiB attachment, connections reused)",
           div(mail.get("messages_per_second"), source.get("messages_per_second")), 0.5, True)
    if memory:
        target("RSS per idle connection ≤ 16 KiB (KiB)", memory["bytes_per_connection"] / 1024, 16, False)
    if noread:
        target("server RSS growth under a client that never reads ≤ 64 MiB (MiB)",
               noread["server_rss_growth_mib"], 64, False)

    def series(values):
        return ", ".join("%.1f" % v for v in values)

    w1rounds = o("W1", "rounds_p50_us")
    if w1rounds and r1rounds:
        grpc_rounds = g("W1", "rounds_p50_us")
        lines.append("")
        lines.append("W1 rounds, in the order run (the median counts), p50 µs: ours {}; Redis GET -c 1 {}{}.".format(
            series(w1rounds), series(r1rounds), "; grpc-swift-2 " + series(grpc_rounds) if grpc_rounds else ""))
    w6rounds = [ours.get(k, {}).get("rounds_calls_per_second") for k in ("W6", "W6-nojournal")]
    if all(w6rounds):
        lines.append("")
        lines.append("W6 rounds, calls/s: with audit and change rows {}; without {}.".format(
            ", ".join("{:,.0f}".format(v) for v in w6rounds[0]), ", ".join("{:,.0f}".format(v) for v in w6rounds[1])))
    w5rounds = [ours.get(k, {}).get("rounds_p50_us") for k in ("W5-10", "W5-10000")]
    if all(w5rounds):
        lines.append("")
        lines.append("W5 rounds, p50 µs: 10 companies {}; 10,000 companies {}.".format(
            series(w5rounds[0]), series(w5rounds[1])))
    commands = os.path.join(directory, "commands.txt")
    if os.path.exists(commands):
        counts, order = {}, []
        for command in open(commands).read().splitlines():
            if command not in counts:
                order.append(command)
            counts[command] = counts.get(command, 0) + 1
        lines.append("")
        lines.append("The commands of this run, in order (a repeated one once, with its count: the rounds "
                     "alternate; ports shown as PORT, data folders as DATA):")
        lines.append("")
        lines.append("```sh")
        for command in order:
            lines.append(command + ("   # × %d" % counts[command] if counts[command] > 1 else ""))
        lines.append("```")
    lines.append("")
    lines.append("| resource | value |")
    lines.append("|---|---:|")
    if memory:
        lines.append("| server RSS, idle | {:,} KiB |".format(memory["rss_idle_kib"]))
        lines.append("| server RSS, 1,000 idle connections | {:,} KiB |".format(memory["rss_1000_kib"]))
        lines.append("| server RSS, 10,000 idle connections | {:,} KiB |".format(memory["rss_10000_kib"]))
        lines.append("| RSS per idle connection | {:,} bytes |".format(memory["bytes_per_connection"]))
    if cpu:
        lines.append("| server CPU time per 100k calls (W2) | {:.3f} s |".format(cpu["cpu_seconds_per_100k"]))
    if noread:
        lines.append("| a client sending Health/Check without reading, {:g} s: calls it got in | {:,} |".format(
            noread["seconds"], noread["calls_sent"]))
        lines.append("| the same: server RSS before → highest | {:,} → {:,} KiB |".format(
            noread["server_rss_before_kib"], noread["server_rss_max_kib"]))
        lines.append("| the same: an ordinary client's calls meanwhile, failed, slowest | {:,}, {}, {} ms |".format(
            noread["ordinary_calls"], noread["ordinary_failures"], noread["ordinary_slowest_ms"]))

    text = open(document).read() if os.path.exists(document) else BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(document, "w") as f:
        f.write(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


if __name__ == "__main__":
    main()
