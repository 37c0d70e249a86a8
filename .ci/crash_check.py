#!/usr/bin/env python3
"""Kills `throughput --journal` with SIGKILL mid-run, twice, and checks every recovery:
the counts add up and never shrink. Then appends garbage (cut off, with a report, and the
run goes on) and flips a byte before the tail (a non-zero exit naming the damage).

Usage: crash_check.py BINARY WORKDIR
"""
import json
import os
import signal
import subprocess
import sys
import time

binary, work = sys.argv[1], sys.argv[2]
journal = os.path.join(work, "journal")
city = ["--cells", "4000", "--workers", "800", "--segment-bytes", str(4 << 20)]


def fail(msg):
    print(f"crash_check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def journal_bytes():
    if not os.path.isdir(journal):
        return 0
    return sum(os.path.getsize(os.path.join(journal, f)) for f in os.listdir(journal))


def recover():
    run = subprocess.run([binary, "--cases", "0", "--journal", journal] + city,
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"recovery exited {run.returncode}: {run.stderr}")
    out = json.loads(run.stdout)
    total = sum(out["by_state"].values())
    if total != out["cases"] or out["recovered_cases"] != out["cases"]:
        fail(f"counts do not add up: {out['by_state']} against {out['cases']}")
    return out, run.stderr


previous = 0
for round_ in range(2):
    before = journal_bytes()
    child = subprocess.Popen([binary, "--cases", "3000000", "--journal", journal] + city,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Mid-run: once the run has journaled a good deal of new work, and well before its end.
    deadline = time.time() + 120
    while journal_bytes() < before + (24 << 20) + round_ * (8 << 20):
        if child.poll() is not None:
            fail(f"round {round_}: the run ended before it was killed")
        if time.time() > deadline:
            fail(f"round {round_}: the run journaled too little in 120 s")
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    out, _ = recover()
    recovered = out["recovered_cases"]
    if recovered <= previous:
        fail(f"round {round_}: {recovered} cases recovered after {previous}")
    print(f"round {round_}: killed mid-run, {recovered} cases recovered "
          f"in {out['recovery_seconds']:.2f} s, by_state adds up")
    previous = recovered

segments = sorted(f for f in os.listdir(journal) if f.endswith(".seg"))
with open(os.path.join(journal, segments[-1]), "ab") as f:
    f.write(b"\x17garbage after a crash\x00\x01\x02" * 7)
out, err = recover()
if out["recovered_cases"] != previous:
    fail(f"garbage changed the count: {out['recovered_cases']} against {previous}")
if "dropped" not in err and "cut" not in err:
    fail(f"the garbage was not reported: {err!r}")
print(f"garbage appended: cut off and reported ({err.strip()[:100]}...)")

segments = sorted(f for f in os.listdir(journal) if f.endswith(".seg"))
if len(segments) < 2:
    fail(f"expected several segments, found {segments}")
victim = os.path.join(journal, segments[0])
with open(victim, "r+b") as f:
    f.seek(os.path.getsize(victim) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x5A]))
run = subprocess.run([binary, "--cases", "0", "--journal", journal] + city,
                     capture_output=True, text=True)
if run.returncode == 0:
    fail("damage before the tail went unnoticed")
if segments[0] not in run.stderr:
    fail(f"the error does not name the segment: {run.stderr!r}")
print(f"a byte flipped before the tail: exit {run.returncode}, {run.stderr.strip()[:120]}")
print("crash_check: OK")
