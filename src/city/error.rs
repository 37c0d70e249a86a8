//! Why a city was refused: every problem, each with the path to it.

use super::config::{DutyLevel, MandatoryOrgan, Platform, Priority};
use crate::error::summary;

/// Why a [`CityConfig`](crate::config::CityConfig) could not be read or built into a
/// [`City`](crate::City), or why a lookup on a city failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not JSON or does not have the shape of a city config.
    #[error("city config is not valid: {message}")]
    Json {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The text is not TOML or does not have the shape of a city config.
    #[error("city config is not valid TOML: {message}")]
    Toml {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The config could not be written as TOML.
    #[error("city config cannot be written as TOML: {message}")]
    TomlOutput {
        /// The writer's message.
        message: String,
    },
    /// The config has one or more problems; every one found is listed.
    #[error("{} problem(s) in city config: {}", .0.len(), summary(.0))]
    Problems(Vec<ConfigProblem>),
    /// An id passed to a lookup does not belong to this city or its grid.
    #[error("unknown {what} id {index}")]
    UnknownId {
        /// What kind of id (`cell`, `category`, ...).
        what: &'static str,
        /// The index given.
        index: usize,
    },
}

impl ConfigError {
    /// The problems, if this is [`ConfigError::Problems`] (empty otherwise).
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Problems(p) => p,
            _ => &[],
        }
    }
}

/// One problem, and where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ConfigProblem {
    /// Where: a path into the config such as `streets[3].organs` or
    /// `workers[12].cells[1]`, or `grid.cells[40]` for a grid cell.
    pub path: String,
    /// What is wrong.
    pub kind: ConfigProblemKind,
}

/// What is wrong with a city config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblemKind {
    /// An id or name is empty.
    #[error("empty {field}")]
    Empty {
        /// The field (`id`, `name`, `code`).
        field: &'static str,
    },
    /// Another item already uses this id.
    #[error("duplicate id {id:?}, first used at {first}")]
    DuplicateId {
        /// The id.
        id: String,
        /// Path of the first item with it.
        first: String,
    },
    /// A reference names nothing of the kind expected.
    #[error("unknown {what} {id:?}")]
    UnknownReference {
        /// What was expected (`district`, `department`, `role`, `cell`, ...).
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// A worker's `unit` names more than one of a community, an organ and an agency.
    #[error("unit {id:?} is ambiguous: it is the id of {first} and of {second}")]
    AmbiguousUnit {
        /// The id given.
        id: String,
        /// What it names first (`community`, `organ`, `agency`).
        first: &'static str,
        /// What else it names.
        second: &'static str,
    },
    /// A worker's home cell lies outside their unit: outside their community, or outside
    /// the street office of their organ or agency.
    #[error("home cell {cell:?} lies outside {unit:?}")]
    OutsideUnit {
        /// The cell.
        cell: String,
        /// The worker's unit (its id; for an organ or agency, its street office's id).
        unit: String,
    },
    /// The same id is listed twice where a set is meant.
    #[error("{id:?} is listed twice")]
    Repeated {
        /// The id.
        id: String,
    },
    /// A street office lacks one of the four mandatory organs.
    #[error("missing mandatory organ {organ} ({})", .organ.platform())]
    MissingMandatoryOrgan {
        /// The organ missing.
        organ: MandatoryOrgan,
    },
    /// Two organs of one street office claim the same mandatory role.
    #[error("second {organ}, the first is {first}")]
    DuplicateMandatoryOrgan {
        /// The mandatory organ.
        organ: MandatoryOrgan,
        /// Path of the first.
        first: String,
    },
    /// A mandatory organ does not serve the platform it owns.
    #[error("{organ} must serve the {expected} platform, not {}", .found.map_or("none".to_string(), |p| p.to_string()))]
    MandatoryOrganPlatform {
        /// The mandatory organ.
        organ: MandatoryOrgan,
        /// The platform it owns.
        expected: Platform,
        /// The platform configured.
        found: Option<Platform>,
    },
    /// A street office has more organs than its limit (机构限额).
    #[error("{count} organs, the limit is {limit}")]
    TooManyOrgans {
        /// Organs configured.
        count: usize,
        /// The limit that applies.
        limit: u32,
    },
    /// An organ limit is zero, too small for the mandatory organs, or above the city's.
    #[error("organ limit {limit} must be between 4 and {max}")]
    BadOrganLimit {
        /// The limit configured.
        limit: u32,
        /// The highest allowed.
        max: u32,
    },
    /// A reference crosses into another district (an organ answering to, or an agency
    /// sent by, another district's department; a department reporting to another
    /// district's).
    #[error("{id:?} belongs to district {found:?}, not {expected:?}")]
    OtherDistrict {
        /// The id referred to.
        id: String,
        /// Its district.
        found: String,
        /// The district expected.
        expected: String,
    },
    /// Departments report to each other in a circle.
    #[error("reporting cycle through {}", .ids.join(" -> "))]
    Cycle {
        /// Ids of the departments on the cycle.
        ids: Vec<String>,
    },
    /// More roles than a [`RoleSet`](crate::RoleSet) holds.
    #[error("{count} roles, at most {limit} are supported")]
    TooManyRoles {
        /// Roles configured.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// A list that must not be empty is (roles of a category or worker, deadlines, cells,
    /// items).
    #[error("no {what}")]
    Missing {
        /// What is missing.
        what: &'static str,
    },
    /// A deadline is not a positive number of hours (at most a year).
    #[error("deadline {hours} h for {priority:?} is not in (0, 8760]")]
    BadDeadline {
        /// The priority.
        priority: Priority,
        /// The hours given.
        hours: f64,
    },
    /// A category names two departments of one district.
    #[error("second owning department {department:?} in district {district:?}")]
    TwoOwners {
        /// The second department.
        department: String,
        /// The district.
        district: String,
    },
    /// A duty list gives a unit a category below the category's level: pushing work down
    /// that the catalogue says belongs higher up.
    #[error("category {category:?} (duty level {level}) may not be given to a {target}")]
    PushedDown {
        /// The category code.
        category: String,
        /// Its level.
        level: DutyLevel,
        /// The level it was given to.
        target: DutyLevel,
    },
    /// An override names a unit that has no duty list (the city or a district).
    #[error("{unit:?} is a {kind}; only street offices and communities have duty lists")]
    NoDutyList {
        /// The unit id.
        unit: String,
        /// What it is.
        kind: &'static str,
    },
    /// An override both adds and removes a category.
    #[error("category {category:?} is both added and removed")]
    AddAndRemove {
        /// The category code.
        category: String,
    },
    /// No unit on some cells' chains holds the category and no department owns it there:
    /// such a case could go nowhere.
    #[error(
        "category {category:?} is held by no unit in district {district:?} ({communities} communit(ies) without a holder)"
    )]
    Unheld {
        /// The category code.
        category: String,
        /// The district id.
        district: String,
        /// How many of its communities have no holder.
        communities: usize,
    },
    /// A grid cell does not name its community (or, where the units are derived from
    /// the grid, its street office or district).
    #[error("cell {cell:?} names no {field}")]
    CellWithoutParent {
        /// The cell's name.
        cell: String,
        /// `community`, `street` or `district`.
        field: &'static str,
    },
    /// A grid cell's street or district disagrees with its community's.
    #[error("cell {cell:?} says {field} {found:?}, but its community is in {expected:?}")]
    CellParentMismatch {
        /// The cell's name.
        cell: String,
        /// `street` or `district`.
        field: &'static str,
        /// What the cell says.
        found: String,
        /// The id from the community's chain.
        expected: String,
    },
    /// A unit has no cells below it, so the grid does not cover it.
    #[error("no grid cells")]
    NoCells,
    /// A capacity is zero or above the cap.
    #[error("capacity {capacity} is not in 1..={max}")]
    BadCapacity {
        /// The capacity given.
        capacity: u32,
        /// The cap.
        max: u32,
    },
    /// A position is not a valid WGS84 location.
    #[error("position ({lon}, {lat}) is not a valid location")]
    BadPosition {
        /// Longitude given.
        lon: f64,
        /// Latitude given.
        lat: f64,
    },
    /// A position lies outside every grid cell.
    #[error("position ({lon}, {lat}) is outside the grid")]
    OutsideGrid {
        /// Longitude.
        lon: f64,
        /// Latitude.
        lat: f64,
    },
    /// A table is larger than a `u32` id addresses.
    #[error("{count} {what}: too many")]
    TooMany {
        /// What.
        what: &'static str,
        /// How many.
        count: usize,
    },
}
