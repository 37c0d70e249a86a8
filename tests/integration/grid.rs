//! The grid from the outside: GeoJSON input and its errors, and `locate` against two
//! oracles of its own (exact arithmetic, and `geo`) on random grids with shared edges,
//! overlaps, holes and multipolygons.

use proptest::prelude::*;
use wangge::grid::CellProblemKind;
use wangge::{Cell, CellId, Grid, GridError, Location, Polygon};

use crate::oracle::{self, GeoCells, Place};

fn feature(id: &str, geometry: &str) -> String {
    format!(r#"{{"type": "Feature", "properties": {{"id": "{id}"}}, "geometry": {geometry}}}"#)
}

fn collection(features: &[String]) -> String {
    format!(
        r#"{{"type": "FeatureCollection", "features": [{}]}}"#,
        features.join(",")
    )
}

const SQUARE: &str = r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1, 36], [120.1, 36.1], [120, 36.1], [120, 36]]]}"#;

/// The problems of a refused grid, as (feature index, kind).
fn problems(text: &str) -> Vec<(usize, CellProblemKind)> {
    match Grid::from_geojson(text) {
        Err(GridError::Cells(ps)) => ps.into_iter().map(|p| (p.index, p.kind)).collect(),
        other => panic!("expected cell problems, got {other:?}"),
    }
}

#[test]
fn not_json_and_not_a_collection() {
    assert!(matches!(
        Grid::from_geojson("{ nope"),
        Err(GridError::Json { .. })
    ));
    assert!(matches!(
        Grid::from_geojson(SQUARE),
        Err(GridError::NotFeatureCollection { .. })
    ));
    assert!(matches!(
        Grid::from_geojson("[1, 2]"),
        Err(GridError::NotFeatureCollection { .. })
    ));
    assert!(matches!(
        Grid::from_geojson(&collection(&[])),
        Err(GridError::Empty)
    ));
    // Numbers beyond f64 are refused by the reader, not turned into infinities.
    let huge = SQUARE.replace("120.1, 36]", "1e999, 36]");
    assert!(matches!(
        Grid::from_geojson(&collection(&[feature("a", &huge)])),
        Err(GridError::Json { .. })
    ));
}

#[test]
fn ids_missing_non_string_and_duplicate() {
    let missing = format!(r#"{{"type": "Feature", "properties": {{}}, "geometry": {SQUARE}}}"#);
    let no_props = format!(r#"{{"type": "Feature", "geometry": {SQUARE}}}"#);
    let number =
        format!(r#"{{"type": "Feature", "properties": {{"id": 7}}, "geometry": {SQUARE}}}"#);
    let bad_parent = format!(
        r#"{{"type": "Feature", "properties": {{"id": "p", "street": 3}}, "geometry": {SQUARE}}}"#
    );
    let text = collection(&[
        feature("a", SQUARE),
        missing,
        no_props,
        number,
        feature("a", SQUARE),
        bad_parent,
    ]);
    let ps = problems(&text);
    assert!(matches!(ps[0], (1, CellProblemKind::MissingId)), "{ps:?}");
    assert!(matches!(ps[1], (2, CellProblemKind::MissingId)), "{ps:?}");
    assert!(
        matches!(&ps[2], (3, CellProblemKind::NonStringId { found }) if found == "7"),
        "{ps:?}"
    );
    assert!(
        matches!(ps[3], (4, CellProblemKind::DuplicateId { first: 0 })),
        "{ps:?}"
    );
    assert!(
        matches!(ps[4], (5, CellProblemKind::BadProperty { name: "street" })),
        "{ps:?}"
    );
    assert_eq!(ps.len(), 5);
}

#[test]
fn geometry_of_the_wrong_kind_or_empty() {
    let point = r#"{"type": "Point", "coordinates": [120, 36]}"#;
    let empty_poly = r#"{"type": "Polygon", "coordinates": []}"#;
    let empty_multi = r#"{"type": "MultiPolygon", "coordinates": []}"#;
    let garbage = r#"{"type": "Polygon", "coordinates": "x"}"#;
    let short_pos =
        r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1], [120.1, 36.1], [120, 36]]]}"#;
    let null = r#"null"#;
    let ps = problems(&collection(&[
        feature("pt", point),
        feature("e1", empty_poly),
        feature("e2", empty_multi),
        feature("g", garbage),
        feature("s", short_pos),
        feature("n", null),
    ]));
    assert!(
        matches!(&ps[0], (0, CellProblemKind::NotPolygon { found }) if found == "Point"),
        "{ps:?}"
    );
    assert!(
        matches!(ps[1], (1, CellProblemKind::EmptyGeometry)),
        "{ps:?}"
    );
    assert!(
        matches!(ps[2], (2, CellProblemKind::EmptyGeometry)),
        "{ps:?}"
    );
    assert!(
        matches!(ps[3], (3, CellProblemKind::BadGeometry { .. })),
        "{ps:?}"
    );
    assert!(
        matches!(
            ps[4],
            (4, CellProblemKind::ShortPosition { position: 1, .. })
        ),
        "{ps:?}"
    );
    assert!(
        matches!(ps[5], (5, CellProblemKind::BadGeometry { .. })),
        "{ps:?}"
    );
    assert_eq!(ps.len(), 6);
}

#[test]
fn rings_short_open_out_of_range_and_self_intersecting() {
    let short = r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1, 36], [120, 36]]]}"#;
    let open = r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1, 36], [120.1, 36.1], [120, 36.1]]]}"#;
    let range =
        r#"{"type": "Polygon", "coordinates": [[[120, 36], [190, 36], [120.1, 36.1], [120, 36]]]}"#;
    let bowtie = r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1, 36.1], [120.1, 36], [120, 36.1], [120, 36]]]}"#;
    let bad_hole = r#"{"type": "Polygon", "coordinates": [[[120, 36], [120.1, 36], [120.1, 36.1], [120, 36.1], [120, 36]],
                                                           [[120.02, 36.02], [120.03, 36.02], [120.02, 36.02]]]}"#;
    let ps = problems(&collection(&[
        feature("short", short),
        feature("open", open),
        feature("range", range),
        feature("bowtie", bowtie),
        feature("hole", bad_hole),
        feature("fine", SQUARE),
    ]));
    assert!(
        matches!(
            ps[0],
            (0, CellProblemKind::RingTooShort { positions: 3, .. })
        ),
        "{ps:?}"
    );
    assert!(
        matches!(ps[1], (1, CellProblemKind::RingNotClosed { .. })),
        "{ps:?}"
    );
    assert!(
        matches!(ps[2], (2, CellProblemKind::OutOfRange { position: 1, lon, .. }) if lon == 190.0),
        "{ps:?}"
    );
    assert!(
        matches!(
            ps[3],
            (
                3,
                CellProblemKind::SelfIntersection {
                    first: 0,
                    second: 2,
                    ..
                }
            )
        ),
        "{ps:?}"
    );
    assert!(
        matches!(ps[4], (4, CellProblemKind::RingTooShort { at, .. }) if at.polygon == 0 && at.ring == 1),
        "{ps:?}"
    );
    assert_eq!(ps.len(), 5);
    // Every problem names its feature in the message, too.
    let msg = Grid::from_geojson(&collection(&[feature("bowtie", bowtie)]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("feature 0")
            && msg.contains("\"bowtie\"")
            && msg.contains("intersects itself"),
        "{msg}"
    );
}

#[test]
fn cells_built_in_code_are_checked_the_same_way() {
    let nan = Cell::new(
        "nan",
        vec![Polygon::new(vec![
            [0.0, 0.0],
            [f64::NAN, 0.0],
            [1.0, 1.0],
            [0.0, 0.0],
        ])],
    );
    let empty = Cell::new("empty", vec![]);
    match Grid::new(vec![nan, empty]) {
        Err(GridError::Cells(ps)) => {
            assert!(
                matches!(ps[0].kind, CellProblemKind::NonFinite { position: 1, .. }),
                "{ps:?}"
            );
            assert!(
                matches!(ps[1].kind, CellProblemKind::EmptyGeometry),
                "{ps:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(Grid::new(vec![]), Err(GridError::Empty)));
}

#[test]
fn geojson_round_trip_keeps_cells_exactly() {
    let cells = random_grid(5, 4, 7, true, false);
    let grid = Grid::new(cells.clone()).unwrap();
    let back = Grid::from_geojson(&grid.to_geojson()).unwrap();
    assert_eq!(back.cells(), &cells[..]);
}

/// A deterministic pseudo-random stream (xorshift), for building fixtures from a seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A jittered lattice of `cols * rows` quads sharing exact vertices, some split into two
/// triangles, some merged pairs as MultiPolygons are not needed for sharing; then extra
/// overlapping cells (a rectangle early in the order and one late) and a cell with a hole
/// that nothing fills.
///
/// `at_zero` puts the lattice across lon 0 and lat 0 instead of near (120, 36): there the
/// differences of coordinates are rounded in floating point, so an orientation computed
/// in plain floats gets points on or next to sloped edges wrong, and only an exact one
/// passes.
fn random_grid(cols: usize, rows: usize, seed: u64, extras: bool, at_zero: bool) -> Vec<Cell> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (dx, dy) = (0.01, 0.008);
    let (x0, y0) = if at_zero {
        (
            -(cols as f64) * dx / 2.0 + 0.0013,
            -(rows as f64) * dy / 2.0 + 0.0011,
        )
    } else {
        (120.0, 36.0)
    };
    let mut v = vec![[0.0; 2]; (cols + 1) * (rows + 1)];
    for j in 0..=rows {
        for i in 0..=cols {
            let inner = i > 0 && j > 0 && i < cols && j < rows;
            let (jx, jy) = if inner {
                ((rng.unit() - 0.5) * 0.5 * dx, (rng.unit() - 0.5) * 0.5 * dy)
            } else {
                (0.0, 0.0)
            };
            v[j * (cols + 1) + i] = [x0 + i as f64 * dx + jx, y0 + j as f64 * dy + jy];
        }
    }
    let at = |i: usize, j: usize| v[j * (cols + 1) + i];
    let mut cells = Vec::new();
    if extras {
        // Overlaps the middle of the grid and comes first: it wins there, edges included.
        cells.push(Cell::new(
            "early",
            vec![Polygon::rect(
                [x0 + 1.3 * dx, y0 + 1.2 * dy],
                [x0 + 2.6 * dx, y0 + 2.5 * dy],
            )],
        ));
    }
    for j in 0..rows {
        for i in 0..cols {
            let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
            let name = format!("q{i}-{j}");
            match rng.next() % 5 {
                0 => {
                    cells.push(Cell::new(
                        format!("{name}a"),
                        vec![Polygon::new(vec![a, b, c, a])],
                    ));
                    cells.push(Cell::new(
                        format!("{name}b"),
                        vec![Polygon::new(vec![a, c, d, a])],
                    ));
                }
                1 if extras => {
                    // A hole in the middle that no cell fills: the quad shrunk about its
                    // vertex average, so that it stays inside however skewed the quad is
                    // (a box at the diagonal's midpoint stuck out of thin quads).
                    let m = [
                        (a[0] + b[0] + c[0] + d[0]) / 4.0,
                        (a[1] + b[1] + c[1] + d[1]) / 4.0,
                    ];
                    let shrink =
                        |v: [f64; 2]| [m[0] + 0.3 * (v[0] - m[0]), m[1] + 0.3 * (v[1] - m[1])];
                    let hole = [a, d, c, b, a].map(shrink).to_vec();
                    cells.push(Cell::new(
                        name,
                        vec![Polygon {
                            exterior: vec![a, b, c, d, a],
                            holes: vec![hole],
                        }],
                    ));
                }
                _ => cells.push(Cell::new(name, vec![Polygon::new(vec![a, b, c, d, a])])),
            }
        }
    }
    if extras {
        // Overlaps and sticks out of the grid, comes last: it only wins where nothing else is.
        let p1 = Polygon::rect(
            [x0 - 0.5 * dx, y0 + 0.5 * dy],
            [x0 + 0.7 * dx, y0 + 1.5 * dy],
        );
        let p2 = Polygon::rect(
            [x0 + cols as f64 * dx - 0.3 * dx, y0 - 0.4 * dy],
            [x0 + cols as f64 * dx + 0.4 * dx, y0 + 0.4 * dy],
        );
        cells.push(Cell::new("late-multi", vec![p1, p2]));
    }
    cells
}

/// `x` moved by `steps` representable numbers (down if negative).
fn nudge(x: f64, steps: i64) -> f64 {
    (0..steps.abs()).fold(x, |x, _| {
        if steps > 0 {
            x.next_up()
        } else {
            x.next_down()
        }
    })
}

/// Points that stress the rules: vertices, points on edges, ulp nudges, interior, outside.
fn probe_points(cells: &[Cell], rng: &mut Rng, n: usize) -> Vec<Location> {
    let verts: Vec<[f64; 2]> = cells
        .iter()
        .flat_map(|c| &c.polygons)
        .flat_map(|p| p.rings())
        .flatten()
        .copied()
        .collect();
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for v in &verts {
        for k in 0..2 {
            lo[k] = lo[k].min(v[k]);
            hi[k] = hi[k].max(v[k]);
        }
    }
    (0..n)
        .map(|_| {
            let v = verts[(rng.next() % verts.len() as u64) as usize];
            let w = verts[(rng.next() % verts.len() as u64) as usize];
            let p = match rng.next() % 6 {
                0 => v,
                1 => [
                    nudge(v[0], (rng.next() % 5) as i64 - 2),
                    nudge(v[1], (rng.next() % 5) as i64 - 2),
                ],
                // On the axis-parallel lines through vertices: exactly on lattice borders.
                2 => [v[0], lo[1] + rng.unit() * (hi[1] - lo[1])],
                3 => [lo[0] + rng.unit() * (hi[0] - lo[0]), v[1]],
                // Between two vertices: on or a rounding away from sloped edges.
                4 => {
                    let t = rng.unit();
                    [v[0] + t * (w[0] - v[0]), v[1] + t * (w[1] - v[1])]
                }
                _ => [
                    lo[0] - 0.01 + rng.unit() * (hi[0] - lo[0] + 0.02),
                    lo[1] - 0.01 + rng.unit() * (hi[1] - lo[1] + 0.02),
                ],
            };
            Location::new(p[0], p[1]).unwrap()
        })
        .collect()
}

/// Points on the cells' own edges and vertices: every vertex, points along every segment
/// (exactly on axis-parallel ones, on or a rounding away from sloped ones), and vertices
/// nudged by an ulp.
fn edge_probes(cells: &[Cell], rng: &mut Rng) -> Vec<Location> {
    let mut pts = Vec::new();
    for ring in cells
        .iter()
        .flat_map(|c| &c.polygons)
        .flat_map(|p| p.rings())
    {
        for w in ring.windows(2) {
            let (a, b) = (w[0], w[1]);
            pts.push(a);
            let t = [0.5, 0.25, rng.unit()][(rng.next() % 3) as usize];
            pts.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            let (sx, sy) = ((rng.next() % 3) as i64 - 1, (rng.next() % 3) as i64 - 1);
            pts.push([nudge(a[0], sx), nudge(a[1], sy)]);
        }
    }
    pts.into_iter()
        .map(|[x, y]| Location::new(x, y).unwrap())
        .collect()
}

/// Every answer of the grid for `pts`: `locate`, `locate_many`, `locate_rtree`,
/// `locate_brute_force` and `covers` of every cell, against the exact oracle.
fn assert_grid_answers(grid: &Grid, cells: &[Cell], pts: &[Location]) -> Result<(), TestCaseError> {
    let mut many = Vec::new();
    grid.locate_many(pts, &mut many);
    prop_assert_eq!(many.len(), pts.len());
    let index = |c: Option<CellId>| c.map(CellId::index);
    for (p, got) in pts.iter().zip(&many) {
        let want = oracle::first_covering(cells, *p);
        prop_assert_eq!(index(grid.locate(*p)), want, "{:?}", p);
        prop_assert_eq!(index(*got), want, "{:?}", p);
        prop_assert_eq!(index(grid.locate_rtree(*p)), want, "{:?}", p);
        prop_assert_eq!(index(grid.locate_brute_force(*p)), want, "{:?}", p);
        for (id, cell) in grid.ids().zip(cells) {
            prop_assert_eq!(
                grid.covers(id, *p),
                oracle::covers(cell, *p),
                "{:?} {}",
                p,
                cell.name
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every locate path gives the exact oracle's answer, the first cell in input order
    /// whose closed area covers the point, and `covers` agrees with it for every cell.
    #[test]
    fn locate_equals_the_exact_oracle(cols in 1usize..9, rows in 1usize..9, seed in any::<u64>(), extras in any::<bool>(), at_zero in any::<bool>()) {
        let cells = random_grid(cols, rows, seed, extras, at_zero);
        let grid = Grid::new(cells.clone()).unwrap();
        let mut rng = Rng(seed | 1);
        let pts = probe_points(&cells, &mut rng, 600);
        assert_grid_answers(&grid, &cells, &pts)?;
    }

    /// On the cells' own edges and vertices, where the rule matters most, `locate` and the
    /// exact oracle give `geo`'s answer too, and the exact oracle places every point as
    /// `geo` does (inside, on the boundary, outside) against every polygon.
    #[test]
    fn edge_probes_agree_with_geo(cols in 1usize..7, rows in 1usize..7, seed in any::<u64>(), extras in any::<bool>(), at_zero in any::<bool>()) {
        let cells = random_grid(cols, rows, seed, extras, at_zero);
        let grid = Grid::new(cells.clone()).unwrap();
        let geo = GeoCells::new(&cells);
        let mut rng = Rng(seed | 1);
        let pts = edge_probes(&cells, &mut rng);
        assert_grid_answers(&grid, &cells, &pts)?;
        let mut on_boundary = 0;
        for p in &pts {
            let want = geo.first_covering(*p);
            prop_assert_eq!(grid.locate(*p).map(CellId::index), want, "{:?}", p);
            prop_assert_eq!(oracle::first_covering(&cells, *p), want, "{:?}", p);
            let xy = [p.lon(), p.lat()];
            let mut boundary = false;
            for (i, cell) in cells.iter().enumerate() {
                for (k, poly) in cell.polygons.iter().enumerate() {
                    let exact = oracle::place(&poly.exterior, &poly.holes, xy);
                    prop_assert_eq!(exact, geo.place(i, k, xy), "{:?} {} polygon {}", p, cell.name, k);
                    boundary |= exact == Place::Boundary;
                }
            }
            on_boundary += usize::from(boundary);
        }
        // A third of the probes are vertices; beyond them, a tenth as many again must lie
        // exactly on edges, or the test would not be about edges.
        let vertices = pts.len() / 3;
        prop_assert!(on_boundary > vertices + vertices / 10, "{} of {} on a boundary", on_boundary, pts.len());
    }
}

#[test]
fn shared_edges_go_to_the_first_cell_and_holes_are_outside() {
    let hole = vec![[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]];
    let grid = Grid::new(vec![
        Cell::new("b", vec![Polygon::rect([1.0, 0.0], [2.0, 1.0])]),
        Cell::new(
            "a",
            vec![Polygon {
                exterior: Polygon::rect([0.0, 0.0], [1.0, 1.0]).exterior,
                holes: vec![hole],
            }],
        ),
    ])
    .unwrap();
    let name = |x: f64, y: f64| {
        grid.locate(Location::new(x, y).unwrap())
            .map(|id| grid[id].name.clone())
    };
    assert_eq!(
        name(1.0, 0.5).as_deref(),
        Some("b"),
        "shared edge: first in input order"
    );
    assert_eq!(name(1.0, 1.0).as_deref(), Some("b"), "shared vertex");
    assert_eq!(name(0.5, 0.5), None, "in the hole");
    assert_eq!(
        name(0.4, 0.5).as_deref(),
        Some("a"),
        "on the hole's boundary"
    );
    assert_eq!(
        name(f64::from_bits(1.0f64.to_bits() - 1), 0.5).as_deref(),
        Some("a"),
        "one ulp left of the edge"
    );
    assert_eq!(name(2.0 + 1e-12, 0.5), None, "1e-12 outside");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the file holds, reading it is an answer or a typed error, never a panic;
    /// and a grid that is accepted answers `locate` everywhere, even at the poles.
    #[test]
    fn mangled_geojson_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, prop::sample::select(vec![
            "", "[", "]", "{", "}", ",", ":", "\"", "0", "-", "1e400", "NaN", "null", "[]", "[[]]",
            "\"Polygon\"", "\"MultiPolygon\"", "\"id\"", "180.0000001", "-91", "1e-320", "true",
        ])), 1..6),
    ) {
        let cells = random_grid(3, 2, 5, true, false);
        let mut text = Grid::new(cells).unwrap().to_geojson();
        for (at, op, piece) in edits {
            let mut i = at.index(text.len().max(1));
            while i > 0 && !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                0 => text.insert_str(i, piece),
                1 => {
                    let end = (i + 1 + piece.len()).min(text.len());
                    let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(text.len());
                    text.replace_range(i..end, piece);
                }
                2 => text.truncate(i),
                _ => {
                    // Replace the number starting at or after i.
                    if let Some(start) = text[i..].find(|c: char| c.is_ascii_digit()).map(|k| k + i) {
                        let end = text[start..].find(|c: char| !(c.is_ascii_digit() || c == '.')).map_or(text.len(), |k| k + start);
                        text.replace_range(start..end, piece);
                    }
                }
            }
        }
        if let Ok(grid) = Grid::from_geojson(&text) {
            for (lon, lat) in [(-180.0, -90.0), (180.0, 90.0), (0.0, 0.0), (120.0, 36.0), (120.01, 36.008)] {
                let p = Location::new(lon, lat).unwrap();
                prop_assert_eq!(grid.locate(p).map(CellId::index), oracle::first_covering(grid.cells(), p));
            }
        }
    }
}

#[test]
fn envelopes_that_overlap_beyond_memory_are_refused_not_a_panic() {
    // Thousands of cells stacked on one another: every bucket would list every cell.
    let cells: Vec<Cell> = (0..2100)
        .map(|i| {
            Cell::new(
                format!("stack-{i}"),
                vec![Polygon::rect([120.0, 36.0], [120.1, 36.1])],
            )
        })
        .collect();
    assert!(matches!(
        Grid::new(cells),
        Err(GridError::TooLarge { count: 2100 })
    ));
    // A few stacked cells are fine, and the first one wins everywhere.
    let few: Vec<Cell> = (0..3)
        .map(|i| {
            Cell::new(
                format!("s{i}"),
                vec![Polygon::rect([120.0, 36.0], [120.1, 36.1])],
            )
        })
        .collect();
    let grid = Grid::new(few).unwrap();
    assert_eq!(
        grid.locate(Location::new(120.05, 36.05).unwrap())
            .map(|c| c.index()),
        Some(0)
    );
}
