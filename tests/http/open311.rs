//! Open311 GeoReport v2 as a generic client uses it: discovery, services, filing, reading
//! back in JSON and XML, the list's filters, and a bounded load with nothing lost.

use crate::{API_KEY, Server, assert_error, spread_points};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::{BTreeMap, HashSet};

/// Every leaf element's text under each `item` element, in order, by a parser of its own.
fn xml_items(xml: &str, root: &str, item: &str) -> Vec<BTreeMap<String, String>> {
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "no XML declaration: {xml}"
    );
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut items = Vec::new();
    let mut current: Option<BTreeMap<String, String>> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                if path.is_empty() {
                    assert_eq!(name, root, "root element");
                }
                if name == item && path.len() == 1 {
                    current = Some(BTreeMap::new());
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                if let Some(c) = current.as_mut() {
                    c.insert(name, String::new());
                }
            }
            Event::Text(t) => {
                let text = t.decode().expect("text").into_owned();
                let text = quick_xml::escape::unescape(&text)
                    .expect("entities")
                    .into_owned();
                if let (Some(c), Some(leaf)) = (current.as_mut(), path.last()) {
                    c.entry(leaf.clone()).or_default().push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8(r.to_vec()).expect("utf-8");
                let ch = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                if let (Some(c), Some(leaf)) = (current.as_mut(), path.last()) {
                    c.entry(leaf.clone()).or_default().push_str(ch);
                }
            }
            Event::End(_) => {
                let name = path.pop().expect("balanced");
                if name == item && path.len() == 1 {
                    items.push(current.take().expect("opened"));
                } else if let (Some(c), Some(_)) = (current.as_mut(), path.len().checked_sub(2)) {
                    c.entry(name).or_default();
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_client_lists_files_and_reads_back_in_json_and_xml() {
    let s = Server::start().await;
    let city = s.engine.city();

    let d: serde_json::Value = s.get_json("/discovery.json").await;
    let ep = &d["endpoints"][0];
    assert_eq!(ep["specification"], "http://wiki.open311.org/GeoReport_v2");
    assert!(
        ep["formats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "text/xml")
    );

    // The catalogue, both ways: one service per category, codes and groups as the city has them.
    let json: serde_json::Value = s.get_json("/services.json").await;
    let want: Vec<(String, String)> = city
        .categories()
        .iter()
        .map(|c| (c.code.clone(), c.platform.to_string()))
        .collect();
    let got: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["service_code"].as_str().unwrap().into(),
                v["group"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let xml = s.get("/services.xml").await;
    assert_eq!(xml.headers()["content-type"], "text/xml; charset=utf-8");
    let items = xml_items(&xml.text().await.unwrap(), "services", "service");
    let got: Vec<(String, String)> = items
        .iter()
        .map(|i| (i["service_code"].clone(), i["group"].clone()))
        .collect();
    assert_eq!(got, want);
    assert!(
        items
            .iter()
            .all(|i| i["metadata"] == "false" && i["type"] == "realtime")
    );

    let def = s.get_text("/services/ZF-02.xml").await;
    assert!(
        def.contains("<service_definition><service_code>ZF-02</service_code>"),
        "{def}"
    );

    // Filed in XML, read back in both.
    let r = s
        .client
        .post(s.url("/requests.xml"))
        .form(&[
            ("api_key", API_KEY),
            ("service_code", "ZF-02"),
            ("lat", "36.12"),
            ("long", "120.33"),
            ("address_string", "ignored when coordinates are given"),
            ("description", "car on the <pavement> & blocking"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let filed = xml_items(&r.text().await.unwrap(), "service_requests", "request");
    assert_eq!(filed.len(), 1);
    let id = filed[0]["service_request_id"].clone();
    let case = s
        .engine
        .case(wangge::CaseId(id.parse().unwrap()))
        .expect("the engine holds it");
    assert_eq!(case.description, "car on the <pavement> & blocking");
    assert_eq!(city.category(case.category).unwrap().code, "ZF-02");
    // Illegal parking is a street office's duty: its law-enforcement force takes it. Once
    // dispatched the case stays put (nobody acts on it), so both reads see the same state.
    let routed = s.wait_routed(wangge::CaseId(id.parse().unwrap())).await;
    assert_eq!(routed, "dispatched");

    let json: serde_json::Value = s.get_json(&format!("/requests/{id}.json")).await;
    let xml = s.get_text(&format!("/requests/{id}.xml")).await;
    let x = &xml_items(&xml, "service_requests", "request")[0];
    for field in [
        "service_request_id",
        "status",
        "service_code",
        "description",
        "requested_datetime",
        "detailed_status",
    ] {
        assert_eq!(
            json[0][field].as_str().unwrap(),
            x[field],
            "{field} differs between JSON and XML"
        );
    }
    assert_eq!(x["status"], "open");
    assert_eq!(json[0]["lat"], 36.12);
    assert_eq!(json[0]["long"], 120.33);
    assert_eq!(x["lat"], "36.12");
    assert_eq!(x["detailed_status"], "dispatched");
    let json: serde_json::Value = s.get_json(&format!("/requests/{id}.json")).await;
    let agency = json[0]["agency_responsible"].as_str().unwrap();
    let case = s.engine.case(wangge::CaseId(id.parse().unwrap())).unwrap();
    let Ok(wangge::Holder::Street { street, organ }) = city
        .admit(case.cell.unwrap(), case.category)
        .map(|a| a.holder)
    else {
        panic!("a street office holds illegal parking");
    };
    let street = &city.unit(street).unwrap().name;
    assert_eq!(
        agency,
        format!("{street}{}", city.organ(organ).unwrap().name)
    );

    let t: serde_json::Value = s.get_json(&format!("/tokens/{id}.json")).await;
    assert_eq!(t[0]["service_request_id"], id.as_str());
    assert_error(s.get("/tokens/999999.json").await, 404, "unknown token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_as_the_spec_says() {
    let s = Server::start().await;
    let points = spread_points(12);
    let mut garbage = Vec::new();
    let mut parking = Vec::new();
    for (i, (lat, long)) in points.iter().enumerate() {
        let code = if i % 2 == 0 { "ZF-01" } else { "ZF-02" };
        let id = s.file(code, *lat, *long).await;
        if i % 2 == 0 {
            garbage.push(id)
        } else {
            parking.push(id)
        }
    }
    let get = |q: &str| {
        let url = s.url(&format!("/requests.json{q}"));
        let c = s.client.clone();
        async move { c.get(url).send().await.unwrap() }
    };
    let ids = |v: &serde_json::Value| -> HashSet<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["service_request_id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let all: serde_json::Value = get("").await.json().await.unwrap();
    assert_eq!(ids(&all).len(), 12);
    let only: serde_json::Value = get("?service_code=ZF-02").await.json().await.unwrap();
    assert_eq!(ids(&only), parking.iter().map(|c| c.0).collect());
    let both: serde_json::Value = get("?service_code=ZF-01,ZF-02&status=open")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&both).len(), 12);
    let closed: serde_json::Value = get("?status=closed").await.json().await.unwrap();
    assert!(ids(&closed).is_empty(), "nothing is closed yet");
    let picked = format!(
        "?service_request_id={},{}&service_code=ZF-02",
        garbage[0].0, garbage[1].0
    );
    let picked: serde_json::Value = get(&picked).await.json().await.unwrap();
    assert_eq!(
        ids(&picked),
        [garbage[0].0, garbage[1].0].into(),
        "ids given: other filters ignored"
    );
    let future: serde_json::Value = get("?start_date=2100-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&future).is_empty());
    let past: serde_json::Value = get("?end_date=2000-01-01T00:00:00%2B08:00")
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&past).is_empty());
    let window: serde_json::Value =
        get("?start_date=2000-01-01T00:00:00Z&end_date=2100-01-01T00:00:00Z")
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(ids(&window).len(), 12);

    assert_error(get("?status=pending").await, 400, "unknown status").await;
    assert_error(get("?status=,").await, 400, "empty status").await;
    assert_error(get("?start_date=yesterday").await, 400, "bad date").await;
    assert_error(
        get("?start_date=2030-01-01T00:00:00Z&end_date=2020-01-01T00:00:00Z").await,
        400,
        "end before start",
    )
    .await;
    assert_error(
        get("?service_code=NOPE").await,
        400,
        "unknown service code in a filter",
    )
    .await;
    assert_error(get("?service_request_id=x1").await, 400, "not an id").await;
    assert_error(
        get("?status=open&status=closed").await,
        400,
        "a filter given twice",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_lose_no_report() {
    const CLIENTS: usize = 24;
    const EACH: usize = 25;
    let s = std::sync::Arc::new(Server::start().await);
    let points = std::sync::Arc::new(spread_points(64));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (s, points) = (s.clone(), points.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let (lat, long) = points[(c * EACH + i) % points.len()];
                ids.push(
                    s.file(if i % 3 == 0 { "ZF-02" } else { "ZF-01" }, lat, long)
                        .await,
                );
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), CLIENTS * EACH, "every report its own id");
    assert_eq!(s.engine.submitted(), (CLIENTS * EACH) as u64);
    for id in &ids {
        let r = s.get(&format!("/requests/{}.json", id.0)).await;
        assert_eq!(r.status(), 200, "request {} lost", id.0);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v[0]["service_request_id"], id.0.to_string());
    }
}
