//! `zoo watch`: a live view of training in the browser.
//!
//! A small HTTP server on 127.0.0.1 only ([`Watch::bind`]) that reads nothing but run folders:
//! one run (a folder with `run.toml`) or a folder of runs (`runs/`, `compare/`: every run up to
//! two levels below it, side by side). It serves
//! - `/`: the page (one self-contained HTML file with its own script: no CDN, works offline);
//! - `/api/state?since=V`: every run's state as JSON ([`State`]): the metrics.csv curves, the
//!   sample grids' steps, the resolved config, step, throughput and ETA. With `since` equal to
//!   the current version it waits (up to [`LONG_POLL`]) until something changes, so the page
//!   updates as soon as a new step lands and an idle page costs nothing;
//! - `/run/<name>/samples/step_NNNNNN.png` and `/run/<name>/losses.png`: those files of a run
//!   that the state lists, nothing else (no other path reaches the disk).
//!
//! It works the same on a finished run, a running one and a folder of both.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, ensure};
use serde::Serialize;
use tiny_http::{Header, Request, Response, Server};

/// The page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// How long `/api/state?since=V` waits for a change before it answers with the same state.
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// Requests served at once (each long poll holds one); more are answered 503.
const MAX_IN_FLIGHT: usize = 64;

/// Rows of metrics.csv sent per run at most (longer logs are thinned evenly, the last row kept).
const MAX_ROWS: usize = 1500;

/// A bound server: [`Watch::url`] to print, then [`Watch::serve`] (blocking) or
/// [`Watch::spawn`] (a background thread, for `zoo train --watch`).
pub struct Watch {
    server: Arc<Server>,
    root: PathBuf,
    addr: SocketAddr,
}

impl Watch {
    /// Binds `127.0.0.1:port` (0: any free port) to serve the run or runs under `root`.
    pub fn bind(root: &Path, port: u16) -> Result<Self> {
        ensure!(
            root.is_dir(),
            "{} is not a folder; pass a run folder (runs/<model>-<time>) or a folder of runs",
            root.display()
        );
        let server = Server::http(("127.0.0.1", port)).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on 127.0.0.1:{port}: {e}; pass another --port (0 picks a free one)"
            )
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .context("the server has no IP address")?;
        Ok(Self {
            server: Arc::new(server),
            root: root.to_path_buf(),
            addr,
        })
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Serves until the process ends.
    pub fn serve(self) {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let root = Arc::new(self.root);
        for request in self.server.incoming_requests() {
            if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = request.respond(Response::from_string("busy").with_status_code(503));
                continue;
            }
            let (root, in_flight) = (root.clone(), in_flight.clone());
            std::thread::spawn(move || {
                handle(&root, request);
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Serves on a background thread (it ends with the process).
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || self.serve())
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header")
}

fn handle(root: &Path, request: Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    tracing::debug!("GET {url}");
    let response = match path {
        "/" | "/index.html" => Response::from_string(PAGE)
            .with_header(header("Content-Type", "text/html; charset=utf-8")),
        "/api/state" => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .unwrap_or("");
            let state = wait_for_change(root, since);
            let body = serde_json::to_string(&state).unwrap_or_else(|_| "{}".into());
            Response::from_string(body)
                .with_header(header("Content-Type", "application/json"))
                .with_header(header("Cache-Control", "no-store"))
        }
        _ => match run_file(root, &percent_decode(path)) {
            Some(file) => match std::fs::read(&file) {
                Ok(bytes) => Response::from_data(bytes)
                    .with_header(header("Content-Type", "image/png"))
                    .with_header(header("Cache-Control", "no-cache")),
                Err(_) => not_found(),
            },
            None => not_found(),
        },
    };
    let _ = request.respond(response);
}

/// `%20` and friends back to bytes (the page encodes each part of a run's name); malformed
/// escapes stay as written.
fn percent_decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found() -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string("not found").with_status_code(404)
}

/// The file of `/run/<name>/<rest>`, if `<name>` is a run under `root` and `<rest>` is one of
/// its sample grids or losses.png.
fn run_file(root: &Path, path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix("/run/")?;
    let (name, file) = if let Some(name) = rest.strip_suffix("/losses.png") {
        (name, "losses.png".to_string())
    } else {
        let (name, grid) = rest.rsplit_once("/samples/")?;
        let digits = grid.strip_prefix("step_")?.strip_suffix(".png")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (name, format!("samples/{grid}"))
    };
    let run = find_runs(root).into_iter().find(|(n, _)| n == name)?.1;
    Some(run.join(file))
}

/// The runs under `root`: `root` itself when it is a run, else the runs up to two levels
/// below it, by name (the path relative to `root`, `/`-separated).
pub fn find_runs(root: &Path) -> Vec<(String, PathBuf)> {
    let is_run = |p: &Path| p.join("run.toml").is_file();
    if is_run(root) {
        let name = root
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
        return vec![(name, root.to_path_buf())];
    }
    let mut runs = Vec::new();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    };
    for d in subdirs(root) {
        if is_run(&d) {
            runs.push(d);
        } else {
            runs.extend(subdirs(&d).into_iter().filter(|d| is_run(d)));
        }
    }
    runs.into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (name.join("/"), p)
        })
        .collect()
}

/// What the page shows.
#[derive(Debug, Serialize)]
pub struct State {
    /// Changes whenever a run's files change (the long poll's `since`).
    pub version: String,
    /// The folder being watched.
    pub root: String,
    /// Every run, by name.
    pub runs: Vec<RunState>,
}

/// One run's state.
#[derive(Debug, Serialize)]
pub struct RunState {
    /// The path below the watched folder (`/`-separated); also the file URLs' prefix.
    pub name: String,
    /// The model (from run.toml).
    pub model: String,
    /// `training` (locked and written to recently), `finished` or `stopped`.
    pub status: String,
    /// The last logged step.
    pub step: u64,
    /// Steps of the whole run, when known (from `train.steps`, or estimated from `train.epochs`).
    pub total: Option<u64>,
    /// Images per second of the last log row.
    pub images_per_s: Option<f64>,
    /// Seconds left at that rate.
    pub eta_s: Option<f64>,
    /// The resolved config (config.toml).
    pub config: String,
    /// metrics.csv's columns.
    pub columns: Vec<String>,
    /// metrics.csv's rows (thinned to at most [`MAX_ROWS`]).
    pub rows: Vec<Vec<f64>>,
    /// The steps of the sample grids, ascending.
    pub samples: Vec<u64>,
}

/// The state, once it differs from version `since` or after [`LONG_POLL`].
fn wait_for_change(root: &Path, since: &str) -> State {
    let start = Instant::now();
    while !since.is_empty() && version(&find_runs(root)) == since && start.elapsed() < LONG_POLL {
        std::thread::sleep(Duration::from_millis(200));
    }
    state(root)
}

/// A fingerprint of what the page shows: names, sizes and times of every run's files.
fn version(runs: &[(String, PathBuf)]) -> String {
    let mut h = DefaultHasher::new();
    for (name, dir) in runs {
        name.hash(&mut h);
        for f in [
            "metrics.csv",
            "config.toml",
            ".lock",
            "losses.png",
            "samples",
        ] {
            if let Ok(m) = std::fs::metadata(dir.join(f)) {
                f.hash(&mut h);
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
        sample_steps(dir).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn sample_steps(run: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(run.join("samples"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("step_")?
                        .strip_suffix(".png")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    steps.sort_unstable();
    steps
}

/// Every run's state now.
pub fn state(root: &Path) -> State {
    let runs = find_runs(root);
    State {
        version: version(&runs),
        root: root.display().to_string(),
        runs: runs
            .into_iter()
            .map(|(name, dir)| run_state(name, &dir))
            .collect(),
    }
}

fn run_state(name: String, dir: &Path) -> RunState {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let model = read("run.toml")
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("model")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let config = read("config.toml");
    let train = config
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("train")?.as_table().cloned())
        .unwrap_or_default();
    let int = |k: &str| train.get(k).and_then(toml::Value::as_integer);
    let (columns, rows) = zoo_train::output::read_metrics(&dir.join("metrics.csv"))
        .unwrap_or_else(|_| (Vec::new(), Vec::new()));
    let col = |n: &str| columns.iter().position(|c| c == n);
    let last = rows.last();
    let at = |n: &str| Some(last?[col(n)?]);
    let samples = sample_steps(dir);
    let step = at("step")
        .map(|s| s as u64)
        .into_iter()
        .chain(samples.last().copied())
        .max()
        .unwrap_or(0);
    let d_steps = int("d_steps").unwrap_or(1).max(1) as f64;
    let total = match int("epochs") {
        // Steps per epoch from the last row that finished one: epoch = step·d_steps / per_epoch.
        Some(epochs) => rows
            .iter()
            .rev()
            .find(|r| col("epoch").is_some_and(|e| r[e] >= 1.0))
            .and_then(|r| {
                let (s, e) = (r[col("step")?], r[col("epoch")?]);
                Some((epochs as f64 * s / e).round() as u64)
            }),
        None => int("steps").map(|s| s as u64),
    };
    let images_per_s = at("images_per_s").filter(|v| v.is_finite() && *v > 0.0);
    let batch = int("batch_size").unwrap_or(1).max(1) as f64;
    let eta_s = match (total, images_per_s) {
        (Some(total), Some(ips)) if total > step => {
            Some((total - step) as f64 * batch * d_steps / ips)
        }
        _ => None,
    };
    let recent = |f: &str| {
        std::fs::metadata(dir.join(f))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < Duration::from_secs(300))
    };
    let status = if total.is_some_and(|t| step >= t) {
        "finished"
    } else if dir.join(".lock").exists() && (recent("metrics.csv") || recent("samples")) {
        "training"
    } else {
        "stopped"
    };
    let rows = thin(rows);
    RunState {
        name,
        model,
        status: status.into(),
        step,
        total,
        images_per_s,
        eta_s,
        config,
        columns,
        rows,
        samples,
    }
}

/// At most [`MAX_ROWS`] rows, evenly spaced, the last one kept.
fn thin(rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    if rows.len() <= MAX_ROWS {
        return rows;
    }
    let n = rows.len();
    let keep: Vec<usize> = (0..MAX_ROWS)
        .map(|i| i * (n - 1) / (MAX_ROWS - 1))
        .collect();
    rows.into_iter()
        .enumerate()
        .filter(|(i, _)| keep.binary_search(i).is_ok())
        .map(|(_, r)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_run(dir: &Path, steps: u64, rows: u64) {
        std::fs::create_dir_all(dir.join("samples")).expect("mkdir");
        std::fs::write(
            dir.join("run.toml"),
            "model = \"vanilla\"\nversion = \"0\"\n",
        )
        .expect("w");
        std::fs::write(
            dir.join("config.toml"),
            format!("[train]\nsteps = {steps}\nbatch_size = 4\nd_steps = 1\n"),
        )
        .expect("w");
        let mut csv = "step,epoch,loss_d,loss_g,images_per_s\n".to_string();
        for s in 1..=rows {
            csv += &format!("{s},0,1.0,2.0,8.0\n");
        }
        std::fs::write(dir.join("metrics.csv"), csv).expect("w");
        std::fs::write(dir.join("samples/step_000000.png"), b"png").expect("w");
    }

    #[test]
    fn finds_runs_and_serves_only_their_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        fake_run(&tmp.path().join("a"), 10, 4);
        fake_run(&tmp.path().join("cmp/b"), 10, 10);
        std::fs::create_dir_all(tmp.path().join("not-a-run")).expect("mkdir");
        let names: Vec<String> = find_runs(tmp.path()).into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["a", "cmp/b"]);
        assert_eq!(find_runs(&tmp.path().join("a")).len(), 1);

        let s = state(tmp.path());
        let a = &s.runs[0];
        assert_eq!(
            (a.step, a.total, a.samples.as_slice()),
            (4, Some(10), &[0][..])
        );
        // 6 steps left at 8 images/s, 4 images a step.
        assert_eq!(a.eta_s, Some(3.0));
        assert_eq!(a.status, "stopped");
        assert_eq!(s.runs[1].status, "finished");

        assert_eq!(
            percent_decode("/run/my%20runs/a%2Fb%zz"),
            "/run/my runs/a/b%zz"
        );
        let ok = run_file(tmp.path(), "/run/cmp/b/samples/step_000000.png").expect("grid");
        assert!(ok.ends_with("cmp/b/samples/step_000000.png"));
        assert!(run_file(tmp.path(), "/run/a/losses.png").is_some());
        for bad in [
            "/run/a/config.toml",
            "/run/a/samples/../run.toml",
            "/run/../a/samples/step_000000.png",
            "/run/nope/samples/step_000000.png",
            "/run/a/samples/step_.png",
            "/etc/passwd",
        ] {
            assert!(run_file(tmp.path(), bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn version_changes_with_a_new_step_and_long_poll_returns() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = tmp.path().join("r");
        fake_run(&run, 10, 2);
        let v = version(&find_runs(tmp.path()));
        assert_eq!(v, version(&find_runs(tmp.path())));
        let writer = {
            let run = run.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                std::fs::write(run.join("samples/step_000005.png"), b"png").expect("w");
            })
        };
        let s = wait_for_change(tmp.path(), &v);
        writer.join().expect("writer");
        assert_ne!(s.version, v);
        assert_eq!(s.runs[0].samples, [0, 5]);
        assert_eq!(s.runs[0].step, 5);
    }

    #[test]
    fn long_logs_are_thinned_keeping_the_last_row() {
        let rows: Vec<Vec<f64>> = (0..5000).map(|i| vec![i as f64]).collect();
        let t = thin(rows);
        assert_eq!(t.len(), MAX_ROWS);
        assert_eq!((t[0][0], t[MAX_ROWS - 1][0]), (0.0, 4999.0));
    }
}
