//! Every bad input gets a one-line error naming the problem and the fix, exit code 1, no
//! panic, and no run folder left behind that looks complete.

use std::io::Write;
use std::path::Path;

use zoo_core::data::idx::encode;

use crate::util::*;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gz");
    e.finish().expect("gz")
}

/// Writes an MNIST-style folder with `n` images and `m` labels.
fn fake_mnist(dir: &Path, images: &[u8], labels: &[u8]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("train-images-idx3-ubyte"), images).expect("write");
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).expect("write");
}

fn images(n: usize) -> Vec<u8> {
    encode(&[n, 28, 28], &vec![0u8; n * 784])
}

fn labels(n: usize) -> Vec<u8> {
    encode(&[n], &vec![1u8; n])
}

/// Writes the `run.toml` of a run folder that claims to belong to `model`.
fn fake_run(dir: &Path, model: &str) {
    std::fs::write(
        dir.join("run.toml"),
        format!(
            "model = \"{model}\"\nzoo_version = \"0.1.0\"\ncreated = \"2026-01-01T00:00:00Z\"\n"
        ),
    )
    .expect("write");
}

/// Trains with `data_dir` and asserts the failure leaves no run folder behind.
fn train_fails(data_dir: &Path, extra: &[&str], needles: &[&str]) -> String {
    let out = tempfile::tempdir().expect("tmp");
    let line = fails(train_tiny(data_dir, out.path(), extra), needles);
    assert!(
        ls(out.path()).is_empty(),
        "left behind: {:?}",
        ls(out.path())
    );
    line
}

#[test]
fn unknown_model() {
    fails(
        zoo(&["train", "stylegan9"]),
        &["unknown model `stylegan9`", "vanilla"],
    );
    fails(zoo(&["config", "nope"]), &["unknown model", "zoo list"]);
    fails(zoo(&["info", "nope"]), &["unknown model"]);
}

#[test]
fn missing_data() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nowhere");
    train_fails(
        &missing,
        &[],
        &[
            "mnist not found",
            "train-images-idx3-ubyte",
            "zoo data get mnist",
            "datasets.md",
        ],
    );
    // A folder with only the images file.
    let half = tmp.path().join("half");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("train-images-idx3-ubyte"), images(2)).expect("write");
    train_fails(&half, &[], &["train-labels-idx1-ubyte", "--data-dir"]);
    // No data anywhere by default (run from an empty folder, no ZOO_DATA).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args([
            "train",
            "vanilla",
            "--quiet",
            "--set",
            "data.dataset=fashion-mnist",
        ])
        .current_dir(tmp.path())
        .env_remove("ZOO_DATA")
        .output()
        .expect("runs");
    if !Path::new("/usr/share/datasets/fashion-mnist").exists() {
        fails(
            o,
            &["fashion-mnist not found", "data/fashion-mnist", "ZOO_DATA"],
        );
    }
}

#[test]
fn corrupt_idx_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Truncated gzip.
    let d = tmp.path().join("truncated");
    std::fs::create_dir_all(&d).expect("mkdir");
    let full = gz(&images(100));
    std::fs::write(
        d.join("train-images-idx3-ubyte.gz"),
        &full[..full.len() / 2],
    )
    .expect("w");
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), gz(&labels(100))).expect("w");
    train_fails(
        &d,
        &[],
        &["corrupt or truncated gzip", "train-images-idx3-ubyte.gz"],
    );
    // Wrong magic number.
    let mut bad = images(4);
    bad[2] = 0x0d;
    fake_mnist(&tmp.path().join("magic"), &bad, &labels(4));
    train_fails(
        &tmp.path().join("magic"),
        &[],
        &["wrong magic number", "0x00000d03"],
    );
    // Wrong dimensions: labels where images belong.
    fake_mnist(&tmp.path().join("dims"), &labels(4), &labels(4));
    train_fails(&tmp.path().join("dims"), &[], &["expected N×S×S"]);
    // Data shorter than the header says.
    let mut short = images(4);
    short.truncate(short.len() - 10);
    fake_mnist(&tmp.path().join("short"), &short, &labels(4));
    train_fails(&tmp.path().join("short"), &[], &["header says"]);
    // Counts that disagree.
    fake_mnist(&tmp.path().join("count"), &images(40), &labels(39));
    train_fails(
        &tmp.path().join("count"),
        &[],
        &["40 images but", "39 labels"],
    );
}

#[test]
fn image_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let folder = ["--set", "data.dataset=folder"];
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::write(empty.join("notes.txt"), "no images").expect("write");
    train_fails(&empty, &folder, &["holds no .png/.jpg/.jpeg files"]);
    train_fails(&tmp.path().join("absent"), &folder, &["does not exist"]);
    // Only unreadable images: an error. With some readable ones: a warning, and it trains.
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(&junk).expect("mkdir");
    std::fs::write(junk.join("a.png"), b"not a png").expect("write");
    train_fails(
        &junk,
        &folder,
        &["none of the 1 image files", "could be read"],
    );
    for i in 0..20 {
        // Mixed sizes and colour types: resized and converted.
        let img = if i % 2 == 0 {
            image::DynamicImage::new_rgb8(40 + i, 30)
        } else {
            image::DynamicImage::new_luma8(20, 20)
        };
        img.save(junk.join(format!("img{i:02}.png"))).expect("save");
    }
    let out = tempfile::tempdir().expect("tmp");
    let o = train_tiny(
        &junk,
        out.path(),
        &[
            "--set",
            "data.dataset=folder",
            "--set",
            "data.image_size=16",
            "--steps",
            "1",
        ],
    );
    assert!(
        stderr(&o).contains("skipping unreadable image"),
        "{}",
        stderr(&o)
    );
    ok(o);
    // --data-dir is required for folders.
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--quiet",
            "--set",
            "data.dataset=folder",
        ]),
        &["needs a folder", "--data-dir"],
    );
}

#[test]
fn config_errors() {
    let m = mnist();
    train_fails(
        &m,
        &["--set", "train.stepz=3"],
        &["train.stepz", "unknown field"],
    );
    train_fails(&m, &["--set", "optim.g.lr=0"], &["optim.g.lr", "positive"]);
    train_fails(&m, &["--set", "optim.d.lr=-1"], &["optim.d.lr"]);
    // (tiny runs pass --batch-size 16, which beats --set; these call zoo directly)
    let md = m.to_str().expect("utf-8");
    let base = [
        "train",
        "vanilla",
        "--quiet",
        "--data-dir",
        md,
        "--out",
        "/nonexistent/x",
    ];
    fails(
        zoo(&[&base[..], &["--batch-size", "0"]].concat()),
        &["train.batch_size must be at least 1"],
    );
    fails(
        zoo(&[&base[..], &["--batch-size", "70000"]].concat()),
        &["fewer than train.batch_size"],
    );
    train_fails(&m, &["--steps", "0"], &["train.steps"]);
    train_fails(
        &m,
        &["--set", "model.loss=minmax"],
        &["model.loss", "minmax"],
    );
    train_fails(&m, &["--set", "model.dropout=1.5"], &["model.dropout"]);
    train_fails(&m, &["--set", "train.steps=many"], &["train.steps"]);
    train_fails(&m, &["--set", "nonsense"], &["key=value"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("c.toml");
    std::fs::write(&file, "[train]\nsteps = 10\nbatchsize = 3\n").expect("write");
    train_fails(
        &m,
        &["--config", file.to_str().expect("utf-8")],
        &["train.batchsize", "unknown field"],
    );
    std::fs::write(&file, "[train\n").expect("write");
    train_fails(
        &m,
        &["--config", file.to_str().expect("utf-8")],
        &["line 1"],
    );
    train_fails(
        &m,
        &["--config", "/no/such/file.toml"],
        &["cannot read config file"],
    );
}

#[test]
fn unwritable_out_and_bad_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let o = train_tiny(&mnist(), &file.join("runs"), &["--steps", "1"]);
    fails(o, &["cannot create the output folder", "writable --out"]);

    // --resume on something that is not a run, and on another model's run.
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--resume",
            tmp.path().to_str().expect("utf-8"),
        ]),
        &["not a zoo run", "run.toml"],
    );
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    fake_run(&other, "dcgan");
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--resume",
            other.to_str().expect("utf-8"),
        ]),
        &["is a `dcgan` run, not `vanilla`"],
    );
    fails(
        zoo(&["sample", tmp.path().join("nope").to_str().expect("utf-8")]),
        &["is not a folder"],
    );
    // A run without a checkpoint.
    let empty_run = tmp.path().join("fresh");
    std::fs::create_dir_all(empty_run.join("checkpoints")).expect("mkdir");
    fake_run(&empty_run, "vanilla");
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--resume",
            empty_run.to_str().expect("utf-8"),
        ]),
        &["no complete checkpoint"],
    );
    fails(
        zoo(&[
            "train",
            "vanilla",
            "--resume",
            empty_run.to_str().expect("utf-8"),
            "--set",
            "train.seed=3",
        ]),
        &["cannot change a resumed run"],
    );
    fails(
        zoo(&["data", "get", "cifar10"]),
        &["unknown dataset `cifar10`"],
    );
}
