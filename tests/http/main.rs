//! The service front tested from outside: a server on a loopback port and a real HTTP
//! client (reqwest), XML read by its own parser (quick-xml), the page in headless
//! Chromium, and the router fuzzed in process.

mod browser;
mod fuzz;
mod open311;
mod roles;

use std::sync::Arc;
use std::time::{Duration, Instant};
use wangge::http::{Access, router};
use wangge::{CaseId, CaseState, City, Engine, WorkerId};

pub const API_KEY: &str = "client-key-1";
pub const CENTER_KEY: &str = "operator-key-1";

/// A worker's token in these tests.
pub fn token(w: WorkerId) -> String {
    format!("token-of-{}", w.index())
}

pub fn access(city: &City) -> Access {
    let mut a = Access::new().api_key(API_KEY).center_key(CENTER_KEY);
    for i in 0..city.workers().len() {
        let w = WorkerId::from_index(i).expect("fits");
        a = a.worker_token(w, token(w));
    }
    a
}

pub struct Server {
    pub base: String,
    pub engine: Arc<Engine>,
    pub client: reqwest::Client,
}

impl Server {
    /// The demo city served on a free loopback port.
    pub async fn start() -> Server {
        Server::start_with(wangge::EngineConfig::default()).await
    }

    /// As [`Server::start`], with this engine config.
    pub async fn start_with(config: wangge::EngineConfig) -> Server {
        let city = Arc::new(wangge::demo::demo_city());
        let engine = Arc::new(
            Engine::builder(city.clone())
                .config(config)
                .build()
                .expect("engine"),
        );
        let app = router(engine.clone(), access(&city));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            base: format!("http://{addr}"),
            engine,
            client: reqwest::Client::new(),
        }
    }

    /// GET `path`, the response whatever its status.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// GET `path`, its body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.unwrap()
    }

    /// GET `path`, its body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Files a report over Open311 and returns its id.
    pub async fn file(&self, code: &str, lat: f64, long: f64) -> CaseId {
        let lat = lat.to_string();
        let long = long.to_string();
        let r = self
            .client
            .post(self.url("/requests.json"))
            .form(&[
                ("api_key", API_KEY),
                ("service_code", code),
                ("lat", lat.as_str()),
                ("long", long.as_str()),
                ("description", "test report"),
            ])
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 201, "filing refused: {:?}", r.text().await);
        let v: serde_json::Value = r.json().await.expect("json");
        CaseId(
            v[0]["service_request_id"]
                .as_str()
                .expect("an id")
                .parse()
                .expect("a number"),
        )
    }

    /// The detailed status of a request as Open311 answers it.
    pub async fn status(&self, id: CaseId) -> (String, String) {
        let v: serde_json::Value = self
            .client
            .get(self.url(&format!("/requests/{}.json", id.0)))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        (
            v[0]["status"].as_str().expect("status").to_string(),
            v[0]["detailed_status"]
                .as_str()
                .expect("detailed")
                .to_string(),
        )
    }

    /// Waits until the request has left `reported`/`registered` (routing is asynchronous).
    pub async fn wait_routed(&self, id: CaseId) -> String {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, detailed) = self.status(id).await;
            if detailed != "reported" && detailed != "registered" {
                return detailed;
            }
            assert!(Instant::now() < until, "request {} never routed", id.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The case's state and history length, straight from the engine (to see that a
    /// refusal changed nothing).
    pub fn fingerprint(&self, id: CaseId) -> (CaseState, usize, Option<WorkerId>) {
        let c = self.engine.case(id).expect("the case exists");
        (c.state, c.history.len(), c.worker)
    }
}

/// Asserts the answer is an Open311 error list in JSON with `status` as its code.
pub async fn assert_error(r: reqwest::Response, status: u16, what: &str) {
    assert_eq!(r.status().as_u16(), status, "{what}");
    let body = r.text().await.expect("body");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    assert_eq!(v[0]["code"], status, "{what}: {body}");
    let description = v[0]["description"].as_str().unwrap_or("");
    assert!(!description.is_empty(), "{what}: no description: {body}");
}

/// Points inside the demo city's grid, far enough apart not to be merged as duplicates.
pub fn spread_points(n: usize) -> Vec<(f64, f64)> {
    let city = wangge::demo::demo_city();
    let mut out = Vec::new();
    let mut i = 0usize;
    while out.len() < n {
        let cell = wangge::CellId::from_index((i * 7919) % city.grid().len()).expect("fits");
        i += 1;
        let [x0, y0, x1, y1] = city.grid().cell_bounds(cell).expect("a cell");
        let (lon, lat) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let p = wangge::Location::new(lon, lat).expect("in range");
        if city.grid().locate(p).is_some() {
            out.push((lat, lon));
        }
    }
    out
}
