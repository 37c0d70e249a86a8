#!/usr/bin/env python3
"""Checks a transitions file of the throughput example against the case lifecycle.

Usage: python3 .ci/transitions_check.py TRANSITIONS.csv RESULT.json

TRANSITIONS.csv is written by `throughput --transitions FILE` (header
`case,at,from,to,actor,worker`); RESULT.json is the example's JSON line. The legal moves
below are written here from the lifecycle in DESIGN (not read from the engine): every case
starts `reported`; each row's `from` is the case's state after its previous row; events
that keep the state (a reminder, an escalation, a re-dispatch) repeat it. Times never go
backwards within a case. The last state of every case, counted, must equal `by_state`.
Exits 1 on any failure.
"""

import csv
import json
import sys
from collections import Counter

LEGAL = {
    "reported": {"registered", "rejected", "referred", "merged"},
    "registered": {"dispatched", "queued", "ruling", "referred", "accepted"},
    "queued": {"dispatched", "queued", "ruling", "referred"},
    "dispatched": {"accepted", "dispatched", "queued", "ruling"},
    "accepted": {"resolved", "dispatched", "queued", "ruling"},
    "resolved": {"verified", "reopened"},
    "verified": {"closed", "reopened"},
    "reopened": {"dispatched", "queued", "ruling", "referred"},
    "ruling": {"dispatched"},
    "merged": {"closed"},
    "closed": set(),
    "rejected": set(),
    "referred": set(),
}
# States in which an event may leave the state as it is (reminders, escalations).
REPEATABLE = {"registered", "queued", "dispatched", "accepted", "reopened", "ruling"}


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    last, last_at = {}, {}
    failures = []
    rows = 0
    with open(argv[1], newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["case", "at", "from", "to", "actor", "worker"]:
            failures.append(f"header {reader.fieldnames}")
        for r in reader:
            rows += 1
            c, frm, to = r["case"], r["from"], r["to"]
            at = int(r["at"]) if r["at"].isdigit() else None
            if at is None:
                failures.append(f"row {rows}: time {r['at']!r}")
            elif c in last_at and at < last_at[c]:
                failures.append(f"row {rows}: case {c} goes back in time")
            if frm == "":
                if c in last or to != "reported":
                    failures.append(f"row {rows}: case {c} starts again or not as reported")
            elif last.get(c) != frm:
                failures.append(f"row {rows}: case {c} from {frm!r}, but it was {last.get(c)!r}")
            elif to not in LEGAL.get(frm, set()) and not (frm == to and frm in REPEATABLE):
                failures.append(f"row {rows}: case {c} {frm} -> {to} is not a legal move")
            last[c] = to
            if at is not None:
                last_at[c] = at
    by_state = json.load(open(argv[2], encoding="utf-8"))["by_state"]
    counts = Counter(last.values())
    for state in set(by_state) | set(counts):
        if counts.get(state, 0) != by_state.get(state, 0):
            failures.append(f"state {state}: {counts.get(state, 0)} cases end there, by_state says {by_state.get(state, 0)}")
    cases = len(last)
    failed = len({f for f in failures})
    print(f"transitions_check: {rows} rows, {cases} cases")
    for f in failures[:20]:
        print("  " + f)
    print(f"{cases - min(cases, failed)} passed, {failed} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
