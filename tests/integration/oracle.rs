//! Two oracles for `locate`, sharing no code with the crate.
//!
//! - [`first_covering`]: exact point-in-cell by its own arithmetic. Every `f64` is an
//!   integer times a power of two, so the orientation determinant is computed on integers
//!   scaled to a common exponent (`i128` when they fit, a small big integer otherwise),
//!   never rounded. A polygon covers a point that lies on any of its rings' segments
//!   (hole boundaries included) or has a non-zero winding number around its exterior and
//!   zero around every hole.
//! - [`GeoCells`]: `geo`'s `Intersects` (closed area) and `Contains` (interior only) on
//!   `geo::Polygon`s built from the same rings.
//!
//! Both answer the crate's rule: the first cell in input order whose closed area covers
//! the point.

use std::cmp::Ordering;

use geo::{Contains, Intersects, LineString, Point};
use wangge::{Cell, Location};

/// Where a point lies with respect to one polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the interior.
    Inside,
    /// On a ring of the exterior or of a hole.
    Boundary,
    /// Neither.
    Outside,
}

/// The first cell of `cells` whose closed area covers `p`, by exact arithmetic.
pub fn first_covering(cells: &[Cell], p: Location) -> Option<usize> {
    cells.iter().position(|c| covers(c, p))
}

/// Whether the closed area of `cell` covers `p`, by exact arithmetic.
pub fn covers(cell: &Cell, p: Location) -> bool {
    let p = [p.lon(), p.lat()];
    cell.polygons
        .iter()
        .any(|poly| place(&poly.exterior, &poly.holes, p) != Place::Outside)
}

/// Where `p` lies with respect to the polygon `exterior` less `holes`, exactly.
pub fn place(exterior: &[[f64; 2]], holes: &[Vec<[f64; 2]>], p: [f64; 2]) -> Place {
    // Off the exterior's closed bounding box: outside, without an orientation.
    for k in 0..2 {
        if exterior.iter().all(|v| v[k] < p[k]) || exterior.iter().all(|v| v[k] > p[k]) {
            return Place::Outside;
        }
    }
    match ring_place(exterior, p) {
        Place::Inside => {}
        other => return other,
    }
    let mut in_hole = false;
    for hole in holes {
        match ring_place(hole, p) {
            Place::Boundary => return Place::Boundary,
            Place::Inside => in_hole = true,
            Place::Outside => {}
        }
    }
    if in_hole {
        Place::Outside
    } else {
        Place::Inside
    }
}

/// `p` against one closed ring (first vertex repeated last): on a segment, else by the
/// winding number.
fn ring_place(ring: &[[f64; 2]], p: [f64; 2]) -> Place {
    let between = |u: f64, v: f64, w: f64| u.min(v) <= w && w <= u.max(v);
    let mut winding = 0i64;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let o = orientation(a, b, p);
        if o == Ordering::Equal && between(a[0], b[0], p[0]) && between(a[1], b[1], p[1]) {
            return Place::Boundary;
        }
        if a[1] <= p[1] {
            if b[1] > p[1] && o == Ordering::Greater {
                winding += 1;
            }
        } else if b[1] <= p[1] && o == Ordering::Less {
            winding -= 1;
        }
    }
    if winding != 0 {
        Place::Inside
    } else {
        Place::Outside
    }
}

/// The exact sign of `(b - a) x (c - a)`: `Greater` if `c` lies left of `a -> b`.
pub fn orientation(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> Ordering {
    let parts = [a[0], a[1], b[0], b[1], c[0], c[1]].map(split);
    let Some(low) = parts.iter().filter(|s| s.1 != 0).map(|s| s.2).min() else {
        return Ordering::Equal;
    };
    let width = parts
        .iter()
        .filter(|s| s.1 != 0)
        .map(|s| 64 - s.1.leading_zeros() as i32 + (s.2 - low))
        .max()
        .unwrap_or(0);
    if width <= 62 {
        // |v| < 2^62: differences < 2^63, products < 2^126, their difference < 2^127.
        let v = parts.map(|(neg, m, e)| {
            // A zero's exponent may lie below `low`: it is no shift, just zero.
            let v = if m == 0 {
                0
            } else {
                i128::from(m) << (e - low)
            };
            if neg { -v } else { v }
        });
        let det = (v[2] - v[0]) * (v[5] - v[1]) - (v[3] - v[1]) * (v[4] - v[0]);
        det.cmp(&0)
    } else {
        orientation_big(a, b, c)
    }
}

/// [`orientation`] always by big integers (public so that the two paths can be compared).
pub fn orientation_big(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> Ordering {
    let parts = [a[0], a[1], b[0], b[1], c[0], c[1]].map(split);
    let low = parts
        .iter()
        .filter(|s| s.1 != 0)
        .map(|s| s.2)
        .min()
        .unwrap_or(0);
    let v = parts.map(|(neg, m, e)| Big::scaled(neg, m, if m == 0 { 0 } else { (e - low) as u32 }));
    let det = v[2]
        .sub(&v[0])
        .mul(&v[5].sub(&v[1]))
        .sub(&v[3].sub(&v[1]).mul(&v[4].sub(&v[0])));
    det.sign()
}

/// `x` as (negative, mantissa, exponent) with `x = ±mantissa * 2^exponent` exactly.
fn split(x: f64) -> (bool, u64, i32) {
    assert!(x.is_finite(), "{x}");
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 {
        (bits >> 63 == 1, frac, -1074)
    } else {
        (bits >> 63 == 1, frac | 1 << 52, exp - 1075)
    }
}

/// A signed integer of any size: sign and little-endian 32-bit limbs, no top zero limb.
#[derive(Debug, Clone)]
struct Big {
    neg: bool,
    mag: Vec<u32>,
}

impl Big {
    fn new(neg: bool, mut mag: Vec<u32>) -> Big {
        while mag.last() == Some(&0) {
            mag.pop();
        }
        Big {
            neg: neg && !mag.is_empty(),
            mag,
        }
    }

    /// `±m * 2^shift`.
    fn scaled(neg: bool, m: u64, shift: u32) -> Big {
        let mut mag = vec![0; (shift / 32) as usize];
        let wide = u128::from(m) << (shift % 32);
        mag.extend([wide as u32, (wide >> 32) as u32, (wide >> 64) as u32]);
        Big::new(neg, mag)
    }

    fn sign(&self) -> Ordering {
        match (self.mag.is_empty(), self.neg) {
            (true, _) => Ordering::Equal,
            (false, true) => Ordering::Less,
            (false, false) => Ordering::Greater,
        }
    }

    fn cmp_mag(a: &[u32], b: &[u32]) -> Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn add_mag(a: &[u32], b: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0u64;
        for i in 0..a.len().max(b.len()) {
            let s = u64::from(*a.get(i).unwrap_or(&0)) + u64::from(*b.get(i).unwrap_or(&0)) + carry;
            out.push(s as u32);
            carry = s >> 32;
        }
        out.push(carry as u32);
        out
    }

    /// `a - b` for `a >= b`.
    fn sub_mag(a: &[u32], b: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(a.len());
        let mut borrow = 0i64;
        for (i, &x) in a.iter().enumerate() {
            let mut d = i64::from(x) - i64::from(*b.get(i).unwrap_or(&0)) - borrow;
            borrow = i64::from(d < 0);
            if d < 0 {
                d += 1 << 32;
            }
            out.push(d as u32);
        }
        out
    }

    fn add(&self, o: &Big) -> Big {
        if self.neg == o.neg {
            return Big::new(self.neg, Big::add_mag(&self.mag, &o.mag));
        }
        match Big::cmp_mag(&self.mag, &o.mag) {
            Ordering::Less => Big::new(o.neg, Big::sub_mag(&o.mag, &self.mag)),
            _ => Big::new(self.neg, Big::sub_mag(&self.mag, &o.mag)),
        }
    }

    fn sub(&self, o: &Big) -> Big {
        self.add(&Big::new(!o.neg, o.mag.clone()))
    }

    fn mul(&self, o: &Big) -> Big {
        let mut out = vec![0u32; self.mag.len() + o.mag.len() + 1];
        for (i, &x) in self.mag.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in o.mag.iter().enumerate() {
                let t = u64::from(x) * u64::from(y) + u64::from(out[i + j]) + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + o.mag.len();
            while carry > 0 {
                let t = u64::from(out[k]) + carry;
                out[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        Big::new(self.neg != o.neg, out)
    }
}

/// The cells as `geo` polygons, in input order.
pub struct GeoCells(Vec<Vec<geo::Polygon<f64>>>);

impl GeoCells {
    /// Builds one `geo::Polygon` per polygon of every cell.
    pub fn new(cells: &[Cell]) -> GeoCells {
        let line = |ring: &[[f64; 2]]| {
            LineString::from(ring.iter().map(|&[x, y]| (x, y)).collect::<Vec<_>>())
        };
        GeoCells(
            cells
                .iter()
                .map(|c| {
                    c.polygons
                        .iter()
                        .map(|p| {
                            geo::Polygon::new(
                                line(&p.exterior),
                                p.holes.iter().map(|h| line(h)).collect(),
                            )
                        })
                        .collect()
                })
                .collect(),
        )
    }

    /// The first cell whose polygons `geo` says intersect `p` (boundary included).
    pub fn first_covering(&self, p: Location) -> Option<usize> {
        let point = Point::new(p.lon(), p.lat());
        self.0
            .iter()
            .position(|polys| polys.iter().any(|poly| poly.intersects(&point)))
    }

    /// Where `geo` puts `p` with respect to polygon `k` of cell `cell`: `Contains` is the
    /// interior, `Intersects` without `Contains` the boundary.
    pub fn place(&self, cell: usize, k: usize, p: [f64; 2]) -> Place {
        let poly = &self.0[cell][k];
        let point = Point::new(p[0], p[1]);
        match (poly.contains(&point), poly.intersects(&point)) {
            (true, _) => Place::Inside,
            (false, true) => Place::Boundary,
            (false, false) => Place::Outside,
        }
    }
}

#[test]
fn orientation_is_exact_where_floats_are_not() {
    use Ordering::{Equal, Greater, Less};
    // Collinear by construction, though the float determinant of these is not zero.
    assert_eq!(orientation([0.5, 0.5], [12.0, 12.0], [24.0, 24.0]), Equal);
    let up = |x: f64| f64::from_bits(x.to_bits() + 1);
    assert_eq!(
        orientation([0.5, 0.5], [12.0, 12.0], [24.0, up(24.0)]),
        Greater
    );
    assert_eq!(
        orientation([0.5, 0.5], [12.0, 12.0], [up(24.0), 24.0]),
        Less
    );
    assert_eq!(orientation([0.1, 0.2], [0.3, 0.4], [0.1, 0.2]), Equal);
    // Exponents a thousand powers of two apart: the big-integer path.
    let tiny = 1e-300;
    assert_eq!(orientation([0.0, 0.0], [tiny, tiny], [1.0, 1.0]), Equal);
    assert_eq!(
        orientation([0.0, 0.0], [tiny, tiny], [1.0, up(1.0)]),
        Greater
    );
    assert_eq!(
        orientation([tiny, 0.0], [1.0, 0.0], [5e-324, -5e-324]),
        Less
    );
    assert_eq!(
        orientation([-120.0, 36.0], [tiny, -tiny], [0.0, 0.0]),
        Greater
    );
}

#[test]
fn both_orientation_paths_agree() {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut signs = [0usize; 3];
    for _ in 0..20_000 {
        // Coordinates on a coarse lattice (many collinear triples), some an ulp off.
        let mut c = [0.0; 6];
        for x in &mut c {
            let r = next();
            *x = 120.0 + (r % 7) as f64 * 0.125 - 0.25;
            if r >> 60 == 0 {
                *x = f64::from_bits(x.to_bits() + 1);
            }
        }
        let (a, b, p) = ([c[0], c[1]], [c[2], c[3]], [c[4], c[5]]);
        let o = orientation(a, b, p);
        assert_eq!(o, orientation_big(a, b, p), "{a:?} {b:?} {p:?}");
        signs[(o as i8 + 1) as usize] += 1;
    }
    assert!(signs.iter().all(|&n| n > 1000), "{signs:?}");
}

#[test]
fn places_worked_out_by_hand() {
    let square = vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]];
    let hole = vec![[0.5, 0.5], [0.5, 1.5], [1.5, 1.5], [1.5, 0.5], [0.5, 0.5]];
    let holes = vec![hole];
    for (p, want) in [
        ([1.0, 0.25], Place::Inside),
        ([1.0, 1.0], Place::Outside),  // in the hole
        ([0.5, 1.0], Place::Boundary), // on the hole's edge
        ([1.5, 1.5], Place::Boundary), // the hole's vertex
        ([2.0, 1.0], Place::Boundary),
        ([0.0, 0.0], Place::Boundary),
        ([2.0, 2.5], Place::Outside),
        ([-1.0, 0.0], Place::Outside), // on the line of the bottom edge, beyond it
        ([f64::from_bits(2.0f64.to_bits() + 1), 1.0], Place::Outside),
    ] {
        assert_eq!(place(&square, &holes, p), want, "{p:?}");
    }
    // A sloped edge: the point on it exactly, and an ulp to each side.
    let tri = vec![[0.0, 0.0], [3.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
    assert_eq!(place(&tri, &[], [1.5, 0.5]), Place::Boundary);
    assert_eq!(
        place(&tri, &[], [1.5, f64::from_bits(0.5f64.to_bits() + 1)]),
        Place::Inside
    );
    assert_eq!(
        place(&tri, &[], [1.5, f64::from_bits(0.5f64.to_bits() - 1)]),
        Place::Outside
    );
}
