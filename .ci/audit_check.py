#!/usr/bin/env python3
"""Checks `audit --json` against GEOS (shapely 2).

    audit_check.py GRID.geojson BOUNDARY.geojson AUDIT.json

GEOS computes the union of the cells (`union_all`), the gaps (`boundary - union`), the
parts outside (`union - boundary`) and every pairwise intersection of cells. Pieces whose
mean width 2 * area / perimeter is under the audit's sliver width (read from the JSON,
`sliver_width_m`) or whose area is under 1e-6 m2 are slivers and are ignored, as the
audit documents. Every other piece must be reported by the audit, in count and area
(within 0.1 %), with its reported point inside it; overlaps are matched by the pair of
cell names. Nothing else may be reported.

Areas: WGS84 ellipsoid, Lambert cylindrical equal-area (x = a * lon, y = a * q(lat) / 2,
q the authalic function), as the audit computes them. Lengths: each edge in a local
equirectangular frame at its middle latitude, on a sphere of radius 6,371,008.8 m.
"""

import json
import math
import sys

import numpy as np
import shapely
from shapely.geometry import Point, shape

A = 6_378_137.0
E2 = 6.694_379_990_141_316e-3
E = math.sqrt(E2)
R = 6_371_008.8
NEGLIGIBLE_AREA_M2 = 1e-6
RELATIVE = 1e-3


def q(lat_deg):
    s = np.sin(np.radians(lat_deg))
    return (1 - E2) * (s / (1 - E2 * s * s) - np.log((1 - E * s) / (1 + E * s)) / (2 * E))


def equal_area(coords):
    return np.column_stack([A * np.radians(coords[:, 0]), A * q(coords[:, 1]) / 2])


def area_m2(geom):
    return shapely.transform(geom, equal_area).area


def ring_length_m(ring):
    c = np.asarray(ring.coords)
    lon, lat = np.radians(c[:, 0]), np.radians(c[:, 1])
    k = np.cos((lat[1:] + lat[:-1]) / 2)
    return float(np.sum(R * np.hypot(np.diff(lon) * k, np.diff(lat))))


def width_m(poly, area):
    length = ring_length_m(poly.exterior) + sum(ring_length_m(h) for h in poly.interiors)
    return 2 * area / length if length > 0 else 0.0


def findings(geom, sliver_width):
    """The pieces of `geom` that are not slivers, as (polygon, area_m2)."""
    out = []
    for part in shapely.get_parts(geom):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        a = area_m2(part)
        if a < NEGLIGIBLE_AREA_M2 or width_m(part, a) < sliver_width:
            continue
        out.append((part, a))
    return out


def close(a, b):
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b))


def match_regions(kind, ours, theirs, problems):
    """Each reported region to the GEOS piece holding its point, one to one, area close."""
    if len(ours) != len(theirs):
        problems.append(f"{kind}: audit reports {len(ours)}, GEOS finds {len(theirs)}")
    used = set()
    for r in ours:
        p = Point(r["point"])
        hit = [i for i, (g, _) in enumerate(theirs) if i not in used and g.covers(p)]
        if not hit:
            problems.append(f"{kind} at {r['point']} ({r['area_m2']:.3f} m2): no GEOS piece there")
            continue
        i = hit[0]
        used.add(i)
        if not close(r["area_m2"], theirs[i][1]):
            problems.append(
                f"{kind} at {r['point']}: area {r['area_m2']:.3f} m2, GEOS {theirs[i][1]:.3f} m2"
            )
    for i, (g, a) in enumerate(theirs):
        if i not in used:
            c = g.representative_point()
            problems.append(f"{kind}: GEOS piece of {a:.3f} m2 near ({c.x}, {c.y}) not reported")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    grid_path, boundary_path, audit_path = sys.argv[1:]
    with open(grid_path) as f:
        features = json.load(f)["features"]
    with open(boundary_path) as f:
        boundary = shape(json.load(f))
    with open(audit_path) as f:
        audit = json.load(f)
    width = audit["sliver_width_m"]
    names = [f["properties"]["id"] for f in features]
    cells = np.array([shape(f["geometry"]) for f in features])

    union = shapely.union_all(cells)
    gaps = findings(boundary.difference(union), width)
    outside = findings(union.difference(boundary), width)

    tree = shapely.STRtree(cells)
    left, right = tree.query(cells, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    common = shapely.intersection(cells[left], cells[right])
    positive = shapely.area(common) > 0
    overlaps = {}
    for i, j, g in zip(left[positive], right[positive], common[positive]):
        found = findings(g, width)
        if found:
            overlaps[frozenset((names[i], names[j]))] = sum(a for _, a in found)

    problems = []
    match_regions("gap", audit["gaps"], gaps, problems)
    match_regions("outside", audit["outside"], outside, problems)
    ours = {frozenset(o["cells"]): o["area_m2"] for o in audit["overlaps"]}
    for pair, a in overlaps.items():
        if pair not in ours:
            problems.append(f"overlap {sorted(pair)} of {a:.3f} m2 not reported")
        elif not close(ours[pair], a):
            problems.append(f"overlap {sorted(pair)}: area {ours[pair]:.3f} m2, GEOS {a:.3f} m2")
    for pair, a in ours.items():
        if pair not in overlaps:
            problems.append(f"overlap {sorted(pair)} of {a:.3f} m2 reported, GEOS finds none")
    want_clean = not (gaps or outside or overlaps or audit["invalid"])
    if audit["clean"] != want_clean:
        problems.append(f"verdict clean={audit['clean']}, GEOS says {want_clean}")

    print(
        f"audit_check: {len(cells)} cells; GEOS finds {len(gaps)} gaps, {len(overlaps)} "
        f"overlapping pairs, {len(outside)} parts outside above {width} m; audit reports "
        f"{len(audit['gaps'])}, {len(audit['overlaps'])}, {len(audit['outside'])} "
        f"({audit['slivers']['count']} slivers apart)"
    )
    for p in problems:
        print("MISMATCH:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
