//! Duty lists (职责清单) and admission (职责准入): which unit holds a case, and why.
//!
//! ```text
//!   cell ─► community: on its list? ── yes ─► held by the community (its grid workers)
//!                │ no (below the category's level / not on the list / removed)
//!                ▼
//!           street office: on its list? ── yes ─► held by the street office's platform organ
//!                │ no
//!                ▼
//!           referred to the district department that owns the category, with both refusals
//! ```
//!
//! Work is never pushed down: a category whose level is above the community (or off the
//! community's list) is not given to it, whatever the cell. Every answer is computed when
//! the city is built, one per community and category, so [`City::admit`] is two table
//! reads and its trace is a small `Copy` value; names are looked up only when the trace is
//! displayed ([`City::explain`]).

use super::config::DutyLevel;
use super::ids::{CategoryId, DepartmentId, OrganId, UnitId};
use super::model::{Category, City, Unit, UnitKind, unit_offset};

/// Where a case goes: the unit that holds the duty, or the department it is referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    /// The cell's community holds it (its grid workers take the case).
    Community(UnitId),
    /// The cell's street office holds it, through the organ that owns the category's
    /// platform.
    Street {
        /// The street office.
        street: UnitId,
        /// Its organ for the category's platform.
        organ: OrganId,
    },
    /// No unit on the chain may hold it: referred to the district department that owns it.
    Department(DepartmentId),
}

/// Why a unit did not take a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The catalogue puts the duty at this level, above the unit: it is never pushed down.
    AboveUnit(DutyLevel),
    /// The category is not on the unit's level duty list.
    NotOnList,
    /// The unit's own override takes the category off its list.
    Removed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::AboveUnit(level) => {
                write!(f, "the duty sits at {level} level and is never pushed down")
            }
            Refusal::NotOnList => f.write_str("not on its duty list"),
            Refusal::Removed => f.write_str("taken off its duty list by its override"),
        }
    }
}

/// Which rule decided an admission. Small and `Copy`; display it (with ids) directly or
/// with names through [`City::explain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdmissionTrace {
    /// The community's duty list holds the category.
    CommunityList {
        /// Whether the community's own override added it.
        by_override: bool,
    },
    /// The community refused; the street office's list holds it.
    StreetList {
        /// The community that refused.
        community: UnitId,
        /// Why.
        refusal: Refusal,
        /// Whether the street office's own override added it.
        by_override: bool,
    },
    /// Both refused; the case is referred to the department that owns the category.
    Referred {
        /// The community that refused.
        community: UnitId,
        /// Why it refused.
        community_refusal: Refusal,
        /// The street office that refused.
        street: UnitId,
        /// Why it refused.
        street_refusal: Refusal,
    },
}

/// The answer of [`City::admit`]: who holds the case, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Admission {
    /// The category admitted.
    pub category: CategoryId,
    /// Who holds it.
    pub holder: Holder,
    /// The rule that decided.
    pub trace: AdmissionTrace,
}

impl Admission {
    /// Whether the case leaves the street level for a district department (立案 refers it).
    pub fn is_referral(&self) -> bool {
        matches!(self.holder, Holder::Department(_))
    }
}

impl std::fmt::Display for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |n: Name| n.to_string();
        write_admission(f, self, &names)
    }
}

/// A name to print: a unit, organ or department (by id without a city, by name with one).
#[derive(Debug, Clone, Copy)]
enum Name {
    Unit(UnitId),
    Organ(OrganId),
    Department(DepartmentId),
    Category(CategoryId),
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Unit(id) => id.fmt(f),
            Name::Organ(id) => id.fmt(f),
            Name::Department(id) => id.fmt(f),
            Name::Category(id) => id.fmt(f),
        }
    }
}

fn write_admission(
    f: &mut std::fmt::Formatter<'_>,
    a: &Admission,
    name: &dyn Fn(Name) -> String,
) -> std::fmt::Result {
    let listed = |by_override: bool| {
        if by_override {
            "added by its override"
        } else {
            "on its duty list"
        }
    };
    write!(f, "{}: ", name(Name::Category(a.category)))?;
    match (a.holder, a.trace) {
        (Holder::Community(c), AdmissionTrace::CommunityList { by_override }) => write!(
            f,
            "held by community {} ({})",
            name(Name::Unit(c)),
            listed(by_override)
        ),
        (
            Holder::Street { street, organ },
            AdmissionTrace::StreetList {
                community,
                refusal,
                by_override,
            },
        ) => write!(
            f,
            "community {} refused ({refusal}); held by street office {} ({}), organ {}",
            name(Name::Unit(community)),
            name(Name::Unit(street)),
            listed(by_override),
            name(Name::Organ(organ)),
        ),
        (
            Holder::Department(d),
            AdmissionTrace::Referred {
                community,
                community_refusal,
                street,
                street_refusal,
            },
        ) => write!(
            f,
            "community {} refused ({community_refusal}); street office {} refused \
             ({street_refusal}); referred to district department {}",
            name(Name::Unit(community)),
            name(Name::Unit(street)),
            name(Name::Department(d)),
        ),
        (holder, trace) => write!(f, "{holder:?} by {trace:?}"),
    }
}

/// An admission displayed with the names of the units, organ and department.
#[derive(Debug, Clone, Copy)]
pub struct Explained<'a> {
    city: &'a City,
    admission: Admission,
}

impl std::fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.city;
        let name = |n: Name| -> String {
            let found = match n {
                Name::Unit(id) => c.unit(id).map(|u| u.name.as_str()),
                Name::Organ(id) => c.organ(id).map(|o| o.name.as_str()),
                Name::Department(id) => c.department(id).map(|d| d.name.as_str()),
                Name::Category(id) => c.category(id).map(|k| k.name.as_str()),
            };
            match (n, found) {
                (Name::Category(id), Some(s)) => {
                    format!("{} {s}", c.categories[id.index()].code)
                }
                (_, Some(s)) => s.to_string(),
                (n, None) => n.to_string(),
            }
        };
        write_admission(f, &self.admission, &name)
    }
}

impl City {
    /// `admission` with names, for the command center: "community X refused (the duty
    /// sits at street office level and is never pushed down); held by street office Y".
    pub fn explain(&self, admission: &Admission) -> Explained<'_> {
        Explained {
            city: self,
            admission: *admission,
        }
    }
}

/// The duty list of one street office or community, after its override.
#[derive(Debug, Clone, Copy)]
pub struct DutyList<'a> {
    city: &'a City,
    unit: UnitId,
    bits: &'a [u64],
    removed: &'a [u64],
}

impl<'a> DutyList<'a> {
    /// The unit whose list this is.
    pub fn unit(&self) -> UnitId {
        self.unit
    }

    /// Whether the list holds `category`.
    #[inline]
    pub fn contains(&self, category: CategoryId) -> bool {
        bit(self.bits, category.index())
    }

    /// Why the unit does not hold `category` (`None` if it does, or for an unknown
    /// category).
    pub fn refusal(&self, category: CategoryId) -> Option<Refusal> {
        let cat = self.city.category(category)?;
        if self.contains(category) {
            return None;
        }
        let unit_level = match self.city.unit(self.unit)?.kind {
            UnitKind::Street => DutyLevel::Street,
            _ => DutyLevel::Community,
        };
        Some(refusal(
            cat.level,
            unit_level,
            bit(self.removed, category.index()),
        ))
    }

    /// The categories on the list, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = CategoryId> + 'a {
        let bits = self.bits;
        (0..self.city.categories.len())
            .filter(move |&i| bit(bits, i))
            .map(|i| CategoryId(i as u32))
    }

    /// Number of categories on the list.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a unit at `unit_level` does not hold a category at `level` that is not on its list,
/// `removed` saying whether its own override took it off. Precedence: a duty above the
/// unit is refused for that reason even if the override also removes it; then the
/// override; else it simply is not listed. Both the precomputed traces and
/// [`DutyList::refusal`] answer with this one rule.
pub(crate) fn refusal(level: DutyLevel, unit_level: DutyLevel, removed: bool) -> Refusal {
    if level > unit_level {
        Refusal::AboveUnit(level)
    } else if removed {
        Refusal::Removed
    } else {
        Refusal::NotOnList
    }
}

#[inline]
fn bit(words: &[u64], i: usize) -> bool {
    words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
}

/// What the admission precompute reads from the city being built.
pub(crate) struct Precompute<'a> {
    /// All units, laid out by kind.
    pub(crate) units: &'a [Unit],
    /// The communities' range in `units`.
    pub(crate) communities: std::ops::Range<usize>,
    /// The catalogue.
    pub(crate) categories: &'a [Category],
    /// Per unit, its organ of each platform.
    pub(crate) platform_organs: &'a [[OrganId; 4]],
    /// The department that owns a category in a district, if any.
    pub(crate) owner: &'a dyn Fn(usize, UnitId) -> Option<DepartmentId>,
}

/// Duty lists as bitsets per unit, and the precomputed admissions.
#[derive(Debug, Clone)]
pub(crate) struct DutyTable {
    words: usize,
    categories: usize,
    /// `held[unit * words ..]`: the unit's list after its override.
    pub(crate) held: Vec<u64>,
    /// Categories the unit's override added.
    pub(crate) added: Vec<u64>,
    /// Categories the unit's override removed.
    pub(crate) removed: Vec<u64>,
    /// Every admission, two bytes each: `codes[community_offset * categories + category]`
    /// (see [`code`]). The table is read once per case on the hot path; at two bytes an
    /// entry it stays in a core's cache for cities of thousands of communities, where
    /// whole [`Admission`] values (28 bytes) would not.
    codes: Vec<u16>,
    /// What a code leaves out, per community offset.
    rows: Vec<CommunityRow>,
    /// Each category's platform.
    platforms: Vec<u8>,
    /// The department owning each category: `owners[district_row * categories + category]`.
    owners: Vec<Option<DepartmentId>>,
}

/// The parts of a community's admissions that do not depend on the category.
#[derive(Debug, Clone, Copy)]
struct CommunityRow {
    unit: UnitId,
    street: UnitId,
    street_organs: [OrganId; 4],
    district_row: u32,
}

/// An admission as two bytes: bits 0–1 who holds it (0 nobody, 1 the community, 2 the
/// street office, 3 a department), bit 2 whether an override decided, bits 3–5 the
/// community's refusal, bits 6–8 the street office's ([`refusal_code`]).
fn code(a: &Admission) -> u16 {
    let (kind, by_override, first, second) = match a.trace {
        AdmissionTrace::CommunityList { by_override } => (1, by_override, None, None),
        AdmissionTrace::StreetList {
            refusal,
            by_override,
            ..
        } => (2, by_override, Some(refusal), None),
        AdmissionTrace::Referred {
            community_refusal,
            street_refusal,
            ..
        } => (3, false, Some(community_refusal), Some(street_refusal)),
    };
    kind | (u16::from(by_override) << 2)
        | (first.map_or(0, refusal_code) << 3)
        | (second.map_or(0, refusal_code) << 6)
}

fn refusal_code(r: Refusal) -> u16 {
    match r {
        Refusal::AboveUnit(level) => level as u16,
        Refusal::NotOnList => 4,
        Refusal::Removed => 5,
    }
}

fn refusal_from(c: u16) -> Option<Refusal> {
    Some(match c {
        0 => Refusal::AboveUnit(DutyLevel::Grid),
        1 => Refusal::AboveUnit(DutyLevel::Community),
        2 => Refusal::AboveUnit(DutyLevel::Street),
        3 => Refusal::AboveUnit(DutyLevel::District),
        4 => Refusal::NotOnList,
        5 => Refusal::Removed,
        _ => return None,
    })
}

/// The row the next district's owners take.
fn district_rows_len(owners: &[Option<DepartmentId>], n_cats: usize) -> u32 {
    (owners.len() / n_cats.max(1)) as u32
}

/// No street office (a community without one holds everything it admits).
const NO_UNIT: UnitId = UnitId(u32::MAX);

impl DutyTable {
    pub(crate) fn new(units: usize, categories: usize) -> DutyTable {
        let words = categories.div_ceil(64).max(1);
        DutyTable {
            words,
            categories,
            held: vec![0; units * words],
            added: vec![0; units * words],
            removed: vec![0; units * words],
            codes: Vec::new(),
            rows: Vec::new(),
            platforms: Vec::new(),
            owners: Vec::new(),
        }
    }

    fn row(v: &[u64], words: usize, unit: usize) -> &[u64] {
        v.get(unit * words..(unit + 1) * words).unwrap_or(&[])
    }

    pub(crate) fn set(v: &mut [u64], words: usize, unit: usize, category: usize, on: bool) {
        if let Some(w) = v.get_mut(unit * words + category / 64) {
            let m = 1u64 << (category % 64);
            if on {
                *w |= m;
            } else {
                *w &= !m;
            }
        }
    }

    pub(crate) fn words(&self) -> usize {
        self.words
    }

    pub(crate) fn holds(&self, unit: UnitId, category: usize) -> bool {
        bit(Self::row(&self.held, self.words, unit.index()), category)
    }

    pub(crate) fn was_added(&self, unit: UnitId, category: usize) -> bool {
        bit(Self::row(&self.added, self.words, unit.index()), category)
    }

    /// Decides every community and category once, so that [`City::admit`] is a table
    /// read: the community if its list holds the category, else its street office's
    /// platform organ if the street's list does, else the district department that owns
    /// it. Returns the pairs nobody holds, as (category, district), one per community.
    pub(crate) fn precompute(&mut self, input: &Precompute<'_>) -> Vec<(usize, UnitId)> {
        let Precompute {
            units,
            categories,
            platform_organs,
            owner,
            ..
        } = *input;
        let n_cats = categories.len();
        let mut admissions = Vec::with_capacity(input.communities.len() * n_cats);
        let mut unheld = Vec::new();
        let mut rows = Vec::with_capacity(input.communities.len());
        let mut district_rows: std::collections::HashMap<UnitId, u32> = Default::default();
        let mut owners = Vec::new();
        let why = |unit: UnitId, cat: usize, unit_level: DutyLevel| {
            let removed = bit(Self::row(&self.removed, self.words, unit.index()), cat);
            refusal(categories[cat].level, unit_level, removed)
        };
        for m in input.communities.clone() {
            let community = UnitId(m as u32);
            let street = units[m].parent;
            let district = street.and_then(|s| units[s.index()].parent);
            let district_row = match district {
                Some(d) => *district_rows.entry(d).or_insert_with(|| {
                    let row = district_rows_len(&owners, n_cats);
                    owners.extend((0..n_cats).map(|cat| owner(cat, d)));
                    row
                }),
                None => u32::MAX,
            };
            rows.push(CommunityRow {
                unit: community,
                street: street.unwrap_or(NO_UNIT),
                street_organs: street
                    .and_then(|s| platform_organs.get(s.index()).copied())
                    .unwrap_or([OrganId(u32::MAX); 4]),
                district_row,
            });
            for (cat, category) in categories.iter().enumerate() {
                let decided = if self.holds(community, cat) {
                    Some((
                        Holder::Community(community),
                        AdmissionTrace::CommunityList {
                            by_override: self.was_added(community, cat),
                        },
                    ))
                } else if let Some(s) = street.filter(|s| self.holds(*s, cat)) {
                    Some((
                        Holder::Street {
                            street: s,
                            organ: platform_organs[s.index()][category.platform.index()],
                        },
                        AdmissionTrace::StreetList {
                            community,
                            refusal: why(community, cat, DutyLevel::Community),
                            by_override: self.was_added(s, cat),
                        },
                    ))
                } else {
                    match (street, district) {
                        (Some(s), Some(d)) => owner(cat, d).map(|dept| {
                            (
                                Holder::Department(dept),
                                AdmissionTrace::Referred {
                                    community,
                                    community_refusal: why(community, cat, DutyLevel::Community),
                                    street: s,
                                    street_refusal: why(s, cat, DutyLevel::Street),
                                },
                            )
                        }),
                        _ => None,
                    }
                };
                match decided {
                    Some((holder, trace)) => admissions.push(Some(Admission {
                        category: CategoryId(cat as u32),
                        holder,
                        trace,
                    })),
                    None => {
                        admissions.push(None);
                        if let Some(d) = district {
                            unheld.push((cat, d));
                        }
                    }
                }
            }
        }
        self.codes = admissions
            .iter()
            .map(|a| a.as_ref().map_or(0, code))
            .collect();
        self.rows = rows;
        self.platforms = categories
            .iter()
            .map(|c| c.platform.index() as u8)
            .collect();
        self.owners = owners;
        // Every code reads back as the admission it was made from.
        #[cfg(debug_assertions)]
        for (k, a) in admissions.iter().enumerate() {
            let (m, cat) = (k / n_cats.max(1), k % n_cats.max(1));
            debug_assert_eq!(self.admission(m, CategoryId(cat as u32)), *a);
        }
        unheld
    }

    /// Reads what [`DutyTable::admission`] reads for `community` and `category` (their
    /// code and the community's row), to bring it into cache. Returns a value made of it.
    #[inline]
    pub(crate) fn touch(&self, community: usize, category: CategoryId) -> u64 {
        let code = community
            .checked_mul(self.categories)
            .and_then(|k| self.codes.get(k + category.index()))
            .map_or(0, |&c| u64::from(c));
        let row = self
            .rows
            .get(community)
            .map_or(0, |r| u64::from(r.street.0));
        code ^ row
    }

    /// The admission of a community (by its offset among communities) and category,
    /// read back from its code.
    #[inline]
    pub(crate) fn admission(&self, community: usize, category: CategoryId) -> Option<Admission> {
        let cat = category.index();
        if cat >= self.categories {
            return None;
        }
        let code = *self
            .codes
            .get(community.checked_mul(self.categories)? + cat)?;
        let row = self.rows.get(community)?;
        let by_override = code & 4 != 0;
        let (holder, trace) = match code & 3 {
            1 => (
                Holder::Community(row.unit),
                AdmissionTrace::CommunityList { by_override },
            ),
            2 => (
                Holder::Street {
                    street: row.street,
                    organ: *row
                        .street_organs
                        .get(usize::from(*self.platforms.get(cat)?))?,
                },
                AdmissionTrace::StreetList {
                    community: row.unit,
                    refusal: refusal_from((code >> 3) & 7)?,
                    by_override,
                },
            ),
            3 => (
                Holder::Department(
                    (*self
                        .owners
                        .get((row.district_row as usize).checked_mul(self.categories)? + cat)?)?,
                ),
                AdmissionTrace::Referred {
                    community: row.unit,
                    community_refusal: refusal_from((code >> 3) & 7)?,
                    street: row.street,
                    street_refusal: refusal_from((code >> 6) & 7)?,
                },
            ),
            _ => return None,
        };
        Some(Admission {
            category,
            holder,
            trace,
        })
    }

    pub(crate) fn list<'a>(&'a self, city: &'a City, unit: UnitId) -> Option<DutyList<'a>> {
        let ks = &city.kind_start;
        let listed = unit_offset(ks, UnitKind::Street, unit) != usize::MAX
            || unit_offset(ks, UnitKind::Community, unit) != usize::MAX;
        listed.then(|| DutyList {
            city,
            unit,
            bits: Self::row(&self.held, self.words, unit.index()),
            removed: Self::row(&self.removed, self.words, unit.index()),
        })
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.held.capacity() + self.added.capacity() + self.removed.capacity()) * 8
            + self.codes.capacity() * 2
            + self.rows.capacity() * std::mem::size_of::<CommunityRow>()
            + self.platforms.capacity()
            + self.owners.capacity() * std::mem::size_of::<Option<DepartmentId>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DutyLevel::{Community, District, Grid, Street};

    #[test]
    fn refusal_precedence_by_hand() {
        // (category level, unit level, removed by the unit's override) -> refusal
        let cases = [
            (Street, Community, false, Refusal::AboveUnit(Street)),
            (Street, Community, true, Refusal::AboveUnit(Street)),
            (District, Street, true, Refusal::AboveUnit(District)),
            (District, Community, false, Refusal::AboveUnit(District)),
            (Community, Community, true, Refusal::Removed),
            (Grid, Community, true, Refusal::Removed),
            (Street, Street, true, Refusal::Removed),
            (Community, Community, false, Refusal::NotOnList),
            (Grid, Street, false, Refusal::NotOnList),
            (Street, Street, false, Refusal::NotOnList),
        ];
        for (level, unit_level, removed, want) in cases {
            assert_eq!(
                refusal(level, unit_level, removed),
                want,
                "{level:?} at a {unit_level:?} unit, removed: {removed}"
            );
        }
    }
}
