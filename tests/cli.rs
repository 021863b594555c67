//! The commands' happy paths, end to end on the shared MNIST.

use std::collections::BTreeMap;
use std::process::Command;

use crate::util::*;

#[test]
fn list_config_and_info() {
    let out = ok(zoo(&["list"]));
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "vanilla", "dcgan", "lsgan", "sngan", "cgan", "acgan", "cyclegan", "pix2pix"
        ]
    );
    let cfg = ok(zoo(&["config", "vanilla"]));
    let table: toml::Table = cfg.parse().expect("valid TOML");
    for section in ["model", "data", "train", "optim"] {
        assert!(table.contains_key(section), "{section} in {cfg}");
    }
    // Only the sections that apply: the 2-D mixtures' geometry is not an image model's.
    assert!(!cfg.contains("[data.toy]"), "{cfg}");
    // CycleGAN trains by epochs: its unused `steps` is shown commented out, with the reason.
    let cycle = ok(zoo(&["config", "cyclegan"]));
    assert!(
        cycle.contains("# steps = 5000: unused, `epochs = 200` sets the length"),
        "{cycle}"
    );
    assert!(!cycle.contains("\nsteps = "), "{cycle}");
    // A key unset by default (resolved from the image size) is shown commented, at its value.
    let dcgan = ok(zoo(&["config", "dcgan"]));
    assert!(
        dcgan.contains("[model]\n# g_filters = 128    # unset: 128 for images of 28 px or less"),
        "{dcgan}"
    );
    assert!(!dcgan.contains("\ng_filters"), "{dcgan}");
    let info = ok(zoo(&["info", "vanilla"]));
    assert!(
        info.contains("Generator parameters: 1,489,936 (+ 3,584 batch-norm running statistics)"),
        "{info}"
    );
    assert!(
        info.contains("Discriminator parameters: 1,460,225"),
        "{info}"
    );
    // One count, zoo's: no debug dump of burn's (whose `params:` counts running statistics),
    // and the layer rows add up to it.
    assert!(!info.contains("params:") && !info.contains('{'), "{info}");
    let g_rows: usize = info
        .split("Discriminator parameters")
        .next()
        .expect("generator part")
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells[2].replace(',', "").parse::<usize>().expect("count")
        })
        .sum();
    assert_eq!(g_rows, 1_489_936, "{info}");
    let info = ok(zoo(&["info", "vanilla", "--set", "model.g_hidden=[10]"]));
    // 100·10 + 10 + 10·784 + 784, plus batch norm's γ and β (2·10)
    assert!(info.contains("Generator parameters: 9,654 (+ 20"), "{info}");
}

fn config_path(name: &str) -> String {
    format!("{}/../../configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_configs_are_complete_and_valid() {
    fn keys(t: &toml::Table, prefix: &str, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in t {
            let p = format!("{prefix}{k}");
            match v {
                toml::Value::Table(s) => keys(s, &format!("{p}."), out),
                _ => {
                    out.insert(p, v.clone());
                }
            }
        }
    }
    for model in [
        "vanilla", "dcgan", "lsgan", "sngan", "cgan", "acgan", "cyclegan", "pix2pix",
    ] {
        let path = config_path(&format!("{model}.toml"));
        let info = ok(zoo(&["info", model, "--config", &path]));
        assert!(info.contains("Generator parameters"), "{info}");
        // Every default key is present in the commented file, with the default value.
        let defaults: toml::Table = ok(zoo(&["config", model])).parse().expect("toml");
        let file: toml::Table = std::fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("toml");
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        keys(&defaults, "", &mut a);
        keys(&file, "", &mut b);
        for (k, v) in &a {
            let in_file = b.get(k);
            assert!(in_file.is_some(), "configs/{model}.toml lacks `{k}`");
            assert_eq!(
                in_file,
                Some(v),
                "configs/{model}.toml: `{k}` is not the default"
            );
        }
    }
    // The sparse 2-D config builds 2-in / 2-out MLPs: G 2→400×4→2, D 2→200×3→1.
    let toy = ok(zoo(&[
        "info",
        "vanilla",
        "--config",
        &config_path("vanilla-toy.toml"),
    ]));
    // G: (2·400+400) + 3·(400·400+400) + (400·2+2) weights and biases, + 4·2·400 batch-norm γ/β.
    assert!(toy.contains("Generator parameters: 486,402 (+"), "{toy}");
    // D: (2·200+200) + 2·(200·200+200) + (200+1).
    assert!(toy.contains("Discriminator parameters: 81,201"), "{toy}");
    // The sparse emoji configs build.
    for model in ["cyclegan", "pix2pix"] {
        let path = config_path(&format!("{model}-emoji.toml"));
        let info = ok(zoo(&["info", model, "--config", &path]));
        assert!(info.contains("Generator parameters"), "{info}");
    }
    // The sparse 64×64 configs build the paper's networks.
    for model in ["dcgan", "lsgan"] {
        let path = config_path(&format!("{model}-folder64.toml"));
        let info = ok(zoo(&["info", model, "--config", &path]));
        assert_dcgan_reference_counts(&info);
    }
}

/// The 64×64 RGB DCGAN of the PyTorch reference: G 3,576,704 and D 2,765,568 parameters.
fn assert_dcgan_reference_counts(info: &str) {
    assert!(info.contains("Generator parameters: 3,576,704"), "{info}");
    assert!(
        info.contains("Discriminator parameters: 2,765,568"),
        "{info}"
    );
}

#[test]
fn cyclegan_reference_parameter_counts() {
    let info = ok(zoo(&["info", "cyclegan", "--set", "data.channels=3"]));
    for line in [
        "G (A->B) parameters: 11,378,179",
        "F (B->A) parameters: 11,378,179",
        "D_A (judges B) parameters: 2,764,737",
        "D_B (judges A) parameters: 2,764,737",
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    let small = ok(zoo(&[
        "info",
        "cyclegan",
        "--config",
        &config_path("cyclegan-small.toml"),
    ]));
    assert!(small.contains("G (A->B) parameters"), "{small}");
}

#[test]
fn dcgan_reference_parameter_counts() {
    let info = ok(zoo(&[
        "info",
        "dcgan",
        "--set",
        "data.image_size=64",
        "--set",
        "data.channels=3",
    ]));
    assert_dcgan_reference_counts(&info);
    fails(
        zoo(&["info", "dcgan", "--set", "data.image_size=30"]),
        &["data.image_size = 30 does not suit DCGAN"],
    );
}

#[test]
fn conv_models_train_on_an_image_folder_at_64px() {
    let tmp = tempfile::tempdir().expect("tmp");
    let folder = tmp.path().join("imgs");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for i in 0..12u32 {
        let img = image::RgbImage::from_fn(80, 70, |x, y| {
            image::Rgb([(x * 3 + i * 20) as u8, (y * 3) as u8, (i * 21) as u8])
        });
        img.save(folder.join(format!("{i}.png"))).expect("save");
    }
    for model in ["dcgan", "lsgan"] {
        let out = tmp.path().join(model);
        let stdout = ok(zoo(&[
            "train",
            model,
            "--quiet",
            "--config",
            &config_path(&format!("{model}-folder64.toml")),
            "--data-dir",
            folder.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--set",
            "model.g_filters=4",
            "--set",
            "model.d_filters=4",
            "--set",
            "train.grid_samples=4",
        ]));
        let run = run_dir(&stdout);
        let grid = image::open(run.join("samples/step_000002.png")).expect("grid");
        assert_eq!(grid.color(), image::ColorType::Rgb8);
        // 2×2 grid of 64-px images with 2-px padding: 134 px, upscaled ×4.
        assert_eq!((grid.width(), grid.height()), (536, 536));
        let one = tmp.path().join(format!("{model}.png"));
        ok(sample(&run, 1, "--out-dir", &one));
        let img = image::open(one.join("sample_00000.png")).expect("png");
        assert_eq!((img.width(), img.height()), (64, 64));
    }
}

#[test]
fn train_sample_and_resume_end_to_end() {
    let out = tempfile::tempdir().expect("tmp");
    let stdout = ok(train_tiny(
        &mnist(),
        out.path(),
        &[
            "--steps",
            "6",
            "--set",
            "train.sample_every=3",
            "--set",
            "train.checkpoint_every=3",
            "--set",
            "train.log_every=2",
            "--set",
            "train.grid_samples=16",
        ],
    ));
    let run = run_dir(&stdout);
    assert!(run.starts_with(out.path()));
    assert!(
        run.file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("vanilla-")
    );
    assert!(stdout.contains("steps: 6/6"), "{stdout}");
    assert_eq!(
        ls(&run),
        [
            "checkpoints",
            "config.toml",
            "losses.png",
            "metrics.csv",
            "run.toml",
            "samples"
        ]
    );
    assert_eq!(
        ls(&run.join("samples")),
        ["step_000000.png", "step_000003.png", "step_000006.png"]
    );
    assert_eq!(
        ls(&run.join("checkpoints")),
        ["latest", "step_000003", "step_000006"]
    );
    assert_eq!(
        ls(&run.join("checkpoints/step_000006")),
        [
            "discriminator.bpk",
            "generator.bpk",
            "generator_ema.bpk",
            "manifest.toml",
            "optim_d.bpk",
            "optim_g.bpk",
            "state.toml"
        ]
    );
    let cfg: toml::Table = std::fs::read_to_string(run.join("config.toml"))
        .expect("config")
        .parse()
        .expect("toml");
    assert_eq!(cfg["train"]["steps"].as_integer(), Some(6));
    assert_eq!(cfg["train"]["batch_size"].as_integer(), Some(16));
    assert_eq!(cfg["data"]["limit"].as_integer(), Some(640));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("step,epoch,loss_d,loss_g,d_real,d_fake,images_per_s,lr_g,lr_d")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|c| c.parse().expect("number")).collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [2.0, 4.0, 6.0]
    );
    for r in &rows {
        assert!(r.iter().all(|v| v.is_finite()));
        assert!(
            (0.0..=1.0).contains(&r[4]) && (0.0..=1.0).contains(&r[5]),
            "D scores {r:?}"
        );
        assert!(r[6] > 0.0, "images/s");
    }
    let grid = image::open(run.join("samples/step_000006.png")).expect("png");
    // 4×4 grid of 28-px images with 2-px padding: 122 px, upscaled ×4.
    assert_eq!((grid.width(), grid.height()), (488, 488));

    // zoo sample: a grid, then one file per image.
    let grid_path = out.path().join("grid.png");
    let printed = ok(sample(&run, 9, "--out", &grid_path));
    assert_eq!(printed.trim(), grid_path.to_str().expect("utf-8"));
    let g = image::open(&grid_path).expect("png");
    assert_eq!((g.width(), g.height()), (4 * 92, 4 * 92));
    let each = out.path().join("each");
    ok(sample(&run, 5, "--out-dir", &each));
    assert_eq!(ls(&each).len(), 5);
    let one = image::open(each.join("sample_00000.png")).expect("png");
    assert_eq!((one.width(), one.height()), (28, 28));
    // Same seed, same samples.
    let again = out.path().join("grid2.png");
    ok(sample(&run, 9, "--out", &again));
    assert_eq!(
        std::fs::read(&grid_path).expect("read"),
        std::fs::read(&again).expect("read")
    );

    // Resume to 8 steps: the step counter continues and metrics.csv gains one row.
    let stdout = ok(resume_vanilla(&run, 8));
    assert!(stdout.contains("steps: 8/8"), "{stdout}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("csv");
    let steps: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().expect("cell"))
        .collect();
    assert_eq!(steps, ["2", "4", "6", "8"]);
    assert_eq!(
        std::fs::read_to_string(run.join("checkpoints/latest")).expect("latest"),
        "step_000008"
    );

    // --time-limit: the first step takes longer than a microsecond, so it ends the session, checkpointed,
    // and the summary says how to go on.
    let stdout = ok(train_tiny(
        &mnist(),
        out.path(),
        &["--steps", "8", "--time-limit", "0.000001s"],
    ));
    assert!(stdout.contains("steps: 1/8"), "{stdout}");
    assert!(
        stdout.contains("stopped at the time limit; continue with `zoo train vanilla --resume"),
        "{stdout}"
    );
    let cut = run_dir(&stdout);
    assert_eq!(
        std::fs::read_to_string(cut.join("checkpoints/latest")).expect("latest"),
        "step_000001"
    );
}

#[test]
fn idx_reader_on_the_shared_mnist() {
    use zoo_core::data::{Split, load_idx_split};
    let train = load_idx_split(&mnist(), Split::Train).expect("train");
    let test = load_idx_split(&mnist(), Split::Test).expect("test");
    assert_eq!((train.len, train.size, train.channels), (60_000, 28, 1));
    assert_eq!((test.len, test.size), (10_000, 28));
    let hist = |l: &[u8]| {
        let mut h = [0usize; 10];
        for &x in l {
            h[x as usize] += 1;
        }
        h
    };
    assert_eq!(
        hist(train.labels.as_ref().expect("labels")),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        hist(test.labels.as_ref().expect("labels")),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(
        &train.labels.as_ref().expect("labels")[..5],
        &[5, 0, 4, 1, 9]
    );
    let mean = train.pixels.iter().map(|&p| p as f64).sum::<f64>() / train.pixels.len() as f64;
    assert!((mean - 33.318).abs() < 0.001, "mean pixel {mean}");
    let fashion = load_idx_split(&fashion_mnist(), Split::Test).expect("fashion");
    assert_eq!(fashion.len, 10_000);
}

#[test]
fn bench_reports_throughput_and_memory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let json = tmp.path().join("b.json");
    let out = ok(zoo(&[
        "bench",
        "vanilla",
        "lsgan",
        "--quiet",
        "--steps",
        "4",
        "--warmup",
        "1",
        "--windows",
        "2",
        "--threads",
        "1",
        "--batch-size",
        "8",
        "--json",
        json.to_str().expect("utf-8"),
    ]));
    for model in ["vanilla", "lsgan"] {
        let row: Vec<f64> = out
            .lines()
            .find(|l| l.starts_with(&format!("| {model} |")))
            .unwrap_or_else(|| panic!("no {model} row in {out}"))
            .split('|')
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        // step ms, images/s, GFLOP/step, GFLOP/s, peak MiB, then the seven phases (the share of
        // the peak, "NN%", is not a number).
        assert_eq!(row.len(), 12, "{out}");
        assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0), "{out}");
        assert!(row[0] > 0.0 && row[1] > 0.0 && row[4] > 1.0, "{out}");
    }
    assert!(out.contains("(1 threads"), "{out}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid json");
    assert_eq!(results.as_array().map(Vec::len), Some(2), "{results}");
    assert_eq!(
        results[0]["window_seconds_per_step"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{results}"
    );
    // The counted GEMM work of vanilla's step, from its layer shapes (G 100-256-512-1024-784,
    // D 784-1024-512-256-1, batch 8): G's forward, weight and input gradients (no input
    // gradient of z) once; D on the real and on the detached fake batch, forward and both
    // gradients (no input gradient of its first layer); D frozen on the fake batch for G's
    // loss, forward and input gradient. 2 FLOPs per multiply-add.
    let macs = |w: &[u64]| w.windows(2).map(|p| p[0] * p[1]).sum::<u64>();
    let (g, d) = (
        macs(&[100, 256, 512, 1024, 784]),
        macs(&[784, 1024, 512, 256, 1]),
    );
    let per_sample = 3 * g - 100 * 256 + 2 * (3 * d - 784 * 1024) + 2 * d;
    let expected = (2 * 8 * per_sample) as f64 / 1e9;
    let counted = results[0]["gemm_gflop_per_step"].as_f64().expect("a count");
    assert!(
        (counted - expected).abs() <= 1e-9 * expected,
        "counted {counted} GFLOP per step, expected {expected}"
    );
    for r in results.as_array().expect("rows") {
        let (rate, peak) = (r["gflops"].as_f64(), r["peak_gflops"].as_f64());
        let (rate, peak) = (rate.expect("a rate"), peak.expect("a peak"));
        // The probe's square GEMM is the fastest shape; a training step stays below it.
        assert!(
            rate > 0.0 && rate < 1.5 * peak,
            "{rate} GFLOP/s of a {peak} peak"
        );
    }
}

/// The standard table runs each row in its own process, so each row's peak memory is its own:
/// LSGAN 28², measured after DCGAN 64², peaks lower (in one process it would inherit the
/// larger row's retained memory).
#[test]
fn bench_standard_table_measures_each_row_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let json = tmp.path().join("table.json");
    let out = ok(zoo(&[
        "bench",
        "--quiet",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--windows",
        "1",
        "--batch-size",
        "2",
        "--json",
        json.to_str().expect("utf-8"),
    ]));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid json");
    let rows = results.as_array().expect("an array");
    let labels: Vec<&str> = rows.iter().filter_map(|r| r["label"].as_str()).collect();
    assert_eq!(
        labels,
        [
            "vanilla MLP 28² b64",
            "DCGAN 28² b64",
            "DCGAN 64² RGB b64",
            "LSGAN 28² b64",
            "CycleGAN 64² RGB b1",
            "CycleGAN 128² RGB b1"
        ],
        "{out}"
    );
    let peak = |i: usize| rows[i]["peak_rss_mib"].as_f64().expect("a peak");
    assert!(
        peak(3) < peak(2),
        "LSGAN {} MiB vs DCGAN 64² {} MiB\n{out}",
        peak(3),
        peak(2)
    );
    for label in labels {
        assert!(out.contains(&format!("| {label} |")), "{out}");
    }
}

/// What a user sees in a log file: plain text (no colour codes when stderr is not a terminal,
/// even without NO_COLOR), `--watch`'s address, and a resumed session that samples before its
/// first log row still logs the latest values (from metrics.csv).
#[test]
fn plain_logs_watch_address_and_resume_log_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mnist = mnist();
    let data = mnist.to_str().expect("utf-8");
    let out = tmp.path().join("runs");
    let zoo_plain = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zoo"))
            .args(args)
            .env_remove("ZOO_DATA")
            .env_remove("NO_COLOR")
            .output()
            .expect("zoo runs")
    };
    let mut first = vec![
        "train",
        "vanilla",
        "--data-dir",
        data,
        "--out",
        out.to_str().expect("utf-8"),
        "--steps",
        "4",
        "--set",
        "train.log_every=3",
        "--set",
        "train.sample_every=5",
        "--watch",
        "--port",
        "0",
    ];
    first.extend(TINY.iter().filter(|a| **a != "--quiet"));
    let o = zoo_plain(&first);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a log file:\n{err}");
    assert!(err.contains("zoo watch: http://127.0.0.1:"), "{err}");
    let run = run_dir(&stdout(&o));
    // Resumed to 8: step 5 writes a grid before the session's first log row (step 6).
    let o = zoo_plain(&[
        "train",
        "vanilla",
        "--resume",
        run.to_str().expect("utf-8"),
        "--steps",
        "8",
        "--data-dir",
        data,
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("step 5/8:"))
        .unwrap_or_else(|| panic!("no step 5 line:\n{err}"));
    assert!(line.contains("loss_d") && line.contains("d_fake"), "{line}");
}

/// `zoo data get` checks every copy it finds: a damaged gzipped file beside a good raw one (the
/// gzipped copy is read first) is moved aside, and the data is verified without a download.
#[test]
fn data_get_moves_a_damaged_copy_aside() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("mnist");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Every file gzipped, as the mirrors serve them.
    let gzip = |raw: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, raw).expect("gzip");
        enc.finish().expect("gzip")
    };
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.join(format!("{f}.gz")), gzip(&mnist_raw(f))).expect("write");
    }
    // The test labels: a good raw copy, and a truncated gzipped one.
    let gz = dir.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&gz).expect("read");
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        mnist_raw("t10k-labels-idx1-ubyte"),
    )
    .expect("raw");
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).expect("truncate");
    let o = zoo(&[
        "data",
        "get",
        "mnist",
        "--data-dir",
        dir.to_str().expect("utf-8"),
    ]);
    let err = stderr(&o);
    let out = ok(o);
    assert!(out.contains("already present and verified"), "{out}");
    assert!(err.contains("moved aside"), "{err}");
    assert!(dir.join("t10k-labels-idx1-ubyte.gz.corrupt").is_file());
    assert!(!gz.exists());
}
