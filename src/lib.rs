//! # wangge (网格): the event-dispatch engine of a grid-management command center
//!
//! A city is cut into grid cells. Every incident, from grid workers on patrol, the citizen
//! hotline or sensors, is located to its cell, admitted against the duty lists of the
//! units in charge, routed to a multi-role grid worker, tracked while it is handled and
//! closed with verification and feedback.
//!
//! ```text
//!   reports ─► collect ─► assign ─► handle ─► feedback ─► command center
//!              validate   admit     track      verify      snapshots,
//!              dedupe     route     timeouts   close       subscriptions,
//!              locate     choose    returns    rate        indicators
//! ```
//!
//! What is built so far, stage by stage:
//!
//! | part | front door | what it answers |
//! | --- | --- | --- |
//! | grid | [`Grid`] | which cell a point lies in ([`Grid::locate`], exact, ~15-25 ns), a cell's neighbours ([`Grid::neighbours`], [`Grid::rings_into`]), whether the grid covers its jurisdiction ([`Grid::audit`]) |
//! | city | [`City`] | the org hierarchy and its four platforms, who holds a category in a cell ([`City::admit`], with the rule that decided), the workforce and service points |
//! | routing | [`Router`] | which worker takes a case ([`Router::route`], with a [`Trace`]), returns (退单) and rulings, live worker state, the nearest service point |
//!
//! Bad input never panics: every refusal is a typed error naming the problem and where it
//! is ([`GridError`], [`ConfigError`], [`RoutingError`], wrapped by [`Error`]).
//!
//! ```
//! use wangge::{Cell, Grid, Location, Polygon};
//!
//! let grid = Grid::from_geojson(r#"{"type": "FeatureCollection", "features": [
//!   {"type": "Feature", "properties": {"id": "G-001", "community": "C1"},
//!    "geometry": {"type": "Polygon",
//!                 "coordinates": [[[120.0, 36.0], [120.01, 36.0], [120.01, 36.01], [120.0, 36.01], [120.0, 36.0]]]}}
//! ]}"#)?;
//! let cell = grid.locate(Location::new(120.005, 36.005)?).expect("inside");
//! assert_eq!(grid[cell].name, "G-001");
//! assert_eq!(grid[cell].community.as_deref(), Some("C1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A case end to end on the built-in demo city: locate it, admit it, route it.
//!
//! ```
//! use std::sync::Arc;
//! use wangge::{CaseRequest, Location, Outcome, Router, RouterConfig};
//!
//! let city = Arc::new(wangge::demo::demo_city());
//! let router = Router::new(city.clone(), RouterConfig::default())?;
//! let category = city.category_id("ZF-02").expect("illegal parking is in the catalogue");
//! let at = Location::new(120.33, 36.12)?;
//! let cell = city.grid().locate(at).expect("on land");
//! let decision = router.route(&CaseRequest::new(cell, category, at))?;
//! if let Outcome::Assigned { worker } = decision.outcome {
//!     assert!(router.worker_state(worker)?.load >= 1);
//! }
//! println!("{}", router.explain(&decision));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! No optional features: every part of the engine is always built.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod city;
mod error;
pub mod grid;
mod rng;
pub mod routing;

pub use error::Error;
pub use grid::generate;

// What a user meets in the first hour; the rest is in the component modules.
pub use city::{
    Admission, Category, CategoryId, City, ConfigError, DutyList, Holder, Organ, OrganId, Platform,
    Priority, Role, RoleSet, Unit, UnitId, UnitKind, Worker, WorkerId, WorkerUnit,
};
pub use grid::{Cell, CellId, Grid, GridError, Location, LocationError, Polygon};
pub use routing::{
    CaseId, CaseRequest, Decision, Found, Outcome, Policy, PolicyKind, Router, RouterConfig,
    RoutingError, Trace, WorkerState, WorkerStatus,
};

/// City configs as read from JSON or TOML: deserialize a [`CityConfig`], then
/// [`City::new`] checks it against a grid and reports every problem at once.
pub mod config {
    pub use crate::city::config::{
        AgencyConfig, CategoryConfig, CityConfig, CommunityConfig, DEFAULT_MAX_ORGANS,
        DeadlineConfig, DepartmentConfig, DistrictConfig, DutyListsConfig, DutyOverrideConfig,
        OrganConfig, RoleConfig, ServiceItemConfig, ServicePointConfig, StreetConfig, UnitConfig,
        WorkerConfig,
    };
    pub use crate::city::validate::MAX_ORGAN_LIMIT;
    pub use crate::city::workers::MAX_CAPACITY;
}

/// The built-in demo city, a Qingdao-like city of 3,225 cells that examples and tests
/// use, and its config for any grid whose cells name their parents. Generated grids are
/// in [`generate`].
pub mod demo {
    pub use crate::city::demo::{
        demo_city, demo_city_grid, demo_config, demo_config_for, demo_config_with_workers,
    };
}
