//! Translation against ground truth end to end: `zoo data pair emoji` (on a small stand-in
//! for the emoji set), pix2pix training, `zoo translate` and `zoo eval` against the true
//! counterparts, gray -> RGB, CycleGAN on the same pair, and pix2pix's bad inputs.

use std::path::{Path, PathBuf};

use crate::util::*;

/// A stand-in for the emoji set: `n` 16x16 RGBA drawings per style with the same names, a
/// coloured square on a transparent background whose colour differs by style.
pub fn emoji_root(root: &Path, n: u32) -> PathBuf {
    let dir = root.join("emoji");
    for (s, style) in ["twemoji", "noto"].iter().enumerate() {
        std::fs::create_dir_all(dir.join(style)).expect("mkdir");
        for i in 0..n {
            let img = image::RgbaImage::from_fn(16, 16, |x, y| {
                let inside = (2 + i % 5..10 + i % 5).contains(&x) && (3..12).contains(&y);
                let c = if s == 0 { [200, 40, 40] } else { [40, 40, 200] };
                image::Rgba([c[0], c[1], c[2], if inside { 255 } else { 0 }])
            });
            img.save(dir.join(style).join(format!("{:04x}.png", 0x1f600 + i)))
                .expect("png");
        }
    }
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

pub fn make_pair(src: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "data",
        "pair",
        "emoji",
        "--data-dir",
        s(src),
        "--out",
        s(out),
    ];
    args.extend_from_slice(&["--test", "4"]);
    args.extend_from_slice(extra);
    ok(zoo(&args))
}

/// Tiny pix2pix settings: 16 px RGB, 4 filters, a 2-layer PatchGAN.
pub const SMALL: &[&str] = &[
    "--set",
    "data.image_size=16",
    "--set",
    "model.load_size=18",
    "--set",
    "model.g_filters=4",
    "--set",
    "model.d_filters=4",
    "--set",
    "model.d_layers=2",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.grid_samples=3",
    "--set",
    "train.log_every=1",
];

fn train(model: &str, root: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        model,
        "--quiet",
        "--domains",
        s(root),
        "--out",
        s(out),
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    zoo(&args)
}

#[test]
fn emoji_pair_pix2pix_translate_eval_and_gray_to_rgb() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = emoji_root(tmp.path(), 14);
    let pair = tmp.path().join("paired");
    let said = make_pair(&src, &pair, &[]);
    assert!(
        said.contains("trainA/ 10 and trainB/ 10 (the same names"),
        "{said}"
    );
    assert_eq!(ls(&pair.join("trainA")), ls(&pair.join("trainB")));
    assert_eq!(ls(&pair.join("testA")), ls(&pair.join("testB")));

    let out = tmp.path().join("runs");
    let stdout = ok(train("pix2pix", &pair, &out, &["--steps", "4"]));
    let run = run_dir(&stdout);
    assert!(stdout.contains("steps: 4/4"), "{stdout}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("csv");
    let header = csv.lines().next().expect("header");
    for col in ["G_GAN", "G_L1", "d_real", "d_fake"] {
        assert!(header.split(',').any(|c| c == col), "{col} in {header}");
    }
    // The grid: input, output, target rows of three.
    let grid = image::open(run.join("samples/step_000004.png")).expect("png");
    assert!(
        grid.height() > grid.width() / 2,
        "{}x{}",
        grid.width(),
        grid.height()
    );

    // translate finds the truth beside testA/ (testB/, same names) and scores against it; the
    // page shows input, output and truth, with no reconstruction column (no way back).
    let dest = tmp.path().join("translated");
    let printed = ok(zoo(&[
        "translate",
        s(&run),
        "--input",
        s(&pair.join("testA")),
        "--out",
        s(&dest),
    ]));
    assert!(printed.contains("4 images translated"), "{printed}");
    let figures = printed
        .lines()
        .find(|l| l.starts_with("4 scored against the truth: L1"))
        .unwrap_or_else(|| panic!("no figures line in {printed}"));
    assert!(figures.contains("SSIM"), "{figures}");
    let html = std::fs::read_to_string(dest.join("index.html")).expect("html");
    assert!(
        html.contains("<th>truth</th>") && !html.contains("reconstructed"),
        "{html}"
    );
    let figures = figures.trim_start_matches("4 scored ");
    assert!(
        html.contains(&format!("4 images scored; {figures}")),
        "{html}"
    );
    // An explicit --truth that holds none of the names is an error, not a silent skip.
    fails(
        zoo(&[
            "translate",
            s(&run),
            "--input",
            s(&pair.join("testA")),
            "--out",
            s(&tmp.path().join("t2")),
            "--truth",
            s(&src),
        ]),
        &["has a counterpart of the same name", "--truth"],
    );
    // The generator was trained A -> B only.
    fails(
        zoo(&[
            "translate",
            s(&run),
            "--direction",
            "b2a",
            "--input",
            s(&pair.join("testB")),
            "--out",
            s(&tmp.path().join("t3")),
        ]),
        &["translates a2b only", "--direction a2b"],
    );

    // eval: A -> B against the counterparts, beside doing nothing; no B -> A, no cycle.
    let table = ok(zoo(&["eval", s(&run)]));
    for want in ["L1 vs truth", "SSIM vs truth", "doing nothing", "ratio"] {
        assert!(table.contains(want), "{want} in {table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("SSIM vs truth"))
        .expect("row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells[3].parse::<f64>().is_ok() && cells[4] == "n/a",
        "{row}"
    );
    let json = std::fs::read_to_string(run.join("eval.json")).expect("json");
    assert!(
        json.contains("\"identity_ssim\"") && json.contains("\"counterparts\""),
        "{json}"
    );

    // Gray inputs, colour targets (colourisation): the translations are RGB.
    let stdout = ok(train(
        "pix2pix",
        &pair,
        &out,
        &[
            "--steps",
            "1",
            "--set",
            "data.channels=1",
            "--set",
            "data.channels_b=3",
        ],
    ));
    let gray_run = run_dir(&stdout);
    let dest = tmp.path().join("colourised");
    ok(zoo(&[
        "translate",
        s(&gray_run),
        "--input",
        s(&pair.join("testA")),
        "--out",
        s(&dest),
    ]));
    let first = &ls(&pair.join("testA"))[0];
    let t = image::open(dest.join(first)).expect("png");
    assert_eq!(t.color(), image::ColorType::Rgb8);

    // CycleGAN on the unpaired split of the same set: eval scores both ways against the
    // held-out counterparts, with the cycle beside them.
    let unpaired = tmp.path().join("unpaired");
    let said = make_pair(&src, &unpaired, &["--unpaired"]);
    assert!(
        said.contains("trainA/ 5 and trainB/ 5 (disjoint names"),
        "{said}"
    );
    let a = ls(&unpaired.join("trainA"));
    assert!(ls(&unpaired.join("trainB")).iter().all(|n| !a.contains(n)));
    let stdout = ok(train(
        "cyclegan",
        &unpaired,
        &out,
        &[
            "--steps",
            "2",
            "--set",
            "model.g_blocks=1",
            "--set",
            "model.pool_size=2",
        ],
    ));
    let table = ok(zoo(&["eval", s(&run_dir(&stdout))]));
    let row = table
        .lines()
        .find(|l| l.starts_with("L1 vs truth"))
        .expect("row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells[3].parse::<f64>().is_ok() && cells[4].parse::<f64>().is_ok(),
        "{row}"
    );
    assert!(
        !table.contains("cycle L1 (lower is better)    n/a"),
        "{table}"
    );

    // pix2pix refuses the unpaired split by name: its folders do not hold counterparts.
    fails(
        train("pix2pix", &unpaired, &out, &["--steps", "1"]),
        &["has no counterpart of", "match images by file name"],
    );
}
