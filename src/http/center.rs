//! The command center's API: commands on any case, the snapshot, the page's views and the
//! event stream, each with an operator's key.

use super::AppState;
use super::access::bearer;
use super::format::ApiError;
use super::worker::{flag, json_body, parse_case, reason, run_command};
use crate::pipeline::{CaseEvent, Command, Notice, Satisfaction, Verifier};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// The longest extension one command may give (a year).
const MAX_EXTENSION_MINUTES: u64 = 366 * 24 * 60;

fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(key) if s.access.is_center_key(key) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not an operator's key",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an operator's key is required (Authorization: Bearer)",
        )),
    }
}

pub(crate) async fn act(
    State(s): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        authorize(&s, &headers)?;
        let Path((case, action)) =
            path.map_err(|e| ApiError::bad(format!("unreadable path: {}", e.body_text())))?;
        let case = parse_case(&case)?;
        let body = json_body(body)?;
        let city = s.engine.city();
        let command = match action.as_str() {
            "dispatch" => {
                let name = body
                    .get("worker")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad("worker (a worker id) is required"))?;
                let worker = city
                    .worker_id(name)
                    .ok_or_else(|| ApiError::bad(format!("no worker {name:?}")))?;
                let over_capacity = match body.get("over_capacity") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(r)) => Some(r.clone()),
                    Some(_) => return Err(ApiError::bad("over_capacity must be a reason (text)")),
                };
                Command::Dispatch {
                    case,
                    worker,
                    over_capacity,
                }
            }
            "extend" => {
                let minutes = body
                    .get("minutes")
                    .and_then(Value::as_u64)
                    .filter(|m| (1..=MAX_EXTENSION_MINUTES).contains(m))
                    .ok_or_else(|| {
                        ApiError::bad(format!(
                            "minutes (a whole number from 1 to {MAX_EXTENSION_MINUTES}) is required"
                        ))
                    })?;
                Command::Extend {
                    case,
                    by: Duration::from_secs(minutes * 60),
                    reason: reason(&body)?,
                }
            }
            "suspend" => Command::Suspend {
                case,
                reason: reason(&body)?,
            },
            "resume" => Command::Resume { case },
            "verify" => Command::Verify {
                case,
                by: Verifier::Center,
                passed: flag(&body, "passed")?,
            },
            "close" => {
                let satisfaction = match body.get("satisfaction") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(v)) => Some(match v.as_str() {
                        "satisfied" => Satisfaction::Satisfied,
                        "basic" => Satisfaction::Basic,
                        "dissatisfied" => Satisfaction::Dissatisfied,
                        _ => {
                            return Err(ApiError::bad(
                                "satisfaction must be satisfied, basic or dissatisfied",
                            ));
                        }
                    }),
                    Some(_) => return Err(ApiError::bad("satisfaction must be text")),
                };
                Command::Close { case, satisfaction }
            }
            "reopen" => Command::Reopen {
                case,
                reason: reason(&body)?,
            },
            other => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no action {other:?}: dispatch, extend, suspend, resume, verify, close or reopen"
                    ),
                ));
            }
        };
        run_command(&s, command).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

fn json_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The full snapshot, as [`Snapshot`](crate::Snapshot) serializes.
pub(crate) async fn snapshot(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    let engine = s.engine.clone();
    // A snapshot scans every case: off the async threads.
    let body = tokio::task::spawn_blocking(move || serde_json::to_string(&engine.snapshot()));
    match body.await {
        Ok(Ok(body)) => json_response(body),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no snapshot").into_response(),
    }
}

/// What the live page draws: the snapshot's counts and each worker's position and load.
pub(crate) async fn view(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    let engine = s.engine.clone();
    let body = tokio::task::spawn_blocking(move || {
        let snap = engine.snapshot();
        let router = engine.router();
        let workers: Vec<Value> = (0..engine.city().workers().len())
            .filter_map(|i| {
                let w = crate::WorkerId::from_index(i)?;
                let st = router.worker_state(w).ok()?;
                let p = st.position?;
                Some(json!([
                    (p.lon() * 1e5).round() / 1e5,
                    (p.lat() * 1e5).round() / 1e5,
                    st.load,
                    st.status == crate::WorkerStatus::OnDuty
                ]))
            })
            .collect();
        json!({
            "at": super::format::w3c(snap.at),
            "cases": snap.cases,
            "by_state": snap.by_state,
            "by_platform": snap.by_platform,
            "overdue_by_level": snap.overdue_by_level,
            "queues": snap.queues,
            "open_by_cell": snap.open_by_cell,
            "indicators": snap.indicators,
            "workers": workers,
        })
        .to_string()
    });
    match body.await {
        Ok(body) => json_response(body),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no view").into_response(),
    }
}

/// The grid for the page: every cell's outer ring, to 1e-5 degree (about a metre).
pub(crate) async fn map(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    let grid = s.engine.city().grid();
    let round = |x: f64| (x * 1e5).round() / 1e5;
    let cells: Vec<Value> = grid
        .cells()
        .iter()
        .map(|cell| {
            let ring: Vec<f64> = cell
                .polygons
                .first()
                .map(|p| {
                    p.exterior
                        .iter()
                        .flat_map(|c| [round(c[0]), round(c[1])])
                        .collect()
                })
                .unwrap_or_default();
            json!({"name": cell.name, "ring": ring})
        })
        .collect();
    json_response(json!({"bounds": grid.bounds(), "cells": cells}).to_string())
}

fn event_json(s: &AppState, e: &CaseEvent) -> Event {
    let city = s.engine.city();
    let t = e.transition;
    let worker = t
        .worker()
        .and_then(|w| city.worker(w))
        .map(|w| w.id.clone());
    let data = json!({
        "case": e.case.0,
        "seq": e.seq,
        "at": t.at().0,
        "from": t.from().map(|s| s.as_str()),
        "to": t.to().as_str(),
        "action": t.action().as_str(),
        "actor": t.actor().to_string(),
        "worker": worker,
    });
    Event::default().event("case").data(data.to_string())
}

/// Case events as Server-Sent Events: `hello` once the stream is open (events from then
/// on are in it), `case` events, and `missed` with a count when this stream fell behind. One thread per stream reads the engine's subscription (which never
/// waits for it), at most [`MAX_STREAMS`](super::MAX_STREAMS) streams at once.
pub(crate) async fn events(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams open",
        )
        .into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    let sub = s.engine.subscribe();
    let state = s.clone();
    let spawned = std::thread::Builder::new()
        .name("wangge-sse".into())
        .spawn(move || {
            let _permit = permit;
            let wait = Duration::from_millis(500);
            loop {
                let started = Instant::now();
                let event = match sub.recv_timeout(wait) {
                    Some(Notice::Event(e)) => event_json(&state, &e),
                    Some(Notice::Missed(n)) => Event::default().event("missed").data(n.to_string()),
                    None => {
                        // Nothing within the wait: the client may have gone. Nothing at
                        // once: the engine has shut down and the stream is over.
                        if tx.is_closed() || started.elapsed() < wait / 2 {
                            return;
                        }
                        continue;
                    }
                };
                if tx.blocking_send(event).is_err() {
                    return;
                }
            }
        });
    if spawned.is_err() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no thread for the stream")
            .into_response();
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<Event, Infallible>(e), rx))
    });
    let hello = Event::default().event("hello").data("{}");
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<Event, Infallible>(hello) }),
        stream,
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}
