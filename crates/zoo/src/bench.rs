//! `zoo bench`: training throughput, peak memory and the time split of one step, for named
//! models or the standard table.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use zoo_core::burn::prelude::Device;
use zoo_train::bench::{BenchReport, reset_peak_rss};
use zoo_train::tasks::BenchRequest;

use crate::entry::ModelEntry;

use crate::cli::{BenchArgs, DeviceArg};
use crate::registry;

/// One row of the standard table.
struct Row {
    label: &'static str,
    model: &'static str,
    sets: &'static [&'static str],
    batch: usize,
    warmup: u64,
    steps: u64,
}

/// The standard table: the networks of the PyTorch baseline where zoo has them.
const STANDARD: &[Row] = &[
    Row {
        label: "vanilla MLP 28² b64",
        model: "vanilla",
        sets: &["model.d_hidden=[512,256]"],
        batch: 64,
        warmup: 10,
        steps: 100,
    },
    Row {
        label: "DCGAN 28² b64",
        model: "dcgan",
        // The paper's 64 filters, as the PyTorch side builds them (dcgan's default at
        // 28 px is 128).
        sets: &["model.g_filters=64"],
        batch: 64,
        warmup: 3,
        steps: 25,
    },
    Row {
        label: "DCGAN 64² RGB b64",
        model: "dcgan",
        sets: &["data.image_size=64", "data.channels=3"],
        batch: 64,
        warmup: 1,
        steps: 5,
    },
    Row {
        label: "LSGAN 28² b64",
        model: "lsgan",
        // The paper's 64 filters, as the PyTorch side builds them (lsgan's default at
        // 28 px is 128).
        sets: &["model.g_filters=64"],
        batch: 64,
        warmup: 3,
        steps: 25,
    },
    Row {
        label: "CycleGAN 64² RGB b1",
        model: "cyclegan",
        sets: &[
            "data.image_size=64",
            "model.load_size=72",
            "model.g_blocks=6",
        ],
        batch: 1,
        warmup: 2,
        steps: 10,
    },
    Row {
        label: "CycleGAN 128² RGB b1",
        model: "cyclegan",
        sets: &[
            "data.image_size=128",
            "model.load_size=143",
            "model.g_blocks=6",
        ],
        batch: 1,
        warmup: 1,
        steps: 5,
    },
];

/// One measured row, as printed and written to JSON.
#[derive(Serialize, Deserialize)]
struct Measured {
    label: String,
    model: String,
    sets: Vec<String>,
    batch: Option<usize>,
    threads: usize,
    #[serde(flatten)]
    report: BenchReport,
}

/// The most timed (or warm-up) steps a bench runs: enough for any measurement, and a typo
/// such as 10^12 is an error instead of a bench that never ends.
const MAX_BENCH_STEPS: u64 = 100_000;

pub fn run(args: BenchArgs, device_arg: DeviceArg, device: Device) -> Result<()> {
    if let Some(s) = args.steps {
        ensure!(
            (1..=MAX_BENCH_STEPS).contains(&s),
            "--steps must be between 1 and {MAX_BENCH_STEPS} (got {s}); a bench needs tens"
        );
    }
    if let Some(w) = args.warmup {
        ensure!(
            w <= MAX_BENCH_STEPS,
            "--warmup must be at most {MAX_BENCH_STEPS} (got {w})"
        );
    }
    ensure!(
        (1..=1000).contains(&args.windows),
        "--windows must be between 1 and 1000 (got {})",
        args.windows
    );
    let threads = rayon::current_num_threads();
    let standard = args.models.is_empty();
    // (label, model, --set, batch, warm-up, timed steps)
    type Job = (
        String,
        &'static dyn ModelEntry,
        Vec<String>,
        Option<usize>,
        u64,
        u64,
    );
    let rows: Vec<Job> = if standard {
        ensure!(
            args.config.config.is_none() && args.config.sets.is_empty(),
            "--config and --set apply to named models; the standard table fixes its own"
        );
        STANDARD
            .iter()
            .map(|r| {
                Ok((
                    r.label.to_string(),
                    registry::find(r.model)?,
                    r.sets.iter().map(|s| s.to_string()).collect(),
                    Some(args.batch_size.unwrap_or(r.batch)),
                    args.warmup.unwrap_or(r.warmup),
                    args.steps.unwrap_or(r.steps),
                ))
            })
            .collect::<Result<_>>()?
    } else {
        args.models
            .iter()
            .map(|m| {
                let e = registry::find(m)?;
                Ok((
                    e.name().to_string(),
                    e,
                    args.config.sets.clone(),
                    args.batch_size,
                    args.warmup.unwrap_or(3),
                    args.steps.unwrap_or(20),
                ))
            })
            .collect::<Result<_>>()?
    };
    if standard && args.row.is_none() {
        let measured = (0..STANDARD.len())
            .map(|i| run_row(&args, i, device_arg, threads))
            .collect::<Result<Vec<_>>>()?;
        return report(
            &measured,
            threads,
            &device,
            args.json.or(Some("bench.json".into())),
        );
    }
    let rows: Vec<Job> = match args.row {
        Some(i) => {
            ensure!(
                standard && i < STANDARD.len(),
                "--row must name a row of the standard table"
            );
            rows.into_iter().skip(i).take(1).collect()
        }
        None => rows,
    };
    let mut measured = Vec::new();
    for (label, entry, sets, batch, warmup, steps) in rows {
        tracing::info!("{label}: {warmup} warm-up + {steps} timed steps");
        reset_peak_rss();
        let report = entry.bench(&BenchRequest {
            config_file: args.config.config.clone(),
            sets: sets.clone(),
            batch_size: batch,
            warmup,
            steps,
            windows: args.windows,
            device: device.clone(),
        })?;
        measured.push(Measured {
            label,
            model: entry.name().to_string(),
            sets,
            batch,
            threads,
            report,
        });
    }
    report(&measured, threads, &device, args.json)
}

/// Prints the table and writes the JSON.
fn report(
    measured: &[Measured],
    threads: usize,
    device: &Device,
    json: Option<PathBuf>,
) -> Result<()> {
    print!("{}", table(measured));
    println!(
        "({threads} threads, {device:?}; a step is D's update then G's; the split comes from separate steps with a sync after each phase)"
    );
    // Rows where zoo's kernels ran (flex) have a peak; on other devices there is nothing to say.
    let counted: Vec<_> = measured
        .iter()
        .filter(|m| m.report.peak_gflops > 0.0)
        .collect();
    let peaks = counted.iter().map(|m| m.report.peak_gflops);
    let (lo, hi) = peaks.fold((f64::INFINITY, 0.0_f64), |(lo, hi), p| {
        (lo.min(p), hi.max(p))
    });
    if let Some(m) = counted.first() {
        println!(
            "(GEMM kernels: {}, chosen at run time for this CPU; GFLOP counts the GEMMs of zoo's convolution and linear kernels from the layers' shapes; peak: a 1024³ GEMM on the same threads, {}–{} GFLOP/s)",
            m.report.simd,
            sig(lo),
            sig(hi)
        );
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&measured).context("serialising the results")?;
        zoo_core::io::write_atomic(&path, text.as_bytes())?;
        println!("results: {}", path.display());
    }
    Ok(())
}

/// Runs row `i` of the standard table in a child `zoo bench --row i`: each row's peak memory
/// is then its own (an allocator keeps what an earlier row freed, so rows measured in one
/// process would report the largest row's peak from then on).
fn run_row(args: &BenchArgs, i: usize, device: DeviceArg, threads: usize) -> Result<Measured> {
    let exe = std::env::current_exe().context("finding the zoo executable to run a row")?;
    let json = std::env::temp_dir().join(format!("zoo-bench-{}-{i}.json", std::process::id()));
    let name = device
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .context("device name")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--device",
        &name,
        "--threads",
        &threads.to_string(),
        "bench",
        "--row",
    ])
    .arg(i.to_string())
    .arg("--json")
    .arg(&json)
    .arg("--windows")
    .arg(args.windows.to_string())
    .stdout(std::process::Stdio::null());
    for (flag, value) in [
        ("--batch-size", args.batch_size.map(|v| v as u64)),
        ("--warmup", args.warmup),
        ("--steps", args.steps),
    ] {
        if let Some(v) = value {
            cmd.arg(flag).arg(v.to_string());
        }
    }
    let status = cmd.status().context("running a row of the benchmark")?;
    if !status.success() {
        bail!("the benchmark of {} failed ({status})", STANDARD[i].label);
    }
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    std::fs::remove_file(&json).with_context(|| format!("removing {}", json.display()))?;
    let mut rows: Vec<Measured> = serde_json::from_str(&text).context("parsing a row's results")?;
    rows.pop().context("a row's results are empty")
}

/// Three significant digits at any scale.
fn sig(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn table(rows: &[Measured]) -> String {
    let mut out = String::from(
        "| model | step ms (median) | min–max | images/s | GFLOP/step | GFLOP/s | of peak | peak MiB | data | D fwd | D bwd | D opt | G fwd | G bwd | G opt |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in rows {
        let r = &m.report;
        let (lo, hi) = r.range();
        // No counted work (another device, burn's own ops): no rate to show.
        let (work, rate, share) = if r.gemm_gflop_per_step > 0.0 {
            (
                sig(r.gemm_gflop_per_step),
                sig(r.gflops),
                format!("{:.0}%", 100.0 * r.gflops / r.peak_gflops),
            )
        } else {
            ("–".into(), "–".into(), "–".into())
        };
        let mut line = format!(
            "| {} | {} | {}–{} | {} | {work} | {rate} | {share} | {} |",
            m.label,
            sig(r.seconds_per_step * 1e3),
            sig(lo * 1e3),
            sig(hi * 1e3),
            sig(r.images_per_s),
            r.peak_rss_mib.map_or("n/a".into(), |p| format!("{p:.0}")),
        );
        for (_, v) in r.split.phases() {
            line.push_str(&format!(" {} |", sig(v * 1e3)));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
