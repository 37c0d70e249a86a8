//! The live command-center page: one HTML file with its script and styles inline, so that
//! it works with no network beyond this server. It reads the operator's key from the
//! address's fragment (`/#key=...`, never sent to the server in the URL) and then draws
//! `/center/map` once, `/center/view` every few seconds and the event stream live.

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../../assets/center.html");

pub(crate) async fn index() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
                ),
            ),
        ],
        PAGE,
    )
}
