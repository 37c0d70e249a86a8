//! The grid's topology from the outside: the neighbour graph against its definition on
//! random split lattices, and the coverage audit on exact tilings with a known gap and a
//! known overlap.

use proptest::prelude::*;
use wangge::grid::{Jurisdiction, RingBuf};
use wangge::{Cell, CellId, Grid, Polygon};

/// Exact orientation sign, independent of the crate's own filter.
fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    let p = |q: [f64; 2]| robust::Coord { x: q[0], y: q[1] };
    robust::orient2d(p(a), p(b), p(c))
}

/// The definition: two edges collinear and overlapping with positive length.
fn share_piece(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    if a == b || c == d || orient(a, b, c) != 0.0 || orient(a, b, d) != 0.0 {
        return false;
    }
    let k = usize::from(a[0] == b[0]);
    a[k].min(b[k]).max(c[k].min(d[k])) < a[k].max(b[k]).min(c[k].max(d[k]))
}

fn brute_neighbours(cells: &[Cell], i: usize) -> Vec<CellId> {
    let edges = |c: &Cell| -> Vec<([f64; 2], [f64; 2])> {
        c.polygons
            .iter()
            .flat_map(|p| p.rings())
            .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
            .collect()
    };
    let mine = edges(&cells[i]);
    (0..cells.len())
        .filter(|&j| {
            j != i && {
                let theirs = edges(&cells[j]);
                mine.iter()
                    .any(|&(a, b)| theirs.iter().any(|&(c, d)| share_piece(a, b, c, d)))
            }
        })
        .map(|j| CellId::from_index(j).unwrap())
        .collect()
}

const X0: f64 = 120.3;
const Y0: f64 = 36.05;
const STEP: f64 = 0.005;

fn x(i: usize) -> f64 {
    X0 + i as f64 * STEP
}
fn y(j: usize) -> f64 {
    Y0 + j as f64 * STEP
}

/// How one lattice square is cut into cells.
#[derive(Debug, Clone, Copy)]
enum Split {
    Whole,
    /// Two rectangles, left and right halves.
    Vertical,
    /// Two rectangles, bottom and top halves.
    Horizontal,
    /// Two triangles along the rising diagonal.
    Diagonal,
    /// Merged with the square to its right (when there is one), a T-junction maker.
    MergeRight,
}

fn split() -> impl Strategy<Value = Split> {
    prop_oneof![
        Just(Split::Whole),
        Just(Split::Vertical),
        Just(Split::Horizontal),
        Just(Split::Diagonal),
        Just(Split::MergeRight),
    ]
}

/// A `w * h` lattice of squares, each cut by its split; `skip` leaves one square empty.
fn cut_lattice(w: usize, h: usize, splits: &[Split], skip: Option<usize>) -> Vec<Cell> {
    let mut cells = Vec::new();
    for j in 0..h {
        let mut i = 0;
        while i < w {
            let k = j * w + i;
            let (x0, x1, y0, y1) = (x(i), x(i + 1), y(j), y(j + 1));
            let (xm, ym) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            let name = |s: &str| format!("{i},{j}{s}");
            let rect = |a: [f64; 2], b: [f64; 2]| vec![Polygon::rect(a, b)];
            let mut step = 1;
            if skip == Some(k) {
                i += 1;
                continue;
            }
            match splits[k % splits.len()] {
                Split::Whole => cells.push(Cell::new(name(""), rect([x0, y0], [x1, y1]))),
                Split::Vertical => {
                    cells.push(Cell::new(name("l"), rect([x0, y0], [xm, y1])));
                    cells.push(Cell::new(name("r"), rect([xm, y0], [x1, y1])));
                }
                Split::Horizontal => {
                    cells.push(Cell::new(name("b"), rect([x0, y0], [x1, ym])));
                    cells.push(Cell::new(name("t"), rect([x0, ym], [x1, y1])));
                }
                Split::Diagonal => {
                    let (a, b, c, d) = ([x0, y0], [x1, y0], [x1, y1], [x0, y1]);
                    cells.push(Cell::new(name("a"), vec![Polygon::new(vec![a, b, c, a])]));
                    cells.push(Cell::new(name("b"), vec![Polygon::new(vec![a, c, d, a])]));
                }
                Split::MergeRight => {
                    let right = if i + 1 < w && skip != Some(k + 1) {
                        step = 2;
                        x(i + 2)
                    } else {
                        x1
                    };
                    cells.push(Cell::new(name("m"), rect([x0, y0], [right, y1])));
                }
            }
            i += step;
        }
    }
    cells
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn neighbours_match_the_definition(
        w in 1usize..7,
        h in 1usize..7,
        splits in proptest::collection::vec(split(), 1..40),
        skip in proptest::option::of(0usize..49),
    ) {
        let cells = cut_lattice(w, h, &splits, skip);
        prop_assume!(!cells.is_empty());
        let grid = Grid::new(cells.clone()).unwrap();
        let mut buf = RingBuf::new();
        for id in grid.ids() {
            let want = brute_neighbours(&cells, id.index());
            prop_assert_eq!(grid.neighbours(id), want.as_slice(), "{}", cells[id.index()].name);
            // Ring 1 is the neighbour list; ring 2 is their neighbours less rings 0 and 1.
            prop_assert!(grid.rings_into(id, 2, &mut buf));
            prop_assert_eq!(buf.ring(1), want.as_slice());
            let mut two: Vec<CellId> = want
                .iter()
                .flat_map(|&n| grid.neighbours(n).iter().copied())
                .filter(|c| *c != id && !want.contains(c))
                .collect();
            two.sort();
            two.dedup();
            prop_assert_eq!(buf.ring(2), two.as_slice());
        }
    }

    #[test]
    fn exact_split_lattices_audit_clean(
        w in 1usize..7,
        h in 1usize..7,
        splits in proptest::collection::vec(split(), 1..40),
    ) {
        let grid = Grid::new(cut_lattice(w, h, &splits, None)).unwrap();
        let frame = Jurisdiction::new(vec![Polygon::rect([x(0), y(0)], [x(w), y(h)])]).unwrap();
        let report = grid.audit(Some(&frame));
        prop_assert!(report.is_clean(), "{}", report);
        let b = report.boundary_area_m2.unwrap();
        prop_assert!((report.covered_area_m2 - b).abs() <= 1e-6 * b, "{}", report);
    }
}

/// Area of a lon/lat rectangle on the authalic sphere (independent of the crate).
fn rect_area(x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    const R: f64 = 6_371_007.2;
    R * R * (x1 - x0).to_radians() * (y1.to_radians().sin() - y0.to_radians().sin())
}

#[test]
fn a_known_gap_and_a_known_overlap_are_exactly_what_is_found() {
    let (w, h) = (12, 10);
    let splits = [
        Split::Whole,
        Split::MergeRight,
        Split::Horizontal,
        Split::Diagonal,
        Split::Vertical,
        Split::Whole,
        Split::MergeRight,
    ];
    let skip = 5 * w + 6; // square (6, 5)
    let mut cells = cut_lattice(w, h, &splits, Some(skip));
    // A cell straddling the line between rows 1 and 2 in column 9, a third of a square
    // deep on each side.
    let third = STEP / 3.0;
    cells.push(Cell::new(
        "straddler",
        vec![Polygon::rect([x(9), y(2) - third], [x(10), y(2) + third])],
    ));
    let grid = Grid::new(cells).unwrap();
    let frame = Jurisdiction::new(vec![Polygon::rect([x(0), y(0)], [x(w), y(h)])]).unwrap();
    for boundary in [None, Some(&frame)] {
        let report = grid.audit(boundary);
        assert_eq!(report.gaps.len(), 1, "{report}");
        let gap = &report.gaps[0];
        let want = rect_area(x(6), y(5), x(7), y(6));
        assert!((gap.area_m2 - want).abs() <= 0.01 * want, "{report}");
        assert!(
            gap.point[0] > x(6)
                && gap.point[0] < x(7)
                && gap.point[1] > y(5)
                && gap.point[1] < y(6)
        );

        let total: f64 = report.overlaps.iter().map(|o| o.area_m2).sum();
        let want = rect_area(x(9), y(2) - third, x(10), y(2) + third);
        assert!((total - want).abs() <= 0.01 * want, "{report}");
        assert!(!report.overlaps.is_empty());
        for o in &report.overlaps {
            assert!(o.names.contains(&"straddler".to_string()), "{report}");
            assert!(o.point[0] > x(9) && o.point[0] < x(10), "{report}");
        }
        assert!(
            report.outside.is_empty() && report.invalid.is_empty(),
            "{report}"
        );
        assert!(!report.is_clean());
    }
}

#[test]
fn audit_of_a_grid_read_from_geojson_round_trips() {
    let grid = Grid::new(cut_lattice(
        5,
        4,
        &[Split::MergeRight, Split::Diagonal],
        None,
    ))
    .unwrap();
    let again = Grid::from_geojson(&grid.to_geojson()).unwrap();
    let (a, b) = (grid.audit(None), again.audit(None));
    assert!(a.is_clean() && b.is_clean(), "{a}\n{b}");
    assert_eq!(a.covered_area_m2, b.covered_area_m2);
    for id in grid.ids() {
        assert_eq!(grid.neighbours(id), again.neighbours(id));
    }
}
