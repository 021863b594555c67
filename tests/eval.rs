//! `zoo classifier train`, `zoo eval` and `zoo compare` end to end, with a quick classifier
//! (1 epoch on 3,000 digits) in a temporary cache.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::*;

fn zoo_cached(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .env_remove("ZOO_DATA")
        .env("ZOO_CACHE", cache)
        .env("NO_COLOR", "1")
        .output()
        .expect("zoo runs")
}

#[test]
fn classifier_eval_and_compare() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let data = mnist();
    let data = data.to_str().expect("utf-8");
    let printed = ok(zoo_cached(
        &cache,
        &[
            "classifier",
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            data,
            "--epochs",
            "1",
            "--limit",
            "3000",
        ],
    ));
    assert!(printed.contains("test accuracy"), "{printed}");
    assert_eq!(
        ls(&cache),
        ["classifier-mnist-v1.bpk", "classifier-mnist-v1.toml"]
    );

    // eval: a 6-step vanilla run against the train split, with the test-vs-train floor.
    let runs = tmp.path().join("runs");
    let run = run_dir(&ok(train_tiny(&mnist(), &runs, &["--steps", "6"])));
    let table = ok(zoo_cached(
        &cache,
        &["eval", run.to_str().expect("utf-8"), "-n", "300"],
    ));
    for row in [
        "FD",
        "KID x 1000",
        "classifier score",
        "classes hit",
        "precision",
        "recall",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).expect("json"))
            .expect("valid json");
    let fd = json["samples"]["fd"].as_f64().expect("fd");
    let floor = json["floor"]["fd"].as_f64().expect("floor fd");
    assert!(
        fd > floor && floor >= 0.0,
        "a 6-step GAN ({fd}) is worse than real data ({floor})"
    );
    assert_eq!(json["step"].as_u64(), Some(6));
    let hit = json["floor"]["coverage"]["classes_hit"].as_u64();
    assert_eq!(hit, Some(10), "the real test split covers every class");
    // --no-ema: vanilla samples with its EMA (ramped up: after 6 steps a blend of the last
    // generators); the trained generator is scored into its own file.
    let before = std::fs::read(run.join("eval.json")).expect("eval.json");
    let printed = ok(zoo_cached(
        &cache,
        &[
            "eval",
            run.to_str().expect("utf-8"),
            "-n",
            "300",
            "--no-ema",
        ],
    ));
    assert!(printed.contains("eval_no_ema.json"), "{printed}");
    assert_eq!(
        std::fs::read(run.join("eval.json")).expect("eval.json"),
        before,
        "eval.json is left as it was"
    );
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval_no_ema.json")).expect("json"))
            .expect("valid json");
    let raw_fd = raw["samples"]["fd"].as_f64().expect("fd");
    // The same samples' noise and the same reference: equal weights would give the same bits.
    assert_ne!(
        raw_fd, fd,
        "the trained generator scores apart from its average"
    );
    assert_eq!(raw["floor"]["fd"].as_f64(), Some(floor), "the same floor");
    fails(
        zoo_cached(&cache, &["eval", run.to_str().expect("utf-8"), "-n", "5"]),
        &["-n must be between 100 and 60000"],
    );

    // A folder of images scored as a run's samples (`--images`): real digits sit near the
    // floor, the same digits inverted far above it; the report goes to --json, never into the
    // folder.
    let pair = tmp.path().join("pair");
    ok(zoo_cached(
        &cache,
        &[
            "data",
            "pair",
            "mnist-invert",
            "--out",
            pair.to_str().expect("utf-8"),
            "--data-dir",
            data,
            "--train",
            "150",
            "--test",
            "10",
        ],
    ));
    let score = |dir: &str| {
        let json = tmp.path().join(format!("{dir}.json"));
        let printed = ok(zoo_cached(
            &cache,
            &[
                "eval",
                "--images",
                pair.join(dir).to_str().expect("utf-8"),
                "--data-dir",
                data,
                "--json",
                json.to_str().expect("utf-8"),
            ],
        ));
        assert!(printed.contains("150 samples against mnist"), "{printed}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
        (
            v["samples"]["fd"].as_f64().expect("fd"),
            v["floor"]["fd"].as_f64().expect("floor"),
            v["samples"]["coverage"]["classes_hit"].as_u64(),
        )
    };
    let (real, floor, classes) = score("trainA");
    let (inverted, _, _) = score("trainB");
    assert_eq!(classes, Some(10));
    assert!(
        real < 3.0 * floor + 1.0 && inverted > 5.0 * real,
        "real digits FD {real} (floor {floor}), inverted {inverted}"
    );
    assert_eq!(
        ls(&pair.join("trainA")).len(),
        150,
        "the folder was written to"
    );
    fails(
        zoo_cached(
            &cache,
            &[
                "eval",
                "--images",
                pair.join("testA").to_str().expect("utf-8"),
            ],
        ),
        &["holds 10 images", "at least 100"],
    );

    // A conditional run: per-class label agreement and intra-class FD beside their floor.
    let cgan = run_dir(&ok(zoo_cached(
        &cache,
        &[
            "train",
            "cgan",
            "--quiet",
            "--data-dir",
            data,
            "--out",
            runs.to_str().expect("utf-8"),
            "--set",
            "model.g_filters=8",
            "--set",
            "model.d_filters=8",
            "--set",
            "data.limit=640",
            "--batch-size",
            "16",
            "--steps",
            "3",
        ],
    )));
    let table = ok(zoo_cached(
        &cache,
        &["eval", cgan.to_str().expect("utf-8"), "-n", "400"],
    ));
    for row in [
        "FD",
        "label agreement (mean)",
        "lowest class",
        "intra-class FD (mean)",
        "per class",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cgan.join("eval.json")).expect("json"))
            .expect("valid json");
    let agreement = json["classes"]["label_agreement"]
        .as_array()
        .expect("per class");
    assert_eq!(agreement.len(), 10);
    assert!(
        agreement
            .iter()
            .all(|a| (0.0..=1.0).contains(&a.as_f64().expect("number")))
    );
    let intra = json["classes"]["intra_fd_mean"].as_f64().expect("intra FD");
    let intra_floor = json["class_floor"]["intra_fd_mean"]
        .as_f64()
        .expect("floor");
    assert!(
        intra > intra_floor && intra_floor >= 0.0,
        "{intra} vs {intra_floor}"
    );
    // The real test digits with their own labels: the quick classifier's per-class accuracy.
    let floor_agreement = json["class_floor"]["label_agreement_mean"]
        .as_f64()
        .expect("floor agreement");
    assert!((0.7..=1.0).contains(&floor_agreement), "{floor_agreement}");
    // zoo sample --class: one row per class, or one class by index or name.
    let grid = tmp.path().join("classes.png");
    let cgan_str = cgan.to_str().expect("utf-8");
    let grid_str = grid.to_str().expect("utf-8");
    ok(zoo(&[
        "sample", cgan_str, "--class", "all", "-n", "20", "--out", grid_str,
    ]));
    let g = image::open(&grid).expect("png");
    // 10 rows of 2 images of 28 px with 2-px padding: 62 × 302 before upscaling.
    assert_eq!(
        g.height() * 62,
        g.width() * 302,
        "{}x{}",
        g.width(),
        g.height()
    );
    let sevens = tmp.path().join("sevens");
    let sevens_str = sevens.to_str().expect("utf-8");
    ok(zoo(&[
        "sample",
        cgan_str,
        "--class",
        "7",
        "-n",
        "4",
        "--out-dir",
        sevens_str,
    ]));
    assert_eq!(ls(&sevens).len(), 4);

    // Evaluations during training: FD and coverage columns, and the best checkpoint by FD.
    let mut args = vec![
        "train",
        "vanilla",
        "--data-dir",
        data,
        "--out",
        runs.to_str().expect("utf-8"),
        "--steps",
        "6",
        "--set",
        "train.eval_every=3",
        "--set",
        "train.eval_samples=200",
        "--set",
        "train.log_every=3",
    ];
    args.extend_from_slice(TINY);
    let watched = run_dir(&ok(zoo_cached(&cache, &args)));
    let csv = std::fs::read_to_string(watched.join("metrics.csv")).expect("csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    assert!(
        header.contains(&"fd") && header.contains(&"classes_hit"),
        "{header:?}"
    );
    let best = std::fs::read_to_string(watched.join("checkpoints/best")).expect("best pointer");
    assert!(best.starts_with("best_"), "{best}");
    let metric = std::fs::read_to_string(
        watched
            .join("checkpoints")
            .join(best.trim())
            .join("metric.toml"),
    )
    .expect("metric.toml");
    assert!(metric.contains("fd = "), "{metric}");
    let pngs = tmp.path().join("pngs");
    std::fs::create_dir_all(&pngs).expect("mkdir");
    for i in 0..20u8 {
        image::GrayImage::from_pixel(28, 28, image::Luma([i * 10]))
            .save(pngs.join(format!("{i}.png")))
            .expect("save");
    }
    let mut folder_args = args.clone();
    folder_args[3] = pngs.to_str().expect("utf-8");
    folder_args.extend_from_slice(&["--set", "data.dataset=folder"]);
    fails(
        zoo_cached(&cache, &folder_args),
        &["train.eval_every", "labelled"],
    );

    // A CycleGAN run on the demo pair: cycle L1, error against the known mapping, label
    // agreement through the classifier.
    let pair = crate::cyclegan::demo_pair(tmp.path());
    let mut cg = vec![
        "train",
        "cyclegan",
        "--quiet",
        "--domains",
        pair.to_str().expect("utf-8"),
        "--out",
        runs.to_str().expect("utf-8"),
        "--steps",
        "2",
    ];
    cg.extend_from_slice(crate::cyclegan::SMALL);
    let cg_run = run_dir(&ok(zoo_cached(&cache, &cg)));
    let table = ok(zoo_cached(
        &cache,
        &["eval", cg_run.to_str().expect("utf-8"), "-n", "100"],
    ));
    for row in ["cycle L1", "L1 vs truth", "PSNR", "SSIM", "label agreement"] {
        assert!(table.contains(row), "{row} in {table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cg_run.join("eval.json")).expect("json"))
            .expect("valid json");
    let agree = json["label_agreement_a2b"].as_f64().expect("agreement");
    assert!((0.0..=1.0).contains(&agree), "{agree}");
    assert_eq!(json["images"][0].as_u64(), Some(5), "the 5 testA images");
    assert_eq!(json["mapping"].as_str(), Some("invert"));
    fails(
        zoo_cached(&cache, &["compare", "vanilla", "cyclegan", "--steps", "2"]),
        &["cyclegan translates images"],
    );

    // compare: two models, two seeds each, a report; running it again reuses the results.
    let out = tmp.path().join("cmp");
    let args = [
        "--quiet",
        "compare",
        "vanilla",
        "acgan",
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--out",
        out.to_str().expect("utf-8"),
        "--steps",
        "3",
        "--seeds",
        "2",
        "-n",
        "200",
    ];
    let first = ok(zoo_cached(&cache, &args));
    for needle in [
        "| vanilla (2 seeds) |",
        "| acgan (2 seeds) |",
        "label agreement ↑",
        "intra-class FD ↓",
        "floor",
        "report:",
    ] {
        assert!(first.contains(needle), "{needle} in {first}");
    }
    for f in [
        "report.md",
        "report.html",
        "losses.png",
        "curves.png",
        "metrics.png",
        "runs",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(
        out.join("runs/acgan/seed-1")
            .read_dir()
            .expect("run")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("metrics.csv").is_file())
            .expect("a run folder")
            .join("metrics.csv"),
    )
    .expect("metrics.csv");
    assert!(
        csv.lines().next().is_some_and(|h| h.contains(",fd,")),
        "the runs record FD: {csv}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    assert!(
        html.contains("data:image/png;base64,"),
        "figures are inlined"
    );
    let again = ok(zoo_cached(&cache, &args));
    assert_eq!(
        first
            .lines()
            .filter(|l| l.starts_with('|'))
            .collect::<Vec<_>>(),
        again
            .lines()
            .filter(|l| l.starts_with('|'))
            .collect::<Vec<_>>(),
        "a finished comparison is reused"
    );
    fails(
        zoo_cached(&cache, &["compare", "vanilla", "stylegan9", "--steps", "2"]),
        &["unknown model `stylegan9`"],
    );
}

#[test]
fn toy_mixtures_train_evaluate_and_plot() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().to_str().expect("utf-8");
    let stdout = ok(zoo(&[
        "train",
        "vanilla",
        "--quiet",
        "--out",
        out,
        "--steps",
        "20",
        "--set",
        "data.dataset=ring8",
        "--set",
        "model.g_hidden=[32,32]",
        "--set",
        "model.d_hidden=[32,32]",
        "--set",
        "data.toy.points=2000",
        "--set",
        "train.sample_every=10",
    ]));
    let run = run_dir(&stdout);
    // Sample "grids" of 2-D data are scatter plots.
    let grid = image::open(run.join("samples/step_000020.png")).expect("png");
    assert_eq!((grid.width(), grid.height()), (560, 560));
    let table = ok(zoo(&["eval", run.to_str().expect("utf-8")]));
    for row in [
        "modes captured",
        "high-quality samples",
        "KL of modes",
        "ring8",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).expect("json"))
            .expect("valid json");
    assert_eq!(
        json["floor"]["modes_captured"].as_u64(),
        Some(8),
        "real data has every mode"
    );
    assert_eq!(
        json["samples"]["n"].as_u64(),
        Some(2500),
        "the papers' 2,500 samples"
    );
    assert!(run.join("eval_scatter.png").is_file());
    fails(
        zoo(&[
            "train",
            "dcgan",
            "--out",
            out,
            "--set",
            "data.dataset=grid25",
        ]),
        &["2-D points, not images", "vanilla"],
    );
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--out",
            out,
            "--set",
            "data.dataset=grid25",
            "--set",
            "data.toy.std=-1",
        ]),
        &["data.toy.std must be a positive number"],
    );
}
