//! Who may do what, over HTTP: the whole loop by the right people, and every refusal a
//! clear 4xx that changes nothing.

use crate::{API_KEY, CENTER_KEY, Server, assert_error, token};
use serde_json::json;
use std::time::{Duration, Instant};
use wangge::{CaseId, WorkerId};

/// A form's fields, in order.
type Form = Vec<(String, String)>;

impl Server {
    async fn worker_post(
        &self,
        w: WorkerId,
        bearer: &str,
        case: CaseId,
        action: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let name = &self.engine.city().worker(w).unwrap().id;
        self.client
            .post(self.url(&format!("/workers/{name}/cases/{}/{action}", case.0)))
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn center_post(
        &self,
        key: Option<&str>,
        case: CaseId,
        action: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .post(self.url(&format!("/center/cases/{}/{action}", case.0)))
            .json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send().await.unwrap()
    }

    /// The worker the engine dispatched `case` to.
    fn holder(&self, case: CaseId) -> WorkerId {
        self.engine
            .case(case)
            .and_then(|c| c.worker)
            .expect("dispatched to someone")
    }

    /// Another worker of the city, not `w`.
    fn other(&self, w: WorkerId) -> WorkerId {
        WorkerId::from_index((w.index() + 1) % self.engine.city().workers().len()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_loop_over_http() {
    let s = Server::start().await;
    let id = s.file("ZF-01", 36.07, 120.38).await;
    assert_eq!(s.wait_routed(id).await, "dispatched");
    let w = s.holder(id);
    let name = s.engine.city().worker(w).unwrap().id.clone();

    // The worker sees it among their open cases.
    let mine: serde_json::Value = s
        .client
        .get(s.url(&format!("/workers/{name}/cases")))
        .bearer_auth(token(w))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<u64> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_u64().unwrap())
        .collect();
    assert!(listed.contains(&id.0), "{mine}");
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|c| c["worker"] == name.as_str())
    );

    let r = s
        .client
        .post(s.url(&format!("/workers/{name}/position")))
        .bearer_auth(token(w))
        .json(&json!({"lat": 36.0701, "long": 120.3801}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let at = s
        .engine
        .router()
        .worker_state(w)
        .unwrap()
        .position
        .expect("a position");
    assert!((at.lat() - 36.0701).abs() < 1e-6 && (at.lon() - 120.3801).abs() < 1e-6);

    for (action, want) in [("accept", "accepted"), ("resolve", "resolved")] {
        let r = s.worker_post(w, &token(w), id, action, json!({})).await;
        assert_eq!(r.status(), 200, "{action}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["state"], want);
        assert_eq!(s.status(id).await, ("open".into(), want.into()));
    }
    let r = s
        .center_post(Some(CENTER_KEY), id, "verify", json!({"passed": true}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.status(id).await, ("open".into(), "verified".into()));
    let r = s
        .center_post(
            Some(CENTER_KEY),
            id,
            "close",
            json!({"satisfaction": "satisfied"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.status(id).await, ("closed".into(), "closed".into()));
    let xml = s.get_text(&format!("/requests/{}.xml", id.0)).await;
    assert!(
        xml.contains("<status>closed</status>")
            && xml.contains("<detailed_status>closed</detailed_status>"),
        "{xml}"
    );
    let closed: serde_json::Value = s.get_json("/requests.json?status=closed").await;
    assert_eq!(closed[0]["service_request_id"], id.0.to_string());
    let case = s.engine.case(id).unwrap();
    let path: Vec<&str> = case.history.iter().map(|t| t.to().as_str()).collect();
    assert_eq!(
        path,
        [
            "reported",
            "registered",
            "dispatched",
            "accepted",
            "resolved",
            "verified",
            "closed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_clear_4xx_that_changes_nothing() {
    let s = Server::start().await;
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let good = [
        ("api_key", API_KEY),
        ("service_code", "ZF-01"),
        ("lat", "36.07"),
        ("long", "120.38"),
    ];
    let with = |k: &str, v: &str| -> Vec<(String, String)> {
        let mut f = form(&good);
        f.retain(|(key, _)| key != k);
        f.push((k.into(), v.into()));
        f
    };
    let without = |k: &str| -> Vec<(String, String)> {
        form(&good)
            .into_iter()
            .filter(|(key, _)| key != k)
            .collect()
    };
    let filings: Vec<(Form, u16, &str)> = vec![
        (with("api_key", "wrong"), 403, "wrong api_key"),
        (
            with("api_key", &API_KEY[..API_KEY.len() - 1]),
            403,
            "api_key prefix",
        ),
        (without("api_key"), 403, "no api_key"),
        (with("service_code", "NOPE"), 400, "unknown service code"),
        (without("service_code"), 400, "no service code"),
        (with("lat", "north"), 400, "lat not a number"),
        (with("lat", "NaN"), 400, "lat NaN"),
        (with("lat", "91"), 400, "lat out of range"),
        (with("long", "-181"), 400, "long out of range"),
        (with("lat", "0"), 400, "outside the grid"),
        (without("long"), 400, "lat without long"),
        (
            form(&[
                ("api_key", API_KEY),
                ("service_code", "ZF-01"),
                ("address_string", "1 Main St"),
            ]),
            400,
            "address without coordinates",
        ),
        (
            with("description", &"x".repeat(5000)),
            400,
            "description too long",
        ),
        (
            {
                let mut f = form(&good);
                f.push(("service_code".into(), "ZF-02".into()));
                f
            },
            400,
            "service_code twice",
        ),
    ];
    for (f, status, what) in filings {
        let r = s
            .client
            .post(s.url("/requests.json"))
            .form(&f)
            .send()
            .await
            .unwrap();
        assert_error(r, status, what).await;
    }
    let huge = "description=".to_string() + &"y".repeat(1 << 20);
    let r = s
        .client
        .post(s.url("/requests.json"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "oversized body").await;
    let reason = "z".repeat(1 << 20);
    let r = s
        .center_post(
            Some(CENTER_KEY),
            CaseId(0),
            "suspend",
            json!({ "reason": reason }),
        )
        .await;
    assert_error(r, 413, "oversized body to the center").await;
    let r = s
        .client
        .post(s.url("/requests.json"))
        .json(&json!({"api_key": API_KEY}))
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "JSON instead of a form").await;
    let r = s
        .client
        .post(s.url("/requests.xml"))
        .form(&with("api_key", "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<errors><error><code>403</code><description>"),
        "XML errors: {xml}"
    );
    assert_eq!(s.engine.submitted(), 0, "no refused report was taken");

    assert_error(s.get("/requests/424242.json").await, 404, "unknown request").await;
    assert_error(s.get("/requests/abc.json").await, 400, "not an id").await;
    assert_error(s.get("/services/NOPE.json").await, 404, "unknown service").await;
    assert_error(s.get("/nowhere").await, 404, "no such route").await;
    assert_error(
        s.client
            .delete(s.url("/services.json"))
            .send()
            .await
            .unwrap(),
        405,
        "wrong method",
    )
    .await;

    // A dispatched case, and people who may not touch it.
    let id = s.file("ZF-01", 36.07, 120.38).await;
    assert_eq!(s.wait_routed(id).await, "dispatched");
    let w = s.holder(id);
    let other = s.other(w);
    let before = s.fingerprint(id);
    for action in ["accept", "resolve"] {
        assert_error(
            s.worker_post(other, &token(other), id, action, json!({}))
                .await,
            403,
            "another worker",
        )
        .await;
    }
    assert_error(
        s.worker_post(
            other,
            &token(other),
            id,
            "return",
            json!({"reason": "not mine"}),
        )
        .await,
        403,
        "another worker returns",
    )
    .await;
    assert_error(
        s.worker_post(w, &token(other), id, "accept", json!({}))
            .await,
        401,
        "someone else's token",
    )
    .await;
    assert_error(
        s.worker_post(w, "", id, "accept", json!({})).await,
        401,
        "no token",
    )
    .await;
    assert_error(
        s.worker_post(w, CENTER_KEY, id, "accept", json!({})).await,
        401,
        "an operator key is no worker token",
    )
    .await;
    // (action, case, body, status, what)
    let worker_refusals = [
        ("resolve", id, json!({}), 409, "resolve before accept"),
        ("return", id, json!({}), 400, "return without a reason"),
        ("fly", id, json!({}), 404, "no such action"),
        ("accept", CaseId(999_999), json!({}), 404, "unknown case"),
    ];
    for (action, case, body, status, what) in worker_refusals {
        assert_error(
            s.worker_post(w, &token(w), case, action, body).await,
            status,
            what,
        )
        .await;
    }
    let name = s.engine.city().worker(w).unwrap().id.clone();
    let r = s
        .client
        .post(s.url(&format!("/workers/{name}/cases/{}/accept", id.0)))
        .bearer_auth(token(w))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "malformed JSON").await;
    // (key, action, body, status, what)
    let center_refusals = [
        (
            None,
            "suspend",
            json!({"reason": "x"}),
            401,
            "center without key",
        ),
        (
            Some(API_KEY),
            "suspend",
            json!({"reason": "x"}),
            401,
            "a client key is no operator key",
        ),
        (
            Some(CENTER_KEY),
            "verify",
            json!({"passed": true}),
            409,
            "verify before resolve",
        ),
        (
            Some(CENTER_KEY),
            "extend",
            json!({"minutes": 0, "reason": "x"}),
            400,
            "zero extension",
        ),
        (
            Some(CENTER_KEY),
            "suspend",
            json!({"reason": ""}),
            400,
            "empty reason",
        ),
        (
            Some(CENTER_KEY),
            "dispatch",
            json!({"worker": "nobody"}),
            400,
            "unknown worker",
        ),
        (
            Some(CENTER_KEY),
            "close",
            json!({"satisfaction": "meh"}),
            400,
            "bad verdict",
        ),
    ];
    for (key, action, body, status, what) in center_refusals {
        assert_error(s.center_post(key, id, action, body).await, status, what).await;
    }
    assert_eq!(s.fingerprint(id), before, "no refusal moved the case");
    assert_error(s.get("/center/snapshot").await, 401, "snapshot without key").await;

    // The holder may, after all of that; a resolver may not verify their own work.
    assert_eq!(
        s.worker_post(w, &token(w), id, "accept", json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        s.worker_post(w, &token(w), id, "resolve", json!({}))
            .await
            .status(),
        200
    );
    let before = s.fingerprint(id);
    assert_error(
        s.worker_post(w, &token(w), id, "verify", json!({"passed": true}))
            .await,
        403,
        "the resolver verifies",
    )
    .await;
    assert_eq!(s.fingerprint(id), before);
    let r = s
        .worker_post(other, &token(other), id, "verify", json!({"passed": true}))
        .await;
    assert_eq!(r.status(), 200, "another worker verifies");

    // The center's own commands on a fresh case.
    let id = s.file("ZF-01", 36.1, 120.36).await;
    assert_eq!(s.wait_routed(id).await, "dispatched");
    let r = s
        .center_post(
            Some(CENTER_KEY),
            id,
            "extend",
            json!({"minutes": 90, "reason": "heavy rain"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .center_post(
            Some(CENTER_KEY),
            id,
            "suspend",
            json!({"reason": "waiting for the owner"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(s.engine.case(id).unwrap().suspended);
    assert_error(
        s.center_post(Some(CENTER_KEY), id, "suspend", json!({"reason": "again"}))
            .await,
        409,
        "suspended twice",
    )
    .await;
    assert_eq!(
        s.center_post(Some(CENTER_KEY), id, "resume", json!({}))
            .await
            .status(),
        200
    );
    let snap: serde_json::Value = s
        .client
        .get(s.url("/center/snapshot"))
        .bearer_auth(CENTER_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["cases"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_tells_each_move() {
    let s = Server::start().await;
    let mut r = s
        .client
        .get(s.url("/center/events"))
        .bearer_auth(CENTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    // The stream is open once its first event arrives; only then is the report filed.
    while !seen.contains("event: hello") {
        seen.push_str(&String::from_utf8_lossy(
            &r.chunk().await.unwrap().expect("open"),
        ));
    }
    let id = s.file("ZF-01", 36.07, 120.38).await;
    let until = Instant::now() + Duration::from_secs(20);
    let want = format!("\"case\":{},", id.0);
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(20), r.chunk())
            .await
            .expect("in time")
            .unwrap()
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        let moves: Vec<&str> = seen
            .split("\n\n")
            .filter(|e| e.contains("event: case") && e.contains(&want))
            .collect();
        if moves.iter().any(|e| e.contains("\"to\":\"dispatched\"")) {
            assert!(
                moves.iter().any(|e| e.contains("\"to\":\"reported\"")),
                "{seen}"
            );
            break;
        }
        assert!(Instant::now() < until, "no dispatch event: {seen}");
    }
    assert_error(s.get("/center/events").await, 401, "stream without key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_case_waits_and_the_center_dispatches_it_by_hand() {
    let s = Server::start().await;
    let id = s.file("ZF-01", 36.07, 120.38).await;
    let mut returned_by = Vec::new();
    let until = Instant::now() + Duration::from_secs(20);
    // Each worker it reaches hands it back, with a reason, until it waits: in a ruling (the
    // router's breaker, after two returns) or in a queue.
    loop {
        let state = s.status(id).await.1;
        match state.as_str() {
            "dispatched" => {
                let w = s.holder(id);
                if !returned_by.contains(&w) {
                    let r = s
                        .worker_post(
                            w,
                            &token(w),
                            id,
                            "return",
                            json!({"reason": "not on my beat"}),
                        )
                        .await;
                    assert_eq!(r.status(), 200);
                    returned_by.push(w);
                }
            }
            // Nobody else free in the holder's force: it waits in the organ's queue instead.
            "ruling" | "queued" => break,
            _ => {}
        }
        assert!(Instant::now() < until, "never waited: {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !returned_by.is_empty() && returned_by.len() <= 2,
        "{returned_by:?}"
    );
    let first = s.engine.city().worker(returned_by[0]).unwrap().id.clone();
    let r = s
        .center_post(Some(CENTER_KEY), id, "dispatch", json!({"worker": first}))
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["state"], "dispatched");
    assert_eq!(s.holder(id), returned_by[0]);
    let actions: Vec<&str> = s
        .engine
        .case(id)
        .unwrap()
        .history
        .iter()
        .map(|t| t.action().as_str())
        .collect();
    let returns = actions.iter().filter(|a| **a == "return").count();
    assert_eq!(returns, returned_by.len(), "{actions:?}");
    assert_eq!(actions.last(), Some(&"manual_dispatch"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_falls_behind_is_told_how_much_it_missed() {
    let s = Server::start_with(wangge::EngineConfig {
        subscriber_buffer: 8,
        ..wangge::EngineConfig::default()
    })
    .await;
    let mut r = s
        .client
        .get(s.url("/center/events"))
        .bearer_auth(CENTER_KEY)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("event: hello") {
        seen.push_str(&String::from_utf8_lossy(
            &r.chunk().await.unwrap().expect("open"),
        ));
    }
    // Far more events than the stream's buffers hold, while this client reads nothing.
    let city = s.engine.city();
    let garbage = city.category_id("ZF-01").unwrap();
    let reports: Vec<wangge::Report> = crate::spread_points(400)
        .into_iter()
        .map(|(lat, lon)| {
            let at = wangge::Location::new(lon, lat).unwrap();
            wangge::Report::new(wangge::Source::Hotline, garbage, at, s.engine.now())
        })
        .collect();
    for _ in 0..10 {
        assert!(
            s.engine
                .submit_batch(reports.clone())
                .iter()
                .all(Result::is_ok)
        );
    }
    s.engine.flush();
    let until = Instant::now() + Duration::from_secs(30);
    let missed = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), r.chunk())
            .await
            .expect("in time")
            .unwrap()
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(at) = seen.find("event: missed\ndata: ") {
            let rest = &seen[at + "event: missed\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                break rest[..end].parse::<u64>().expect("a count");
            }
        }
        assert!(Instant::now() < until, "never told of missed events");
    };
    assert!(missed > 0);
}
