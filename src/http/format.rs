//! Answers in JSON or XML from one tree, errors in Open311's shape, dates in W3C form.

use crate::clock::Timestamp;
use crate::pipeline::{LifecycleError, SubmitError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The answer's format, from the resource's extension (`.json` or `.xml`; JSON without).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

impl Format {
    /// The name and format of a resource written `name.json`, `name.xml` or `name`.
    pub(crate) fn split(resource: &str) -> (&str, Format) {
        if let Some(name) = resource.strip_suffix(".json") {
            (name, Format::Json)
        } else if let Some(name) = resource.strip_suffix(".xml") {
            (name, Format::Xml)
        } else {
            (resource, Format::Json)
        }
    }
}

/// A document that renders as JSON or as XML.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Str(String),
    Int(u64),
    Num(f64),
    Bool(bool),
    Null,
    /// Named fields, in order.
    Obj(Vec<(&'static str, Node)>),
    /// A list whose items are tagged `item` in XML.
    List(&'static str, Vec<Node>),
}

impl Node {
    pub(crate) fn str(s: impl Into<String>) -> Node {
        Node::Str(s.into())
    }

    fn json(&self) -> Value {
        match self {
            Node::Str(s) => Value::String(s.clone()),
            Node::Int(n) => Value::from(*n),
            Node::Num(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Node::Bool(b) => Value::Bool(*b),
            Node::Null => Value::Null,
            Node::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.json()))
                    .collect::<Map<_, _>>(),
            ),
            Node::List(_, items) => Value::Array(items.iter().map(Node::json).collect()),
        }
    }

    fn xml(&self, tag: &str, out: &mut String) {
        out.push('<');
        out.push_str(tag);
        out.push('>');
        match self {
            Node::Str(s) => escape(s, out),
            Node::Int(n) => out.push_str(&n.to_string()),
            Node::Num(x) => out.push_str(&x.to_string()),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Null => {}
            Node::Obj(fields) => {
                for (k, v) in fields {
                    v.xml(k, out);
                }
            }
            Node::List(item, items) => {
                for v in items {
                    v.xml(item, out);
                }
            }
        }
        out.push_str("</");
        out.push_str(tag);
        out.push('>');
    }
}

/// Text as XML character data. Characters XML 1.0 cannot carry at all (most C0 controls)
/// become U+FFFD rather than making the document unreadable.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `node` as the answer, in `format`, under the XML root element `root`.
pub(crate) fn respond(format: Format, status: StatusCode, root: &str, node: &Node) -> Response {
    match format {
        Format::Json => {
            let body = node.json().to_string();
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                )],
                body,
            )
                .into_response()
        }
        Format::Xml => {
            let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            node.xml(root, &mut body);
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/xml; charset=utf-8"),
                )],
                body,
            )
                .into_response()
        }
    }
}

/// A refusal: its HTTP status and a description, answered as Open311's list of errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) description: String,
    pub(crate) format: Format,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            description: description.into(),
            format: Format::Json,
        }
    }

    pub(crate) fn bad(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, description)
    }

    pub(crate) fn in_format(mut self, format: Format) -> ApiError {
        self.format = format;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let node = Node::List(
            "error",
            vec![Node::Obj(vec![
                ("code", Node::Int(u64::from(self.status.as_u16()))),
                ("description", Node::Str(self.description)),
            ])],
        );
        let mut r = respond(self.format, self.status, "errors", &node);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    let format = if uri.path().ends_with(".xml") {
        Format::Xml
    } else {
        Format::Json
    };
    ApiError::new(StatusCode::NOT_FOUND, "no such resource").in_format(format)
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this resource",
    )
}

/// The HTTP answer to a refused command.
pub(crate) fn lifecycle_error(e: &LifecycleError) -> ApiError {
    let status = match e {
        LifecycleError::UnknownCase(_) => StatusCode::NOT_FOUND,
        LifecycleError::WrongWorker { .. } | LifecycleError::VerifierIsResolver { .. } => {
            StatusCode::FORBIDDEN
        }
        LifecycleError::EmptyReason { .. }
        | LifecycleError::Extension { .. }
        | LifecycleError::UnknownWorker(_) => StatusCode::BAD_REQUEST,
        LifecycleError::Journal(_) | LifecycleError::ShutDown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.to_string())
}

/// The HTTP answer to a refused report.
pub(crate) fn submit_error(e: &SubmitError) -> ApiError {
    let status = match e {
        SubmitError::Full(_)
        | SubmitError::ShutDown(_)
        | SubmitError::StoreFull
        | SubmitError::Journal(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

/// A time as a W3C date-time in UTC (`2026-11-30T08:15:30Z`).
pub(crate) fn w3c(t: Timestamp) -> String {
    let nanos = i128::from(t.0) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| d.replace_nanosecond(0).ok())
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A W3C date-time (with `Z` or an offset) as a time.
pub(crate) fn parse_w3c(s: &str) -> Option<Timestamp> {
    let d = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    let ms = d.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).ok().map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_offsets_count() {
        let t = Timestamp(1_795_996_800_000 + 8 * 3_600_000 + 15 * 60_000 + 30_000);
        assert_eq!(w3c(t), "2026-11-30T08:15:30Z");
        assert_eq!(parse_w3c("2026-11-30T08:15:30Z"), Some(t));
        assert_eq!(parse_w3c("2026-11-30T16:15:30+08:00"), Some(t));
        for bad in [
            "",
            "2026-11-30",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_w3c(bad), None, "{bad}");
        }
    }

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_cannot_carry() {
        let node = Node::Obj(vec![("d", Node::str("a<b>&\"c'\u{1}"))]);
        let mut out = String::new();
        node.xml("r", &mut out);
        assert_eq!(out, "<r><d>a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}</d></r>");
    }

    #[test]
    fn extensions_pick_the_format() {
        assert_eq!(Format::split("services.xml"), ("services", Format::Xml));
        assert_eq!(Format::split("12.json"), ("12", Format::Json));
        assert_eq!(Format::split("ZF-01"), ("ZF-01", Format::Json));
    }
}
