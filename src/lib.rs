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
//! let city = Arc::new(wangge::demo_city());
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

mod city;
mod error;
mod grid;
mod rng;
mod routing;

pub use city::{
    Admission, AdmissionTrace, Agency, AgencyConfig, AgencyId, Category, CategoryConfig,
    CategoryId, Chain, City, CityConfig, CommunityConfig, ConfigError, ConfigProblem,
    ConfigProblemKind, DEFAULT_MAX_ORGANS, DeadlineConfig, Department, DepartmentConfig,
    DepartmentId, DistrictConfig, DutyLevel, DutyList, DutyListsConfig, DutyOverrideConfig,
    Escalation, Explained, Holder, MAX_CAPACITY, MAX_ORGAN_LIMIT, MAX_ROLES, MandatoryOrgan,
    OrgEdge, OrgGraph, OrgNode, Organ, OrganConfig, OrganId, OrganKind, Platform, Priority,
    Refusal, Role, RoleConfig, RoleInfo, RoleSet, ServiceItem, ServiceItemConfig, ServiceItemId,
    ServicePoint, ServicePointConfig, ServicePointId, StreetConfig, Unit, UnitConfig, UnitId,
    UnitKind, UnknownId, Worker, WorkerConfig, WorkerId, WorkerKind, demo_city, demo_city_grid,
    demo_config, demo_config_for, demo_config_with_workers,
};
pub use error::Error;
pub use grid::generate;
pub use grid::{
    AuditReport, BUCKETS_PER_CELL, Cell, CellId, CellProblem, CellProblemKind, Grid, GridError,
    IndexStats, InvalidCell, Jurisdiction, JurisdictionError, Location, LocationError,
    MAX_MEASURED_PAIRS, NEGLIGIBLE_AREA_M2, NeighbourStats, Overlap, Polygon, Region, Ring,
    RingBuf, RingRef, SLIVER_WIDTH_M, Slivers,
};
pub use routing::{
    Candidate, CaseRequest, Decision, FairRotation, Found, LeastLoaded, MAX_RETURNS, MAX_RING,
    Nearest, Outcome, Policy, PolicyKind, Router, RouterConfig, RoutingError, ServiceChoice,
    Skipped, Trace, WorkerState, WorkerStatus,
};
