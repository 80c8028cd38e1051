"""Summarizes rounds of a measurement: the round with the median p50.

    python3 median_round.py RESULTS_DIR ROUNDS PREFIX:NAME ...

For each PREFIX:NAME, reads the rounds PREFIX-1 .. PREFIX-ROUNDS and writes NAME, the
median round's record:
- dms-bench (or grpc-peer) records, PREFIX-N.json: NAME.json, with every round's p50
  (in the order run) as `rounds_p50_us`;
- redis-benchmark's CSV, PREFIX-N.csv: NAME.csv (its header and the median round's
  row), and every round's p50 in µs in NAME-rounds.json.
A prefix whose rounds are not all there is skipped (a peer not run).
"""

import csv
import json
import os
import sys


def rounds_of(directory, prefix, rounds):
    """The rounds' records and their p50s in µs, or None when one is missing."""
    for extension in ("json", "csv"):
        paths = [os.path.join(directory, "%s-%d.%s" % (prefix, r, extension)) for r in range(1, rounds + 1)]
        if not all(os.path.exists(path) for path in paths):
            continue
        if extension == "json":
            records = [json.load(open(path)) for path in paths]
            return extension, records, [record["p50_us"] for record in records]
        records = [next(csv.DictReader(open(path))) for path in paths]
        return extension, records, [float(record["p50_latency_ms"]) * 1000 for record in records]
    return None


def main():
    directory, rounds = sys.argv[1], int(sys.argv[2])
    for pair in sys.argv[3:]:
        prefix, name = pair.split(":")
        found = rounds_of(directory, prefix, rounds)
        if found is None:
            continue
        extension, records, p50s = found
        median = records[sorted(range(rounds), key=lambda r: p50s[r])[rounds // 2]]
        if extension == "json":
            median["rounds_p50_us"] = p50s
            median["rounds_calls_per_second"] = [record.get("calls_per_second") for record in records]
            json.dump(median, open(os.path.join(directory, name + ".json"), "w"))
        else:
            json.dump(p50s, open(os.path.join(directory, name + "-rounds.json"), "w"))
            with open(os.path.join(directory, name + ".csv"), "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(median.keys()), quoting=csv.QUOTE_ALL)
                writer.writeheader()
                writer.writerow(median)


if __name__ == "__main__":
    main()
