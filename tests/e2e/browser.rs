//! The gateway's web page in a real browser (issue 14, item 4): headless
//! Chromium, driven over the DevTools protocol (`headless_chrome`),
//! uploads a file through the page's picker, sees it listed, downloads it
//! through its link and compares the bytes, renames it, deletes it, and
//! opens the cluster page showing 3 metadata nodes and the chunk servers.
//! A screenshot of each page is saved under
//! `$CARGO_TARGET_TMPDIR/browser-screenshots/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

use crate::gateway::start;
use crate::harness::pattern;

/// Debian's chromium; `.ci/run` installs it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one thing the page should show may take to appear.
const PAGE_BOUND: Duration = Duration::from_secs(30);

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots")
}

fn save_screenshot(tab: &Tab, name: &str) -> Result<()> {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, png)?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// Evaluates `expression` (awaiting a promise) until it yields `true`.
fn wait_true(tab: &Tab, what: &str, expression: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let value = tab.evaluate(expression, true).ok().and_then(|r| r.value);
        if value == Some(serde_json::Value::Bool(true)) {
            return Ok(());
        }
        if started.elapsed() > PAGE_BOUND {
            bail!("the page did not show {what} within {PAGE_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn row(name: &str) -> String {
    format!("document.querySelector('tr[data-name=\"{name}\"]')")
}

/// Everything the browser does, blocking (the DevTools client is).
fn drive(base: &str, upload: &Path, content: &[u8]) -> Result<()> {
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .sandbox(false)
        .headless(true)
        .window_size(Some((1100, 1000)))
        .build()
        .map_err(anyhow::Error::msg)?;
    let browser = Browser::new(options).context("start chromium (Debian package `chromium`)")?;
    let tab = browser.new_tab()?;
    tab.set_default_timeout(PAGE_BOUND);

    tab.navigate_to(&format!("{base}/"))?
        .wait_until_navigated()?;
    let upload_path = upload.to_str().context("a UTF-8 temp path")?;
    tab.wait_for_element("#pick")?
        .set_input_files(&[upload_path])?;
    wait_true(
        &tab,
        "the uploaded file",
        &format!("{} !== null", row("up.bin")),
    )?;

    let fetched = tab
        .evaluate(
            "(async () => { const a = document.querySelector('tr[data-name=\"up.bin\"] a[download]'); \
             const bytes = new Uint8Array(await (await fetch(a.href)).arrayBuffer()); \
             return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join(''); })()",
            true,
        )?
        .value
        .context("the download's bytes")?;
    let expected: String = content.iter().map(|b| format!("{b:02x}")).collect();
    if fetched.as_str() != Some(expected.as_str()) {
        bail!("the downloaded bytes differ from the uploaded ones");
    }
    save_screenshot(&tab, "files.png")?;

    tab.evaluate("window.prompt = () => 'renamed.bin'", false)?;
    tab.wait_for_element("tr[data-name=\"up.bin\"] button[data-action=\"rename\"]")?
        .click()?;
    wait_true(
        &tab,
        "the renamed file",
        &format!(
            "{} !== null && {} === null",
            row("renamed.bin"),
            row("up.bin")
        ),
    )?;

    tab.evaluate("window.confirm = () => true", false)?;
    tab.wait_for_element("tr[data-name=\"renamed.bin\"] button[data-action=\"delete\"]")?
        .click()?;
    wait_true(
        &tab,
        "the file gone",
        &format!(
            "document.readyState === 'complete' && {} === null",
            row("renamed.bin")
        ),
    )?;

    tab.navigate_to(&format!("{base}/ui/cluster"))?
        .wait_until_navigated()?;
    wait_true(
        &tab,
        "3 metadata nodes, one leader, 3 chunk servers up",
        "document.querySelectorAll('#nodes tbody tr[data-role]').length === 3 && \
         document.querySelectorAll('#nodes tbody tr[data-role=\"Leader\"]').length === 1 && \
         document.querySelectorAll('#servers tbody tr[data-up=\"true\"]').length === 3",
    )?;
    save_screenshot(&tab, "cluster.png")?;
    Ok(())
}

// Chromium's processes take both cores in bursts, so the test runs alone
// among the heavy ones (the partition tests' elections are timed). The
// lock is held on the test's own runtime thread; nothing else waits for it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uploads_downloads_renames_and_deletes_in_chromium() {
    let _heavy = crate::harness::heavy();
    let (_cluster, gateway) = start().await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let upload = scratch.path().join("up.bin");
    let content = pattern(64 * 1024, 21);
    std::fs::write(&upload, &content).expect("write the file to upload");
    let base = gateway.url.clone();
    let driven = tokio::task::spawn_blocking(move || drive(&base, &upload, &content));
    driven
        .await
        .expect("the browser task")
        .expect("the page works in chromium");

    let http = reqwest::Client::new();
    for gone in ["/up.bin", "/renamed.bin"] {
        let answer = http
            .get(format!("{}{gone}", gateway.url))
            .send()
            .await
            .expect("get");
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::NOT_FOUND,
            "{gone} was deleted"
        );
    }
}
