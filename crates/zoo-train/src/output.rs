//! Run outputs: sample grids (PNG), metrics.csv, and the live loss figure.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;

use zoo_core::io::{write_atomic, write_atomic_with};

/// Lays out `[N, C, H, W]` images in [-1, 1] as a grid with `nrow` images per row.
pub fn grid_image(images: Tensor<4>, nrow: usize) -> Result<image::DynamicImage> {
    let [n, c, h, w] = images.dims();
    ensure!(n > 0, "no images to draw");
    let tiles = to_images(images)?;
    let nrow = nrow.clamp(1, n);
    let rows = n.div_ceil(nrow);
    let pad = 2;
    let (gw, gh) = (
        (nrow * (w + pad) + pad) as u32,
        (rows * (h + pad) + pad) as u32,
    );
    let mut img = if c == 1 {
        image::DynamicImage::new_luma8(gw, gh)
    } else {
        image::DynamicImage::new_rgb8(gw, gh)
    };
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = (pad + (i % nrow) * (w + pad), pad + (i / nrow) * (h + pad));
        image::imageops::replace(&mut img, tile, x as i64, y as i64);
    }
    // Small images are upscaled (nearest) so that a grid is comfortably viewable.
    let scale = ((480.0 / gw.max(gh) as f64).round() as u32).clamp(1, 4);
    Ok(if scale > 1 {
        img.resize(gw * scale, gh * scale, image::imageops::FilterType::Nearest)
    } else {
        img
    })
}

/// Encodes an image as PNG bytes.
pub fn png_bytes(img: &image::DynamicImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .context("cannot encode PNG")?;
    Ok(bytes)
}

/// Writes a grid of images as a PNG, atomically; 2-D points (`[N, 2, 1, 1]`) become a
/// scatter plot.
pub fn save_grid(images: Tensor<4>, nrow: usize, path: &Path) -> Result<()> {
    if let [_, 2, 1, 1] = images.dims() {
        return save_scatter(&points_of(images)?, None, path);
    }
    write_atomic(path, &png_bytes(&grid_image(images, nrow)?)?)
}

/// 2-D points `[N, 2, 1, 1]` as (x, y) pairs.
pub fn points_of(points: Tensor<4>) -> Result<Vec<[f64; 2]>> {
    let v = points
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read points: {e:?}"))?;
    Ok(v.chunks(2).map(|c| [c[0] as f64, c[1] as f64]).collect())
}

/// A scatter plot of 2-D samples (blue) over the true modes (red crosses), as a PNG.
pub fn save_scatter(points: &[[f64; 2]], modes: Option<&[[f64; 2]]>, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing a scatter plot: {e}");
    let all = points.iter().chain(modes.unwrap_or(&[]));
    let lim = all
        .map(|p| p[0].abs().max(p[1].abs()))
        .filter(|v| v.is_finite())
        .fold(0.5f64, f64::max)
        * 1.15;
    write_atomic_with(path, |tmp| {
        let png = tmp.with_extension("png");
        {
            let root = BitMapBackend::new(&png, (560, 560)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(-lim..lim, -lim..lim)
                .map_err(err)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .draw()
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p[0].is_finite() && p[1].is_finite())
                        .map(|p| Circle::new((p[0], p[1]), 2, BLUE.mix(0.35).filled())),
                )
                .map_err(err)?;
            if let Some(m) = modes {
                chart
                    .draw_series(
                        m.iter()
                            .map(|p| Cross::new((p[0], p[1]), 6, RED.stroke_width(2))),
                    )
                    .map_err(err)?;
            }
            root.present().map_err(err)?;
        }
        std::fs::rename(&png, tmp).context("cannot move the figure into place")
    })
}

/// Converts `[N, C, H, W]` images in [-1, 1] to one picture each (for `zoo sample --out-dir`).
pub fn to_images(images: Tensor<4>) -> Result<Vec<image::DynamicImage>> {
    let [n, c, h, w] = images.dims();
    ensure!(c == 1 || c == 3, "cannot draw images with {c} channels");
    let data: Vec<f32> = images
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let px = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    Ok((0..n)
        .map(|i| {
            let mut buf = vec![0u8; h * w * c];
            for ch in 0..c {
                for p in 0..h * w {
                    buf[p * c + ch] = px(data[(i * c + ch) * h * w + p]);
                }
            }
            let (w, h) = (w as u32, h as u32);
            if c == 1 {
                image::DynamicImage::ImageLuma8(
                    image::GrayImage::from_raw(w, h, buf).expect("sized"),
                )
            } else {
                image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, buf).expect("sized"))
            }
        })
        .collect())
}

/// `metrics.csv`: one row per logged step; a resumed run first drops the rows written after
/// its checkpoint (and any torn last line), so the file never holds duplicates.
pub struct MetricsLog {
    path: PathBuf,
    columns: Vec<String>,
    file: std::fs::File,
    /// Every row so far (for the figures).
    pub rows: Vec<Vec<f64>>,
}

impl MetricsLog {
    /// Opens (or creates) the log with the given columns, keeping rows with `step <= keep_upto`.
    pub fn open(path: &Path, columns: Vec<String>, keep_upto: Option<u64>) -> Result<Self> {
        let header = columns.join(",");
        let mut rows = Vec::new();
        if let (Some(upto), true) = (keep_upto, path.exists()) {
            let (found, all) = read_metrics(path)?;
            let found = found.join(",");
            if found != header {
                bail!(
                    "{} has columns `{found}`, expected `{header}`; was it written by another model?",
                    path.display()
                );
            }
            rows = all.into_iter().filter(|v| v[0] <= upto as f64).collect();
        }
        let mut text = header.clone() + "\n";
        for r in &rows {
            text += &format_row(r);
        }
        write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            columns,
            file,
            rows,
        })
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends one row (values in column order).
    pub fn append(&mut self, row: Vec<f64>) -> Result<()> {
        debug_assert_eq!(row.len(), self.columns.len());
        self.file
            .write_all(format_row(&row).as_bytes())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.rows.push(row);
        Ok(())
    }
}

fn format_row(r: &[f64]) -> String {
    let cells: Vec<String> = r
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i < 2 {
                format!("{v}")
            } else {
                format!("{v:.6}")
            }
        })
        .collect();
    cells.join(",") + "\n"
}

/// One panel of a line figure: a title and named (x, y) series.
pub struct Panel {
    /// Caption.
    pub title: String,
    /// Named series; non-finite points are skipped.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
}

/// Draws the loss curves, the discriminator's scores and the model's loss terms against the step.
pub fn plot_metrics(columns: &[String], rows: &[Vec<f64>], path: &Path) -> Result<()> {
    if rows.len() < 2 {
        return Ok(());
    }
    // Four kinds of column: the two totals, D's mean scores (`d_real`, `d_fake`, AC-GAN's
    // `class_acc_real`: probabilities or raw outputs) and the model's loss terms (CycleGAN's
    // `G_A`, `cycle_A`, …), and `train.eval_every`'s FD and classes. A panel is drawn only
    // when it has lines.
    let skip = ["step", "epoch", "images_per_s", "lr_g", "lr_d"];
    let kind = |c: &str| match c {
        _ if skip.contains(&c) => None,
        "loss_d" | "loss_g" => Some(0),
        _ if c.starts_with("d_") || c.starts_with("class_acc") => Some(1),
        "fd" | "classes_hit" => Some(3),
        _ => Some(2),
    };
    let titles = ["losses", "discriminator scores", "loss terms", "evaluation"];
    let panels: Vec<Panel> = (0..titles.len())
        .map(|k| Panel {
            title: titles[k].to_string(),
            lines: (0..columns.len())
                .filter(|&i| kind(&columns[i]) == Some(k))
                .map(|i| {
                    (
                        columns[i].clone(),
                        rows.iter().map(|r| (r[0], r[i])).collect(),
                    )
                })
                .collect(),
        })
        .filter(|p: &Panel| !p.lines.is_empty())
        .collect();
    save_line_panels(&panels, path)
}

/// Writes panels of line charts against the step, stacked vertically, as a PNG (atomically).
pub fn save_line_panels(panels: &[Panel], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    write_atomic_with(path, |tmp| {
        // plotters infers the format from the extension.
        let tmp_png = tmp.with_extension("png");
        {
            let root =
                BitMapBackend::new(&tmp_png, (900, 320 * panels.len() as u32)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
            for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
                draw_panel(area, panel)?;
            }
            root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        std::fs::rename(&tmp_png, tmp).context("cannot move the figure into place")
    })
}

fn draw_panel<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{e}");
    let points = || {
        panel
            .lines
            .iter()
            .flat_map(|(_, l)| l.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let Some(x0) = points().map(|p| p.0).reduce(f64::min) else {
        return Ok(());
    };
    let x1 = points().map(|p| p.0).fold(x0 + 1.0, f64::max);
    let (lo, hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let margin = (hi - lo) * 0.05;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(x0..x1, (lo - margin)..(hi + margin))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (k, (name, line)) in panel.lines.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.iter()
                    .copied()
                    .filter(|p| p.0.is_finite() && p.1.is_finite()),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Reads a `metrics.csv`: its columns and every complete, well-formed row.
pub fn read_metrics(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.split_inclusive('\n');
    let columns: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_end()
        .split(',')
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for line in lines {
        // A line without its newline was torn by a crash: drop it.
        if !line.ends_with('\n') {
            break;
        }
        let vals: Result<Vec<f64>, _> = line.trim_end().split(',').map(str::parse::<f64>).collect();
        if let Ok(v) = vals
            && v.len() == columns.len()
        {
            rows.push(v);
        }
    }
    Ok((columns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_log_drops_rows_after_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("metrics.csv");
        let cols = vec!["step".to_string(), "epoch".into(), "loss_d".into()];
        let mut log = MetricsLog::open(&p, cols.clone(), None).expect("open");
        for s in 1..=5 {
            log.append(vec![s as f64, 0.0, 0.5]).expect("append");
        }
        drop(log);
        // Simulate a torn last line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open");
        f.write_all(b"6,0,0.4").expect("write");
        drop(f);
        let log = MetricsLog::open(&p, cols.clone(), Some(3)).expect("reopen");
        assert_eq!(log.rows.len(), 3);
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(text.lines().count(), 4);
        assert!(text.ends_with("3,0,0.500000\n"), "{text}");
        let other = vec!["step".to_string(), "x".into()];
        assert!(MetricsLog::open(&p, other, Some(3)).is_err());
    }

    #[test]
    fn grid_has_expected_size_and_values() {
        let dev = Device::flex();
        let imgs: Tensor<4> = Tensor::ones([3, 1, 4, 4], &dev);
        let g = grid_image(imgs, 2).expect("grid");
        // 2 columns × (4 + 2) + 2 = 14 wide, 2 rows → 14 high, upscaled ×4.
        assert_eq!((g.width(), g.height()), (56, 56));
        let l = g.to_luma8();
        assert_eq!(l.get_pixel(2 * 4, 2 * 4).0[0], 255);
        assert_eq!(l.get_pixel(0, 0).0[0], 0);
    }
}
