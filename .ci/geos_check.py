#!/usr/bin/env python3
"""Cross-check of the locate example against GEOS (shapely >= 2).

Usage: python3 .ci/geos_check.py GRID.geojson POINTS.csv LOCATED.csv

LOCATED.csv is the output of `cargo run --release --example locate -- GRID.geojson POINTS.csv`.
For every row of POINTS.csv the expected answer is the FIRST cell, in the grid's input
order, whose geometry covers the point (for a point and a polygon, GEOS `intersects` is
`covers`: boundary included); `invalid` for lon/lat that do not parse as finite numbers
within WGS84 range; `outside` for a point in no cell. The grid is read with the json module,
so coordinates are the exact doubles of the file. Exits 1 on any mismatch.
"""

import csv
import json
import math
import sys

import numpy as np
import shapely
from shapely.geometry import shape


def parse_coordinate(text):
    """The number, as the locate example reads it (Rust `str::parse::<f64>` after trim)."""
    text = text.strip()
    # Python's float() also accepts digit separators, which Rust does not.
    if "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    grid_path, points_path, located_path = argv[1:]

    with open(grid_path, encoding="utf-8") as f:
        features = json.load(f)["features"]
    names = [feat["properties"]["id"] for feat in features]
    geoms = [shape(feat["geometry"]) for feat in features]
    tree = shapely.STRtree(geoms)

    pids, lons, lats, valid = [], [], [], []
    with open(points_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        ip, ix, iy = header.index("pid"), header.index("lon"), header.index("lat")
        for row in reader:
            get = lambda k: row[k] if k < len(row) else ""
            lon, lat = parse_coordinate(get(ix)), parse_coordinate(get(iy))
            ok = lon is not None and lat is not None and abs(lon) <= 180 and abs(lat) <= 90
            pids.append(get(ip))
            valid.append(ok)
            lons.append(lon if ok else 0.0)
            lats.append(lat if ok else 0.0)

    valid = np.array(valid, dtype=bool)
    rows = np.flatnonzero(valid)
    pts = shapely.points(np.array(lons)[rows], np.array(lats)[rows])
    hit_pt, hit_cell = tree.query(pts, predicate="intersects")
    first = np.full(len(rows), len(geoms), dtype=np.int64)
    np.minimum.at(first, hit_pt, hit_cell)

    expected = [("", "invalid")] * len(pids)
    for k, r in enumerate(rows):
        c = first[k]
        expected[r] = (names[c], "ok") if c < len(geoms) else ("", "outside")

    with open(located_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        got = list(reader)
    mismatches = []
    if header != ["pid", "cell", "status"]:
        mismatches.append(f"header {header!r}, expected ['pid', 'cell', 'status']")
    if len(got) != len(pids):
        mismatches.append(f"{len(got)} rows located, {len(pids)} rows of points")
    passed = 0
    for k, (pid, want) in enumerate(zip(pids, expected)):
        row = got[k] if k < len(got) else None
        if row is not None and row == [pid, want[0], want[1]]:
            passed += 1
        else:
            mismatches.append(f"row {k + 2}: pid {pid!r} expected {want}, got {row}")
    failed = len(pids) - passed
    print(f"geos_check: {passed} passed, {failed} failed")
    for m in mismatches[:20]:
        print("  " + m)
    counts = {s: sum(1 for e in expected if e[1] == s) for s in ("ok", "outside", "invalid")}
    print(
        f"  ({len(geoms)} cells, GEOS {shapely.geos_version_string}; expected "
        f"{counts['ok']} ok, {counts['outside']} outside, {counts['invalid']} invalid)"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
