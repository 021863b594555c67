//! `zoo watch`: the live view's HTTP answers, and the page in a real browser (headless
//! Chromium, Debian's `chromium` package) updating when a new step lands. The browser half is
//! skipped, with the reason printed, where no Chromium is installed (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::*;

/// The `zoo watch` process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    /// The debug log's request lines, as they come.
    requests: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(path: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(["watch", path.to_str().expect("utf-8"), "--port", "0"])
        .env("ZOO_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zoo watch starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no 127.0.0.1 address in {line:?}"))
        .to_string();
    let (tx, requests) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = l.find("GET ") {
                let _ = tx.send(l[i + 4..].to_string());
            }
        }
    });
    Server {
        child,
        url,
        requests,
    }
}

/// A plain HTTP/1.0 GET: (status, body).
fn get(url: &str, path: &str) -> (u16, Vec<u8>) {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, raw[split + 4..].to_vec())
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--steps", "4"];
    args.extend_from_slice(&[
        "--set",
        "train.sample_every=2",
        "--set",
        "train.log_every=1",
        "--set",
        "train.checkpoint_every=2",
    ]);
    args.extend_from_slice(extra);
    ok(train_tiny(data, out, &args))
}

/// Debian's Chromium (or `$CHROMIUM`), if installed.
fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    candidates.into_iter().find(|p| p.is_file())
}

fn headless(chromium: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1100,1300",
    ])
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    c
}

#[test]
fn watch_serves_a_run_and_the_page_updates_in_a_browser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let runs = tmp.path().join("runs");
    let run = run_dir(&train(&mnist(), &runs, &[]));
    let name = run
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    // One run, and the same run inside a folder of runs.
    let server = serve(&runs);
    let (status, page) = get(&server.url, "/");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("api/state"));
    let (status, body) = get(&server.url, "/api/state");
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let r = &state["runs"][0];
    assert_eq!(r["name"], name.as_str());
    assert_eq!(r["model"], "vanilla");
    assert_eq!(
        (r["step"].as_u64(), r["total"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(r["status"], "finished");
    assert_eq!(r["samples"], serde_json::json!([0, 2, 4]));
    assert!(r["config"].as_str().expect("config").contains("[train]"));
    let columns: Vec<&str> = r["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(columns.contains(&"loss_d") && columns.contains(&"d_fake"));
    assert_eq!(r["rows"].as_array().expect("rows").len(), 4);
    let (status, png) = get(&server.url, &format!("/run/{name}/samples/step_000004.png"));
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    // Nothing but the grids and losses.png: no config, no checkpoints, no way out.
    for path in [
        format!("/run/{name}/config.toml"),
        format!("/run/{name}/checkpoints/latest"),
        format!("/run/{name}/samples/../run.toml"),
        "/run/../../etc/passwd".to_string(),
    ] {
        assert_eq!(get(&server.url, &path).0, 404, "{path}");
    }

    // The browser: the page shows the curves and the newest grid, and updates when the run
    // goes on. `?until_step=6` ends the page's polling once step 6's grid is listed, so
    // Chromium finishes (metrics.csv may change before the grid is written: more than one
    // update can come).
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of the `zoo watch` test: no Chromium at /usr/bin/chromium \
             (install Debian's `chromium` package, or set CHROMIUM)"
        );
        return;
    };
    while server.requests.try_recv().is_ok() {}
    let url = format!("{}?until_step=6", server.url);
    let browser = headless(
        &chromium,
        &["--virtual-time-budget=60000", "--dump-dom", &url],
    )
    .spawn()
    .expect("chromium starts");
    // Wait for the page's long poll (a state request with a version), then train 2 more steps.
    loop {
        let line = server
            .requests
            .recv_timeout(Duration::from_secs(60))
            .expect("the page asks for the state within 60 s");
        // The first request has an empty `since`; the long poll carries the version.
        let since = line.split("/api/state?since=").nth(1).unwrap_or("");
        if !since.trim().is_empty() {
            break;
        }
    }
    ok(resume_vanilla(&run, 6));
    let out = browser.wait_with_output().expect("chromium ends");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !dom.contains("data-updates=\"0\""),
        "the page did not update:\n{dom}"
    );
    let steps = dom
        .split("data-steps=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("data-steps");
    assert!(
        steps.starts_with("4,") && steps.ends_with(",6"),
        "steps seen: {steps}"
    );
    assert!(
        dom.contains(&format!("src=\"run/{name}/samples/step_000006.png\"")),
        "the newest grid is not shown:\n{dom}"
    );
    for series in ["loss_d", "loss_g", "d_real", "d_fake"] {
        let at = dom
            .find(&format!("data-name=\"{series}\""))
            .unwrap_or_else(|| panic!("no {series} curve:\n{dom}"));
        let tail = &dom[at..];
        let points: usize = tail
            .split("data-points=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .and_then(|n| n.parse().ok())
            .expect("point count");
        assert_eq!(points, 6, "{series} has one point per logged step");
    }
    assert!(dom.contains("finished"), "{dom}");

    // A screenshot to look at (kept under target/ for the developer).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zoo-watch.png");
    let _ = std::fs::remove_file(&shot);
    let status = headless(
        &chromium,
        &[
            "--virtual-time-budget=10000",
            &format!("--screenshot={}", shot.display()),
            &format!("{}?updates=0", server.url),
        ],
    )
    .status()
    .expect("chromium screenshot");
    assert!(status.success());
    let img = image::open(&shot).expect("screenshot png");
    assert_eq!((img.width(), img.height()), (1100, 1300));
    eprintln!("zoo watch screenshot: {}", shot.display());
}
