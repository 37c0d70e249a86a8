//! The router fuzzed in process: arbitrary methods, paths, queries, headers and bodies
//! never get a 5xx or a panic, and every refusal is an Open311 error list.

use crate::{API_KEY, CENTER_KEY, access};
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
        bent_filing(),
    ]
}

/// A good filing with one field replaced by anything, or left out: reaches every check of
/// a form.
fn bent_filing() -> impl Strategy<Value = Vec<u8>> {
    (0..5usize, "[ -~]{0,12}", any::<bool>()).prop_map(|(field, junk, drop)| {
        let mut f = vec![
            ("api_key", API_KEY.to_string()),
            ("service_code", "ZF-01".to_string()),
            ("lat", "36.07".to_string()),
            ("long", "120.38".to_string()),
            ("description", "fuzz".to_string()),
        ];
        if drop {
            f.remove(field);
        } else {
            f[field].1 = junk;
        }
        form_encode(&f)
    })
}

fn form_encode(fields: &[(&str, String)]) -> Vec<u8> {
    let enc = |t: &str| -> String {
        t.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Reports the fuzzed router answered 201 to: the engine must hold exactly these.
static FILED: AtomicU64 = AtomicU64::new(0);

/// The two properties share the engine and the count: one request at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    fn a_filing_is_taken_exactly_when_answered_201(
        ext in prop_oneof![Just(""), Just(".json"), Just(".xml")],
        body in bent_filing(),
    ) {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let (app, rt, engine) = &*APP;
        let req = Request::builder()
            .method("POST")
            .uri(format!("/requests{ext}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.clone()))
            .expect("a request");
        let status = rt.block_on(async { app.clone().oneshot(req).await.expect("infallible").status() });
        prop_assert!(status.as_u16() == 201 || status.is_client_error(), "{}: {}", status, String::from_utf8_lossy(&body));
        if status.as_u16() == 201 {
            FILED.fetch_add(1, Ordering::Relaxed);
        }
        prop_assert_eq!(engine.submitted(), FILED.load(Ordering::Relaxed), "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn no_input_gets_a_server_error(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        segments in prop::collection::vec(segment(), 0..6),
        q in query(),
        body in body(),
        bearer in bearer(),
        form in any::<bool>(),
    ) {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let (app, rt, engine) = &*APP;
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
        if status.as_u16() == 201 {
            FILED.fetch_add(1, Ordering::Relaxed);
        }
        // Whatever was refused took nothing: the engine holds the 201s and no more.
        prop_assert_eq!(engine.submitted(), FILED.load(Ordering::Relaxed), "{} {}", method, uri);
        if !status.is_success() {
            prop_assert!(
                text.starts_with("[{\"code\":") || text.contains("<errors><error><code>"),
                "{} {} -> {}: not an error list: {}", method, uri, status, text
            );
        }
    }
}

static APP: std::sync::LazyLock<(axum::Router, tokio::runtime::Runtime, Arc<wangge::Engine>)> =
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
        (
            wangge::http::router(engine.clone(), access(&city)),
            rt,
            engine,
        )
    });
