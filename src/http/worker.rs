//! The workers' API: a worker's open cases, and what they do with them (accept, return
//! with a reason, resolve, verify someone else's work), each with the worker's own token.

use super::AppState;
use super::access::bearer;
use super::format::{ApiError, Format, Node, lifecycle_error, respond, w3c};
use crate::city::WorkerId;
use crate::pipeline::{Case, Command, Verifier};
use crate::routing::CaseId;
use crate::{CaseState, Location};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// A JSON object body; an empty body is an empty object.
pub(crate) fn json_body(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let body =
        body.map_err(|e| ApiError::new(e.status(), format!("unreadable body: {}", e.body_text())))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad(format!("the body is not JSON: {e}"))),
    }
}

/// A required non-empty text field.
pub(crate) fn reason(body: &Map<String, Value>) -> Result<String, ApiError> {
    match body.get("reason") {
        Some(Value::String(r)) if !r.trim().is_empty() => Ok(r.clone()),
        Some(Value::String(_)) | None => Err(ApiError::bad("a reason is required")),
        Some(_) => Err(ApiError::bad("reason must be text")),
    }
}

/// A required boolean field.
pub(crate) fn flag(body: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    body.get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad(format!("{key} (true or false) is required")))
}

pub(crate) fn parse_case(text: &str) -> Result<CaseId, ApiError> {
    text.parse::<u64>()
        .map(CaseId)
        .map_err(|_| ApiError::bad(format!("case {text:?} is not a case id (a whole number)")))
}

/// The worker named in the path, if the request carries their token.
fn authorize(s: &AppState, headers: &HeaderMap, worker: &str) -> Result<WorkerId, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a worker's token is required (Authorization: Bearer)",
        )
    })?;
    // An unknown worker and a wrong token get the same answer: ids are not probed this way.
    s.engine
        .city()
        .worker_id(worker)
        .filter(|&w| s.access.is_worker_token(w, token))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "the token is not this worker's"))
}

pub(crate) fn case_node(s: &AppState, c: &Case) -> Node {
    let city = s.engine.city();
    let name = |w: Option<WorkerId>| {
        w.and_then(|w| city.worker(w))
            .map_or(Node::Null, |w| Node::str(w.id.clone()))
    };
    Node::Obj(vec![
        ("case", Node::Int(c.id.0)),
        ("state", Node::str(c.state.as_str())),
        (
            "service_code",
            Node::str(city.category(c.category).map_or("", |k| k.code.as_str())),
        ),
        ("lat", Node::Num(c.location.lat())),
        ("long", Node::Num(c.location.lon())),
        (
            "cell",
            c.cell
                .and_then(|id| city.grid().cell(id))
                .map_or(Node::Null, |cell| Node::str(cell.name.clone())),
        ),
        ("description", Node::str(c.description.clone())),
        ("reported", Node::str(w3c(c.reported_at))),
        (
            "accept_by",
            c.accept_by.map_or(Node::Null, |t| Node::str(w3c(t))),
        ),
        ("due", c.due.map_or(Node::Null, |t| Node::str(w3c(t)))),
        ("escalation", Node::Int(u64::from(c.escalation))),
        ("suspended", Node::Bool(c.suspended)),
        ("worker", name(c.worker)),
        ("resolver", name(c.resolver)),
        ("returns", Node::Int(u64::from(c.returns))),
    ])
}

pub(crate) async fn cases(
    State(s): State<AppState>,
    headers: HeaderMap,
    worker: Result<Path<String>, PathRejection>,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        let Path(worker) =
            worker.map_err(|e| ApiError::bad(format!("unreadable path: {}", e.body_text())))?;
        let w = authorize(&s, &headers, &worker)?;
        let list = s
            .engine
            .worker_cases(w)
            .iter()
            .map(|c| case_node(&s, c))
            .collect();
        Ok(respond(
            Format::Json,
            StatusCode::OK,
            "cases",
            &Node::List("case", list),
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Runs a command off the async threads (it may wait for the journal) and answers the
/// case's new state.
pub(crate) async fn run_command(s: &AppState, command: Command) -> Result<Response, ApiError> {
    let engine = s.engine.clone();
    let case = command.case();
    let done = tokio::task::spawn_blocking(move || engine.execute(&command))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the command could not be run",
            )
        })?;
    let state: CaseState = done.map_err(|e| lifecycle_error(&e))?;
    let node = Node::Obj(vec![
        ("case", Node::Int(case.0)),
        ("state", Node::str(state.as_str())),
    ]);
    Ok(respond(Format::Json, StatusCode::OK, "result", &node))
}

pub(crate) async fn act(
    State(s): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let Path((worker, case, action)) =
            path.map_err(|e| ApiError::bad(format!("unreadable path: {}", e.body_text())))?;
        let w = authorize(&s, &headers, &worker)?;
        let case = parse_case(&case)?;
        let body = json_body(body)?;
        let command = match action.as_str() {
            "accept" => Command::Accept { case, worker: w },
            "return" => Command::Return {
                case,
                worker: w,
                // Required of a worker over HTTP; kept in the case's notes.
                reason: Some(reason(&body)?),
            },
            "resolve" => Command::Resolve { case, worker: w },
            "verify" => Command::Verify {
                case,
                by: Verifier::Worker(w),
                passed: flag(&body, "passed")?,
            },
            other => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no action {other:?}: accept, return, resolve or verify"),
                ));
            }
        };
        if !matches!(command, Command::Verify { .. }) {
            // Someone else's case is refused as such whatever its state, so that a worker
            // learns nothing about it; the engine checks again under the case's lock.
            let holder = s.engine.case(case).map(|c| c.worker);
            match holder {
                None => return Err(lifecycle_error(&crate::LifecycleError::UnknownCase(case))),
                Some(h) if h != Some(w) => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!("case {} is not dispatched to {worker}", case.0),
                    ));
                }
                Some(_) => {}
            }
        }
        run_command(&s, command).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn position(
    State(s): State<AppState>,
    headers: HeaderMap,
    worker: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        let Path(worker) =
            worker.map_err(|e| ApiError::bad(format!("unreadable path: {}", e.body_text())))?;
        let w = authorize(&s, &headers, &worker)?;
        let body = json_body(body)?;
        let coord = |k: &str| {
            body.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| ApiError::bad(format!("{k} (a number) is required")))
        };
        let at = Location::new(coord("long")?, coord("lat")?)
            .map_err(|e| ApiError::bad(format!("bad coordinates: {e}")))?;
        s.engine
            .router()
            .set_position(w, at)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}
