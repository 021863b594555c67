//! `zoo export --web DIR`: a static page that runs the exported generator in the browser
//! with onnxruntime-web (its WebAssembly build, copied from its npm package; no CDN): a seed
//! control, a class picker for conditional models, an image picker for translators.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use zoo_core::io::write_atomic;
use zoo_train::export::ExportReport;

use crate::get::{ORT_WEB_FILES, ORT_WEB_VERSION, get_ort_web, ort_web_present};

/// The file that marks a folder as a page `zoo export --web` wrote (it may be replaced).
const MARKER: &str = "zoo-page.json";
const PAGE: &str = include_str!("page.html");

/// `--web DIR` must be a new or empty folder (in one that exists), or a page zoo wrote before,
/// outside the run.
pub fn check_dir(dir: &Path, run_dir: &Path) -> Result<()> {
    crate::export::parent_folder("--web", dir)?;
    if dir.exists() {
        ensure!(
            dir.is_dir(),
            "--web {} is a file; name a folder for the page",
            dir.display()
        );
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read --web {}", dir.display()))?
            .next()
            .is_none();
        ensure!(
            empty || dir.join(MARKER).is_file(),
            "--web {} holds other files; name a new or empty folder (a page zoo wrote there \
             before is replaced)",
            dir.display()
        );
    }
    if let (Ok(d), Ok(r)) = (absolute(dir), absolute(run_dir)) {
        ensure!(
            !d.starts_with(&r),
            "--web {} is inside the run folder; write the page elsewhere",
            dir.display()
        );
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    let p = std::path::absolute(p)?;
    // The run exists; the page folder may not yet: canonicalise what exists of it.
    let mut existing = p.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    Ok(out)
}

/// The folder onnxruntime-web's files are taken from by default.
pub fn default_ort_dir() -> PathBuf {
    match std::env::var_os("ZOO_DATA") {
        Some(root) => PathBuf::from(root).join("onnxruntime-web"),
        None => PathBuf::from("data").join("onnxruntime-web"),
    }
}

/// Writes the page into `dir` (through a temporary folder renamed into place, so a page is
/// whole or absent); returns index.html's path.
pub fn write(dir: &Path, report: &ExportReport, ort_dir: Option<&Path>) -> Result<PathBuf> {
    let ort = match ort_dir {
        Some(d) => {
            ort_web_present(d).with_context(|| {
                format!(
                    "--ort-dir {} does not hold onnxruntime-web {ORT_WEB_VERSION}'s dist files \
                     ({}); fetch them with `zoo data get ort-web`",
                    d.display(),
                    ORT_WEB_FILES.map(|(n, _)| n).join(", ")
                )
            })?;
            d.to_path_buf()
        }
        None => {
            let d = default_ort_dir();
            if ort_web_present(&d).is_err() {
                tracing::info!("fetching onnxruntime-web {ORT_WEB_VERSION} from the npm registry");
                get_ort_web(&d).context(
                    "the page needs onnxruntime-web's files; fetch them with `zoo data get \
                     ort-web`, or give --ort-dir",
                )?;
            }
            d
        }
    };
    let parent = crate::export::parent_folder("--web", dir)?;
    let name = dir
        .file_name()
        .context("--web names no folder")?
        .to_string_lossy()
        .to_string();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = fill(&tmp, report, &ort);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace the page in {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("cannot write --web {}", dir.display()))?;
    Ok(dir.join("index.html"))
}

fn fill(tmp: &Path, report: &ExportReport, ort: &Path) -> Result<()> {
    std::fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    for (file, _) in ORT_WEB_FILES {
        std::fs::copy(ort.join(file), tmp.join(file))
            .with_context(|| format!("cannot copy {file} into {}", tmp.display()))?;
    }
    write_atomic(&tmp.join("model.onnx"), &report.bytes)?;
    if !report.examples.is_empty() {
        std::fs::create_dir_all(tmp.join("examples"))
            .with_context(|| format!("cannot create {}", tmp.join("examples").display()))?;
        for (i, png) in report.examples.iter().enumerate() {
            write_atomic(&tmp.join("examples").join(format!("{i}.png")), png)?;
        }
    }
    let meta = page_meta(report)?;
    let html = PAGE.replace("/*ZOO_META*/null", &meta);
    if html == PAGE {
        bail!("the page template has no metadata slot");
    }
    write_atomic(&tmp.join("index.html"), html.as_bytes())?;
    write_atomic(&tmp.join(MARKER), meta.as_bytes())?;
    Ok(())
}

/// What the page needs to know, as JSON: the model, its inputs and outputs, its metadata.
fn page_meta(r: &ExportReport) -> Result<String> {
    let ports = |ps: &[zoo_export::Port]| -> Vec<serde_json::Value> {
        ps.iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "type": p.elem.name(),
                    "shape": p.dims.iter().map(|d| match d {
                        zoo_export::Dim::Batch => serde_json::Value::from(zoo_export::BATCH),
                        zoo_export::Dim::Fixed(n) => serde_json::Value::from(*n),
                    }).collect::<Vec<_>>(),
                    "doc": p.doc,
                })
            })
            .collect()
    };
    let meta: serde_json::Map<String, serde_json::Value> = r
        .model
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
        .collect();
    let v = serde_json::json!({
        "step": r.step,
        "ema": r.ema,
        "inputs": ports(&r.model.inputs),
        "outputs": ports(&r.model.outputs),
        "metadata": meta,
        "onnxruntime_web": ORT_WEB_VERSION,
        "examples": (0..r.examples.len()).map(|i| format!("examples/{i}.png")).collect::<Vec<_>>(),
    });
    // Safe inside a <script> element: no `</` can close it early.
    Ok(serde_json::to_string(&v)?.replace("</", "<\\/"))
}
