//! zoo never loses a run: SIGKILL at random moments (many while a checkpoint is being
//! written) and `--resume` reproduce an uninterrupted run bit for bit; SIGTERM / SIGINT stop at
//! a step boundary with a checkpoint; a diverging run stops (or skips) with the step and the
//! loss term named; failed writes leave the previous checkpoint intact; the same seed writes the
//! same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn zoo_cmd(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zoo"));
    c.args(args).env_remove("ZOO_DATA").env("NO_COLOR", "1");
    c
}

fn run(args: &[String]) -> Output {
    zoo_cmd(args).output().expect("zoo runs")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A tiny vanilla run on the real MNIST that logs and checkpoints every step and samples every
/// ten, so that most of its time is spent writing files.
fn busy_run(out: &Path, steps: u64, extra: &[&str]) -> Vec<String> {
    let mut a = strings(&[
        "train",
        "vanilla",
        "--data-dir",
        mnist().to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--steps",
        &steps.to_string(),
        "--seed",
        "7",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.log_every=1",
        "--set",
        "train.sample_every=10",
    ]);
    a.extend(strings(TINY));
    a.extend(strings(extra));
    a
}

fn resume(run: &Path, steps: u64) -> Vec<String> {
    let steps = steps.to_string();
    strings(&[
        "train",
        "vanilla",
        "--quiet",
        "--resume",
        &run.to_string_lossy(),
        "--steps",
        &steps,
    ])
}

/// The files of a run's latest checkpoint, by name.
fn latest_files(run: &Path) -> BTreeMap<String, Vec<u8>> {
    let name = std::fs::read_to_string(run.join("checkpoints/latest")).expect("latest");
    let dir = run.join("checkpoints").join(name.trim());
    ls(&dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

/// The sample grids of a run, by name.
fn grids(run: &Path) -> BTreeMap<String, Vec<u8>> {
    ls(&run.join("samples"))
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(run.join("samples").join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

/// metrics.csv as text rows without the throughput column (the only one that depends on the
/// clock). Panics on a row with the wrong number of fields.
fn metrics_rows(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).expect("metrics.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let timing = header.iter().position(|c| *c == "images_per_s");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "torn row in metrics.csv: {l}");
            f.iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != timing)
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// The one run folder inside `out`, if any.
fn only_run(out: &Path) -> Option<PathBuf> {
    let runs = ls(out);
    assert!(
        runs.len() <= 1,
        "more than one run in {}: {runs:?}",
        out.display()
    );
    runs.first().map(|r| out.join(r))
}

/// Temporary files and folders (`.name.PID.tmp`) in a run's checkpoint folder.
fn partial_checkpoints(run: &Path) -> usize {
    ls(&run.join("checkpoints"))
        .iter()
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .count()
}

/// xorshift64*: the test's random kill moments.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    const STEPS: u64 = 150;
    let tmp = tempfile::tempdir().expect("tmp");
    // Startup time, then the uninterrupted reference (timed), then the same run again.
    let t0 = Instant::now();
    ok(run(&busy_run(&tmp.path().join("one"), 1, &[])));
    let startup = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let reference = run_dir(&ok(run(&busy_run(
        &tmp.path().join("reference"),
        STEPS,
        &[],
    ))));
    let per_step = (t0.elapsed().as_secs_f64() - startup).max(1e-3) / STEPS as f64;
    let again = run_dir(&ok(run(&busy_run(&tmp.path().join("again"), STEPS, &[]))));
    assert!(
        latest_files(&reference) == latest_files(&again),
        "two runs with the same seed and config wrote different checkpoints"
    );
    assert_eq!(metrics_rows(&reference), metrics_rows(&again));

    let seed = seed_from_env("ZOO_KILL_SEED");
    eprintln!("kill moments from ZOO_KILL_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let out = tmp.path().join("killed");
    let (mut kills, mut during_checkpoint, mut attempts) = (0, 0, 0);
    let killed_run = loop {
        attempts += 1;
        let args = match only_run(&out) {
            Some(r) if r.join("config.toml").is_file() => resume(&r, STEPS),
            stale => {
                // Killed before training began: nothing to resume; start again.
                if let Some(r) = stale {
                    std::fs::remove_dir_all(r).expect("remove");
                }
                busy_run(&out, STEPS, &[])
            }
        };
        let mut child = zoo_cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if attempts > 60 {
            let o = child.wait_with_output().expect("wait");
            assert!(o.status.success(), "{}", stderr(&o));
            break only_run(&out).expect("run");
        }
        // Somewhere between half the startup and about twenty steps in.
        let delay = startup * 0.5 + rng.uniform() * (startup * 0.5 + 20.0 * per_step);
        std::thread::sleep(Duration::from_secs_f64(delay));
        if let Some(status) = child.try_wait().expect("try_wait") {
            let o = child.wait_with_output().expect("wait");
            assert!(status.success(), "attempt {attempts}: {}", stderr(&o));
            break only_run(&out).expect("run");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        kills += 1;
        let Some(r) = only_run(&out) else { continue };
        if partial_checkpoints(&r) > 0 {
            during_checkpoint += 1;
        }
        // Whatever the moment, the latest complete checkpoint loads.
        if r.join("checkpoints/latest").is_file() {
            let png = tmp.path().join("probe.png");
            ok(sample(&r, 4, "--out", &png));
        }
    };
    eprintln!(
        "{kills} kills ({during_checkpoint} while a checkpoint was being written) in {attempts} \
         attempts"
    );
    assert!(
        kills >= 5,
        "only {kills} kills landed; the run finished too soon"
    );
    assert!(
        during_checkpoint >= 1,
        "no kill landed while a checkpoint was being written ({kills} kills)"
    );
    assert_eq!(
        partial_checkpoints(&killed_run),
        0,
        "temporary files were left"
    );
    assert!(
        latest_files(&killed_run) == latest_files(&reference),
        "the killed and resumed run ended with other parameters than the uninterrupted one"
    );
    assert!(
        grids(&killed_run) == grids(&reference),
        "the sample grids differ from the uninterrupted run's"
    );
    let rows = metrics_rows(&killed_run);
    assert_eq!(rows.len() as u64, STEPS, "one metrics.csv row per step");
    assert_eq!(
        rows,
        metrics_rows(&reference),
        "metrics.csv differs from the uninterrupted run's"
    );
}

#[test]
fn sigterm_and_sigint_stop_at_a_step_with_a_checkpoint() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let out = tempfile::tempdir().expect("tmp");
        let child = zoo_cmd(&busy_run(
            out.path(),
            1_000_000,
            &["--set", "train.checkpoint_every=100000"],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
        // Wait until training has logged a few steps.
        let deadline = Instant::now() + Duration::from_secs(120);
        let run = loop {
            let found = only_run(out.path()).filter(|r| {
                std::fs::read_to_string(r.join("metrics.csv")).is_ok_and(|t| t.lines().count() > 3)
            });
            if let Some(r) = found {
                break r;
            }
            assert!(Instant::now() < deadline, "training did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        // A second process cannot train the same run meanwhile.
        fails(
            run_resume(&run, 10),
            &["is being trained by another zoo process"],
        );
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let o = child.wait_with_output().expect("wait");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(
            err.contains("stopped by signal") && err.contains("--resume"),
            "{err}"
        );
        // A stop that was asked for is a note, not an error.
        assert!(!err.contains("error:"), "{err}");
        // Killed mid-run, the lock file stays (unlocked: the resume below takes it).
        let latest = std::fs::read_to_string(run.join("checkpoints/latest")).expect("latest");
        let step: u64 = latest.trim_start_matches("step_").parse().expect("step");
        assert!(step >= 3, "checkpoint at step {step}");
        // metrics.csv ends at the checkpoint, and the run resumes from it.
        let rows = metrics_rows(&run);
        assert_eq!(rows.len() as u64, step, "{rows:?}");
        let resumed = ok(run_resume(&run, step + 2));
        assert!(
            resumed.contains(&format!("steps: {}/{}", step + 2, step + 2)),
            "{resumed}"
        );
    }
}

fn run_resume(r: &Path, steps: u64) -> Output {
    resume_vanilla(r, steps)
}

#[test]
fn divergence_stops_or_skips_naming_the_step_and_the_term() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A huge learning rate for both players: the first generator loss is already NaN.
    let out = tmp.path().join("nan");
    let huge = ["--set", "optim.g.lr=1e30", "--set", "optim.d.lr=1e30"];
    let line = fails(
        run(&busy_run(&out, 40, &huge)),
        &[
            "training diverged at step 1",
            "loss_g is NaN",
            "last good checkpoint is none yet",
            "optim.g.lr",
            "on_nonfinite",
        ],
    );
    assert!(line.contains("model.loss"), "{line}");

    // Only the generator's: its parameters blow up behind tanh while the losses stay finite;
    // the run stops at the next check and keeps the last good checkpoint, which loads.
    let out = tmp.path().join("params");
    let line = fails(
        run(&busy_run(&out, 40, &["--set", "optim.g.lr=1e20"])),
        &[
            "training diverged by step",
            "generator's parameters are not finite",
        ],
    );
    let r = only_run(&out).expect("run");
    let kept = std::fs::read_to_string(r.join("checkpoints/latest")).expect("latest");
    assert!(line.contains(kept.trim()), "{line} names {kept}");
    ok(sample(&r, 4, "--out", &tmp.path().join("kept.png")));

    // on_nonfinite = "skip": each bad update is skipped with a warning, until too many in a row.
    let out = tmp.path().join("skip");
    let mut skip = huge.to_vec();
    skip.extend(["--set", "train.on_nonfinite=\"skip\""]);
    let o = run(&busy_run(&out, 40, &skip));
    let err = stderr(&o);
    assert!(
        err.contains("step 1: loss_g is NaN; update skipped (1 in a row)"),
        "{err}"
    );
    fails(o, &["20 steps in a row had a non-finite loss", "step 20"]);
}

#[test]
fn failed_writes_are_reported_and_the_previous_checkpoint_stays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("runs");
    let r = run_dir(&ok(run(&busy_run(
        &out,
        4,
        &["--set", "train.checkpoint_every=2"],
    ))));
    let before = latest_files(&r);

    // A file-size limit below a checkpoint's size (`ulimit -f`, in 1 KiB blocks).
    let mut cmd = format!("ulimit -f 100; exec '{}'", env!("CARGO_BIN_EXE_zoo"));
    for a in resume(&r, 8) {
        cmd.push_str(&format!(" '{a}'"));
    }
    let o = Command::new("sh")
        .args(["-c", &cmd])
        .env_remove("ZOO_DATA")
        .env("NO_COLOR", "1")
        .output()
        .expect("sh");
    fails(
        o,
        &[
            "cannot write checkpoint step_000006",
            "the previous checkpoint is intact",
            "File too large",
        ],
    );
    assert!(
        latest_files(&r) == before,
        "the previous checkpoint changed"
    );
    assert_eq!(partial_checkpoints(&r), 0, "a partial checkpoint was left");

    // The samples folder becomes unwritable (replaced by a file) during the run.
    std::fs::remove_dir_all(r.join("samples")).expect("rm");
    std::fs::write(r.join("samples"), "in the way").expect("write");
    fails(
        run_resume(&r, 40),
        &["cannot write", "samples/step_000010.png"],
    );
    assert!(latest_files(&r) != before, "it trained up to the failure");
    std::fs::remove_file(r.join("samples")).expect("rm");
    std::fs::create_dir(r.join("samples")).expect("mkdir");
    let resumed = ok(run_resume(&r, 12));
    assert!(resumed.contains("steps: 12/12"), "{resumed}");
}

#[test]
fn the_same_seed_writes_the_same_bytes_for_every_model() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = crate::cyclegan::demo_pair(tmp.path());
    let mnist = mnist();
    let md = mnist.to_str().expect("utf-8");
    let conv = [
        "--data-dir",
        md,
        "--set",
        "data.limit=256",
        "--set",
        "model.g_filters=8",
        "--set",
        "model.d_filters=8",
        "--batch-size",
        "8",
    ];
    let models: [(&str, Vec<&str>); 6] = [
        ("dcgan", conv.to_vec()),
        ("lsgan", conv.to_vec()),
        ("sngan", conv.to_vec()),
        ("cgan", conv.to_vec()),
        ("acgan", conv.to_vec()),
        ("cyclegan", {
            let mut v = vec!["--domains", pair.to_str().expect("utf-8")];
            v.extend_from_slice(crate::cyclegan::SMALL);
            v
        }),
    ];
    for (model, extra) in models {
        let mut files = Vec::new();
        for k in 0..2 {
            let mut args = strings(&[
                "train",
                model,
                "--quiet",
                "--steps",
                "3",
                "--seed",
                "5",
                "--out",
                tmp.path()
                    .join(format!("{model}-{k}"))
                    .to_str()
                    .expect("utf-8"),
            ]);
            args.extend(strings(&extra));
            let r = run_dir(&ok(run(&args)));
            files.push(latest_files(&r));
        }
        assert!(files[0].len() >= 5, "{model}: {:?}", files[0].keys());
        for (name, bytes) in &files[0] {
            assert!(
                files[1].get(name) == Some(bytes),
                "{model}: {name} differs between two runs with the same seed"
            );
        }
    }
}

/// A signal while the data loads (here MNIST resized to 64 px, some seconds) ends the command at
/// once with the shell's code, before any run folder exists: nothing to checkpoint yet.
#[test]
fn a_signal_while_loading_ends_at_once() {
    let out = tempfile::tempdir().expect("tmp");
    let mut child = zoo_cmd(&strings(&[
        "train",
        "dcgan",
        "--data-dir",
        mnist().to_str().expect("utf-8"),
        "--set",
        "data.image_size=64",
        "--steps",
        "1",
        "--out",
        out.path().to_str().expect("utf-8"),
    ]))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let loading = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("loading mnist"));
    assert!(loading.is_some(), "no loading line");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "zoo ignored SIGINT while loading"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    assert!(ls(out.path()).is_empty(), "left {:?}", ls(out.path()));
}

/// `checkpoints/latest` is trusted only as a name of a checkpoint folder right there: a path
/// out of the run, an absolute path or a link (here to a system file, whose content must never
/// be printed) is ignored with a warning, and the newest intact checkpoint is used instead; a
/// resume then keeps the run's own checkpoints.
#[test]
fn checkpoint_pointers_stay_inside_the_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = run_dir(&ok(train_tiny(
        &mnist(),
        &tmp.path().join("runs"),
        &["--steps", "4", "--set", "train.checkpoint_every=2"],
    )));
    let latest = run.join("checkpoints/latest");
    let elsewhere = tmp.path().join("elsewhere/step_000100");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    for (how, bad) in [
        (
            "a path out of the run",
            Some("../../elsewhere/step_000100".to_string()),
        ),
        ("an absolute path", Some(elsewhere.display().to_string())),
        ("a link to a system file", None),
    ] {
        std::fs::remove_file(&latest).expect("rm latest");
        match &bad {
            Some(text) => std::fs::write(&latest, text).expect("write"),
            None => std::os::unix::fs::symlink("/etc/passwd", &latest).expect("link"),
        }
        let o = zoo(&[
            "sample",
            run.to_str().expect("utf-8"),
            "-n",
            "4",
            "--out",
            tmp.path().join("s.png").to_str().expect("utf-8"),
        ]);
        let err = stderr(&o);
        assert!(o.status.success(), "{how}: {err}");
        assert!(
            err.contains("checkpoints/latest") && err.contains("ignored"),
            "{how}: {err}"
        );
        assert!(
            !err.contains("root:"),
            "{how}: printed the file's content: {err}"
        );
    }
    // Resumed with the link still there: continues from the run's own step 4.
    let resumed = ok(resume_vanilla(&run, 6));
    assert!(resumed.contains("steps: 6/6"), "{resumed}");
    assert_eq!(
        ls(&run.join("checkpoints")),
        ["latest", "step_000004", "step_000006"]
    );
    assert_eq!(
        std::fs::read_to_string(&latest).expect("latest").trim(),
        "step_000006"
    );
    assert!(elsewhere.is_dir(), "a folder outside the run was touched");
}
