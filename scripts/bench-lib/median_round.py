"""Summarizes rounds of dms-bench (or grpc-peer) records: the round with the median p50.

    python3 median_round.py RESULTS_DIR ROUNDS PREFIX:NAME ...

For each PREFIX:NAME, reads PREFIX-1.json .. PREFIX-ROUNDS.json and writes NAME.json:
the median round's record, with every round's p50 (in the order run) as
`rounds_p50_us`. A prefix whose rounds are not all there is skipped (a peer not run).
"""

import json
import os
import sys


def main():
    directory, rounds = sys.argv[1], int(sys.argv[2])
    for pair in sys.argv[3:]:
        prefix, name = pair.split(":")
        paths = [os.path.join(directory, "%s-%d.json" % (prefix, r)) for r in range(1, rounds + 1)]
        if not all(os.path.exists(path) for path in paths):
            continue
        records = [json.load(open(path)) for path in paths]
        median = sorted(records, key=lambda record: record["p50_us"])[rounds // 2]
        median["rounds_p50_us"] = [record["p50_us"] for record in records]
        json.dump(median, open(os.path.join(directory, name + ".json"), "w"))


if __name__ == "__main__":
    main()
