//! CycleGAN end to end: the MNIST-derived demo pair, training, translation, resume, and the
//! bad inputs of `--domains` and `zoo translate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A small `mnist-invert` pair made from the shared MNIST.
pub fn demo_pair(root: &Path) -> PathBuf {
    let dir = root.join("pair");
    let out = make_pair(&dir, "12");
    assert!(out.contains("true mapping: invert"), "{out}");
    dir
}

/// `zoo data pair mnist-invert --out DIR --train N --test 5` on the real MNIST.
fn make_pair(dir: &Path, train: &str) -> String {
    ok(zoo(&[
        "data",
        "pair",
        "mnist-invert",
        "--out",
        dir.to_str().expect("utf-8"),
        "--data-dir",
        mnist().to_str().expect("utf-8"),
        "--train",
        train,
        "--test",
        "5",
    ]))
}

/// Tiny CycleGAN settings: 28 px gray, 4 filters, one block.
pub const SMALL: &[&str] = &[
    "--set",
    "data.image_size=28",
    "--set",
    "data.channels=1",
    "--set",
    "model.load_size=32",
    "--set",
    "model.g_filters=4",
    "--set",
    "model.d_filters=4",
    "--set",
    "model.g_blocks=1",
    "--set",
    "model.d_layers=2",
    "--set",
    "model.pool_size=3",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.grid_samples=3",
    "--set",
    "train.log_every=1",
];

fn train_cyclegan(domains: &[&str], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "cyclegan", "--quiet", "--domains"];
    args.extend_from_slice(domains);
    args.extend_from_slice(&["--out", out.to_str().expect("utf-8")]);
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    zoo(&args)
}

#[test]
fn demo_pair_train_translate_and_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = demo_pair(tmp.path());
    assert_eq!(
        ls(&pair),
        ["testA", "testB", "trainA", "trainB", "zoo-pair.toml"]
    );
    assert_eq!(ls(&pair.join("trainB")).len(), 12);
    // Made again, smaller, over itself: replaced whole (no stale files that would make A and B
    // overlap), and nothing left beside it.
    let again = |train: &str| make_pair(&pair, train);
    again("3");
    assert_eq!(ls(&pair.join("trainA")).len(), 3);
    assert_eq!(ls(&pair.join("trainB")).len(), 3);
    assert_eq!(ls(tmp.path()), ["pair"]);
    again("12");
    // A digit and its B counterpart are inverses in brightness: A is mostly black.
    let a = image::open(pair.join("trainA/00000.png"))
        .expect("png")
        .to_luma8();
    let b = image::open(pair.join("trainB/00000.png"))
        .expect("png")
        .to_luma8();
    let mean = |im: &image::GrayImage| im.pixels().map(|p| p.0[0] as f64).sum::<f64>() / 784.0;
    assert!(
        mean(&a) < 80.0 && mean(&b) > 175.0,
        "{} {}",
        mean(&a),
        mean(&b)
    );

    let out = tmp.path().join("runs");
    let root = pair.to_str().expect("utf-8");
    let stdout = ok(train_cyclegan(
        &[root],
        &out,
        &[
            "--steps",
            "4",
            "--set",
            "train.checkpoint_every=2",
            "--set",
            "train.sample_every=2",
        ],
    ));
    let run = run_dir(&stdout);
    assert!(stdout.contains("steps: 4/4"), "{stdout}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("csv");
    let header = csv.lines().next().expect("header");
    for col in [
        "D_A",
        "D_B",
        "G_A",
        "G_B",
        "cycle_A",
        "cycle_B",
        "idt_A",
        "idt_B",
        "images_per_s",
    ] {
        assert!(header.split(',').any(|c| c == col), "{col} in {header}");
    }
    assert_eq!(
        ls(&run.join("checkpoints/step_000004")),
        [
            "discriminator.bpk",
            "generator.bpk",
            "manifest.toml",
            "optim_d.bpk",
            "optim_g.bpk",
            "pool_a.bin",
            "pool_b.bin",
            "state.toml"
        ]
    );
    // The grid: six rows (real A, G(A), F(G(A)), real B, F(B), G(F(B))) of three images.
    let grid = image::open(run.join("samples/step_000004.png")).expect("png");
    assert!(
        grid.height() > grid.width(),
        "{}x{}",
        grid.width(),
        grid.height()
    );

    // Translation never writes into its input (the files stay byte for byte), reads only
    // regular files (a FIFO named like an image is skipped, not opened: that would block), and
    // an empty --input is named as such.
    let test_a = pair.join("testA");
    let before: Vec<Vec<u8>> = ls(&test_a)
        .iter()
        .map(|f| std::fs::read(test_a.join(f)).expect("read"))
        .collect();
    let translate = |input: &Path, out: &Path| {
        zoo(&[
            "translate",
            run.to_str().expect("utf-8"),
            "--direction",
            "a2b",
            "--input",
            input.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ])
    };
    fails(translate(&test_a, &test_a), &["is the --input folder"]);
    let after: Vec<Vec<u8>> = ls(&test_a)
        .iter()
        .map(|f| std::fs::read(test_a.join(f)).expect("read"))
        .collect();
    assert_eq!(before, after, "the inputs were touched");
    let empty = tmp.path().join("empty-input");
    std::fs::create_dir_all(&empty).expect("mkdir");
    fails(
        translate(&empty, &tmp.path().join("t-empty")),
        &["holds no .png/.jpg/.jpeg files", "point --input"],
    );
    let with_fifo = tmp.path().join("with-fifo");
    std::fs::create_dir_all(&with_fifo).expect("mkdir");
    std::fs::copy(test_a.join("00000.png"), with_fifo.join("00000.png")).expect("copy");
    let made = Command::new("mkfifo")
        .arg(with_fifo.join("x.png"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let o = translate(&with_fifo, &tmp.path().join("t-fifo"));
    assert!(
        stderr(&o).contains("x.png: a FIFO, not a regular file"),
        "{}",
        stderr(&o)
    );
    assert!(ok(o).contains("1 images translated"));

    // Translation writes one PNG per input, the side-by-side page, and the error against
    // the known mapping.
    let dest = tmp.path().join("translated");
    let printed = ok(zoo(&[
        "translate",
        run.to_str().expect("utf-8"),
        "--direction",
        "a2b",
        "--input",
        pair.join("testA").to_str().expect("utf-8"),
        "--out",
        dest.to_str().expect("utf-8"),
    ]));
    assert!(printed.contains("5 images translated"), "{printed}");
    assert!(
        printed.contains("5 scored against the truth: L1"),
        "{printed}"
    );
    let files = ls(&dest);
    assert_eq!(files.len(), 7, "{files:?}");
    let html = std::fs::read_to_string(dest.join("index.html")).expect("html");
    assert!(html.contains("index/real__00000.png") && html.contains("index/rec__00004.png"));
    // The page carries the figures printed on stdout.
    let figures = printed
        .lines()
        .find(|l| l.starts_with("5 scored against the truth"))
        .expect("figures line")
        .trim_start_matches("5 scored ");
    assert!(
        html.contains(&format!("5 images scored; {figures}")),
        "{html}"
    );
    let t = image::open(dest.join("00003.png")).expect("png");
    assert_eq!((t.width(), t.height()), (28, 28));

    // Resume continues to the new step count.
    let more = ok(zoo(&[
        "train",
        "cyclegan",
        "--quiet",
        "--resume",
        run.to_str().expect("utf-8"),
        "--steps",
        "6",
    ]));
    assert!(more.contains("steps: 6/6"), "{more}");
}

#[test]
fn two_folders_of_mixed_sizes_and_channels() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    for i in 0..4u32 {
        image::RgbImage::from_fn(40 + i * 7, 30 + i * 5, |x, _| image::Rgb([x as u8, 9, 200]))
            .save(a.join(format!("{i}.png")))
            .expect("save");
        image::GrayImage::from_fn(20 + i, 20 + i, |x, y| image::Luma([(x * y) as u8]))
            .save(b.join(format!("{i}.jpg")))
            .expect("save");
    }
    let out = tmp.path().join("runs");
    let stdout = ok(train_cyclegan(
        &[a.to_str().expect("utf-8"), b.to_str().expect("utf-8")],
        &out,
        &["--steps", "1", "--set", "data.channels=3"],
    ));
    assert!(stdout.contains("steps: 1/1"), "{stdout}");
}

#[test]
fn bad_domains_and_translate_inputs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("runs");
    let p = |s: &str| tmp.path().join(s);
    let empty = p("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let junk = p("junk");
    std::fs::create_dir_all(&junk).expect("mkdir");
    std::fs::write(junk.join("x.png"), b"not a png").expect("write");
    let plain = p("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    image::GrayImage::new(8, 8)
        .save(plain.join("one.png"))
        .expect("save");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();

    fails(
        zoo(&["train", "cyclegan", "--out", &s(&out)]),
        &["cyclegan needs two image domains", "--domains"],
    );
    fails(
        train_cyclegan(&[&s(&p("nowhere")), &s(&plain)], &out, &[]),
        &["domain A folder", "does not exist"],
    );
    fails(
        train_cyclegan(&[&s(&plain), &s(&empty)], &out, &[]),
        &["domain B", "holds no .png/.jpg/.jpeg files"],
    );
    fails(
        train_cyclegan(&[&s(&junk), &s(&plain)], &out, &[]),
        &["domain A", "could be read"],
    );
    fails(
        train_cyclegan(&[&s(&plain)], &out, &[]),
        &["without trainA/ and trainB/"],
    );
    fails(
        zoo(&["train", "vanilla", "--domains", &s(&plain), &s(&plain)]),
        &["vanilla learns one image set", "cyclegan"],
    );
    assert!(
        !out.exists() || ls(&out).is_empty(),
        "left behind: {:?}",
        ls(&out)
    );

    // translate: a wrong direction, and a run that is not a CycleGAN run.
    let run = p("vanilla-run");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(
        run.join("run.toml"),
        "model = \"vanilla\"\nzoo_version = \"0.1.0\"\ncreated = \"2026-01-01T00:00:00Z\"\n",
    )
    .expect("write");
    fails(
        zoo(&[
            "translate",
            &s(&run),
            "--direction",
            "up",
            "--input",
            &s(&plain),
            "--out",
            &s(&p("t")),
        ]),
        &["unknown --direction `up`", "a2b"],
    );
    std::fs::write(run.join("config.toml"), ok(zoo(&["config", "vanilla"]))).expect("write");
    fails(
        zoo(&[
            "translate",
            &s(&run),
            "--direction",
            "a2b",
            "--input",
            &s(&plain),
            "--out",
            &s(&p("t")),
        ]),
        &["vanilla generates images from noise", "zoo sample"],
    );
    assert!(!p("t").exists(), "translate wrote output for a bad run");
}
