//! Open311 GeoReport v2: discovery, the service catalogue, filing and reading requests.
//!
//! A service is a category of the city's catalogue (`service_code` = category code,
//! `group` = its platform). A service request is a case: `service_request_id` is the case
//! id, `status` is `open` or `closed` as the spec has it and `detailed_status` (an
//! extension) the case's state; `agency_responsible` is the unit that holds it by the duty
//! lists. Ids are given at once, so a request's token is its id.

use super::AppState;
use super::access::Access;
use super::format::{ApiError, Format, Node, parse_w3c, respond, submit_error, w3c};
use crate::city::{City, Holder};
use crate::clock::Timestamp;
use crate::pipeline::{Case, MAX_DESCRIPTION, Report, Source};
use crate::routing::CaseId;
use crate::{CaseState, Location};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashSet;
use std::time::Duration;

/// Requests answered by one `GET /requests` at most (the spec's limit).
pub(crate) const MAX_LISTED: usize = 1000;
/// The window `GET /requests` covers when no date is given (the spec's default).
const DEFAULT_WINDOW: Duration = Duration::from_secs(90 * 24 * 3600);

pub(crate) fn routes(mut app: Router<AppState>) -> Router<AppState> {
    for (ext, format) in [
        ("", Format::Json),
        (".json", Format::Json),
        (".xml", Format::Xml),
    ] {
        app = app
            .route(
                &format!("/discovery{ext}"),
                get(move |s: State<AppState>, h: HeaderMap| async move { discovery(s, h, format) }),
            )
            .route(
                &format!("/services{ext}"),
                get(move |s: State<AppState>| async move { services(s, format) }),
            )
            .route(
                &format!("/requests{ext}"),
                get(move |s: State<AppState>, q: RawQuery| async move { list(s, q, format).await })
                    .post(
                        move |s: State<AppState>,
                              q: RawQuery,
                              h: HeaderMap,
                              b: Result<Bytes, BytesRejection>| async move {
                            file(s, q, h, b, format).await
                        },
                    ),
            );
    }
    app.route("/services/{file}", get(service))
        .route("/requests/{file}", get(request))
        .route("/tokens/{file}", get(token))
}

/// Key-value pairs of a query string or form body.
pub(crate) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The one value of `key`, if given; a key given twice is refused.
pub(crate) fn one<'a>(
    pairs: &'a [(String, String)],
    key: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut it = pairs.iter().filter(|(k, _)| k == key);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(ApiError::bad(format!("{key} given more than once")));
    }
    Ok(first)
}

fn path_error(e: &PathRejection, format: Format) -> ApiError {
    ApiError::bad(format!("unreadable path: {}", e.body_text())).in_format(format)
}

fn discovery(State(s): State<AppState>, headers: HeaderMap, format: Format) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    // When this API last changed (its discovery changeset), not the time of the answer.
    let changeset = String::from("2026-11-30T00:00:00Z");
    let node = Node::Obj(vec![
        ("changeset", Node::str(changeset.clone())),
        (
            "contact",
            Node::str(format!(
                "the command center of {}",
                s.engine
                    .city()
                    .unit(s.engine.city().root())
                    .map_or("the city", |u| u.name.as_str())
            )),
        ),
        ("key_service", Node::str("api_key from the command center")),
        (
            "endpoints",
            Node::List(
                "endpoint",
                vec![Node::Obj(vec![
                    (
                        "specification",
                        Node::str("http://wiki.open311.org/GeoReport_v2"),
                    ),
                    ("url", Node::str(format!("http://{host}"))),
                    ("changeset", Node::str(changeset)),
                    ("type", Node::str("production")),
                    (
                        "formats",
                        Node::List(
                            "format",
                            vec![Node::str("text/xml"), Node::str("application/json")],
                        ),
                    ),
                ])],
            ),
        ),
    ]);
    respond(format, StatusCode::OK, "discovery", &node)
}

fn keywords(city: &City, c: &crate::Category) -> String {
    let mut words = vec![c.platform.to_string(), c.level.to_string()];
    words.extend(
        c.roles
            .iter()
            .filter_map(|r| city.role(r))
            .map(|r| r.id.clone()),
    );
    words.join(",")
}

fn services(State(s): State<AppState>, format: Format) -> Response {
    let city = s.engine.city();
    let list = city
        .categories()
        .iter()
        .map(|c| {
            Node::Obj(vec![
                ("service_code", Node::str(c.code.clone())),
                ("service_name", Node::str(c.name.clone())),
                (
                    "description",
                    Node::str(format!("{} ({} platform)", c.name, c.platform)),
                ),
                ("metadata", Node::Bool(false)),
                ("type", Node::str("realtime")),
                ("keywords", Node::str(keywords(city, c))),
                ("group", Node::str(c.platform.to_string())),
            ])
        })
        .collect();
    respond(
        format,
        StatusCode::OK,
        "services",
        &Node::List("service", list),
    )
}

async fn service(State(s): State<AppState>, file: Result<Path<String>, PathRejection>) -> Response {
    let file = match file {
        Ok(Path(f)) => f,
        Err(e) => return path_error(&e, Format::Json).into_response(),
    };
    let (code, format) = Format::split(&file);
    let city = s.engine.city();
    let Some(c) = city.category_id(code).and_then(|id| city.category(id)) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "service_code not found: no such service",
        )
        .in_format(format)
        .into_response();
    };
    let node = Node::Obj(vec![
        ("service_code", Node::str(c.code.clone())),
        ("service_name", Node::str(c.name.clone())),
        ("group", Node::str(c.platform.to_string())),
        ("keywords", Node::str(keywords(city, c))),
        ("attributes", Node::List("attribute", Vec::new())),
    ]);
    respond(format, StatusCode::OK, "service_definition", &node)
}

/// The unit that holds a case by the duty lists, by name.
fn agency(city: &City, case: &Case) -> String {
    let Some(cell) = case.cell else {
        return String::new();
    };
    match city.admit(cell, case.category).map(|a| a.holder) {
        Ok(Holder::Community(u)) => city.unit(u).map(|u| u.name.clone()),
        // Every street office has organs of the same names: the street says whose.
        Ok(Holder::Street { street, organ }) => city.organ(organ).map(|o| {
            format!(
                "{}{}",
                city.unit(street).map_or("", |u| u.name.as_str()),
                o.name
            )
        }),
        Ok(Holder::Department(d)) => city.department(d).map(|d| d.name.clone()),
        Err(_) => None,
    }
    .unwrap_or_default()
}

fn notes(case: &Case) -> String {
    match case.state {
        CaseState::Merged => case
            .merged_into
            .map(|p| format!("a duplicate of request {}", p.0))
            .unwrap_or_default(),
        CaseState::Rejected => "rejected: not a case the city can take (outside its grid)".into(),
        CaseState::Referred => "referred to the district department that holds the duty".into(),
        _ => String::new(),
    }
}

pub(crate) fn request_node(city: &City, case: &Case) -> Node {
    let category = city.category(case.category);
    let updated = case.history.last().map_or(case.reported_at, |t| t.at());
    Node::Obj(vec![
        ("service_request_id", Node::str(case.id.0.to_string())),
        (
            "status",
            Node::str(if case.state.is_open() {
                "open"
            } else {
                "closed"
            }),
        ),
        ("status_notes", Node::str(notes(case))),
        (
            "service_name",
            Node::str(category.map_or("", |c| c.name.as_str())),
        ),
        (
            "service_code",
            Node::str(category.map_or("", |c| c.code.as_str())),
        ),
        ("description", Node::str(case.description.clone())),
        ("agency_responsible", Node::str(agency(city, case))),
        ("service_notice", Node::str("")),
        ("requested_datetime", Node::str(w3c(case.reported_at))),
        ("updated_datetime", Node::str(w3c(updated))),
        (
            "expected_datetime",
            case.due.map_or(Node::Null, |d| Node::str(w3c(d))),
        ),
        ("address", Node::str("")),
        ("address_id", Node::str("")),
        ("zipcode", Node::str("")),
        ("lat", Node::Num(case.location.lat())),
        ("long", Node::Num(case.location.lon())),
        ("media_url", Node::str("")),
        ("detailed_status", Node::str(case.state.as_str())),
    ])
}

fn requests_answer(city: &City, cases: &[Case], format: Format) -> Response {
    let list = cases.iter().map(|c| request_node(city, c)).collect();
    respond(
        format,
        StatusCode::OK,
        "service_requests",
        &Node::List("request", list),
    )
}

fn parse_id(text: &str) -> Result<CaseId, ApiError> {
    text.trim().parse::<u64>().map(CaseId).map_err(|_| {
        ApiError::bad(format!(
            "service_request_id {text:?} is not a request id (a whole number)"
        ))
    })
}

async fn request(State(s): State<AppState>, file: Result<Path<String>, PathRejection>) -> Response {
    let file = match file {
        Ok(Path(f)) => f,
        Err(e) => return path_error(&e, Format::Json).into_response(),
    };
    let (id, format) = Format::split(&file);
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(e) => return e.in_format(format).into_response(),
    };
    match s.engine.case(id) {
        Some(case) => requests_answer(s.engine.city(), &[case], format),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no service request {}", id.0),
        )
        .in_format(format)
        .into_response(),
    }
}

async fn token(State(s): State<AppState>, file: Result<Path<String>, PathRejection>) -> Response {
    let file = match file {
        Ok(Path(f)) => f,
        Err(e) => return path_error(&e, Format::Json).into_response(),
    };
    let (token, format) = Format::split(&file);
    let found = token
        .trim()
        .parse::<u64>()
        .ok()
        .map(CaseId)
        .filter(|&id| s.engine.case(id).is_some());
    match found {
        Some(id) => {
            let node = Node::List(
                "request",
                vec![Node::Obj(vec![
                    ("service_request_id", Node::str(id.0.to_string())),
                    ("token", Node::str(token.trim())),
                ])],
            );
            respond(format, StatusCode::OK, "service_requests", &node)
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "no service request has this token")
            .in_format(format)
            .into_response(),
    }
}

async fn list(State(s): State<AppState>, RawQuery(q): RawQuery, format: Format) -> Response {
    // A list may read every case in its window: off the async threads.
    let listed =
        tokio::task::spawn_blocking(move || list_inner(&s, q.as_deref().unwrap_or(""), format))
            .await;
    match listed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.in_format(format).into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the list could not be made",
        )
        .in_format(format)
        .into_response(),
    }
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn list_inner(s: &AppState, query: &str, format: Format) -> Result<Response, ApiError> {
    let city = s.engine.city();
    let q = pairs(query.as_bytes());
    if let Some(ids) = one(&q, "service_request_id")? {
        // The spec: with ids given, every other filter is ignored.
        let mut cases = Vec::new();
        for id in comma_list(ids).take(MAX_LISTED) {
            if let Some(c) = s.engine.case(parse_id(id)?) {
                cases.push(c);
            }
        }
        return Ok(requests_answer(city, &cases, format));
    }
    let categories = match one(&q, "service_code")? {
        None => None,
        Some(codes) => {
            let mut set = HashSet::new();
            for code in comma_list(codes) {
                let id = city
                    .category_id(code)
                    .ok_or_else(|| ApiError::bad(format!("service_code {code:?} not found")))?;
                set.insert(id);
            }
            Some(set)
        }
    };
    let (mut open, mut closed) = (true, true);
    if let Some(statuses) = one(&q, "status")? {
        (open, closed) = (false, false);
        for st in comma_list(statuses) {
            match st {
                "open" => open = true,
                "closed" => closed = true,
                other => {
                    return Err(ApiError::bad(format!(
                        "status {other:?}: must be open or closed"
                    )));
                }
            }
        }
        if !open && !closed {
            return Err(ApiError::bad("status given empty: open, closed or both"));
        }
    }
    let date = |key: &str| -> Result<Option<Timestamp>, ApiError> {
        one(&q, key)?
            .map(|d| {
                parse_w3c(d).ok_or_else(|| {
                    ApiError::bad(format!(
                        "{key} {d:?} is not a W3C date-time such as 2026-11-30T08:15:30+08:00"
                    ))
                })
            })
            .transpose()
    };
    let (start, end) = (date("start_date")?, date("end_date")?);
    let start = match (start, end) {
        (Some(s), _) => s,
        (None, Some(_)) => Timestamp(0),
        (None, None) => Timestamp(
            s.engine
                .now()
                .0
                .saturating_sub(DEFAULT_WINDOW.as_millis() as u64),
        ),
    };
    let end = end.unwrap_or(Timestamp(u64::MAX));
    if end < start {
        return Err(ApiError::bad("end_date is before start_date"));
    }
    let cases = s.engine.find_cases(
        MAX_LISTED,
        |b| if b.state.is_open() { open } else { closed },
        |c| {
            categories
                .as_ref()
                .is_none_or(|set| set.contains(&c.category))
                && c.reported_at >= start
                && c.reported_at <= end
        },
    );
    Ok(requests_answer(city, &cases, format))
}

/// A report filed through Open311, checked field by field before the engine sees it.
fn report_from(
    city: &City,
    access: &Access,
    form: &[(String, String)],
    query: &[(String, String)],
    now: Timestamp,
) -> Result<Report, ApiError> {
    let key = match one(form, "api_key")? {
        Some(k) => Some(k),
        None => one(query, "api_key")?,
    };
    if !key.is_some_and(|k| access.is_api_key(k)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "api_key was not provided or is not valid",
        ));
    }
    let code = one(form, "service_code")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("service_code was not provided"))?;
    let category = city
        .category_id(code)
        .ok_or_else(|| ApiError::bad(format!("service_code {code:?} not found")))?;
    let (lat, long) = (one(form, "lat")?, one(form, "long")?);
    let (lat, long) = match (lat, long) {
        (Some(lat), Some(long)) => (lat, long),
        (None, None) => {
            let address =
                one(form, "address_string")?.is_some() || one(form, "address_id")?.is_some();
            return Err(ApiError::bad(if address {
                "an address alone cannot be located here: send lat and long"
            } else {
                "lat and long were not provided"
            }));
        }
        _ => return Err(ApiError::bad("lat and long must be given together")),
    };
    let number = |name: &str, text: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| ApiError::bad(format!("{name} {text:?} is not a number")))
    };
    let at = Location::new(number("long", long)?, number("lat", lat)?)
        .map_err(|e| ApiError::bad(format!("bad coordinates: {e}")))?;
    if city.grid().locate(at).is_none() {
        return Err(ApiError::bad(format!(
            "lat {} long {} lies outside the city's grid",
            at.lat(),
            at.lon()
        )));
    }
    let description = one(form, "description")?.unwrap_or("");
    if description.len() > MAX_DESCRIPTION {
        return Err(ApiError::bad(format!(
            "description of {} bytes (at most {MAX_DESCRIPTION})",
            description.len()
        )));
    }
    Ok(Report::new(Source::Hotline, category, at, now).with_description(description))
}

async fn file(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    format: Format,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(e.status(), format!("unreadable body: {}", e.body_text()))
                .in_format(format)
                .into_response();
        }
    };
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if form_type
        .as_deref()
        .is_some_and(|t| t != "application/x-www-form-urlencoded")
    {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a service request is posted as application/x-www-form-urlencoded",
        )
        .in_format(format)
        .into_response();
    }
    let form = pairs(&body);
    let query = pairs(q.as_deref().unwrap_or("").as_bytes());
    let report = match report_from(s.engine.city(), &s.access, &form, &query, s.engine.now()) {
        Ok(r) => r,
        Err(e) => return e.in_format(format).into_response(),
    };
    let engine = s.engine.clone();
    // Submitting may wait for room in the intake or for the journal: off the async threads.
    let filed = tokio::task::spawn_blocking(move || engine.submit(report)).await;
    match filed {
        Ok(Ok(id)) => {
            let node = Node::List(
                "request",
                vec![Node::Obj(vec![
                    ("service_request_id", Node::str(id.0.to_string())),
                    ("service_notice", Node::str("")),
                    ("account_id", Node::Null),
                ])],
            );
            respond(format, StatusCode::CREATED, "service_requests", &node)
        }
        Ok(Err(e)) => submit_error(&e).in_format(format).into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the report could not be taken",
        )
        .in_format(format)
        .into_response(),
    }
}
