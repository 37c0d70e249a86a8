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
//! | city | [`City`] | the org hierarchy and its four platforms, who holds a category in a cell ([`City::admit`], with the rule that decided), the workforce (every worker belongs to one unit: [`WorkerUnit`]) and service points |
//! | routing | [`Router`] | which of the holder's own people takes a case ([`Router::route`], with a [`Trace`]), who holds each case ([`CaseId`]), returns (退单) and rulings, manual dispatch, live worker state, snapshot and restore |
//! | engine | [`Engine`] | the four stages on threads joined by bounded channels, the case lifecycle ([`CaseState`]), deadlines, reminders and escalation, the command center ([`Engine::snapshot`], [`Engine::subscribe`]) |
//! | journal | [`journal::FileJournal`] | an embedded write-ahead log: checksummed segments, group commit, a torn tail cut, snapshots; the engine writes ahead to it and recovers from it ([`Engine::recovery`], [`Engine::checkpoint`]) |
//! | service front (feature `http`) | `http::router` | the engine over HTTP: Open311 GeoReport v2 for citizen apps, the workers' and the center's APIs with their keys, a Server-Sent Events stream, the live command-center page |
//!
//! The modules hold the rest: [`config`] (city configs as read from JSON or TOML),
//! [`demo`] (the built-in demo city), [`generate`] (generated grids), and the component
//! modules [`grid`], [`city`], [`routing`], [`pipeline`] and [`journal`] with every detail
//! type.
//!
//! Bad input never panics: every refusal is a typed error naming the problem and where it
//! is ([`GridError`], [`ConfigError`], [`RoutingError`], wrapped by [`Error`]). Lookups by
//! id answer `Option` (`None` for an id outside the city); lists by id answer an empty
//! slice.
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
//! A case end to end on the built-in demo city: locate it, admit it, route it to the unit
//! that holds it. Illegal parking (ZF-02) is a street office's duty: no community may be
//! given it, so it goes to the street office's law-enforcement force.
//!
//! ```
//! use std::sync::Arc;
//! use wangge::{CaseId, CaseRequest, City, Found, Holder, Location, Router, RouterConfig, WorkerUnit};
//!
//! let city = Arc::new(City::demo());
//! let router = Router::new(city.clone(), RouterConfig::default())?;
//! let parking = city.category_id("ZF-02").expect("illegal parking is in the catalogue");
//! let at = Location::new(120.33, 36.12)?;
//! let cell = city.grid().locate(at).expect("on land");
//! let decision = router.route(&CaseRequest::new(CaseId(1), cell, parking, at))?;
//! let Holder::Street { street, .. } = decision.trace.admission.holder else {
//!     panic!("a street office holds illegal parking");
//! };
//! let officer = decision.worker().expect("the street office's force has someone free");
//! assert_eq!(decision.trace.found, Found::Force);
//! assert!(matches!(city.worker(officer).unwrap().unit, WorkerUnit::Organ(_) | WorkerUnit::Agency(_)));
//! assert_eq!(city.worker_street(officer), Some(street));
//! assert_eq!(router.holder(CaseId(1)), Some(officer));
//! println!("{}", router.explain(&decision));
//!
//! // Finished: the officer's slot is freed once, however often the message arrives.
//! assert_eq!(router.release(CaseId(1))?, Some(officer));
//! assert_eq!(router.release(CaseId(1))?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The engine
//!
//! [`Engine`] runs the whole loop: reports in, cases through the four stages, every
//! deadline watched, the command center's view live. Where each stage lives:
//!
//! ```text
//!  Engine::submit ─[batches]─► collect ─[batches]─► assign ─► dispatched / queued / ruling
//!   (stores the case         pipeline/collect.rs   pipeline/assign.rs (router, organ
//!    as `reported`)          locate, admit, dedupe  queues drained as workers free up)
//!  Engine::accept / return_case / resolve, dispatch_to / extend / suspend   pipeline/handle.rs
//!  Engine::verify / close / reopen                                          pipeline/feedback.rs
//!  Engine::tick (or the timer thread): accept deadlines, 催办, 督办         pipeline/handle.rs
//!  Engine::snapshot / subscribe: counts, indicators, event stream           pipeline/center.rs
//!  states and the one table of legal moves: pipeline/lifecycle.rs; case store: pipeline/case.rs
//! ```
//!
//! ```
//! use std::sync::Arc;
//! use wangge::{CaseState, Clock, Engine, Location, Report, SimClock, Source, Timestamp, Verifier};
//!
//! let city = Arc::new(wangge::City::demo());
//! let clock = SimClock::new(Timestamp(1_764_460_800_000));
//! let engine = Engine::builder(city.clone()).clock(clock.clone()).build()?;
//! let garbage = city.category_id("ZF-01").expect("in the catalogue");
//! let id = engine.submit(Report::new(Source::Hotline, garbage, Location::new(120.33, 36.12)?, clock.now()))?;
//! engine.flush(); // let collect and assign take it
//! let worker = engine.case(id).and_then(|c| c.worker).expect("dispatched");
//! engine.accept(id, worker)?;
//! assert!(engine.verify(id, Verifier::Center, true).is_err(), "not resolved yet: refused");
//! engine.resolve(id, worker)?;
//! engine.verify(id, Verifier::Center, true)?;
//! engine.close(id, None)?;
//! let case = engine.case(id).expect("kept with its history");
//! assert_eq!(case.state, CaseState::Closed);
//! assert_eq!(case.history.len(), 7);
//! let snapshot = engine.shutdown();
//! assert_eq!(snapshot.indicators.closure_rate, Some(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `http` | off | `wangge::http`: the engine served over HTTP (Open311 GeoReport v2, the workers' and the center's APIs, an event stream, the live command-center page), on axum and tokio; without it the crate has no async runtime |

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod city;
mod clock;
mod csr;
mod error;
pub mod grid;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod journal;
pub mod pipeline;
pub mod rng;
pub mod routing;

/// Cases whose random table reads are read ahead together, in loops of nothing else, before
/// their work (collect's duty table and duplicate index, the router's candidate lists):
/// enough misses in flight at once to overlap, few enough to stay in cache until used.
pub(crate) const READ_AHEAD: usize = 64;

pub use clock::{Clock, SimClock, SystemClock, Timestamp};
pub use error::Error;
pub use grid::generate;

// What a user meets in the first hour; the rest is in the component modules.
pub use city::{
    Admission, Category, CategoryId, City, ConfigError, DutyList, Holder, Organ, OrganId, Platform,
    Priority, Role, RoleSet, Unit, UnitId, UnitKind, Worker, WorkerId, WorkerUnit,
};
pub use grid::{Cell, CellId, Grid, GridError, Location, LocationError, Polygon};
pub use pipeline::{
    Case, CaseState, Command, Engine, EngineBuilder, EngineConfig, EngineError, LifecycleError,
    Report, Satisfaction, Snapshot, Source, SubmitError, Verifier,
};
pub use routing::{
    CaseId, CaseRequest, Decision, Found, Outcome, Policy, PolicyKind, Router, RouterConfig,
    RoutingError, Trace, WorkerState, WorkerStatus,
};

/// City configs as read from JSON or TOML: deserialize a [`CityConfig`](config::CityConfig), then
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
        COMMUNITY_CELLS, STREET_COMMUNITIES, demo_config_grouped, group_cells,
    };
    pub use crate::city::demo::{
        demo_city, demo_city_grid, demo_config, demo_config_for, demo_config_with_workers,
    };
}
