//! Timing training steps (`zoo bench`): windows of steps, their median, the time split by
//! phase, and the process's peak memory.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::game::Game;
use zoo_core::kernels::cpu::{self, gemm_flops};

use crate::step::Players;
pub use crate::step::Split;

/// Throughput of a model's training step: `windows` timed windows after the warm-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// Real images one step consumes (batch size × d_steps).
    pub images_per_step: usize,
    /// Seconds per step of each window, untimed phases (run with no device syncs in between).
    pub window_seconds_per_step: Vec<f64>,
    /// The median of the windows.
    pub seconds_per_step: f64,
    /// Images per second at the median.
    pub images_per_s: f64,
    /// The time split per step, from separate steps run with a sync after every phase.
    pub split: Split,
    /// Peak resident memory of the process, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
    /// GEMM work of one step in GFLOP, counted from the layers' shapes as they ran in the timed
    /// windows (`zoo_kernels::cpu::gemm_flops`: convolutions and linear layers, forward and
    /// both gradients; 0 on a device where zoo's kernels do not run).
    pub gemm_gflop_per_step: f64,
    /// That work over the median step time, GFLOP/s.
    pub gflops: f64,
    /// This machine's GEMM rate on the same threads (a 1024³ probe after the steps), GFLOP/s;
    /// 0 where no work was counted.
    pub peak_gflops: f64,
    /// The vector instruction set the kernels chose at run time (`zoo_kernels::cpu::simd`).
    pub simd: String,
}

impl BenchReport {
    /// The fastest and slowest window, seconds per step.
    pub fn range(&self) -> (f64, f64) {
        let w = &self.window_seconds_per_step;
        (
            w.iter().copied().fold(f64::INFINITY, f64::min),
            w.iter().copied().fold(0.0, f64::max),
        )
    }
}

/// Times training steps on `data` (no files are written): `warmup` untimed steps, then
/// `windows` windows of `steps / windows` steps each (the median window is the figure), then
/// `split_steps` steps with a device sync after each phase for the time split.
pub fn bench<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    mut data: M::Data,
    device: &Device,
    warmup: u64,
    steps: u64,
    windows: u64,
) -> Result<BenchReport> {
    let ad = device.clone().autodiff();
    let windows = windows.clamp(1, steps.max(1));
    let per_window = (steps / windows).max(1);
    let split_steps = per_window.min(10);
    let total = warmup + per_window * windows + split_steps;
    let mut players = Players::<M>::init(model, cfg, &ad);
    let mut window_seconds = Vec::new();
    let mut split = Split::default();
    let mut start = Instant::now();
    let (mut flops_start, mut flops_end) = (0, 0);
    // Redrawn at most a few times a second, from the calling thread: nothing measurable.
    let bar = crate::progress::bar(total, &format!("bench {}", M::NAME));
    for step in 0..total {
        bar.inc(1);
        let timed = step - warmup.min(step);
        if step >= warmup && timed.is_multiple_of(per_window) && timed <= per_window * windows {
            device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if timed > 0 {
                window_seconds.push(start.elapsed().as_secs_f64() / per_window as f64);
            }
            flops_end = gemm_flops();
            if timed == 0 {
                flops_start = flops_end;
            }
            start = Instant::now();
        }
        let timing = step >= warmup + per_window * windows;
        let (next, losses) = players.step(
            model,
            cfg,
            &mut data,
            step,
            total,
            &ad,
            timing.then_some(&mut split),
        );
        players = next;
        if let Err(e) = losses {
            bail!(
                "the benchmark diverged at step {}: {} is {}",
                e.step,
                e.term,
                e.value
            );
        }
    }
    bar.finish_and_clear();
    let mut sorted = window_seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let images_per_step = cfg.train.batch_size * cfg.train.d_steps;
    let timed_steps = (per_window * windows) as f64;
    let gemm_gflop_per_step = (flops_end - flops_start) as f64 / timed_steps / 1e9;
    Ok(BenchReport {
        images_per_step,
        window_seconds_per_step: window_seconds,
        seconds_per_step: median,
        images_per_s: images_per_step as f64 / median,
        split: split.per(split_steps as f64),
        peak_rss_mib: peak_rss_mib(),
        gemm_gflop_per_step,
        gflops: gemm_gflop_per_step / median,
        // Only where zoo's kernels ran (flex): elsewhere the CPU's peak says nothing of the step.
        peak_gflops: if gemm_gflop_per_step > 0.0 {
            cpu::gemm_peak_gflops()
        } else {
            0.0
        },
        simd: cpu::simd().to_string(),
    })
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so that the next
/// [`peak_rss_mib`] is the peak from now on.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        tracing::debug!("cannot reset the peak memory counter: {e}");
    }
}

/// Peak resident set size (VmHWM) of this process, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
