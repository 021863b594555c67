//! The files of a `zoo compare`: `report.md`, a self-contained `report.html` (figures inlined),
//! `losses.png` and `curves.png` (every model's losses, FD and classes hit over the steps, mean
//! over seeds) and `metrics.png` (FD, precision, recall per
//! model with their spread over seeds, and the real-data floor).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zoo_core::config::DatasetKind;
use zoo_core::io::{write_atomic, write_atomic_with};
use zoo_train::output::{Panel, read_metrics, save_line_panels};

use crate::eval::{ClassMetrics, EvalReport, ImageMetrics};
use crate::metrics::MeanStd;

/// What a comparison was asked for, as its report states it.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The comparison folder (the report is written here).
    pub out: PathBuf,
    /// The dataset every model trained on.
    pub dataset: DatasetKind,
    /// Generator steps per run.
    pub steps: u64,
    /// Seeds per model.
    pub seeds: u64,
    /// Samples per evaluation.
    pub n: usize,
}

/// One finished run of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Model name.
    pub model: String,
    /// Seed.
    pub seed: u64,
    /// The run folder.
    pub run: PathBuf,
    /// Training wall time in seconds (summed over resumed sessions).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Peak resident memory while training, MiB.
    pub peak_mib: Option<f64>,
    /// The evaluation.
    pub eval: EvalReport,
}

/// A model's results over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model name.
    pub model: String,
    /// Seeds.
    pub seeds: usize,
    /// FD.
    pub fd: MeanStd,
    /// KID.
    pub kid: MeanStd,
    /// Classifier score.
    pub score: MeanStd,
    /// Classes hit.
    pub classes_hit: MeanStd,
    /// KL of the class histogram from uniform.
    pub class_kl: MeanStd,
    /// Precision.
    pub precision: MeanStd,
    /// Recall.
    pub recall: MeanStd,
    /// Training images per second.
    pub images_per_s: MeanStd,
    /// Training wall time per run, seconds.
    pub seconds: MeanStd,
    /// The largest peak memory of its runs, MiB.
    pub peak_mib: Option<f64>,
    /// Mean label agreement (class-conditional models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_agreement: Option<MeanStd>,
    /// The lowest class's label agreement (class-conditional models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_agreement: Option<MeanStd>,
    /// Mean intra-class FD (class-conditional models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_fd: Option<MeanStd>,
}

pub fn summarise(model: &str, runs: &[&RunResult]) -> ModelSummary {
    let of = |f: &dyn Fn(&ImageMetrics) -> f64| {
        MeanStd::of(&runs.iter().map(|r| f(&r.eval.samples)).collect::<Vec<_>>())
    };
    ModelSummary {
        model: model.to_string(),
        seeds: runs.len(),
        fd: of(&|m| m.fd),
        kid: of(&|m| m.kid.mean),
        score: of(&|m| m.score.mean),
        classes_hit: of(&|m| m.coverage.classes_hit as f64),
        class_kl: of(&|m| m.coverage.kl_uniform),
        precision: of(&|m| m.precision),
        recall: of(&|m| m.recall),
        images_per_s: MeanStd::of(&runs.iter().map(|r| r.images_per_s).collect::<Vec<_>>()),
        seconds: MeanStd::of(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>()),
        peak_mib: runs.iter().filter_map(|r| r.peak_mib).reduce(f64::max),
        label_agreement: of_classes(runs, |c| c.label_agreement_mean),
        lowest_agreement: of_classes(runs, |c| c.worst().1),
        intra_fd: of_classes(runs, |c| c.intra_fd_mean),
    }
}

/// A per-class metric over the runs, when every run has per-class metrics.
fn of_classes(runs: &[&RunResult], f: fn(&ClassMetrics) -> f64) -> Option<MeanStd> {
    let v: Option<Vec<f64>> = runs
        .iter()
        .map(|r| r.eval.classes.as_deref().map(f))
        .collect();
    v.filter(|v| !v.is_empty()).map(|v| MeanStd::of(&v))
}

/// How often a comparison's runs evaluate themselves: ten times per run.
pub fn eval_every(steps: u64) -> u64 {
    (steps / 10).max(1)
}

/// The comparison table (markdown), also printed by `zoo compare`. When a model is
/// class-conditional, three columns more: mean and lowest-class label agreement and the mean
/// intra-class FD (blank for the unconditional models), with the real test split's beside
/// them (`class_floor`).
pub fn table(
    summaries: &[ModelSummary],
    floor: &ImageMetrics,
    class_floor: Option<&ClassMetrics>,
) -> String {
    let ms = |m: &MeanStd, digits: usize| format!("{:.*} ± {:.*}", digits, m.mean, digits, m.std);
    let conditional = summaries.iter().any(|s| s.label_agreement.is_some());
    let mut out = String::from(
        "| model | FD ↓ | KID×1000 ↓ | classifier score ↑ | classes hit | class KL ↓ | precision ↑ | recall ↑ |",
    );
    if conditional {
        out.push_str(" label agreement ↑ | lowest class ↑ | intra-class FD ↓ |");
    }
    out.push_str(" images/s | wall time (s) | peak MiB |\n|---|---|---|---|---|---|---|---|");
    if conditional {
        out.push_str("---|---|---|");
    }
    out.push_str("---|---|---|\n");
    let opt =
        |m: &Option<MeanStd>, digits: usize| m.as_ref().map_or(String::new(), |m| ms(m, digits));
    for s in summaries {
        let kid = MeanStd {
            mean: s.kid.mean * 1000.0,
            std: s.kid.std * 1000.0,
        };
        out.push_str(&format!(
            "| {} ({} {}) | {} | {} | {} | {} | {} | {} | {} |",
            s.model,
            s.seeds,
            if s.seeds == 1 { "seed" } else { "seeds" },
            ms(&s.fd, 2),
            ms(&kid, 2),
            ms(&s.score, 2),
            ms(&s.classes_hit, 1),
            ms(&s.class_kl, 3),
            ms(&s.precision, 3),
            ms(&s.recall, 3),
        ));
        if conditional {
            out.push_str(&format!(
                " {} | {} | {} |",
                opt(&s.label_agreement, 3),
                opt(&s.lowest_agreement, 3),
                opt(&s.intra_fd, 2)
            ));
        }
        out.push_str(&format!(
            " {:.0} | {:.0} | {} |\n",
            s.images_per_s.mean,
            s.seconds.mean,
            s.peak_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
        ));
    }
    let class_cells = match (conditional, class_floor) {
        (false, _) => String::new(),
        (true, Some(c)) => format!(
            " {:.3} | {:.3} | {:.2} |",
            c.label_agreement_mean,
            c.worst().1,
            c.intra_fd_mean
        ),
        (true, None) => " | | |".to_string(),
    };
    out.push_str(&format!(
        "| *real test split (floor)* | {:.2} | {:.2} ± {:.2} | {:.2} ± {:.2} | {} | {:.3} | {:.3} | {:.3} |{class_cells} | | |\n",
        floor.fd,
        floor.kid.mean * 1000.0,
        floor.kid.std * 1000.0,
        floor.score.mean,
        floor.score.std,
        floor.coverage.classes_hit,
        floor.coverage.kl_uniform,
        floor.precision,
        floor.recall
    ));
    out
}

/// A PNG file as a `data:` URI.
pub fn data_uri(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The run folder's newest sample grid.
pub fn last_grid(run: &Path) -> Option<PathBuf> {
    let mut grids: Vec<PathBuf> = std::fs::read_dir(run.join("samples"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    grids.sort();
    grids.pop()
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a figure: {e}")
}

/// A run's metrics.csv: its columns and rows.
type Log = (Vec<String>, Vec<Vec<f64>>);

/// One column of a model's metrics.csv files, averaged over its seeds at each logged step that
/// is a multiple of `every`.
fn mean_curve(logs: &[&Log], column: &str, every: u64) -> Vec<(f64, f64)> {
    let mut at: std::collections::BTreeMap<u64, (f64, usize)> = Default::default();
    for (cols, rows) in logs {
        let Some(i) = cols.iter().position(|c| c == column) else {
            continue;
        };
        for row in rows
            .iter()
            .filter(|row| row[i].is_finite() && (row[0] as u64).is_multiple_of(every))
        {
            let e = at.entry(row[0] as u64).or_default();
            e.0 += row[i];
            e.1 += 1;
        }
    }
    at.into_iter()
        .map(|(step, (sum, n))| (step as f64, sum / n as f64))
        .collect()
}

/// Line panels of the given metrics.csv columns, one line per model (mean over its seeds);
/// `logs` pairs each run's model name with its metrics.csv.
fn curves_figure(
    logs: &[(String, Log)],
    models: &[String],
    columns: &[(&str, &str)],
    every: u64,
    path: &Path,
) -> Result<()> {
    let mut panels = Vec::new();
    for (column, title) in columns {
        let mut lines = Vec::new();
        for m in models {
            let runs: Vec<&Log> = logs
                .iter()
                .filter(|(n, _)| n == m)
                .map(|(_, l)| l)
                .collect();
            let curve = mean_curve(&runs, column, every);
            if !curve.is_empty() {
                lines.push((m.clone(), curve));
            }
        }
        panels.push(Panel {
            title: (*title).to_string(),
            lines,
        });
    }
    save_line_panels(&panels, path)
}

/// Mean and std of one metric of a model.
type Pick = fn(&ModelSummary) -> (f64, f64);

/// FD, precision and recall per model (mean ± std as a bar with a whisker), floor dashed.
fn metrics_figure(summaries: &[ModelSummary], floor: &ImageMetrics, path: &Path) -> Result<()> {
    let panels: [(&str, Pick, f64); 3] = [
        ("FD (lower is better)", |s| (s.fd.mean, s.fd.std), floor.fd),
        (
            "precision",
            |s| (s.precision.mean, s.precision.std),
            floor.precision,
        ),
        ("recall", |s| (s.recall.mean, s.recall.std), floor.recall),
    ];
    write_atomic_with(path, |tmp| {
        let png = tmp.with_extension("png");
        {
            let root = BitMapBackend::new(&png, (900, 320)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            for (area, (title, get, floor)) in root.split_evenly((1, 3)).iter().zip(panels.iter()) {
                let n = summaries.len();
                let hi = summaries
                    .iter()
                    .map(|s| {
                        let (m, sd) = get(s);
                        m + sd
                    })
                    .fold(*floor, f64::max)
                    .max(1e-9)
                    * 1.15;
                let mut chart = ChartBuilder::on(area)
                    .caption(*title, ("sans-serif", 16))
                    .margin(8)
                    .x_label_area_size(28)
                    .y_label_area_size(44)
                    .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..hi)
                    .map_err(err)?;
                let names: Vec<String> = summaries.iter().map(|s| s.model.clone()).collect();
                chart
                    .configure_mesh()
                    .x_labels(n)
                    .x_label_formatter(&|x| {
                        let i = x.round();
                        if (x - i).abs() < 1e-6 && i >= 0.0 {
                            names.get(i as usize).cloned().unwrap_or_default()
                        } else {
                            String::new()
                        }
                    })
                    .light_line_style(WHITE)
                    .draw()
                    .map_err(err)?;
                for (i, s) in summaries.iter().enumerate() {
                    let (m, sd) = get(s);
                    let x = i as f64;
                    let colour = Palette99::pick(i).to_rgba();
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x - 0.3, 0.0), (x + 0.3, m)],
                            colour.filled(),
                        )))
                        .map_err(err)?;
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x, (m - sd).max(0.0)), (x, m + sd)],
                            BLACK.stroke_width(2),
                        )))
                        .map_err(err)?;
                }
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(-0.5, *floor), (n as f64 - 0.5, *floor)],
                        6,
                        4,
                        BLACK.into(),
                    ))
                    .map_err(err)?;
            }
            root.present().map_err(err)?;
        }
        std::fs::rename(&png, tmp).context("cannot move the figure into place")
    })
}

/// Writes `report.md`, `report.html` and the figures into the comparison folder; returns the
/// HTML report's path.
pub fn write(
    req: &Setup,
    summaries: &[ModelSummary],
    results: &[RunResult],
    floor: &ImageMetrics,
) -> Result<PathBuf> {
    let models: Vec<String> = summaries.iter().map(|s| s.model.clone()).collect();
    let logs = results
        .iter()
        .map(|r| Ok((r.model.clone(), read_metrics(&r.run.join("metrics.csv"))?)))
        .collect::<Result<Vec<_>>>()?;
    let losses = req.out.join("losses.png");
    curves_figure(
        &logs,
        &models,
        &[
            ("loss_d", "discriminator loss"),
            ("loss_g", "generator loss"),
        ],
        1,
        &losses,
    )?;
    let curves = req.out.join("curves.png");
    curves_figure(
        &logs,
        &models,
        &[
            ("fd", "FD during training (lower is better)"),
            ("classes_hit", "classes hit during training"),
        ],
        // The evaluations (metrics.csv repeats the last one on the rows between).
        eval_every(req.steps),
        &curves,
    )?;
    let metrics = req.out.join("metrics.png");
    metrics_figure(summaries, floor, &metrics)?;
    let grids: Vec<(String, PathBuf)> = models
        .iter()
        .filter_map(|m| {
            let r = results.iter().find(|r| &r.model == m)?;
            Some((m.clone(), last_grid(&r.run)?))
        })
        .collect();
    let accuracy = results
        .first()
        .map_or(f64::NAN, |r| r.eval.classifier_accuracy);
    let intro = format!(
        "{} models on {} for {} steps each, {} seed(s) each; every run evaluated on {} samples \
         against {} training images with zoo's classifier (test accuracy {:.2}%). \
         Mean ± std over seeds. The last row compares the real test split with the training \
         split: the best a model can hope for.",
        models.len(),
        req.dataset.name(),
        req.steps,
        req.seeds,
        req.n,
        req.n,
        100.0 * accuracy
    );
    let class_floor = results.iter().find_map(|r| r.eval.class_floor.as_deref());
    let tab = table(summaries, floor, class_floor);
    let mut md = format!(
        "# zoo compare\n\n{intro}\n\n{tab}\n## Figures\n\n![metrics](metrics.png)\n\n![curves](curves.png)\n\n![losses](losses.png)\n\n## Samples (seed 1, last grid)\n\n"
    );
    for (m, g) in &grids {
        let rel = g.strip_prefix(&req.out).unwrap_or(g);
        md.push_str(&format!("**{m}**\n\n![{m}]({})\n\n", rel.display()));
    }
    md.push_str("## Runs\n\n| model | seed | run | step |\n|---|---|---|---|\n");
    for r in results {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.model,
            r.seed,
            r.run.display(),
            r.eval.step
        ));
    }
    write_atomic(&req.out.join("report.md"), md.as_bytes())?;

    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>zoo compare</title>\n<style>\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:\
         collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,\
         th:first-child{text-align:left}figure{display:inline-block;margin:8px}img.grid{width:\
         320px;image-rendering:pixelated}</style></head><body>\n<h1>zoo compare</h1>\n",
    );
    html.push_str(&format!("<p>{intro}</p>\n<table>\n"));
    for (i, line) in tab.lines().enumerate() {
        if i == 1 {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let tag = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for c in cells {
            html.push_str(&format!("<{tag}>{c}</{tag}>"));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<h2>Figures</h2>\n");
    for f in [&metrics, &curves, &losses] {
        html.push_str(&format!("<p><img src=\"{}\"></p>\n", data_uri(f)?));
    }
    html.push_str("<h2>Samples (seed 1, last grid)</h2>\n");
    for (m, g) in &grids {
        html.push_str(&format!(
            "<figure><img class=\"grid\" src=\"{}\"><figcaption>{m}</figcaption></figure>\n",
            data_uri(g)?
        ));
    }
    html.push_str("</body></html>\n");
    let out = req.out.join("report.html");
    write_atomic(&out, html.as_bytes())?;
    Ok(out)
}
