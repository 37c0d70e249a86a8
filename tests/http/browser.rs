//! The live page in a real browser: headless Chromium loads `/`, runs its script against
//! the server and must show the counts the test itself filed.

use crate::{CENTER_KEY, Server, spread_points};
use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// The text of the element with this id in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let open = start + dom[start..].find('>')? + 1;
    let close = open + dom[open..].find('<')?;
    Some(&dom[open..close])
}

/// The DOM of `url` after the page has run for a few seconds of virtual time.
fn dump(
    browser: &PathBuf,
    url: &str,
    profile: &tempfile::TempDir,
) -> std::io::Result<std::process::Output> {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=8000",
            "--dump-dom",
            url,
        ])
        .output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_live_counts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        println!(
            "SKIPPED the_page_shows_live_counts_in_headless_chromium: no chromium binary on PATH"
        );
        return;
    };
    let s = Server::start().await;
    const FILED: usize = 17;
    let mut ids = Vec::new();
    for (lat, long) in spread_points(FILED) {
        ids.push(s.file("ZF-02", lat, long).await);
    }
    let mut dispatched = 0;
    for id in &ids {
        dispatched += usize::from(s.wait_routed(*id).await == "dispatched");
    }
    assert!(dispatched > 0);
    let url = s.url(&format!("/#key={CENTER_KEY}"));
    let profile = tempfile::tempdir().expect("a scratch profile");
    // On a loaded machine the page may be dumped before its first view arrives: a few
    // tries, each a fresh browser.
    let out = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for _ in 0..3 {
            let out = dump(&browser, &url, &profile)?;
            let ready = String::from_utf8_lossy(&out.stdout).contains("data-ready=\"1\"");
            last = Some(out);
            if ready {
                break;
            }
        }
        last.ok_or_else(|| std::io::Error::other("no try"))
    })
    .await
    .unwrap()
    .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page never drew its first view; stderr: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        element_text(&dom, "total-cases"),
        Some(FILED.to_string().as_str()),
        "{dom}"
    );
    // Every report is open, and as many dispatched as Open311 said one by one.
    assert_eq!(
        element_text(&dom, "open-cases"),
        Some(FILED.to_string().as_str())
    );
    assert_eq!(
        element_text(&dom, "state-dispatched"),
        Some(dispatched.to_string().as_str())
    );
    assert_eq!(element_text(&dom, "state-closed"), Some("0"));
    assert_eq!(
        element_text(&dom, "status"),
        Some("live"),
        "the event stream is connected"
    );
}
