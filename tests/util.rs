//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The repository root (the tests run from `crates/zoo`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder holding `name` (`mnist`, `fashion-mnist`), searched as zoo searches (`$ZOO_DATA`,
/// then `./data` of the repository, where the README's quick start puts MNIST, then Debian's
/// `/usr/share/datasets`). Missing everywhere, it is fetched into `./data/<name>` with
/// `zoo data get` (once per test binary), as a user would.
pub fn dataset(name: &str) -> PathBuf {
    static FETCHED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let has_idx = |d: &Path| {
        ["t10k-images-idx3-ubyte", "train-images-idx3-ubyte"]
            .iter()
            .all(|f| d.join(f).is_file() || d.join(format!("{f}.gz")).is_file())
    };
    let mut dirs: Vec<PathBuf> = std::env::var_os("ZOO_DATA")
        .map(|r| PathBuf::from(r).join(name))
        .into_iter()
        .collect();
    let local = repo_root().join("data").join(name);
    dirs.push(local.clone());
    dirs.push(Path::new("/usr/share/datasets").join(name));
    if let Some(d) = dirs.iter().find(|d| has_idx(d)) {
        return d.clone();
    }
    let mut fetched = FETCHED.lock().unwrap_or_else(|e| e.into_inner());
    if !fetched.iter().any(|n| n == name) {
        eprintln!("{name} not found in {dirs:?}: fetching it with `zoo data get {name}`");
        let local_arg = local.to_string_lossy().into_owned();
        ok(zoo(&["data", "get", name, "--data-dir", &local_arg]));
        fetched.push(name.to_string());
    }
    assert!(
        has_idx(&local),
        "`zoo data get {name}` left no IDX files in {}",
        local.display()
    );
    local
}

/// The MNIST folder (see [`dataset`]).
pub fn mnist() -> PathBuf {
    dataset("mnist")
}

/// An IDX file of the MNIST folder as it is there: gzipped (`NAME.gz`, the canonical mirrors'
/// form) or raw (`NAME`, what `zoo data get` extracts from a registry package).
pub fn mnist_file(name: &str) -> PathBuf {
    let dir = mnist();
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {name}[.gz] in {}", dir.display()))
}

/// The bytes of an MNIST IDX file, un-gzipped.
pub fn mnist_raw(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(mnist_file(name)).expect("read");
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes;
    }
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw)
        .expect("gunzip");
    raw
}

/// The Fashion-MNIST folder (see [`dataset`]).
pub fn fashion_mnist() -> PathBuf {
    dataset("fashion-mnist")
}

/// Runs `zoo` with `args` (quiet, so stderr holds only warnings and the error).
pub fn zoo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .env_remove("ZOO_DATA")
        .env("NO_COLOR", "1")
        .output()
        .expect("zoo runs")
}

/// Text of stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "zoo failed ({}):\n{}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts a clean failure: non-zero exit, no panic, and a one-line `error:` message that
/// contains every needle. Returns the message.
pub fn fails(o: Output, needles: &[&str]) -> String {
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "expected a failure, got success:\n{err}"
    );
    assert_eq!(o.status.code(), Some(1), "exit code; stderr:\n{err}");
    assert!(!err.contains("panicked"), "zoo panicked:\n{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in:\n{err}"))
        .to_string();
    assert!(
        err.trim_end().ends_with(&line),
        "the error is the last line and a single line:\n{err}"
    );
    for n in needles {
        assert!(line.contains(n), "`{n}` missing from: {line}");
    }
    line
}

/// Small, fast network and run settings for CLI tests.
pub const TINY: &[&str] = &[
    "--quiet",
    "--set",
    "model.g_hidden=[32]",
    "--set",
    "model.d_hidden=[32]",
    "--set",
    "data.limit=640",
    "--batch-size",
    "16",
];

/// `zoo train vanilla` with the tiny settings plus `extra`.
pub fn train_tiny(data_dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "vanilla",
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    zoo(&args)
}

/// The run folder printed by `zoo train`.
pub fn run_dir(stdout: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run: "))
        .unwrap_or_else(|| panic!("no `run:` line in {stdout}"));
    PathBuf::from(line.trim())
}

/// Entries of a folder (names), sorted.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A seed from the environment variable `var`, else from the clock (print it, so that a failing
/// run can be replayed).
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// `zoo sample RUN -n N <flag> PATH` (flag `--out` for a grid, `--out-dir` for one file each).
pub fn sample(run: &Path, n: usize, flag: &str, path: &Path) -> Output {
    zoo(&[
        "sample",
        run.to_str().expect("utf-8"),
        "-n",
        &n.to_string(),
        flag,
        path.to_str().expect("utf-8"),
    ])
}

/// `zoo train vanilla --quiet --resume RUN --steps N`.
pub fn resume_vanilla(run: &Path, steps: u64) -> Output {
    zoo(&[
        "train",
        "vanilla",
        "--quiet",
        "--resume",
        run.to_str().expect("utf-8"),
        "--steps",
        &steps.to_string(),
    ])
}
