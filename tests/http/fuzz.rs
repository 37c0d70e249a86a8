//! The router fuzzed in process: arbitrary methods, paths, queries, headers and bodies
//! never get a 5xx or a panic, and every refusal is an Open311 error list.

use crate::{API_KEY, CENTER_KEY, access};
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use std::sync::Arc;
use tower::ServiceExt;

/// Path pieces that reach every handler, mixed with arbitrary text.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("services".to_string()),
        Just("services.xml".to_string()),
        Just("requests".to_string()),
        Just("requests.json".to_string()),
        Just("requests.xml".to_string()),
        Just("tokens".to_string()),
        Just("discovery.xml".to_string()),
        Just("workers".to_string()),
        Just("W0001".to_string()),
        Just("cases".to_string()),
        Just("center".to_string()),
        Just("snapshot".to_string()),
        Just("view".to_string()),
        Just("map".to_string()),
        Just("accept".to_string()),
        Just("return".to_string()),
        Just("resolve".to_string()),
        Just("verify".to_string()),
        Just("dispatch".to_string()),
        Just("extend".to_string()),
        Just("suspend".to_string()),
        Just("close".to_string()),
        Just("position".to_string()),
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("%FF%FE".to_string()),
        Just("%2e%2e".to_string()),
        "[a-zA-Z0-9._%-]{0,12}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("api_key"),
        Just("service_code"),
        Just("lat"),
        Just("long"),
        Just("status"),
        Just("start_date"),
        Just("end_date"),
        Just("service_request_id"),
        Just("description"),
    ];
    let value = prop_oneof![
        Just(API_KEY.to_string()),
        Just("ZF-01".to_string()),
        Just("36.07".to_string()),
        Just("120.38".to_string()),
        Just("open,closed".to_string()),
        Just("2026-11-30T08:00:00Z".to_string()),
        Just("1e309".to_string()),
        Just("%00%ZZ".to_string()),
        "[ -~]{0,16}",
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        query().prop_map(String::into_bytes),
        Just(br#"{"reason":"x","passed":true,"minutes":5,"worker":"W0001","lat":36.07,"long":120.38}"#.to_vec()),
        Just(br#"{"minutes":18446744073709551615,"reason":"x"}"#.to_vec()),
        Just(b"[1,2,3]".to_vec()),
    ]
}

fn bearer() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(format!("Bearer {CENTER_KEY}"))),
        Just(Some("Bearer token-of-1".to_string())),
        Just(Some(format!("Bearer {API_KEY}"))),
        "[ -~]{0,24}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, .. ProptestConfig::default() })]

    #[test]
    fn no_input_gets_a_server_error(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        segments in prop::collection::vec(segment(), 0..6),
        q in query(),
        body in body(),
        bearer in bearer(),
        form in any::<bool>(),
    ) {
        let (app, rt) = &*APP;
        let uri = format!("/{}{}{}", segments.join("/"), if q.is_empty() { "" } else { "?" }, q);
        let Ok(mut req) = Request::builder().method(method).uri(&uri).body(Body::from(body)) else {
            // The URI itself is not one a client could send: nothing to serve.
            return Ok(());
        };
        if let Some(b) = bearer.and_then(|b| b.parse().ok()) {
            req.headers_mut().insert("authorization", b);
        }
        let ct = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        req.headers_mut().insert("content-type", ct.parse().unwrap());
        let is_stream = uri.starts_with("/center/events");
        let (status, text) = rt.block_on(async {
            let r = app.clone().oneshot(req).await.expect("infallible");
            let status = r.status();
            let bytes = if is_stream {
                Default::default()
            } else {
                axum::body::to_bytes(r.into_body(), 1 << 22).await.expect("a body")
            };
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        prop_assert!(status.as_u16() < 500, "{} {} -> {}: {}", method, uri, status, text);
        if !status.is_success() {
            prop_assert!(
                text.starts_with("[{\"code\":") || text.contains("<errors><error><code>"),
                "{} {} -> {}: not an error list: {}", method, uri, status, text
            );
        }
    }
}

static APP: std::sync::LazyLock<(axum::Router, tokio::runtime::Runtime)> =
    std::sync::LazyLock::new(|| {
        let city = Arc::new(wangge::demo::demo_city());
        let engine = Arc::new(
            wangge::Engine::builder(city.clone())
                .build()
                .expect("engine"),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        (wangge::http::router(engine, access(&city)), rt)
    });
