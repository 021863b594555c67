//! The files of a `zoo compare`: `report.md`, a self-contained `report.html` (figures inlined),
//! `losses.png` and `curves.png` (every model's losses, FD and classes hit over the steps, mean
//! over seeds) and `metrics.png` (FD, precision, recall per
//! model with their spread over seeds, and the real-data floor).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::compare::{CompareRequest, ModelSummary, RunResult, data_uri, last_grid, table};
use crate::eval::ImageMetrics;
use crate::io::{write_atomic, write_atomic_with};
use crate::output::{Panel, read_metrics, save_line_panels};

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
    req: &CompareRequest,
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
        crate::compare::eval_every(req.steps),
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
    let tab = table(summaries, floor);
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
