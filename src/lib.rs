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
//! This release provides the spatial grid: [`Grid`] reads cells from GeoJSON (or takes
//! them built in code), refuses bad input with a typed [`GridError`] naming every problem,
//! and answers [`Grid::locate`] exactly (boundary points included) through a flat bucket
//! table that needs no polygon test for most points.
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
    NEGLIGIBLE_AREA_M2, NeighbourStats, Overlap, Polygon, Region, Ring, RingBuf, RingRef,
};
pub use routing::{
    Candidate, CaseRequest, Decision, FairRotation, Found, LeastLoaded, MAX_RETURNS, MAX_RING,
    Nearest, Outcome, Policy, PolicyKind, Router, RouterConfig, RoutingError, ServiceChoice,
    Skipped, Trace, WorkerState, WorkerStatus,
};
