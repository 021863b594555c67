//! `zoo export`: every registered model's generator as ONNX, run by tract (an ONNX runtime
//! independent of zoo and burn) against zoo's own forward; a trained model's file reproducing
//! `zoo sample`'s images for the same noise; the `--web` page sampling in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zoo_export::{Feed, run_tract};

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// Small settings of the convolutional noise-to-image models (MNIST, 28 px).
const CONV: &[&str] = &[
    "--quiet",
    "--set",
    "model.g_filters=4",
    "--set",
    "model.d_filters=4",
    "--set",
    "data.limit=256",
    "--batch-size",
    "8",
    "--steps",
    "3",
];

/// A little more training than [`CONV`]: outputs that vary across the image.
const TRAINED: &[&str] = &[
    "--quiet",
    "--set",
    "model.g_filters=8",
    "--set",
    "model.d_filters=8",
    "--set",
    "data.limit=512",
    "--batch-size",
    "32",
    "--steps",
    "30",
];

/// `model` (an MNIST model) trained with [`TRAINED`]; returns the run folder.
fn trained_run(model: &str, root: &Path) -> PathBuf {
    let out = root.join("runs");
    let mnist = mnist();
    let mut args = vec!["train", model, "--data-dir", s(&mnist), "--out", s(&out)];
    args.extend_from_slice(TRAINED);
    run_dir(&ok(zoo(&args)))
}

/// Trains `model` for a few steps on small data; returns the run folder.
fn tiny_run(model: &str, root: &Path) -> PathBuf {
    let out = root.join(format!("runs-{model}"));
    let mnist = mnist();
    let stdout = match model {
        "vanilla" => ok(train_tiny(&mnist, &out, &["--steps", "3"])),
        "dcgan" | "lsgan" | "sngan" | "cgan" | "acgan" => {
            let mut args = vec!["train", model, "--data-dir", s(&mnist), "--out", s(&out)];
            args.extend_from_slice(CONV);
            ok(zoo(&args))
        }
        "cyclegan" => {
            let pair = crate::cyclegan::demo_pair(&root.join("cyclegan"));
            let mut args = vec!["train", "cyclegan", "--quiet", "--domains", s(&pair)];
            args.extend_from_slice(&["--out", s(&out), "--steps", "2"]);
            args.extend_from_slice(crate::cyclegan::SMALL);
            ok(zoo(&args))
        }
        "pix2pix" => {
            let src = crate::pix2pix::emoji_root(&root.join("emoji"), 8);
            let pair = root.join("paired");
            crate::pix2pix::make_pair(&src, &pair, &[]);
            let mut args = vec!["train", "pix2pix", "--quiet", "--domains", s(&pair)];
            args.extend_from_slice(&["--out", s(&out), "--steps", "2"]);
            args.extend_from_slice(crate::pix2pix::SMALL);
            ok(zoo(&args))
        }
        other => panic!(
            "tests/export.rs has no tiny settings for `{other}`: add them, so that every \
             registered model's export is checked"
        ),
    };
    run_dir(&stdout)
}

/// The figure `zoo export` prints: max |tract - zoo|.
fn printed_diff(stdout: &str) -> f32 {
    let at = stdout
        .find("max |tract - zoo| = ")
        .unwrap_or_else(|| panic!("no check line in {stdout}"));
    let rest = &stdout[at + "max |tract - zoo| = ".len()..];
    rest.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {rest}"))
}

/// A seeded stream of floats in [-1, 1) (the test's own inputs, not zoo's).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The inputs of an exported graph for a batch of `n`, from its declared shapes (as `zoo
/// export` prints them).
fn inputs_for(stdout: &str, n: usize, seed: u64) -> Vec<Feed> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("input "))
        .map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(' ').expect("input line");
            let (elem, rest) = rest.split_once(' ').expect("type");
            let shape = &rest[1..rest.find(']').expect("shape")];
            let mut dims: Vec<usize> = shape
                .split(", ")
                .map(|d| if d == "N" { n } else { d.parse().expect("dim") })
                .collect();
            if dims.is_empty() {
                dims.push(n);
            }
            let count: usize = dims.iter().product();
            match elem {
                "float32" => Feed::F32(dims, uniform(count, seed)),
                "int64" => {
                    assert_eq!(name, "class", "{l}");
                    Feed::I64(dims, (0..count as i64).map(|i| i % 10).collect())
                }
                other => panic!("unexpected input type {other} in {l}"),
            }
        })
        .collect()
}

#[test]
fn every_model_exports_and_matches_zoo_under_tract() {
    let tmp = tempfile::tempdir().expect("tmp");
    let list = ok(zoo(&["list"]));
    let models: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(models.len() >= 7, "{list}");
    for model in models {
        let run = tiny_run(model, tmp.path());
        let directions: &[Option<&str>] = match model {
            "cyclegan" => &[Some("a2b"), Some("b2a")],
            _ => &[None],
        };
        for dir in directions {
            let file = tmp
                .path()
                .join(format!("{model}-{}.onnx", dir.unwrap_or("g")));
            let mut args = vec!["export", s(&run), "--out", s(&file), "--check-n", "4"];
            if let Some(d) = dir {
                args.extend_from_slice(&["--direction", d]);
            }
            let stdout = ok(zoo(&args));
            let d = printed_diff(&stdout);
            assert!(
                d.is_finite() && (0.0..=1e-4).contains(&d),
                "{model} {dir:?}: max |tract - zoo| = {d}\n{stdout}"
            );
            assert!(stdout.contains("output "), "{stdout}");
            // The file alone, at another batch size (the batch is dynamic): outputs of the
            // declared shape, in [-1, 1] for images.
            let bytes = std::fs::read(&file).expect("onnx file");
            assert!(bytes.len() > 1000, "{model}: {} bytes", bytes.len());
            let feeds = inputs_for(&stdout, 3, 7);
            let (dims, values) =
                run_tract(&bytes, &feeds).unwrap_or_else(|e| panic!("{model}: tract: {e:#}"));
            assert_eq!(dims[0], 3, "{model}: {dims:?}");
            assert_eq!(dims.len(), 4, "{model}: {dims:?}");
            if model != "vanilla" || !stdout.contains("points") {
                assert!(
                    values.iter().all(|v| (-1.0..=1.0).contains(v)),
                    "{model}: values outside [-1, 1]"
                );
            }
            let spread = values.iter().fold(f32::MIN, |a, &b| a.max(b))
                - values.iter().fold(f32::MAX, |a, &b| a.min(b));
            assert!(spread > 1e-3, "{model}: constant output");
        }
    }
}

/// Reads a `.npy` float32 file written by `zoo sample --save-noise`.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).expect("npy");
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "npy header padding");
    let header = std::str::from_utf8(&bytes[10..10 + len]).expect("header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape = &header[header.find("'shape': (").expect("shape") + 10..];
    let dims: Vec<usize> = shape[..shape.find(')').expect(")")]
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().expect("dim"))
        .collect();
    let values: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(values.len(), dims.iter().product::<usize>());
    (dims, values)
}

/// A pixel value as zoo's PNGs write it.
fn level(v: f32) -> i32 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as i32
}

#[test]
fn a_trained_dcgan_export_reproduces_zoo_sample() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained_run("dcgan", tmp.path());
    let file = tmp.path().join("g.onnx");
    ok(zoo(&["export", s(&run), "--out", s(&file)]));
    let samples = tmp.path().join("samples");
    let noise = tmp.path().join("z.npy");
    ok(zoo(&[
        "sample",
        s(&run),
        "-n",
        "6",
        "--seed",
        "11",
        "--out-dir",
        s(&samples),
        "--save-noise",
        s(&noise),
    ]));
    let (dims, z) = read_npy(&noise);
    assert_eq!(dims, vec![6, 100]);
    let (out_dims, images) =
        run_tract(&std::fs::read(&file).expect("onnx"), &[Feed::F32(dims, z)]).expect("tract");
    assert_eq!(out_dims, vec![6, 1, 28, 28]);
    let mut worst = 0;
    for i in 0..6 {
        let png = image::open(samples.join(format!("sample_{i:05}.png")))
            .expect("sample png")
            .to_luma8();
        for (k, p) in png.pixels().enumerate() {
            worst = worst.max((level(images[i * 784 + k]) - p.0[0] as i32).abs());
        }
    }
    assert!(
        worst <= 1,
        "tract's images differ from zoo sample's by {worst} levels"
    );
}

/// A static HTTP server for a folder on 127.0.0.1 (GET only), for the page test.
fn serve_dir(dir: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let path = path
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let path = if path.is_empty() { "index.html" } else { path };
                let file = dir.join(path);
                let (status, body) = match (path.contains(".."), std::fs::read(&file)) {
                    (false, Ok(b)) => ("200 OK", b),
                    _ => ("404 Not Found", b"not found".to_vec()),
                };
                let kind = match file.extension().and_then(|e| e.to_str()) {
                    Some("html") => "text/html; charset=utf-8",
                    Some("js" | "mjs") => "text/javascript",
                    Some("wasm") => "application/wasm",
                    _ => "application/octet-stream",
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// The page's `<pre id="result">` JSON, read from Chromium's DOM dump.
fn page_result(chromium: &Path, url: &str) -> serde_json::Value {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=60000",
            "--dump-dom",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut dom = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut dom)
        .expect("dom");
    child.wait().expect("chromium ends");
    let start = dom
        .find("<pre class=\"out\" id=\"result\">")
        .unwrap_or_else(|| panic!("no result element in the page: {dom}"));
    let rest = &dom[start..];
    let text = &rest[rest.find('>').expect(">") + 1..rest.find("</pre>").expect("</pre>")];
    let text = text.replace("&quot;", "\"").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("result JSON: {e}: {text}"))
}

/// The page result's array `key` as floats.
fn floats(result: &serde_json::Value, key: &str) -> Vec<f32> {
    result[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {result}"))
        .iter()
        .map(|v| v.as_f64().expect("float") as f32)
        .collect()
}

/// The canvas the page drew (its `png` data URL).
fn canvas_of(result: &serde_json::Value) -> image::RgbImage {
    use base64::Engine;
    let png = result["png"].as_str().expect("png");
    let b64 = png
        .strip_prefix("data:image/png;base64,")
        .expect("data url");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    image::load_from_memory(&bytes)
        .expect("canvas png")
        .to_rgb8()
}

#[test]
fn export_web_page_samples_in_a_browser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained_run("cgan", tmp.path());
    let web = tmp.path().join("page");
    // onnxruntime-web's files, fetched once into the repository's data/ (as the quick start
    // puts MNIST there).
    let ort = repo_root().join("data").join("onnxruntime-web");
    let got = zoo(&["data", "get", "ort-web", "--data-dir", s(&ort)]);
    if !got.status.success() {
        eprintln!(
            "SKIPPED the export page test: onnxruntime-web could not be fetched from the npm \
             registry ({})",
            stderr(&got).trim()
        );
        return;
    }
    let said = zoo(&["export", s(&run), "--web", s(&web), "--ort-dir", s(&ort)]);
    let said = ok(said);
    assert!(said.contains("page: "), "{said}");
    for f in [
        "index.html",
        "model.onnx",
        "ort.wasm.min.js",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
    ] {
        assert!(web.join(f).is_file(), "{f} missing from {}", web.display());
    }
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of the export page test: no Chromium at /usr/bin/chromium \
             (install Debian's `chromium` package, or set CHROMIUM)"
        );
        return;
    };
    let port = serve_dir(web.clone());
    let onnx = std::fs::read(web.join("model.onnx")).expect("model");
    for (seed, class) in [(3, "7"), (4, "all")] {
        let url = format!("http://127.0.0.1:{port}/?seed={seed}&class={class}");
        let result = page_result(&chromium, &url);
        assert!(result.get("error").is_none(), "the page failed: {result}");
        assert_eq!(result["seed"], seed, "{result}");
        let z = floats(&result, "z");
        let labels: Vec<i64> = result["class"]
            .as_array()
            .expect("class")
            .iter()
            .map(|v| v.as_i64().expect("int"))
            .collect();
        let n = labels.len();
        assert_eq!(n, if class == "all" { 80 } else { 16 });
        if class == "7" {
            assert!(labels.iter().all(|&c| c == 7), "{labels:?}");
        }
        assert_eq!(z.len(), n * 100);
        // The canvas the page drew, cell by cell, against tract's images for the same inputs.
        let (dims, want) = run_tract(
            &onnx,
            &[Feed::F32(vec![n, 100], z), Feed::I64(vec![n], labels)],
        )
        .expect("tract");
        let canvas = canvas_of(&result);
        let (h, w) = (dims[2], dims[3]);
        let cols = if class == "all" { 8 } else { 4 };
        let pad = result["pad"].as_u64().expect("pad") as usize;
        assert_eq!(canvas.width() as usize, cols * (w + pad) + pad);
        let mut worst = 0;
        let mut levels = std::collections::BTreeSet::new();
        for i in 0..n {
            let (x0, y0) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
            for y in 0..h {
                for x in 0..w {
                    let got = canvas.get_pixel((x0 + x) as u32, (y0 + y) as u32).0[0] as i32;
                    let v = level(want[(i * h + y) * w + x]);
                    levels.insert(got);
                    worst = worst.max((got - v).abs());
                }
            }
        }
        assert!(
            worst <= 1,
            "the page's canvas differs from tract by {worst} levels"
        );
        assert!(levels.len() > 20, "a blank canvas: {} levels", levels.len());
    }
    // A translator's page: held-out examples beside it, `?image=K` translates one.
    let p2p = tiny_run("pix2pix", tmp.path());
    let web2 = tmp.path().join("page-p2p");
    ok(zoo(&[
        "export",
        s(&p2p),
        "--web",
        s(&web2),
        "--ort-dir",
        s(&ort),
    ]));
    assert!(
        web2.join("examples/1.png").is_file(),
        "no examples in {}",
        web2.display()
    );
    let port2 = serve_dir(web2.clone());
    let result = page_result(&chromium, &format!("http://127.0.0.1:{port2}/?image=1"));
    assert!(result.get("error").is_none(), "the page failed: {result}");
    assert_eq!(result["example"], 1, "{result}");
    let x = floats(&result, "x");
    let example = image::open(web2.join("examples/1.png"))
        .expect("example")
        .to_rgb8();
    let (w, h) = (example.width() as usize, example.height() as usize);
    assert_eq!(x.len(), 3 * w * h);
    // The page fed the example's own pixels.
    let px = example.get_pixel(2, 3).0;
    for (k, &p) in px.iter().enumerate() {
        assert!((x[k * w * h + 3 * w + 2] - (p as f32 / 127.5 - 1.0)).abs() < 1e-6);
    }
    let onnx2 = std::fs::read(web2.join("model.onnx")).expect("model");
    let (dims, want) = run_tract(&onnx2, &[Feed::F32(vec![1, 3, h, w], x)]).expect("tract");
    assert_eq!(dims, vec![1, 3, h, w]);
    let canvas = canvas_of(&result);
    let pad = result["pad"].as_u64().expect("pad") as usize;
    let mut worst = 0;
    for y in 0..h {
        for x in 0..w {
            let got = canvas.get_pixel((pad + x) as u32, (pad + y) as u32).0;
            for (k, &g) in got.iter().enumerate() {
                let v = level(want[(k * h + y) * w + x]);
                worst = worst.max((g as i32 - v).abs());
            }
        }
    }
    assert!(
        worst <= 1,
        "the translator page's canvas differs from tract by {worst} levels"
    );

    // A screenshot to look at (kept under target/ for the developer).
    let shot = repo_root().join("target").join("export-page.png");
    let _ = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,900",
            "--virtual-time-budget=60000",
            &format!("--screenshot={}", shot.display()),
            &format!("http://127.0.0.1:{port}/?seed=1&class=all"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    eprintln!("export page screenshot: {}", shot.display());
}
