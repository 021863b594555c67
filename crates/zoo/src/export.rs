//! `zoo export`: checks its arguments, asks the run's model for its checked ONNX file, writes
//! it (and, with `--web`, the sampling page), and prints what the file takes and gives.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use zoo_core::burn::prelude::Device;
use zoo_core::io::write_atomic;
use zoo_train::export::{ExportReport, ExportRequest, TOLERANCE};

use crate::cli::ExportArgs;

/// `zoo export RUN`.
pub fn run(args: ExportArgs, device: Device) -> Result<()> {
    ensure!(
        args.format.eq_ignore_ascii_case("onnx"),
        "unknown --format `{}`; zoo exports onnx (--format onnx)",
        args.format
    );
    ensure!(
        args.out.is_some() || args.web.is_some(),
        "nothing to write: give --out generator.onnx (the file) or --web DIR (a page that \
         samples in the browser), or both"
    );
    if let Some(out) = &args.out {
        check_out(out)?;
    }
    if let Some(web) = &args.web {
        crate::web::check_dir(web, &args.run_dir)?;
    }
    let direction = args
        .direction
        .as_deref()
        .map(crate::parse_direction)
        .transpose()?;
    let entry = crate::entry_of_run(&args.run_dir)?;
    let report = entry.export(&ExportRequest {
        run_dir: args.run_dir.clone(),
        checkpoint: args.checkpoint.clone(),
        direction,
        check_n: args.check_n,
        device,
    })?;
    if let Some(out) = &args.out {
        write_atomic(out, &report.bytes).with_context(|| {
            format!(
                "--out {} cannot be written (name a file in a folder you can write)",
                out.display()
            )
        })?;
    }
    let page = match &args.web {
        Some(dir) => Some(crate::web::write(dir, &report, args.ort_dir.as_deref())?),
        None => None,
    };
    print_report(&report, args.out.as_deref(), page.as_deref());
    Ok(())
}

/// `--out` must name a `.onnx` file in a folder that exists.
fn check_out(out: &Path) -> Result<()> {
    ensure!(
        out.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx")),
        "--out {} is not a .onnx file name; name the file e.g. generator.onnx",
        out.display()
    );
    if out.is_dir() {
        bail!(
            "--out {} is a folder; name a .onnx file in it",
            out.display()
        );
    }
    parent_folder("--out", out)?;
    Ok(())
}

/// The folder `path` goes into (`.` for a bare name), which must exist; `flag` names the
/// option in the error.
pub fn parent_folder(flag: &str, path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure!(
        parent.is_dir(),
        "{flag} {}: the folder {} does not exist; create it first",
        path.display(),
        parent.display()
    );
    Ok(parent)
}

fn print_report(r: &ExportReport, out: Option<&Path>, page: Option<&Path>) {
    let what = match r.direction {
        Some(d) => format!("generator {}", d.name()),
        None => "generator".to_string(),
    };
    let ema = if r.ema { ", EMA weights" } else { "" };
    let model = r.model.meta("zoo.model").unwrap_or("?");
    let file = out.map_or_else(String::new, |o| format!("{} (", o.display()));
    let close = if out.is_some() { ")" } else { "" };
    println!(
        "{model} {what} at step {}{ema}: {file}{} bytes, {} parameters, ONNX opset {}{close}",
        r.step,
        r.bytes.len(),
        zoo_core::gan::group_digits(r.parameters),
        zoo_export::OPSET
    );
    let ports = |kind: &str, ps: &[zoo_export::Port]| {
        for p in ps {
            let (name, elem, shape) = (&p.name, p.elem.name(), p.shape_text());
            println!("  {kind} {name} {elem} {shape}: {}", p.doc);
        }
    };
    ports("input ", &r.model.inputs);
    ports("output", &r.model.outputs);
    println!(
        "  checked with tract on {} inputs: max |tract - zoo| = {:.2e} over {} values (limit {:.0e})",
        r.feeds.first().map_or(0, feed_rows),
        r.max_diff,
        r.compared,
        TOLERANCE
    );
    if let Some(page) = page {
        println!(
            "  page: {} (serve its folder over HTTP, e.g. `python3 -m http.server -d {}`)",
            page.display(),
            page.parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string())
        );
    }
}

fn feed_rows(f: &zoo_export::Feed) -> usize {
    match f {
        zoo_export::Feed::F32(d, _) | zoo_export::Feed::I64(d, _) => {
            d.first().copied().unwrap_or(0)
        }
    }
}
