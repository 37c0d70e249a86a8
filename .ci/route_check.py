#!/usr/bin/env python3
"""Checks the `route` example's decisions against the city it wrote, from outside.

    python3 .ci/route_check.py CITY.json GRID.geojson DECISIONS.csv [--max-returns N] [--self-test]

Everything is recomputed from the written config and grid alone (standard library only,
nothing shared with the crate):

- the holder of each row, by the duty-list rules: the cell's community holds the category
  if it is on the community list (after that community's override: `remove` taken off,
  `add` put on) and the category's level is not above community; else the community's
  street office if on the street list (after its override) and the level is not above
  street; else the department of the category (`departments`) in the street's district;
- assigned: the worker belongs to the holder (community-held: `unit` is that community;
  street-held: `unit` is an organ of that street or an agency it manages, whose `platform`
  is the category's platform);
- queued: at the holder's street office, at the organ that owns the category's platform
  (its `mandatory` organ for it); a department holder never queues;
- ruling: at the holder's street office's 综合治理中心 (`mandatory: governance_center`), and
  only after `--max-returns` returns (the router's default, 2);
- referred: the holder is a department that owns the category, in the cell's district;
- per case (the rows of one case come from its returns, in order): `returns` counts the
  distinct workers given the case before, and none of them is given it again.

Prints `N passed, M failed` and exits 1 on any failure. `--self-test` also plants wrong
rows (a worker of another community, another street's force, a queue or ruling at the
wrong organ, a wrong holder, a returner given the case again) and exits 1 unless every
one of them is caught.
"""

import csv
import json
import sys

LEVELS = {"grid": 0, "community": 1, "street": 2, "district": 3}
OWNER = {
    "party_building": "party_building_office",
    "public_service": "public_service_center",
    "governance": "governance_center",
    "law_enforcement": "law_enforcement_office",
}


class City:
    def __init__(self, config, grid):
        self.street_district = {s["id"]: s["district"] for s in config["streets"]}
        self.community_street = {m["id"]: m["street"] for m in config["communities"]}
        # organ id -> (street, platform, mandatory)
        self.organs = {}
        for s in config["streets"]:
            for o in s["organs"]:
                self.organs[o["id"]] = (s["id"], o.get("platform"), o.get("mandatory"))
        self.owners = {(s, m): o for o, (s, _, m) in self.organs.items() if m}
        self.agencies = {a["id"]: (a["street"], a.get("platform")) for a in config.get("agencies", [])}
        self.departments = {d["id"]: d["district"] for d in config.get("departments", [])}
        self.categories = {k["code"]: k for k in config["categories"]}
        self.workers = {w["id"]: w["unit"] for w in config.get("workers", [])}
        lists = config["duty_lists"]
        self.community_list = set(lists.get("community", []))
        self.street_list = set(lists.get("street", []))
        self.overrides = {}
        for o in lists.get("overrides", []):
            if o["unit"] in self.overrides:
                raise SystemExit(f"duty override for {o['unit']} given twice")
            self.overrides[o["unit"]] = (set(o.get("add", [])), set(o.get("remove", [])))
        self.cell_community = {}
        for f in grid["features"]:
            p = f["properties"]
            self.cell_community[str(p["id"])] = p["community"]

    def holds(self, unit, base, level, code):
        """Whether `unit` (a community or street office at `level`) holds category `code`."""
        if LEVELS[self.categories[code]["level"]] > LEVELS[level]:
            return False  # never pushed down, whatever a list says
        add, remove = self.overrides.get(unit, (set(), set()))
        return code in add or (code in base and code not in remove)

    def holder(self, cell, code):
        """(kind, id, street) of the unit that holds `code` in `cell`, or None."""
        community = self.cell_community[cell]
        street = self.community_street.get(community)
        if street is None or street not in self.street_district:
            return None
        if self.holds(community, self.community_list, "community", code):
            return ("community", community, street)
        if self.holds(street, self.street_list, "street", code):
            return ("street", street, street)
        district = self.street_district[street]
        owners = [d for d in self.categories[code].get("departments", []) if self.departments.get(d) == district]
        if len(owners) == 1:
            return ("department", owners[0], street)
        return None

    def platform_organ(self, street, platform):
        """The organ of `street` that owns `platform` (its mandatory organ for it)."""
        return self.owners.get((street, OWNER[platform]))

    def street_of_force(self, worker):
        """The street office of a worker of an organ or agency, else None."""
        unit = self.workers.get(worker)
        if unit in self.organs:
            return self.organs[unit][0]
        if unit in self.agencies:
            return self.agencies[unit][0]
        return None

    def in_force(self, worker, street, platform):
        unit = self.workers.get(worker)
        if unit in self.organs:
            s, p, _ = self.organs[unit]
            return s == street and p == platform
        if unit in self.agencies:
            s, p = self.agencies[unit]
            return s == street and p == platform
        return False


def check_row(city, row, max_returns):
    """The problems of one row on its own (empty when it is right)."""
    cell, code = row["cell"], row["category"]
    if cell not in city.cell_community:
        return [f"unknown cell {cell}"]
    if code not in city.categories:
        return [f"unknown category {code}"]
    held = city.holder(cell, code)
    if held is None:
        return ["no unit or department holds the category here"]
    kind, unit, street = held
    platform = city.categories[code]["platform"]
    bad = []
    if row["holder"] != unit:
        bad.append(f"holder {row['holder']!r}, the duty lists say {unit!r}")
    outcome, worker, organ = row["outcome"], row["worker"], row["organ"]
    returns = int(row["returns"])
    if outcome == "assigned":
        if organ:
            bad.append("assigned with an organ")
        if kind == "community":
            if city.workers.get(worker) != unit:
                bad.append(f"worker {worker} (unit {city.workers.get(worker)!r}) is not of community {unit}")
        elif kind == "street":
            if not city.in_force(worker, street, platform):
                bad.append(f"worker {worker} (unit {city.workers.get(worker)!r}) is not in {street}'s {platform} force")
        else:
            bad.append(f"assigned although {unit} is a department")
    elif outcome == "queued":
        if kind == "department":
            bad.append("queued although referred")
        elif organ != city.platform_organ(street, platform):
            bad.append(f"queued at {organ!r}, not at {street}'s organ for {platform}")
    elif outcome == "ruling":
        if kind == "department":
            bad.append("ruling although referred")
        elif organ != city.platform_organ(street, "governance"):
            bad.append(f"ruling at {organ!r}, not at {street}'s governance center")
        if returns < max_returns:
            bad.append(f"ruling after only {returns} returns")
    elif outcome == "referred":
        if kind != "department":
            bad.append(f"referred although {unit} holds it")
        if worker or organ:
            bad.append("referred with a worker or organ")
    else:
        bad.append(f"unknown outcome {outcome!r}")
    if outcome != "ruling" and kind != "department" and returns >= max_returns:
        bad.append(f"not a ruling after {returns} returns")
    if outcome != "assigned" and worker:
        bad.append("a worker on an outcome that is not assigned")
    return bad


def check(city, rows, max_returns):
    """(passed, failures) over all rows, rows of one case in file order."""
    passed, failures = 0, []
    given = {}  # case -> workers given it so far
    for n, row in enumerate(rows, start=2):
        bad = check_row(city, row, max_returns)
        before = given.setdefault(row["case"], [])
        if int(row["returns"]) != len(before):
            bad.append(f"returns {row['returns']}, but {len(before)} workers were given the case before")
        if row["outcome"] == "assigned":
            if row["worker"] in before:
                bad.append(f"worker {row['worker']} returned the case and is given it again")
            before.append(row["worker"])
        if bad:
            failures.append((n, row["case"], bad))
        else:
            passed += 1
    return passed, failures


def plant(city, rows):
    """Rows made wrong on purpose, one per rule: (what, index of the wrong row, rows)."""
    by_unit = {}
    for w, u in city.workers.items():
        by_unit.setdefault(u, []).append(w)

    def first(pred):
        for i, r in enumerate(rows):
            if pred(r):
                return i
        raise SystemExit("--self-test: no row to plant a fault in")

    def with_row(i, **changes):
        changed = list(rows)
        changed[i] = dict(rows[i], **changes)
        return i, changed

    def kind(r):
        return city.holder(r["cell"], r["category"])[0]

    out = []
    i = first(lambda r: r["outcome"] == "assigned" and kind(r) == "community")
    community, home = rows[i]["holder"], city.community_street[rows[i]["holder"]]
    # A worker of a neighbouring community of the same street: the ring search's old mistake.
    other = next(m for m, s in city.community_street.items() if s == home and m != community and by_unit.get(m))
    out.append(("worker of another community", with_row(i, worker=by_unit[other][0])))
    j = first(lambda r: r["outcome"] == "assigned" and kind(r) == "street")
    platform = city.categories[rows[j]["category"]]["platform"]
    foreign = next(
        w for w in city.workers if city.in_force(w, city.street_of_force(w), platform) and city.street_of_force(w) != rows[j]["holder"]
    )
    out.append(("another street's force", with_row(j, worker=foreign)))
    grid_worker = next(w for w, u in city.workers.items() if u in city.community_street and city.community_street[u] == rows[j]["holder"])
    out.append(("a community worker on a street-held case", with_row(j, worker=grid_worker)))
    q = first(lambda r: r["outcome"] == "queued")
    street = city.holder(rows[q]["cell"], rows[q]["category"])[2]
    wrong = next(o for o, (s, _, _) in city.organs.items() if s != street)
    out.append(("queued at another street's organ", with_row(q, organ=wrong)))
    r = first(lambda r: r["outcome"] == "ruling")
    street = city.holder(rows[r]["cell"], rows[r]["category"])[2]
    wrong = next(o for o, (s, _, m) in city.organs.items() if s == street and m != "governance_center")
    out.append(("ruling at an organ that is not the governance center", with_row(r, organ=wrong)))
    out.append(("holder says the street for a community-held case", with_row(i, holder=home)))
    # A returner given the case again: the row after a return names the returner.
    for k in range(1, len(rows)):
        if rows[k]["outcome"] == "assigned" and int(rows[k]["returns"]) > 0:
            prev = next(p for p in range(k - 1, -1, -1) if rows[p]["case"] == rows[k]["case"] and rows[p]["outcome"] == "assigned")
            out.append(("a returner given the case again", with_row(k, worker=rows[prev]["worker"])))
            break
    return [(what, i, changed) for what, (i, changed) in out]


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    self_test = "--self-test" in argv
    max_returns = 2
    if "--max-returns" in argv:
        max_returns = int(argv[argv.index("--max-returns") + 1])
        args.remove(str(max_returns))
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        config = json.load(f)
    with open(args[1], encoding="utf-8") as f:
        grid = json.load(f)
    with open(args[2], encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = ["case", "cell", "category", "holder", "outcome", "worker", "organ", "returns"]
        if reader.fieldnames != header:
            print(f"header {reader.fieldnames}, expected {header}", file=sys.stderr)
            return 1
        rows = list(reader)
    city = City(config, grid)
    passed, failures = check(city, rows, max_returns)
    for n, case, bad in failures[:20]:
        print(f"line {n} (case {case}): {'; '.join(bad)}", file=sys.stderr)
    outcomes = {}
    for r in rows:
        key = r["outcome"] if r["outcome"] != "assigned" else "assigned to " + city.holder(r["cell"], r["category"])[0] + "-held"
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"{passed} passed, {len(failures)} failed ({', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))})")
    status = 1 if failures or not rows else 0
    if self_test:
        for what, i, planted in plant(city, rows):
            _, caught = check(city, planted, max_returns)
            found = [bad for n, _, bad in caught if n == i + 2]
            if not found:
                print(f"self-test: planted fault not caught: {what}", file=sys.stderr)
                status = 1
            else:
                print(f"self-test: caught {what} (line {i + 2}: {'; '.join(found[0])})")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
