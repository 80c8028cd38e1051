#!/usr/bin/env bash
# The mail queue's benchmark (MAIL-2), called by scripts/bench; alone:
#   scripts/bench-lib/mail.sh RESULTS-DIR [COUNT] [ROUNDS]
# (release builds of dms-settingsd and dms-bench in .build/release first).
#
# COUNT messages with a 100 KiB attachment queued through Mail/Enqueue and sent by the
# server's worker into Postfix's smtp-sink, timed from the first Enqueue to the last
# sent; against smtp-source sending the same count of a message of the same size (the
# MIME of a 100 KiB attachment, about 140 KB) over one SMTP session, as the worker
# uses one connection per account. Alternating rounds; the median round counts.
# Writes RESULTS-DIR/mail.json and RESULTS-DIR/smtp-source.json.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$root"
ensure_packages smtp-sink:postfix python3:python3
results=$1
count=${2:-2000}
rounds=${3:-3}
bin=.build/release
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

sink_port=$(free_port)
# -c: count; as root it needs -u; 1000: the listen backlog.
smtp-sink -u nobody 127.0.0.1:"$sink_port" 1000 >"$work/sink.log" 2>&1 &
pids+=("$!")
python3 - "$work/message.eml" <<'PY'
import base64, sys
data = bytes((i * 2654435761 >> 13) & 255 for i in range(100 * 1024))
att = base64.encodebytes(data).decode().replace("\n", "\r\n")
msg = ("From: dms@bench.example\r\nTo: recipient@bench.example\r\nSubject: Benchmark message\r\n"
       "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + base64.encodebytes(b"A message of the mail benchmark.").decode().replace("\n", "\r\n")
       + "--b\r\nContent-Type: application/octet-stream; name=\"attachment.bin\"\r\n"
       "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"attachment.bin\"\r\n\r\n"
       + att + "--b--\r\n")
open(sys.argv[1], "w", newline="").write(msg)
PY

printf 'a passphrase for load runs\n' >"$work/password"
$bin/dms-settingsd bootstrap-admin --login bench --data-directory "$work/data" --log-level warning \
  <"$work/password" >/dev/null
port=$(free_port)
$bin/dms-settingsd --port "$port" --data-directory "$work/data" --settings-multi-company true --log-level warning \
  --mail-batch-size 64 >"$work/server.log" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$port" 2>/dev/null && break
  sleep 0.05
done

for round in $(seq "$rounds"); do
  echo "== mail queue, round $round: $count messages with a 100 KiB attachment into smtp-sink" >&2
  $bin/dms-bench mail --server "127.0.0.1:$port" --login bench --password-file "$work/password" \
    --smtp "127.0.0.1:$sink_port" --count "$count" --label "mail-$round" | tee "$results/mail-$round.json" >&2
  echo "== smtp-source -s 1 -m $count, round $round" >&2
  python3 - "$results/smtp-source-$round.json" "$count" "$work/message.eml" "$sink_port" <<'PY'
import json, os, subprocess, sys, time
out, count, message, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.monotonic()
subprocess.run(["smtp-source", "-s", "1", "-m", str(count), "-F", message, "-f", "dms@bench.example",
                "-t", "recipient@bench.example", "127.0.0.1:" + port], check=True)
seconds = time.monotonic() - start
record = {"label": "smtp-source", "messages": count, "seconds": seconds, "messages_per_second": count / seconds,
          "message_bytes": os.path.getsize(message)}
json.dump(record, open(out, "w"))
print(json.dumps(record), file=sys.stderr)
PY
done
python3 - "$results" "$rounds" <<'PY'
import json, os, statistics, sys
results, rounds = sys.argv[1], int(sys.argv[2])
for name in ("mail", "smtp-source"):
    records = [json.load(open(os.path.join(results, f"{name}-{r}.json"))) for r in range(1, rounds + 1)]
    rates = [r["messages_per_second"] for r in records]
    median = sorted(records, key=lambda r: r["messages_per_second"])[len(records) // 2]
    median["rounds_messages_per_second"] = rates
    json.dump(median, open(os.path.join(results, f"{name}.json"), "w"))
PY
