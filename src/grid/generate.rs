//! Generated grids for demos, tests and benchmarks: plain lattices, irregular
//! ("Voronoi-like") cells, and a realistic city near Qingdao; plus test points that probe
//! edges, vertices, holes and the outside.
//!
//! ```text
//!   lattice    ┌──┬──┬──┐   irregular  ╭─╮╭──╮╭╮   city   ┌──┬──┬─╱ sea
//!              ├──┼──┼──┤              ╰┬╯╰┬─╯╰┤          ├──┼─╱┤ ╱
//!              └──┴──┴──┘               ╰──┴───╯          └──┴╱─┴╱  (coast, borders,
//!                                                                    river, reservoirs)
//! ```
//!
//! Every generator is deterministic (a seed, no global state) and produces cells whose
//! neighbours share edges exactly: each shared vertex is computed once, by one formula, and
//! both cells use the same bits (a neighbour walks the same vertices in reverse). So there
//! are no gaps and no overlaps inside the covered area, and [`Grid::new`] accepts the
//! result.
//!
//! ```
//! use wangge::{generate, Grid, Location};
//!
//! let grid = Grid::new(generate::lattice([120.0, 36.0], 10, 10, [0.01, 0.01]))?;
//! assert_eq!(grid.len(), 100);
//! for [lon, lat] in generate::points(&grid, 1000, 7) {
//!     let p = Location::new(lon, lat)?;
//!     assert_eq!(grid.locate(p), grid.locate_brute_force(p));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Cell, Grid, Polygon, Ring};
use crate::rng::SplitMix64;

pub use super::audit::planted::{ClippedCity, ClippedParams, Planted, clipped_city};
use std::collections::{HashMap, HashSet};

/// A lattice coordinate: computed by one formula everywhere, so neighbours agree bit for bit.
#[inline]
fn at(origin: f64, step: f64, k: usize) -> f64 {
    origin + k as f64 * step
}

/// `cols * rows` axis-aligned squares (rectangles of `cell_deg` degrees), row by row from
/// `origin` (the south-west corner). Cells are named `L{row}-{col}`.
pub fn lattice(origin: [f64; 2], cols: usize, rows: usize, cell_deg: [f64; 2]) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(cols * rows);
    for j in 0..rows {
        for i in 0..cols {
            let min = [at(origin[0], cell_deg[0], i), at(origin[1], cell_deg[1], j)];
            let max = [
                at(origin[0], cell_deg[0], i + 1),
                at(origin[1], cell_deg[1], j + 1),
            ];
            cells.push(Cell::new(
                format!("L{j:04}-{i:04}"),
                vec![Polygon::rect(min, max)],
            ));
        }
    }
    cells
}

/// A "Voronoi-like" irregular grid: a lattice of `cols * rows` cells of about `cell_deg`
/// whose corners are jittered and whose edges are jittered polylines, so that each cell
/// has about 20-40 vertices. Each edge's polyline is generated once and used reversed by
/// the neighbour. Cells are named `V{row}-{col}`.
pub fn irregular(
    cols: usize,
    rows: usize,
    seed: u64,
    origin: [f64; 2],
    cell_deg: [f64; 2],
) -> Vec<Cell> {
    let mut rng = SplitMix64(seed);
    let (dx, dy) = (cell_deg[0], cell_deg[1]);
    // Corners moved by at most a fifth of a cell keep every quadrilateral convex.
    let mut corner = vec![[0.0; 2]; (cols + 1) * (rows + 1)];
    for j in 0..=rows {
        for i in 0..=cols {
            corner[j * (cols + 1) + i] = [
                at(origin[0], dx, i) + rng.range(-0.2, 0.2) * dx,
                at(origin[1], dy, j) + rng.range(-0.2, 0.2) * dy,
            ];
        }
    }
    let c = |i: usize, j: usize| corner[j * (cols + 1) + i];
    // The bend vanishes towards both ends (sin), so polylines meeting at a corner keep
    // clear of each other and no ring touches itself.
    let mut polyline = |a: [f64; 2], b: [f64; 2]| -> Vec<[f64; 2]> {
        let m = 4 + rng.below(5);
        let mut line = Vec::with_capacity(m + 2);
        line.push(a);
        let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
        for k in 1..=m {
            let t = k as f64 / (m + 1) as f64;
            let off = 0.06 * (std::f64::consts::PI * t).sin() * rng.range(-1.0, 1.0);
            line.push([a[0] + t * ex - off * ey, a[1] + t * ey + off * ex]);
        }
        line.push(b);
        line
    };
    // horizontal[j][i]: from corner (i, j) to (i + 1, j); vertical[j][i]: (i, j) to (i, j + 1).
    let mut horizontal = Vec::with_capacity(rows + 1);
    for j in 0..=rows {
        let row: Vec<_> = (0..cols).map(|i| polyline(c(i, j), c(i + 1, j))).collect();
        horizontal.push(row);
    }
    let mut vertical = Vec::with_capacity(rows);
    for j in 0..rows {
        let row: Vec<_> = (0..=cols).map(|i| polyline(c(i, j), c(i, j + 1))).collect();
        vertical.push(row);
    }
    let mut cells = Vec::with_capacity(cols * rows);
    for j in 0..rows {
        for i in 0..cols {
            // Counter-clockwise: bottom east, right north, top west, left south.
            let mut ring: Ring = Vec::new();
            ring.extend_from_slice(&horizontal[j][i]);
            ring.extend(vertical[j][i + 1].iter().skip(1));
            ring.extend(horizontal[j + 1][i].iter().rev().skip(1));
            ring.extend(vertical[j][i].iter().rev().skip(1));
            cells.push(Cell::new(
                format!("V{j:04}-{i:04}"),
                vec![Polygon::new(ring)],
            ));
        }
    }
    cells
}

/// Parameters of [`city`]: a lattice of squares clipped to a coast and split by district
/// borders and a river.
#[derive(Debug, Clone, PartialEq)]
pub struct CityParams {
    /// Seed of every random choice (coast, borders, reservoirs).
    pub seed: u64,
    /// Lattice columns before clipping (at least 8 for every feature to appear).
    pub cols: usize,
    /// Lattice rows before clipping (at least 8 for every feature to appear).
    pub rows: usize,
    /// South-west corner `[lon, lat]` of the lattice.
    pub origin: [f64; 2],
    /// Side of a lattice square in metres.
    pub cell_m: f64,
    /// Whether inland water is left out of the grid: a river band that cuts some cells in
    /// two (MultiPolygons) and reservoirs that leave holes no cell fills. Without it the
    /// land is covered edge to edge and the grid passes the coverage audit.
    pub water: bool,
}

impl CityParams {
    /// The built-in demo city: 60 x 60 squares of 500 m near Qingdao, about 3,000 cells.
    pub fn demo() -> CityParams {
        CityParams {
            seed: 0x5167_4441_4f00_0001,
            cols: 60,
            rows: 60,
            origin: [120.1, 36.0],
            cell_m: 500.0,
            water: false,
        }
    }

    /// The benchmark city: about 50,000 cells of 500 m.
    pub fn large() -> CityParams {
        CityParams {
            seed: 0x5167_4441_4f00_0002,
            cols: 250,
            rows: 245,
            water: true,
            ..CityParams::demo()
        }
    }

    /// The side of a square in degrees `[dlon, dlat]` at the origin's latitude.
    pub fn cell_deg(&self) -> [f64; 2] {
        let dlat = self.cell_m / 111_320.0;
        [dlat / self.origin[1].to_radians().cos(), dlat]
    }
}

/// The built-in demo grid: [`city`] of [`CityParams::demo`].
pub fn demo_grid() -> Grid {
    // The demo's parameters are fixed and the generator's output is checked by the tests
    // below, so this cannot fail.
    Grid::new(city(&CityParams::demo())).expect("the demo city is a valid grid")
}

/// Districts with their administrative codes (区划代码) and real street offices.
const DISTRICTS: [(&str, &str, &[&str]); 6] = [
    (
        "市南区",
        "370202",
        &[
            "香港中路街道",
            "八大关街道",
            "湛山街道",
            "金门路街道",
            "珠海路街道",
            "江苏路街道",
            "八大峡街道",
            "云南路街道",
            "中山路街道",
            "金湖路街道",
        ],
    ),
    (
        "市北区",
        "370203",
        &[
            "辽宁路街道",
            "延安路街道",
            "登州路街道",
            "宁夏路街道",
            "敦化路街道",
            "辽源路街道",
            "合肥路街道",
            "台东街道",
            "镇江路街道",
            "浮山新区街道",
            "海伦路街道",
            "四方街道",
            "兴隆路街道",
            "水清沟街道",
            "洛阳路街道",
            "河西街道",
            "湖岛街道",
        ],
    ),
    (
        "黄岛区",
        "370211",
        &[
            "黄岛街道",
            "辛安街道",
            "薛家岛街道",
            "灵珠山街道",
            "长江路街道",
            "红石崖街道",
            "灵山卫街道",
            "珠山街道",
            "隐珠街道",
            "铁山街道",
            "滨海街道",
            "胶南街道",
        ],
    ),
    (
        "崂山区",
        "370212",
        &[
            "中韩街道",
            "沙子口街道",
            "王哥庄街道",
            "北宅街道",
            "金家岭街道",
        ],
    ),
    (
        "李沧区",
        "370213",
        &[
            "振华路街道",
            "永清路街道",
            "兴华路街道",
            "浮山路街道",
            "楼山街道",
            "李村街道",
            "虎山路街道",
            "世园街道",
            "九水街道",
            "湘潭路街道",
        ],
    ),
    (
        "城阳区",
        "370214",
        &[
            "城阳街道",
            "流亭街道",
            "夏庄街道",
            "惜福镇街道",
            "棘洪滩街道",
            "上马街道",
            "河套街道",
            "红岛街道",
        ],
    ),
];

const SHINAN: usize = 0;
const SHIBEI: usize = 1;
const HUANGDAO: usize = 2;
const LAOSHAN: usize = 3;
const LICANG: usize = 4;
const CHENGYANG: usize = 5;

/// Stems of community (社区) names, after places in Qingdao.
const COMMUNITY_STEMS: &[&str] = &[
    "湛山",
    "八大关",
    "太平角",
    "燕儿岛",
    "浮山所",
    "金湖",
    "仙游",
    "宁德",
    "观海",
    "信号山",
    "小鱼山",
    "团岛",
    "西镇",
    "海伦",
    "延安",
    "台东",
    "辽源",
    "合肥",
    "浮山后",
    "书院",
    "沧口",
    "楼山",
    "虎山",
    "李村",
    "九水",
    "世园",
    "沙子口",
    "王哥庄",
    "北宅",
    "中韩",
    "金家岭",
    "麦岛",
    "石老人",
    "流亭",
    "夏庄",
    "惜福",
    "棘洪滩",
    "上马",
    "河套",
    "红岛",
    "薛家岛",
    "辛安",
    "灵山卫",
    "珠山",
    "隐珠",
    "长江",
    "唐岛湾",
    "积米崖",
    "凤凰岛",
    "金沙滩",
    "银沙滩",
    "琅琊",
    "大珠山",
    "午山",
    "埠西",
    "错埠岭",
    "双山",
    "南岭",
    "湖光山",
    "青山",
];

/// Supporting line of a convex piece's edge. A vertex is always the intersection of two
/// labelled lines, computed by [`Layout::meet`], so every piece that has it gets the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// The lattice line y = y(r).
    Row(usize),
    /// The lattice line x = x(c).
    Col(usize),
    /// Clip line k, straight within the strip of the square being cut.
    Clip(usize),
}

/// A line x = f(y), piecewise linear with breakpoints on the lattice rows only, so that it
/// is straight inside every strip of squares.
#[derive(Debug, Clone)]
struct ClipLine {
    /// x at each lattice row 0..=rows.
    xs: Vec<f64>,
    /// Strips (rows of squares) where the line exists.
    strips: std::ops::Range<usize>,
}

/// Clip lines in west-to-east order; they never cross one another.
const BAY: usize = 0;
const BORDER_WEST: usize = 1;
const RIVER_WEST: usize = 2;
const RIVER_EAST: usize = 3;
const BORDER_EAST: usize = 4;
const COAST: usize = 5;

/// The shape of a generated city: lattice and clip lines. Also the oracle of the tests.
#[derive(Debug, Clone)]
struct Layout {
    origin: [f64; 2],
    d: [f64; 2],
    rows: usize,
    lines: Vec<ClipLine>,
    /// First row of the top band where the east border ends (城阳区 spans both sides).
    top: usize,
}

impl Layout {
    fn new(p: &CityParams) -> Layout {
        let mut rng = SplitMix64(p.seed);
        let (cols, rows) = (p.cols, p.rows);
        let d = p.cell_deg();
        let frac = |f: f64| (f * rows as f64).round() as usize;
        let width = cols as f64;
        // Each line wanders inside its own band (in columns), so lines never cross.
        let mut wander = |lo: f64, hi: f64, target: &dyn Fn(usize) -> f64| -> Vec<f64> {
            let (lo, hi) = (lo * width, hi * width);
            let mut x = target(0).clamp(lo, hi);
            let mut xs = Vec::with_capacity(rows + 1);
            for r in 0..=rows {
                if r > 0 {
                    x += rng.range(-0.8, 0.8) + 0.3 * (target(r) - x);
                    x = x.clamp(lo, hi);
                }
                xs.push(x);
            }
            xs
        };
        let bay = wander(0.02, 0.18, &|_| 0.1 * width);
        let west = wander(0.24, 0.36, &|_| 0.3 * width);
        let river = wander(0.42, 0.48, &|_| 0.45 * width);
        let east = wander(0.55, 0.65, &|_| 0.6 * width);
        // The coast swings west near the bottom: a southern shore as well as an eastern one.
        let coast = wander(0.70, 0.97, &|r| {
            let y = r as f64 / rows.max(1) as f64;
            if y < 0.15 {
                (0.72 + y) * width
            } else {
                0.9 * width
            }
        });
        let widths: Vec<f64> = (0..=rows).map(|_| rng.range(0.3, 0.5)).collect();
        let river_east: Vec<f64> = river.iter().zip(&widths).map(|(x, w)| x + w).collect();
        let top = frac(0.8);
        let in_columns = [
            (bay, frac(0.3)..frac(0.7)),
            (west, 0..rows),
            (river, if p.water { frac(0.35)..frac(0.6) } else { 0..0 }),
            (
                river_east,
                if p.water { frac(0.35)..frac(0.6) } else { 0..0 },
            ),
            (east, 0..top),
            (coast, 0..rows),
        ];
        let mut lines: Vec<ClipLine> = in_columns
            .into_iter()
            .map(|(xs, strips)| ClipLine {
                xs: xs.into_iter().map(away_from_columns).collect(),
                strips,
            })
            .collect();
        // On narrow grids the bands are narrower than a column: keep the lines apart anyway.
        for r in 0..=rows {
            for k in 1..lines.len() {
                let prev = lines[k - 1].xs[r];
                if lines[k].xs[r] < prev + 0.1 {
                    lines[k].xs[r] = away_from_columns(prev + 0.2);
                }
            }
        }
        for line in &mut lines {
            for x in &mut line.xs {
                *x = at(p.origin[0], d[0], 0) + *x * d[0];
            }
        }
        Layout {
            origin: p.origin,
            d,
            rows,
            lines,
            top,
        }
    }

    fn x(&self, c: usize) -> f64 {
        at(self.origin[0], self.d[0], c)
    }

    fn y(&self, r: usize) -> f64 {
        at(self.origin[1], self.d[1], r)
    }

    /// The canonical intersection of two supporting lines inside strip `j`.
    fn meet(&self, a: Edge, b: Edge, j: usize) -> [f64; 2] {
        match (a, b) {
            (Edge::Row(r), Edge::Col(c)) | (Edge::Col(c), Edge::Row(r)) => [self.x(c), self.y(r)],
            (Edge::Clip(k), Edge::Row(r)) | (Edge::Row(r), Edge::Clip(k)) => {
                [self.lines[k].xs[r], self.y(r)]
            }
            (Edge::Clip(k), Edge::Col(c)) | (Edge::Col(c), Edge::Clip(k)) => {
                let xs = &self.lines[k].xs;
                let (a, b) = (xs[j], xs[j + 1]);
                let t = (self.x(c) - a) / (b - a);
                [self.x(c), self.y(j) + t * (self.y(j + 1) - self.y(j))]
            }
            // Parallel lattice lines or two clip lines never bound the same vertex: clip lines
            // do not cross and each square is cut along lattice lines of both directions.
            _ => [f64::NAN, f64::NAN],
        }
    }

    /// Signed horizontal offset of `p` from clip line `k` in strip `j` (positive: east).
    fn side(&self, k: usize, j: usize, p: [f64; 2]) -> f64 {
        let xs = &self.lines[k].xs;
        let t = (p[1] - self.y(j)) / (self.y(j + 1) - self.y(j));
        p[0] - (xs[j] + t * (xs[j + 1] - xs[j]))
    }

    fn active(&self, k: usize, j: usize) -> bool {
        self.lines[k].strips.contains(&j)
    }

    /// The district of a point of strip `j` (not on a line), or `None` for water.
    fn zone(&self, j: usize, p: [f64; 2]) -> Option<usize> {
        let east_of = |k: usize| self.active(k, j) && self.side(k, j, p) > 0.0;
        let west_of = |k: usize| self.active(k, j) && self.side(k, j, p) < 0.0;
        if west_of(BAY) || east_of(COAST) || (east_of(RIVER_WEST) && west_of(RIVER_EAST)) {
            return None;
        }
        let y = j as f64 / self.rows as f64;
        Some(if west_of(BORDER_WEST) {
            HUANGDAO
        } else if j >= self.top {
            CHENGYANG
        } else if east_of(BORDER_EAST) {
            LAOSHAN
        } else if y < 0.3 {
            SHINAN
        } else if y < 0.55 {
            SHIBEI
        } else {
            LICANG
        })
    }

    /// The land pieces of square (i, j): convex polygons with their districts, west to east.
    fn pieces(&self, i: usize, j: usize) -> Vec<(usize, Ring)> {
        let (x0, x1) = (self.x(i), self.x(i + 1));
        let mut rest = vec![
            Edge::Row(j),
            Edge::Col(i + 1),
            Edge::Row(j + 1),
            Edge::Col(i),
        ];
        let mut out = Vec::new();
        for k in 0..self.lines.len() {
            let xs = &self.lines[k].xs;
            if !self.active(k, j) || xs[j].max(xs[j + 1]) < x0 || xs[j].min(xs[j + 1]) > x1 {
                continue;
            }
            let west = self.clip(&rest, k, j, false);
            rest = self.clip(&rest, k, j, true);
            if !west.is_empty() {
                self.emit(&west, j, &mut out);
            }
        }
        if !rest.is_empty() {
            self.emit(&rest, j, &mut out);
        }
        out
    }

    fn vertices(&self, edges: &[Edge], j: usize) -> Vec<[f64; 2]> {
        let n = edges.len();
        (0..n)
            .map(|e| self.meet(edges[e], edges[(e + 1) % n], j))
            .collect()
    }

    /// Keeps the part of a convex piece east (or west) of clip line `k`.
    fn clip(&self, edges: &[Edge], k: usize, j: usize, keep_east: bool) -> Vec<Edge> {
        let n = edges.len();
        let keep: Vec<bool> = self
            .vertices(edges, j)
            .iter()
            .map(|&v| (self.side(k, j, v) > 0.0) == keep_east)
            .collect();
        if keep.iter().all(|&b| b) {
            return edges.to_vec();
        }
        if !keep.iter().any(|&b| b) {
            return Vec::new();
        }
        // Vertex v is the end of edge v. The kept run starts with the edge after the last
        // dropped vertex and ends with the edge after the last kept vertex; the clip line
        // closes it.
        let enter = (0..n).find(|&v| !keep[v] && keep[(v + 1) % n]).unwrap_or(0);
        let leave = (0..n).find(|&v| keep[v] && !keep[(v + 1) % n]).unwrap_or(0);
        let mut out = Vec::with_capacity(n + 1);
        let mut e = (enter + 1) % n;
        loop {
            out.push(edges[e]);
            if e == (leave + 1) % n {
                break;
            }
            e = (e + 1) % n;
        }
        out.push(Edge::Clip(k));
        out
    }

    /// Turns a piece into a closed ring, with the T-junction vertices that lines ending on
    /// its lattice edges put there, and records it if it is land.
    fn emit(&self, edges: &[Edge], j: usize, out: &mut Vec<(usize, Ring)>) {
        let verts = self.vertices(edges, j);
        let n = verts.len();
        let centre = verts.iter().fold([0.0, 0.0], |s, v| {
            [s[0] + v[0] / n as f64, s[1] + v[1] / n as f64]
        });
        let Some(district) = self.zone(j, centre) else {
            return;
        };
        let mut ring = Vec::with_capacity(n + 3);
        // Edge e runs from vertex e - 1 to vertex e.
        for e in 0..n {
            let (from, to) = (verts[(e + n - 1) % n], verts[e]);
            ring.push(from);
            if let Edge::Row(r) = edges[e] {
                let (lo, hi) = (from[0].min(to[0]), from[0].max(to[0]));
                let mut extra: Vec<f64> = (0..self.lines.len())
                    .filter(|&k| {
                        let l = &self.lines[k];
                        l.strips.contains(&r) || (r > 0 && l.strips.contains(&(r - 1)))
                    })
                    .map(|k| self.lines[k].xs[r])
                    .filter(|&x| x > lo && x < hi)
                    .collect();
                extra.sort_by(f64::total_cmp);
                if to[0] < from[0] {
                    extra.reverse();
                }
                ring.extend(extra.into_iter().map(|x| [x, self.y(r)]));
            }
        }
        ring.push(ring[0]);
        out.push((district, ring));
    }
}

/// Moves a position (in columns) at least 5 % of a column away from every lattice column,
/// so that no clip line passes near a lattice corner and no piece is a sliver.
fn away_from_columns(x: f64) -> f64 {
    let c = x.floor();
    (x - c).clamp(0.05, 0.95) + c
}

/// A realistic city grid: squares of `cell_m` metres near `origin`, clipped to a ragged
/// coastline and a bay (the sea is not in the grid), split along sloped, piecewise district
/// borders; with [`CityParams::water`], also a river that cuts some cells in two
/// (MultiPolygons) and reservoirs that leave holes no cell fills.
///
/// Every cell names its district (real Qingdao districts: 市南区, 市北区, 黄岛区, 崂山区,
/// 李沧区, 城阳区), street office (real names such as 香港中路街道, several per district)
/// and community (such as 湛山社区, about 20-60 cells each). Cell names are
/// `{district code}-{street}-{cell}`, such as `370202-001-0042`, unique. Cells come in
/// lattice order, row by row from the south, west to east within a square.
pub fn city(p: &CityParams) -> Vec<Cell> {
    if p.cols == 0 || p.rows == 0 {
        return Vec::new();
    }
    let layout = Layout::new(p);
    // A street block is a whole number of community blocks, so that a community never
    // straddles two street offices.
    let community_block = 6;
    let street_block = community_block * (p.cols.max(p.rows) / (4 * community_block)).max(2);
    // Squares of one district in one block belong to one street office, and so on down.
    let mut streets: Vec<HashMap<(usize, usize), usize>> = vec![HashMap::new(); DISTRICTS.len()];
    let mut communities: HashMap<(usize, usize, usize), String> = HashMap::new();
    let mut street_cells: HashMap<(usize, usize), usize> = HashMap::new();
    let mut street_names: Vec<HashMap<usize, String>> = vec![HashMap::new(); DISTRICTS.len()];
    let mut used_names: HashSet<String> = HashSet::new();
    let mut community_count = 0;
    let mut rng = SplitMix64(p.seed ^ 0xC0FF_EE00);
    let mut cells = Vec::new();
    let mut full_squares = Vec::new();
    for j in 0..p.rows {
        for i in 0..p.cols {
            let pieces = layout.pieces(i, j);
            let mut districts: Vec<usize> = pieces.iter().map(|(d, _)| *d).collect();
            districts.dedup();
            districts.sort_unstable();
            districts.dedup();
            for d in districts {
                let polygons: Vec<Polygon> = pieces
                    .iter()
                    .filter(|(pd, _)| *pd == d)
                    .map(|(_, ring)| Polygon::new(ring.clone()))
                    .collect();
                let block = (i / street_block, j / street_block);
                let next_street = streets[d].len();
                let street = *streets[d].entry(block).or_insert(next_street);
                let street_name = street_names[d]
                    .entry(street)
                    .or_insert_with(|| {
                        let (district, _, names) = DISTRICTS[d];
                        let base = match names.get(street) {
                            Some(n) => (*n).to_string(),
                            None => {
                                let stem =
                                    COMMUNITY_STEMS[(street * 7 + d) % COMMUNITY_STEMS.len()];
                                format!("{stem}路街道")
                            }
                        };
                        unique(base, district, &mut used_names)
                    })
                    .clone();
                let key = (d, i / community_block, j / community_block);
                let community = communities.entry(key).or_insert_with(|| {
                    let stem = COMMUNITY_STEMS[community_count % COMMUNITY_STEMS.len()];
                    let round = community_count / COMMUNITY_STEMS.len();
                    community_count += 1;
                    if round == 0 {
                        format!("{stem}社区")
                    } else {
                        format!("{stem}{}社区", round + 1)
                    }
                });
                let number = street_cells.entry((d, street)).or_insert(0);
                *number += 1;
                let (district, code, _) = DISTRICTS[d];
                let whole = polygons.len() == 1
                    && polygons[0].exterior.len() == 5
                    && polygons[0].exterior.iter().all(|v| {
                        (v[0] == layout.x(i) || v[0] == layout.x(i + 1))
                            && (v[1] == layout.y(j) || v[1] == layout.y(j + 1))
                    });
                if whole {
                    full_squares.push(cells.len());
                }
                cells.push(
                    Cell::new(format!("{code}-{:03}-{:04}", street + 1, number), polygons)
                        .with_parents(community.clone(), street_name, district),
                );
            }
        }
    }
    // Reservoirs: holes in some whole squares, well inside them, filled by no cell.
    let reservoirs = if p.water {
        (p.cols * p.rows / 1200).max(3).min(full_squares.len())
    } else {
        0
    };
    for _ in 0..reservoirs {
        let pick = full_squares.swap_remove(rng.below(full_squares.len()));
        let Some(poly) = cells[pick].polygons.first_mut() else {
            continue;
        };
        let [lo, _, hi, ..] = poly.exterior[..] else {
            continue;
        };
        let c = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        let r = [(hi[0] - lo[0]) * 0.3, (hi[1] - lo[1]) * 0.3];
        // Clockwise, as GeoJSON wants holes.
        let mut hole: Ring = (0..8)
            .map(|k| {
                let a = -(k as f64) * std::f64::consts::FRAC_PI_4;
                [c[0] + r[0] * a.cos(), c[1] + r[1] * a.sin()]
            })
            .collect();
        hole.push(hole[0]);
        poly.holes.push(hole);
    }
    cells
}

/// `name`, or `name` with the district prefixed (and then a number) if already taken.
fn unique(name: String, district: &str, used: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 1;
    while used.contains(&candidate) {
        n += 1;
        candidate = format!("{}{}{}", district.trim_end_matches('区'), n, name);
    }
    used.insert(candidate.clone());
    candidate
}

/// `n` test points `[lon, lat]` for `grid`, seeded: a mix of points uniform in the
/// bounding box, exactly on shared edges (any point of an axis-aligned edge, vertices of
/// sloped ones), exactly on vertices, 1e-12 degrees off edges and vertices on either side,
/// inside holes, inside random cells' envelopes and outside the grid. All within WGS84
/// range.
pub fn points(grid: &Grid, n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut rng = SplitMix64(seed);
    let [x0, y0, x1, y1] = grid.bounds();
    let (w, h) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let cells = grid.cells();
    let holes: Vec<&Ring> = cells
        .iter()
        .flat_map(|c| &c.polygons)
        .flat_map(|p| &p.holes)
        .collect();
    let vertex = |rng: &mut SplitMix64| -> ([f64; 2], [f64; 2]) {
        let cell = &cells[rng.below(cells.len())];
        let poly = &cell.polygons[rng.below(cell.polygons.len())];
        let rings: Vec<&Ring> = poly.rings().collect();
        let ring = rings[rng.below(rings.len())];
        let k = rng.below(ring.len().saturating_sub(1).max(1));
        (ring[k], ring[(k + 1).min(ring.len() - 1)])
    };
    let on_edge = |rng: &mut SplitMix64| -> [f64; 2] {
        let (a, b) = vertex(rng);
        let u = rng.unit();
        if a[0] == b[0] {
            [a[0], a[1] + u * (b[1] - a[1])]
        } else if a[1] == b[1] {
            [a[0] + u * (b[0] - a[0]), a[1]]
        } else {
            a
        }
    };
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let p = match k % 10 {
            0..=3 => [
                x0 - 0.01 * w + rng.unit() * 1.02 * w,
                y0 - 0.01 * h + rng.unit() * 1.02 * h,
            ],
            4 => on_edge(&mut rng),
            5 => vertex(&mut rng).0,
            6 => {
                let base = if rng.unit() < 0.5 {
                    on_edge(&mut rng)
                } else {
                    vertex(&mut rng).0
                };
                let mut nudge = || [-1e-12, 0.0, 1e-12][rng.below(3)];
                [base[0] + nudge(), base[1] + nudge()]
            }
            7 if !holes.is_empty() => {
                let hole = holes[rng.below(holes.len())];
                let m = hole.len().saturating_sub(1).max(1) as f64;
                let c = hole
                    .iter()
                    .skip(1)
                    .fold([0.0, 0.0], |s, v| [s[0] + v[0] / m, s[1] + v[1] / m]);
                let v = hole[0];
                let t = rng.range(0.0, 0.5);
                [c[0] + t * (v[0] - c[0]), c[1] + t * (v[1] - c[1])]
            }
            8 => {
                let t = rng.range(0.01, 0.2);
                match rng.below(4) {
                    0 => [x0 - t * w, y0 + rng.unit() * h],
                    1 => [x1 + t * w, y0 + rng.unit() * h],
                    2 => [x0 + rng.unit() * w, y0 - t * h],
                    _ => [x0 + rng.unit() * w, y1 + t * h],
                }
            }
            _ => {
                let id = rng.below(cells.len());
                let b = super::CellId::from_index(id)
                    .and_then(|c| grid.cell_bounds(c))
                    .unwrap_or([x0, y0, x1, y1]);
                [
                    b[0] + rng.unit() * (b[2] - b[0]),
                    b[1] + rng.unit() * (b[3] - b[1]),
                ]
            }
        };
        out.push([p[0].clamp(-180.0, 180.0), p[1].clamp(-90.0, 90.0)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    type Key = ([u64; 2], [u64; 2]);

    fn key(a: [f64; 2], b: [f64; 2]) -> Key {
        let (a, b) = (
            [a[0].to_bits(), a[1].to_bits()],
            [b[0].to_bits(), b[1].to_bits()],
        );
        if a <= b { (a, b) } else { (b, a) }
    }

    /// Every segment of every ring, with the cells that use it. Panics if a segment is used
    /// more than twice or twice by one cell.
    fn shared_segments(cells: &[Cell]) -> HashMap<Key, Vec<usize>> {
        let mut seen: HashMap<Key, Vec<usize>> = HashMap::new();
        for (c, cell) in cells.iter().enumerate() {
            for ring in cell.polygons.iter().flat_map(|p| p.rings()) {
                for w in ring.windows(2) {
                    if w[0] != w[1] {
                        seen.entry(key(w[0], w[1])).or_default().push(c);
                    }
                }
            }
        }
        for (k, users) in &seen {
            assert!(users.len() <= 2, "segment {k:?} used by {users:?}");
            if let [a, b] = users[..] {
                assert_ne!(a, b, "cell {} uses a segment twice", cells[a].name);
            }
        }
        seen
    }

    /// Segments used by one cell only: they must form closed loops (every endpoint has even
    /// degree), or a neighbour's edge does not match.
    fn assert_boundary_closed(seen: &HashMap<Key, Vec<usize>>) {
        let mut degree: HashMap<[u64; 2], usize> = HashMap::new();
        for ((a, b), users) in seen {
            if users.len() == 1 {
                *degree.entry(*a).or_default() += 1;
                *degree.entry(*b).or_default() += 1;
            }
        }
        let odd = degree.values().filter(|d| *d % 2 == 1).count();
        assert_eq!(odd, 0, "boundary has {odd} loose ends");
    }

    fn covering(grid: &Grid, p: [f64; 2]) -> usize {
        let loc = Location::new(p[0], p[1]).unwrap();
        grid.cells_near(p, p)
            .filter(|&c| grid.covers(c, loc))
            .count()
    }

    fn assert_locate_agrees(grid: &Grid, n: usize, seed: u64) {
        let pts: Vec<Location> = points(grid, n, seed)
            .into_iter()
            .map(|[x, y]| Location::new(x, y).unwrap())
            .collect();
        let mut many = Vec::new();
        grid.locate_many(&pts, &mut many);
        let (mut inside, mut outside) = (0, 0);
        for (p, m) in pts.iter().zip(&many) {
            let want = grid.locate_brute_force(*p);
            assert_eq!(grid.locate(*p), want, "{p:?}");
            assert_eq!(*m, want, "{p:?}");
            if want.is_some() {
                inside += 1
            } else {
                outside += 1
            }
        }
        assert!(
            inside > n / 3 && outside > n / 20,
            "{inside} in, {outside} out"
        );
    }

    #[test]
    fn lattice_is_exact_and_gapless() {
        let cells = lattice([120.0, 36.0], 23, 17, [0.013, 0.007]);
        let seen = shared_segments(&cells);
        let interior = seen.values().filter(|u| u.len() == 2).count();
        assert_eq!(interior, 22 * 17 + 23 * 16);
        assert_boundary_closed(&seen);
        let grid = Grid::new(cells).unwrap();
        let [x0, y0, x1, y1] = grid.bounds();
        let mut rng = SplitMix64(3);
        for _ in 0..2000 {
            let p = [rng.range(x0, x1), rng.range(y0, y1)];
            assert_eq!(covering(&grid, p), 1, "{p:?}");
        }
        assert_locate_agrees(&grid, 4000, 11);
    }

    #[test]
    fn irregular_is_exact_and_gapless() {
        let cells = irregular(30, 20, 5, [120.0, 36.0], [0.01, 0.008]);
        let sizes: Vec<usize> = cells
            .iter()
            .map(|c| c.polygons[0].exterior.len() - 1)
            .collect();
        assert!(sizes.iter().all(|&s| (20..=40).contains(&s)), "{sizes:?}");
        let seen = shared_segments(&cells);
        assert_boundary_closed(&seen);
        let grid = Grid::new(cells).unwrap();
        let [x0, y0, x1, y1] = grid.bounds();
        // Away from the ragged outer border every point is in exactly one cell.
        let mut rng = SplitMix64(4);
        for _ in 0..2000 {
            let p = [
                rng.range(x0 + 0.02, x1 - 0.02),
                rng.range(y0 + 0.02, y1 - 0.02),
            ];
            assert_eq!(covering(&grid, p), 1, "{p:?}");
        }
        assert_locate_agrees(&grid, 4000, 12);
        assert_eq!(
            irregular(30, 20, 5, [120.0, 36.0], [0.01, 0.008]),
            grid.cells()
        );
    }

    fn check_city(params: &CityParams, samples: usize) -> Grid {
        let cells = city(params);
        assert_eq!(cells, city(params), "deterministic");
        let seen = shared_segments(&cells);
        assert_boundary_closed(&seen);
        let grid = Grid::new(cells).unwrap();
        // Land is covered exactly once; sea, river and reservoirs not at all.
        let layout = Layout::new(params);
        let holes: Vec<&Ring> = grid
            .cells()
            .iter()
            .flat_map(|c| &c.polygons)
            .flat_map(|p| &p.holes)
            .collect();
        let in_hole = |p: [f64; 2]| {
            holes.iter().any(|h| {
                h.windows(2)
                    .all(|w| crate::grid::geometry::orient(w[0], w[1], p) < 0.0)
            })
        };
        let mut rng = SplitMix64(params.seed);
        let (mut land, mut water) = (0, 0);
        for _ in 0..samples {
            let (i, j) = (rng.below(params.cols), rng.below(params.rows));
            let p = [
                layout.x(i) + rng.unit() * layout.d[0],
                layout.y(j) + rng.unit() * layout.d[1],
            ];
            let want = usize::from(layout.zone(j, p).is_some() && !in_hole(p));
            assert_eq!(covering(&grid, p), want, "{p:?} in square ({i}, {j})");
            if want == 1 { land += 1 } else { water += 1 }
        }
        assert!(land > samples / 2 && water > samples / 20, "{land} {water}");
        grid
    }

    #[test]
    fn demo_city_is_exact_realistic_and_complete() {
        let params = CityParams::demo();
        let grid = check_city(&params, 20_000);
        let cells = grid.cells();
        assert!((2500..4000).contains(&cells.len()), "{}", cells.len());
        let multi = cells.iter().filter(|c| c.polygons.len() > 1).count();
        let holed = cells
            .iter()
            .filter(|c| c.polygons.iter().any(|p| !p.holes.is_empty()))
            .count();
        let irregular = cells
            .iter()
            .filter(|c| c.polygons.len() > 1 || c.polygons[0].exterior.len() != 5)
            .count();
        // No inland water: the land is covered edge to edge (横到边、纵到底、全覆盖).
        assert_eq!((multi, holed), (0, 0));
        assert!(irregular > cells.len() / 20, "{irregular} irregular cells");
        let audit = grid.audit(None);
        assert!(audit.is_clean(), "{audit}");
        // Every district appears, each with several street offices, communities of 20-60 cells.
        let mut per_district: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut per_community: HashMap<&str, usize> = HashMap::new();
        let mut street_of: HashMap<&str, &str> = HashMap::new();
        for c in cells {
            let (d, s, m) = (
                c.district.as_deref().unwrap(),
                c.street.as_deref().unwrap(),
                c.community.as_deref().unwrap(),
            );
            per_district.entry(d).or_default().insert(s);
            *per_community.entry(m).or_default() += 1;
            assert_eq!(
                *street_of.entry(m).or_insert(s),
                s,
                "community {m} in two streets"
            );
            assert!(
                c.name
                    .starts_with(DISTRICTS.iter().find(|x| x.0 == d).unwrap().1)
            );
        }
        assert_eq!(per_district.len(), 6, "{per_district:?}");
        assert!(
            per_district.values().all(|s| s.len() >= 2),
            "{per_district:?}"
        );
        let big = per_community
            .values()
            .filter(|&&n| (20..=60).contains(&n))
            .count();
        assert!(big * 2 > per_community.len(), "{per_community:?}");
        assert!(per_community.contains_key("湛山社区"));
        assert_locate_agrees(&grid, 5000, 13);
        assert_eq!(demo_grid().cells(), grid.cells());
    }

    #[test]
    fn water_cuts_cells_in_two_and_leaves_holes() {
        let params = CityParams {
            cols: 80,
            rows: 80,
            water: true,
            ..CityParams::demo()
        };
        let grid = check_city(&params, 20_000);
        let cells = grid.cells();
        let multi = cells.iter().filter(|c| c.polygons.len() > 1).count();
        let holed = cells
            .iter()
            .filter(|c| c.polygons.iter().any(|p| !p.holes.is_empty()))
            .count();
        assert!((3..=80).contains(&multi), "{multi} multipolygons");
        assert!(holed >= 3, "{holed} holed cells");
        // The river and the reservoirs are enclosed and uncovered: gaps, and nothing else.
        let audit = grid.audit(None);
        assert!(
            audit.overlaps.is_empty() && audit.invalid.is_empty(),
            "{audit}"
        );
        assert!(audit.gaps.len() >= holed, "{audit}");
        assert_locate_agrees(&grid, 5000, 17);
    }

    #[test]
    fn small_and_odd_cities_are_valid() {
        for (cols, rows, seed) in [
            (8, 8, 1),
            (13, 29, 2),
            (31, 9, 3),
            (3, 12, 4),
            (8, 8, 5),
            (8, 8, 6),
        ] {
            let params = CityParams {
                seed,
                cols,
                rows,
                ..CityParams::demo()
            };
            let grid = check_city(&params, 3000);
            assert_locate_agrees(&grid, 2000, seed);
        }
        assert!(
            city(&CityParams {
                cols: 0,
                ..CityParams::demo()
            })
            .is_empty()
        );
    }
}
