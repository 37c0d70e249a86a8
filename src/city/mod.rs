//! The city model: who holds the duty for a case in a place, and who can take it.
//!
//! ```text
//!   CityConfig (JSON) ─┐
//!                      ├─► City::new ──► City: units, organs, departments, agencies (org graph),
//!   Grid (cells name ──┘   (every        catalogue, duty lists, service points, workers
//!    their community)       problem,     │
//!                           with path)   └─► City::admit(cell, category) ─► Admission
//!                                              holder + trace (which rule, who refused, why)
//! ```
//!
//! The governance model is fixed by the street-office reform: every street office (镇街)
//! has four platforms, each owned by a mandatory organ (党建工作办公室, 便民服务中心,
//! 综合治理中心, 综合行政执法办公室), a limited number of organs (12 unless its district
//! says fewer), organs answering to district departments (one to many and many to one),
//! and agencies sent down by vertical departments that it manages. Duty lists (职责清单)
//! say which categories each street office and community may be given; admission
//! (职责准入) never pushes a case below the lowest unit whose list holds it, and refers
//! what no unit may hold to the owning district department, with the reason.
//!
//! A [`City`] is built once and never changes; every lookup the router makes (cell to
//! community to street office to district, street office and platform to organ, category to
//! roles and deadlines, cell to workers) is a table read by small ids.

pub(crate) mod config;
pub(crate) mod demo;
mod duty;
mod error;
mod ids;
pub(crate) use crate::csr::Csr;
mod model;
mod org;
pub(crate) mod validate;
pub(crate) mod workers;

pub(crate) use config::CityConfig;
pub use config::{DutyLevel, MandatoryOrgan, OrganKind, Platform, Priority, WorkerKind};
pub(crate) use demo::demo_city;
pub use duty::{Admission, AdmissionTrace, DutyList, Explained, Holder, Refusal};
pub use error::{ConfigError, ConfigProblem, ConfigProblemKind};
pub use ids::{
    AgencyId, CategoryId, DepartmentId, MAX_ROLES, OrganId, Role, RoleSet, ServiceItemId,
    ServicePointId, UnitId, UnknownId, WorkerId,
};
pub use model::{
    Agency, Category, Chain, City, Department, Escalation, Organ, RoleInfo, ServiceItem,
    ServicePoint, Unit, UnitKind,
};
pub use org::{OrgEdge, OrgGraph, OrgNode};
pub(crate) use workers::MAX_CAPACITY;
pub use workers::{Worker, WorkerUnit};

use crate::grid::Grid;
use std::sync::Arc;

impl City {
    /// Checks `config` against itself and against `grid`, and builds the city.
    ///
    /// # Errors
    /// [`ConfigError::Problems`] listing every problem found, each with the path to it:
    /// duplicate or empty ids, unknown references, a missing or doubled mandatory organ,
    /// too many organs, departments reporting in a cycle, a category that some community
    /// has no holder for, a duty pushed below its level, a grid cell without a known
    /// community, a worker in a cell that does not exist, bad capacities, positions or
    /// deadlines, and more (see [`ConfigProblemKind`]).
    ///
    /// ```
    /// use wangge::City;
    /// use wangge::city::ConfigProblemKind;
    /// use wangge::config::CityConfig;
    ///
    /// let mut config = CityConfig::from_json(&wangge::demo::demo_config().to_json())?;
    /// config.streets[3].organs.retain(|o| o.mandatory.is_none());
    /// let err = City::new(&config, wangge::demo::demo_city_grid()).unwrap_err();
    /// assert!(err.problems().iter().any(|p| p.path == "streets[3].organs"
    ///     && matches!(p.kind, ConfigProblemKind::MissingMandatoryOrgan { .. })));
    /// # Ok::<(), wangge::ConfigError>(())
    /// ```
    pub fn new(config: &CityConfig, grid: impl Into<Arc<Grid>>) -> Result<City, ConfigError> {
        validate::build(config, grid.into())
    }

    /// Reads a city from JSON and builds it over `grid`.
    ///
    /// # Errors
    /// [`ConfigError::Json`] for text that is not a city config, otherwise as
    /// [`City::new`].
    pub fn from_json(text: &str, grid: impl Into<Arc<Grid>>) -> Result<City, ConfigError> {
        City::new(&CityConfig::from_json(text)?, grid)
    }

    /// Reads a city from TOML and builds it over `grid`.
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for text that is not a city config, otherwise as
    /// [`City::new`].
    pub fn from_toml(text: &str, grid: impl Into<Arc<Grid>>) -> Result<City, ConfigError> {
        City::new(&CityConfig::from_toml(text)?, grid)
    }

    /// The built-in demo city (see [`demo_city`]).
    pub fn demo() -> City {
        demo_city()
    }
}
