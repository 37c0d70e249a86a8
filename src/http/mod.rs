//! The service front (feature `http`): the engine over HTTP.
//!
//! ```text
//!  citizen apps, hotline ──► Open311 GeoReport v2 (JSON or XML)   api_key
//!                            GET  /discovery  /services  /services/{code}
//!                            POST /requests   GET /requests  /requests/{id}  /tokens/{token}
//!  grid workers' phones ───► /workers/{worker}/...  (JSON)         Bearer: the worker's token
//!                            GET cases; POST cases/{id}/accept|return|resolve|verify; position
//!  command center ─────────► /center/...  (JSON, SSE)               Bearer: an operator key
//!                            POST cases/{id}/dispatch|extend|suspend|resume|verify|close|reopen
//!                            GET snapshot, view, map, events (Server-Sent Events)
//!  the wall screen ────────► GET /  (the live page, offline: everything it needs is served here)
//! ```
//!
//! [`router`] turns an [`Engine`] and the [`Access`] keys into an [`axum::Router`] that a
//! backend serves or mounts; `examples/serve.rs` serves the demo city with simulated
//! workers.
//!
//! Who may do what: filing a report takes an Open311 `api_key`; a worker acts only with
//! their own token and only on the cases dispatched to them (the engine's own rule: any
//! other worker gets 403 and nothing changes); the center's commands and views take an
//! operator key. Keys are compared in constant time and never logged or echoed.
//!
//! Every refusal is a 4xx in Open311's error shape, a list of `{code, description}`
//! (`<errors><error>` in XML), on every route, the worker and center ones included.
//! Bodies are limited to [`BODY_LIMIT`] bytes.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use wangge::http::{Access, router};
//!
//! let engine = Arc::new(wangge::Engine::builder(Arc::new(wangge::City::demo())).build()?);
//! let access = Access::new().api_key("client-key").center_key("operator-key");
//! let app = router(engine, access);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8311").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod access;
mod center;
mod format;
mod open311;
mod page;
mod worker;

pub use access::{Access, random_key};

use crate::Engine;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The largest request body taken, in bytes: a report's description is at most
/// [`MAX_DESCRIPTION`](crate::pipeline::MAX_DESCRIPTION) bytes, which percent-encoding
/// can triple, and the other fields are short.
pub const BODY_LIMIT: usize = 32 * 1024;

/// Event streams open at once; one more is refused with 503 until one closes.
pub const MAX_STREAMS: usize = 32;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) access: Arc<Access>,
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
}

/// The whole service as a router: Open311 GeoReport v2, the worker and center APIs, the
/// event stream and the live page, with the body limit applied. Serve it with
/// `axum::serve` or nest it in a larger router.
pub fn router(engine: Arc<Engine>, access: Access) -> Router {
    let state = AppState {
        engine,
        access: Arc::new(access),
        streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
    };
    let mut app = Router::new().route("/", get(page::index));
    app = open311::routes(app);
    app.route("/workers/{worker}/cases", get(worker::cases))
        .route("/workers/{worker}/cases/{case}/{action}", post(worker::act))
        .route("/workers/{worker}/position", post(worker::position))
        .route("/center/cases/{case}/{action}", post(center::act))
        .route("/center/snapshot", get(center::snapshot))
        .route("/center/view", get(center::view))
        .route("/center/map", get(center::map))
        .route("/center/events", get(center::events))
        .fallback(format::not_found)
        .method_not_allowed_fallback(format::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
