//! Every bad input gets a one-line error naming the problem and the fix, a non-zero exit code,
//! no panic, and no run folder left behind that looks complete.
//!
//! [`CATALOGUE`] is the list of bad inputs tried; the test runs each row against the real
//! `zoo` and checks `docs/bad-inputs.md`, which shows every row with the exact message zoo
//! printed (`ZOO_BLESS=1 cargo test --release --test integration catalogue` rewrites it).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    std::fs::create_dir_all(dir.join("checkpoints")).expect("mkdir");
    std::fs::write(
        dir.join("run.toml"),
        format!(
            "model = \"{model}\"\nzoo_version = \"0.1.0\"\ncreated = \"2026-01-01T00:00:00Z\"\n"
        ),
    )
    .expect("write");
}

/// A PNG chunk (length, type, data, CRC).
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A PNG file written by hand: `width`×`height`, the given bit depth and colour type, rows of
/// `row` bytes (a palette for colour type 3).
fn png(width: u32, height: u32, depth: u8, colour: u8, row: &[u8], palette: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    out.extend(png_chunk(b"IHDR", &ihdr));
    if !palette.is_empty() {
        out.extend(png_chunk(b"PLTE", palette));
    }
    let mut raw = Vec::new();
    for _ in 0..height.min(64) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).expect("zlib");
    out.extend(png_chunk(b"IDAT", &z.finish().expect("zlib")));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// One bad input: what it is, the command (`{T}` is the fixture folder, `{MNIST}` the shared
/// MNIST, `{NONUTF8}` a path that is not UTF-8), words the one-line error must contain, and
/// the exit code (1 for bad input, 2 for a malformed command line).
struct Case {
    what: &'static str,
    args: &'static str,
    needles: &'static [&'static str],
    code: i32,
}

const fn case(what: &'static str, args: &'static str, needles: &'static [&'static str]) -> Case {
    Case {
        what,
        args,
        needles,
        code: 1,
    }
}

/// The bad inputs tried. `train` rows get a fresh `--out` each, which must stay empty.
const CATALOGUE: &[Case] = &[
    // Names.
    case(
        "unknown model",
        "train stylegan9",
        &["unknown model `stylegan9`", "zoo list"],
    ),
    case(
        "unknown model (config)",
        "config nope",
        &["unknown model `nope`"],
    ),
    case(
        "unknown model (info)",
        "info nope",
        &["unknown model `nope`"],
    ),
    case(
        "unknown model (bench)",
        "bench nope",
        &["unknown model `nope`"],
    ),
    case(
        "unknown model (compare)",
        "compare vanilla stylegan9 --steps 2",
        &["unknown model `stylegan9`"],
    ),
    case(
        "image-to-image model in a noise-to-image comparison",
        "compare vanilla cyclegan --steps 2",
        &["cyclegan translates images"],
    ),
    case(
        "unknown dataset to download",
        "data get cifar10",
        &["unknown dataset `cifar10`"],
    ),
    case(
        "unknown classifier dataset",
        "classifier train --dataset cifar",
        &["unknown dataset `cifar`"],
    ),
    Case {
        what: "unknown device",
        args: "--device tpu list",
        needles: &["invalid value 'tpu'"],
        code: 2,
    },
    // Data.
    case(
        "data folder missing",
        "train vanilla --data-dir {T}/nowhere",
        &["mnist not found", "zoo data get mnist"],
    ),
    case(
        "data folder not UTF-8 and missing",
        "train vanilla --data-dir {NONUTF8}",
        &["mnist not found"],
    ),
    case(
        "labels file missing",
        "train vanilla --data-dir {T}/half",
        &["train-labels-idx1-ubyte", "--data-dir"],
    ),
    case(
        "truncated gzip",
        "train vanilla --data-dir {T}/truncated",
        &["corrupt or truncated gzip", "train-images-idx3-ubyte.gz"],
    ),
    case(
        "wrong IDX magic number",
        "train vanilla --data-dir {T}/magic",
        &["wrong magic number"],
    ),
    case(
        "wrong dimensions (labels where images belong)",
        "train vanilla --data-dir {T}/dims",
        &["expected N×S×S"],
    ),
    case(
        "IDX data shorter than its header",
        "train vanilla --data-dir {T}/short",
        &["header says"],
    ),
    case(
        "image and label counts disagree",
        "train vanilla --data-dir {T}/count",
        &["40 images but", "39 labels"],
    ),
    case(
        "image folder without images",
        "train vanilla --set data.dataset=folder --data-dir {T}/empty",
        &["holds no .png/.jpg/.jpeg files"],
    ),
    case(
        "image folder missing",
        "train vanilla --set data.dataset=folder --data-dir {T}/absent",
        &["does not exist"],
    ),
    case(
        "image folder without --data-dir",
        "train vanilla --set data.dataset=folder",
        &["needs a folder", "--data-dir"],
    ),
    case(
        "non-image file named .png",
        "train vanilla --set data.dataset=folder --data-dir {T}/junk",
        &["none of the 1 image files", "could be read"],
    ),
    case(
        "huge image (60000×60000 PNG header)",
        "train vanilla --set data.dataset=folder --data-dir {T}/huge",
        &["none of the 1 image files"],
    ),
    case(
        "fewer images than one batch",
        "train vanilla --set data.dataset=folder --data-dir {T}/two",
        &["fewer than train.batch_size", "lower the batch size"],
    ),
    case(
        "batch larger than the data set",
        "train vanilla --data-dir {MNIST} --batch-size 70000",
        &["fewer than train.batch_size"],
    ),
    case(
        "--domains for a one-domain model",
        "train vanilla --domains {T}/two {T}/two",
        &["--domains (data.domains) is for image-to-image models"],
    ),
    case(
        "missing domain folder",
        "train cyclegan --domains {T}/nowhere {T}/two",
        &["domain A folder", "does not exist"],
    ),
    case(
        "a 2-D mixture for a convolutional model",
        "train dcgan --set data.dataset=ring8",
        &["ring8"],
    ),
    // Configs and --set.
    case(
        "unknown key (--set)",
        "train vanilla --data-dir {MNIST} --set train.stepz=3",
        &["train.stepz", "unknown field"],
    ),
    case(
        "unknown key (config file)",
        "train vanilla --data-dir {MNIST} --config {T}/unknown-key.toml",
        &["train.batchsize", "unknown field"],
    ),
    case(
        "config file TOML syntax error",
        "train vanilla --data-dir {MNIST} --config {T}/syntax.toml",
        &["line 1"],
    ),
    case(
        "config file missing",
        "train vanilla --data-dir {MNIST} --config {T}/no-such.toml",
        &["cannot read config file"],
    ),
    case(
        "--set without =",
        "train vanilla --data-dir {MNIST} --set nonsense",
        &["key=value"],
    ),
    case(
        "--set of the wrong type",
        "train vanilla --data-dir {MNIST} --set train.steps=many",
        &["train.steps"],
    ),
    case(
        "learning rate zero",
        "train vanilla --data-dir {MNIST} --set optim.g.lr=0",
        &["optim.g.lr", "positive"],
    ),
    case(
        "negative learning rate",
        "train vanilla --data-dir {MNIST} --set optim.d.lr=-1",
        &["optim.d.lr"],
    ),
    case(
        "dropout out of range",
        "train vanilla --data-dir {MNIST} --set model.dropout=1.5",
        &["model.dropout"],
    ),
    case(
        "unknown loss name",
        "train vanilla --data-dir {MNIST} --set model.loss=minmax",
        &["model.loss", "minmax"],
    ),
    case(
        "batch size zero",
        "train vanilla --data-dir {MNIST} --batch-size 0",
        &["train.batch_size must be at least 1"],
    ),
    case(
        "zero steps",
        "train vanilla --data-dir {MNIST} --steps 0",
        &["train.steps"],
    ),
    case(
        "zero epochs",
        "train vanilla --data-dir {MNIST} --epochs 0",
        &["train.epochs must be at least 1"],
    ),
    Case {
        what: "negative seed",
        args: "train vanilla --seed -1",
        needles: &["unexpected argument '-1'"],
        code: 2,
    },
    // Output.
    case(
        "--out under a file",
        "train vanilla --data-dir {MNIST} --out {T}/a-file/runs",
        &["cannot create the output folder", "writable --out"],
    ),
    case(
        "--out on a read-only file system",
        "train vanilla --data-dir {MNIST} --out /proc/zoo-runs",
        &["cannot create the output folder", "writable --out"],
    ),
    case(
        "sample grid named other than .png",
        "sample {T}/run --out {T}/grid.txt",
        &["not a .png file name"],
    ),
    // Runs and checkpoints.
    case(
        "--resume on a folder that is not a run",
        "train vanilla --resume {T}/two",
        &["not a zoo run", "run.toml"],
    ),
    case(
        "--resume on another model's run",
        "train vanilla --resume {T}/dcgan-run",
        &["is a `dcgan` run, not `vanilla`"],
    ),
    case(
        "--resume on a run stopped before it began",
        "train vanilla --resume {T}/unstarted",
        &["has no config.toml", "start a new run"],
    ),
    case(
        "--resume with --set",
        "train vanilla --resume {T}/run --set train.seed=3",
        &["cannot change a resumed run"],
    ),
    case(
        "--resume on a run whose config.toml is damaged",
        "train vanilla --resume {T}/bad-config-run",
        &["config.toml"],
    ),
    case(
        "sample from a missing run",
        "sample {T}/nope",
        &["is not a folder"],
    ),
    case(
        "sample from a truncated checkpoint",
        "sample {T}/corrupt-run",
        &[
            "is damaged",
            "does not match its recorded sha256",
            "no intact checkpoint",
        ],
    ),
    case(
        "sample -n 0",
        "sample {T}/run -n 0",
        &["-n must be between 1 and 100000"],
    ),
    case(
        "translate with a noise-to-image run",
        "translate {T}/run --direction a2b --input {T}/two --out {T}/t",
        &["needs an image-to-image run"],
    ),
    case(
        "translate in an unknown direction",
        "translate {T}/run --direction sideways --input {T}/two --out {T}/t",
        &["unknown --direction `sideways`"],
    ),
    case(
        "eval with too few samples",
        "eval {T}/run -n 5",
        &["-n must be between 100 and 60000"],
    ),
    case(
        "eval of a missing checkpoint",
        "eval {T}/run --checkpoint {T}/run/checkpoints/step_999999",
        &["step_999999"],
    ),
    case(
        "eval --no-ema of a run without an EMA",
        "eval {T}/pix2pix-run --no-ema",
        &["keeps no moving average", "drop --no-ema"],
    ),
    case(
        "compare with zero seeds",
        "compare vanilla --seeds 0",
        &["--seeds must be between 1 and 20"],
    ),
    case(
        "bench with batch size zero",
        "bench vanilla --batch-size 0",
        &["train.batch_size must be at least 1"],
    ),
    case(
        "bench with zero steps",
        "bench vanilla --steps 0",
        &["--steps must be between 1 and"],
    ),
    case(
        "bench with zero threads",
        "bench vanilla --threads 0",
        &["--threads must be between 1 and"],
    ),
    case(
        "standard bench table with --set",
        "bench --set model.g_hidden=[8]",
        &["apply to named models"],
    ),
    case(
        "EMA decay out of range",
        "train vanilla --data-dir {MNIST} --set train.ema.decay=1",
        &["train.ema.decay", "[0, 1)"],
    ),
    // Class-conditional models.
    case(
        "--class on an unconditional run",
        "sample {T}/run --class 3",
        &["vanilla is unconditional", "--class"],
    ),
    case(
        "--class index out of range",
        "sample {T}/cgan-run --class 12",
        &["--class 12 is out of range", "10 classes"],
    ),
    case(
        "--class with an unknown name",
        "sample {T}/cgan-run --class sneaker",
        &["`sneaker` is not a class of this run", "0 to 9"],
    ),
    case(
        "conditional model on a folder without class sub-folders",
        "train cgan --data-dir {T}/two --set data.dataset=\"folder\" --set data.image_size=8",
        &["no class sub-folders", "ROOT/<class>/"],
    ),
    case(
        "conditional model on a class folder with an empty class",
        "train acgan --data-dir {T}/classes --set data.dataset=\"folder\" --set data.image_size=8",
        &[
            "class `b`",
            "holds no .png/.jpg/.jpeg images",
            "remove the folder",
        ],
    ),
    case(
        "conditional model with data.limit below its number of classes",
        "train cgan --data-dir {T}/classes --set data.dataset=\"folder\" --set data.limit=1",
        &["data.limit = 1 is below the 2 classes"],
    ),
    case(
        "cgan whose generator would never see the class",
        "train cgan --data-dir {MNIST} --set model.g_norm=\"batch\" --set model.g_embed=0",
        &[
            "model.g_norm = \"batch\" with model.g_embed = 0",
            "never show G the class",
        ],
    ),
    case(
        "repeated class names in data.classes",
        "train cgan --data-dir {MNIST} --set data.classes=[\"a\",\"a\"]",
        &["data.classes must list distinct", "`a` is repeated"],
    ),
    case(
        "data.classes that are not the data's",
        "train cgan --data-dir {MNIST} --set data.classes=[\"cat\",\"dog\"]",
        &["the data's classes (0, 1,", "are not the run's (cat, dog)"],
    ),
    case(
        "conditional model on 2-D points",
        "train cgan --set data.dataset=\"ring8\"",
        &["2-D points without classes"],
    ),
    case(
        "--data-dir without the data, while ./data/mnist has it",
        "cd {T}/newuser && train vanilla --data-dir {T}/nowhere",
        &[
            "not found in --data-dir",
            "it is in data/mnist",
            "drop --data-dir",
        ],
    ),
    case(
        "--data-dir names a file",
        "train vanilla --data-dir {T}/two/0.png",
        &["is a file", "pass the folder"],
    ),
    case(
        "translate --out the same folder as --input",
        "translate {T}/cyclegan-run --direction a2b --input {T}/two --out {T}/two/../two",
        &["is the --input folder", "would be overwritten"],
    ),
    case(
        "translate --out inside --input",
        "translate {T}/cyclegan-run --direction a2b --input {T}/two --out {T}/two/out",
        &["lies inside the --input folder"],
    ),
    case(
        "config file is a FIFO (would block on open)",
        "train vanilla --config {T}/fifo.toml",
        &["is not a regular file (a FIFO)"],
    ),
    case(
        "data pair --out inside the MNIST folder (through a link)",
        "data pair mnist-invert --data-dir {T}/newuser/data/mnist --out {T}/newuser/data/mnist/pair",
        &["lies inside the MNIST folder"],
    ),
    case(
        "data pair --out over a folder of other files",
        "data pair mnist-invert --data-dir {MNIST} --out {T}/two --train 2 --test 2",
        &[
            "holds files that are not a zoo pair",
            "pass an empty or new folder",
        ],
    ),
    case(
        "train.steps and train.epochs both set",
        "train vanilla --set train.steps=3 --set train.epochs=2",
        &["train.steps and train.epochs are both set", "remove one"],
    ),
    case(
        "negative seed",
        "train vanilla --data-dir {MNIST} --set train.seed=-1",
        &["train.seed", "between 0 and 18446744073709551615"],
    ),
    case(
        "seed above 2^64",
        "train vanilla --data-dir {MNIST} --set train.seed=18446744073709551616",
        &["train.seed", "must be an integer between 0 and"],
    ),
    case(
        "the same model twice in compare",
        "compare vanilla dcgan vanilla --steps 2",
        &["vanilla is named twice"],
    ),
    case(
        "compare -n 0 (checked before any training)",
        "compare vanilla --steps 2 -n 0",
        &["-n must be between 100 and 60000"],
    ),
    case(
        "resume --steps below the run's step",
        "train vanilla --resume {T}/run --steps 1",
        &["is already at step 2", "would shorten it"],
    ),
    case(
        "--threads far above the cores",
        "sample {T}/run --threads 10000",
        &["--threads must be between 1 and"],
    ),
    case(
        "bench --steps 10^12",
        "bench vanilla --steps 1000000000000",
        &["--steps must be between 1 and 100000"],
    ),
    case(
        "classifier training on a labels file with label 200",
        "classifier train --dataset mnist --data-dir {T}/badlabels --limit 100 --epochs 1",
        &["label 0 is 200", "outside 0-9", "zoo data get mnist"],
    ),
    case(
        "sample from a checkpoint with 64 flipped bytes (it would load)",
        "sample {T}/flipped-run",
        &["generator", "does not match its recorded sha256"],
    ),
    case(
        "sample from NaN weights in a checkpoint without a manifest",
        "sample {T}/nan-run",
        &["holds non-finite parameters", "use an earlier checkpoint"],
    ),
    case(
        "sample after config.toml was edited (the checkpoint is intact)",
        "sample {T}/edited-run",
        &[
            "the file is intact",
            "does not match the run's config.toml",
            "Restore the config",
        ],
    ),
    case(
        "a training set that cannot fit in memory (MNIST at 1024 px, RGB)",
        "train dcgan --data-dir {MNIST} --set data.image_size=1024 --set data.channels=3",
        &[
            "the training set (60000 images of 1024x1024x3)",
            "lower data.image_size",
        ],
    ),
    case(
        "a layer 10^8 wide",
        "train vanilla --data-dir {MNIST} --set model.g_hidden=[100000000]",
        &[
            "the networks",
            "of memory is needed",
            "lower the model's widths",
        ],
    ),
    case(
        "10^12 toy points",
        "train vanilla --set data.dataset=\"ring8\" --set data.toy.points=1000000000000",
        &["1000000000000 toy points", "lower data.toy.points"],
    ),
    case(
        "bench with a batch of 10^9",
        "bench vanilla --batch-size 1000000000",
        &["a batch of 1000000000 images", "lower train.batch_size"],
    ),
    case(
        "info with a 4-billion latent",
        "info vanilla --set model.latent_dim=4000000000",
        &["drawing both networks", "of memory is needed"],
    ),
    case(
        "an image folder holding only a FIFO named x.png",
        "train dcgan --set data.dataset=\"folder\" --data-dir {T}/fifo-folder",
        &["holds no .png/.jpg/.jpeg files"],
    ),
    case(
        "an IDX file larger than the memory (a sparse 1 TiB file)",
        "train vanilla --data-dir {T}/huge-idx",
        &["reading", "of memory is needed", "is this the right file?"],
    ),
    case(
        "sample with a checkpoint copied from another run",
        "sample {T}/foreign-run",
        &["the file is intact", "does not match the run's config.toml"],
    ),
    case(
        "translate --input names a file",
        "translate {T}/cyclegan-run --direction a2b --input {T}/two/0.png --out {T}/t",
        &["--input", "is a file, not a folder"],
    ),
    case(
        "classifier trained on shifted labels (near 0% test accuracy): not cached",
        "classifier train --dataset mnist --data-dir {T}/shifted-labels --limit 2000 --epochs 1",
        &["test accuracy (chance is 10%)", "not cached"],
    ),
    case(
        "watch a folder that does not exist",
        "watch {T}/nowhere --port 0",
        &["is not a folder", "a folder of runs"],
    ),
    case(
        "eval --images of a folder with 2 images",
        "eval --images {T}/two",
        &["holds 2 images", "at least 100"],
    ),
    case(
        "eval --images against an unknown dataset",
        "eval --images {T}/two --dataset emoji",
        &["unknown dataset `emoji`"],
    ),
    case(
        "eval --images writing its --json into the folder",
        "eval --images {T}/two --json {T}/two/report.json",
        &["--json", "lies inside the --images folder"],
    ),
    case(
        "bench --warmup 10^6",
        "bench vanilla --warmup 1000000",
        &["--warmup must be at most 100000"],
    ),
    case(
        "translate --out inside the run folder",
        "translate {T}/cyclegan-run --direction a2b --input {T}/two --out {T}/cyclegan-run/out",
        &["lies inside the run folder"],
    ),
    case(
        "eval --images -n above the folder's count",
        "eval --images {T}/two -n 100",
        &["-n 100 is more than the 2 images"],
    ),
    case(
        "data pair --out holding the MNIST folder",
        "data pair mnist-invert --data-dir {MNIST} --out {MNIST}/..",
        &["holds the MNIST folder"],
    ),
    case(
        "watch on a port another program holds",
        "watch {T}/two --port {PORT}",
        &["cannot listen on 127.0.0.1:", "pass another --port"],
    ),
    case(
        "data pair --out names a file",
        "data pair mnist-invert --data-dir {MNIST} --out {T}/a-file --train 2 --test 2",
        &["--out", "is a file; pass a folder for the pair"],
    ),
    case(
        "pix2pix given unpaired folders (names that do not match)",
        "train pix2pix --domains {T}/unpaired --set data.image_size=8 --set model.load_size=8 --set model.d_layers=1",
        &["has no counterpart of", "match images by file name"],
    ),
    case(
        "pix2pix pair whose two images have different shapes",
        "train pix2pix --domains {T}/shapes --set data.image_size=8 --set model.load_size=8 --set model.d_layers=1",
        &["is 8x8 but its counterpart", "8x4", "same shape"],
    ),
    case(
        "pix2pix --domains without either pair layout",
        "train pix2pix --domains {T}/two",
        &["holds neither trainA/ and trainB/ nor train/"],
    ),
    case(
        "pix2pix image size the U-Net cannot halve",
        "train pix2pix --domains {T}/shapes --set data.image_size=24 --set model.g_depth=5",
        &["does not suit a U-Net of 5 levels", "model.g_depth"],
    ),
    case(
        "translate b2a with a pix2pix run trained a2b",
        "translate {T}/pix2pix-run --direction b2a --input {T}/two --out {T}/p2p-out",
        &["translates a2b only", "--direction a2b"],
    ),
    case(
        "translate --truth naming a file",
        "translate {T}/pix2pix-run --input {T}/two --out {T}/p2p-out --truth {T}/a-file",
        &["--truth", "is not a folder"],
    ),
    case(
        "translate --truth holding none of the input names",
        "translate {T}/pix2pix-run --input {T}/two --out {T}/p2p-out --truth {T}/empty",
        &[
            "none of the 2 translated images has a counterpart",
            "--truth",
        ],
    ),
    case(
        "data.channels_b = 2",
        "train cyclegan --domains {T}/two {T}/two --set data.channels_b=2",
        &["data.channels_b must be 1 (gray) or 3 (RGB)"],
    ),
    case(
        "cyclegan gray <-> RGB with the identity loss on",
        "train cyclegan --domains {T}/two {T}/two --set data.channels=1 --set data.channels_b=3",
        &["identity loss", "model.lambda_identity = 0"],
    ),
    case(
        "cyclegan with no down-sampling steps",
        "train cyclegan --domains {T}/two {T}/two --set model.g_down=0",
        &["model.g_down must be between 1 and 5"],
    ),
    case(
        "cyclegan image size its down-sampling cannot halve",
        "train cyclegan --domains {T}/two {T}/two --set data.image_size=28 --set model.load_size=28 --set model.g_down=3",
        &["must be a multiple of 8", "model.g_down = 3"],
    ),
    case(
        "data pair emoji where the emoji set is not",
        "data pair emoji --data-dir {T}/empty --out {T}/emoji-pair",
        &["emoji set was not found", "--data-dir"],
    ),
    case(
        "data pair emoji holding out every emoji",
        "data pair emoji --data-dir {T}/emoji --out {T}/emoji-pair --test 3",
        &["--test 3 leaves no training", "1 to 2"],
    ),
    case(
        "data pair emoji whose styles hold different names",
        "data pair emoji --data-dir {T}/emoji-odd --out {T}/emoji-pair",
        &["has no 2", "same file names"],
    ),
    case(
        "data pair mnist-invert --unpaired",
        "data pair mnist-invert --data-dir {MNIST} --out {T}/pair --unpaired",
        &["options of the emoji pair"],
    ),
    case(
        "export a run with no checkpoint yet",
        "export {T}/fresh-run --out {T}/g.onnx",
        &["has no checkpoint to export yet", "train it first"],
    ),
    case(
        "export to an unknown format",
        "export {T}/run --format tflite --out {T}/g.onnx",
        &["unknown --format `tflite`", "--format onnx"],
    ),
    case(
        "export --out not named .onnx",
        "export {T}/run --out {T}/g.bpk",
        &["is not a .onnx file name"],
    ),
    case(
        "export --out naming a folder",
        "export {T}/run --out {T}/folder.onnx",
        &["is a folder", "name a .onnx file in it"],
    ),
    case(
        "export --out in a folder that does not exist",
        "export {T}/run --out {T}/nowhere/g.onnx",
        &["does not exist", "create it first"],
    ),
    case(
        "export --out where nothing can be written",
        "export {T}/run --out /proc/g.onnx",
        &[
            "--out /proc/g.onnx cannot be written",
            "a folder you can write",
        ],
    ),
    case(
        "export with neither --out nor --web",
        "export {T}/run",
        &["nothing to write", "--out generator.onnx", "--web DIR"],
    ),
    case(
        "export --check-n 0",
        "export {T}/run --out {T}/g.onnx --check-n 0",
        &["--check-n must be between 1 and 256"],
    ),
    case(
        "export --direction of a noise-to-image run",
        "export {T}/run --out {T}/g.onnx --direction a2b",
        &[
            "generates from noise",
            "--direction is for image-to-image runs",
        ],
    ),
    case(
        "export b2a of a pix2pix run trained a2b",
        "export {T}/pix2pix-run --out {T}/g.onnx --direction b2a",
        &["translates a2b only", "use --direction a2b"],
    ),
    case(
        "export --web into a folder holding other files",
        "export {T}/run --web {T}/two",
        &["holds other files", "new or empty folder"],
    ),
    case(
        "export --web in a folder that does not exist",
        "export {T}/run --web {T}/nowhere/page",
        &["--web", "does not exist", "create it first"],
    ),
    case(
        "export --web inside the run folder",
        "export {T}/run --web {T}/run/page",
        &["is inside the run folder", "elsewhere"],
    ),
    case(
        "export --web --ort-dir without onnxruntime-web's files",
        "export {T}/run --web {T}/page --ort-dir {T}/empty",
        &["does not hold onnxruntime-web", "zoo data get ort-web"],
    ),
    case(
        "sample --save-noise not named .npy",
        "sample {T}/run --save-noise {T}/z.txt",
        &["is not a .npy file name"],
    ),
    // DiffAugment.
    case(
        "DiffAugment ratio out of range",
        "train dcgan --data-dir {MNIST} --set train.diffaug.cutout=true --set train.diffaug.cutout_ratio=2",
        &["train.diffaug.cutout_ratio", "between 0 and 1"],
    ),
    case(
        "DiffAugment on 2-D points",
        "train vanilla --set data.dataset=ring8 --set train.diffaug.translation=true",
        &["train.diffaug augments images", "2-D points"],
    ),
    case(
        "DiffAugment on a translation model",
        "train cyclegan --domains {T}/two {T}/two --set train.diffaug.cutout=true",
        &["train.diffaug is on", "cyclegan"],
    ),
    Case {
        what: "time limit that is not a duration",
        args: "train vanilla --time-limit ten",
        needles: &[
            "invalid value 'ten' for '--time-limit",
            "not a positive duration",
            "10m",
        ],
        code: 2,
    },
    Case {
        what: "time limit of zero",
        args: "train vanilla --time-limit 0",
        needles: &[
            "invalid value '0' for '--time-limit",
            "not a positive duration",
        ],
        code: 2,
    },
    case(
        "cyclegan with a negative cycle noise",
        "train cyclegan --domains {T}/two {T}/two --set model.cycle_noise=-0.1",
        &["model.cycle_noise must be a non-negative number", "-0.1"],
    ),
];

/// Builds every fixture the catalogue names under `t`.
fn fixtures(t: &Path) {
    let mkdir = |p: PathBuf| {
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    };
    // MNIST with its own images and test labels (links) and training labels of our making.
    let with_train_labels = |name: &str, labels: &[u8]| {
        let dir = mkdir(t.join(name));
        for f in [
            "train-images-idx3-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ] {
            let real = mnist_file(f);
            let file = real.file_name().expect("name");
            std::os::unix::fs::symlink(&real, dir.join(file)).expect("link");
        }
        std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).expect("write");
    };
    let real = mnist_raw("train-labels-idx1-ubyte");
    // The first training label is 200 (a damaged labels file).
    let mut damaged = real.clone();
    damaged[8] = 200;
    with_train_labels("badlabels", &damaged);
    // Every label shifted by one class: a classifier learns them and fails the test.
    let mut moved = real;
    for l in &mut moved[8..] {
        *l = (*l + 1) % 10;
    }
    with_train_labels("shifted-labels", &moved);
    // A folder where `zoo data get mnist` put MNIST (./data/mnist), as after the quick start.
    let local = mkdir(t.join("newuser/data"));
    std::os::unix::fs::symlink(mnist(), local.join("mnist")).expect("link ./data/mnist");
    let half = mkdir(t.join("half"));
    std::fs::write(half.join("train-images-idx3-ubyte"), images(2)).expect("write");
    let d = mkdir(t.join("truncated"));
    let full = gz(&images(100));
    std::fs::write(
        d.join("train-images-idx3-ubyte.gz"),
        &full[..full.len() / 2],
    )
    .expect("write");
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), gz(&labels(100))).expect("write");
    let mut bad = images(4);
    bad[2] = 0x0d;
    fake_mnist(&t.join("magic"), &bad, &labels(4));
    fake_mnist(&t.join("dims"), &labels(4), &labels(4));
    let mut short = images(4);
    short.truncate(short.len() - 10);
    fake_mnist(&t.join("short"), &short, &labels(4));
    fake_mnist(&t.join("count"), &images(40), &labels(39));
    std::fs::write(mkdir(t.join("empty")).join("notes.txt"), "no images").expect("write");
    let fifo = std::process::Command::new("mkfifo")
        .arg(t.join("fifo.toml"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::fs::write(mkdir(t.join("junk")).join("a.png"), b"not a png").expect("write");
    std::fs::write(
        mkdir(t.join("huge")).join("big.png"),
        png(60_000, 60_000, 8, 6, &[0; 16], &[]),
    )
    .expect("write");
    let two = mkdir(t.join("two"));
    for i in 0..2 {
        image::DynamicImage::new_rgb8(8, 8)
            .save(two.join(format!("{i}.png")))
            .expect("save");
    }
    std::fs::write(
        t.join("unknown-key.toml"),
        "[train]\nsteps = 10\nbatchsize = 3\n",
    )
    .expect("write");
    std::fs::write(t.join("syntax.toml"), "[train\n").expect("write");
    std::fs::write(t.join("a-file"), "x").expect("write");
    mkdir(t.join("folder.onnx"));
    fake_run(&t.join("dcgan-run"), "dcgan");
    // Paired-data fixtures: names that do not match, a pair of two shapes, a tiny emoji set
    // (and one whose styles differ by a name).
    let gray = |p: PathBuf, w: u32, h: u32| image::GrayImage::new(w, h).save(p).expect("png");
    for (side, names) in [("trainA", ["a", "b"]), ("trainB", ["c", "d"])] {
        let dir = mkdir(t.join("unpaired").join(side));
        for n in names {
            gray(dir.join(format!("{n}.png")), 8, 8);
        }
    }
    gray(mkdir(t.join("shapes/trainA")).join("x.png"), 8, 8);
    gray(mkdir(t.join("shapes/trainB")).join("x.png"), 8, 4);
    for (root, odd) in [("emoji", false), ("emoji-odd", true)] {
        for style in ["twemoji", "noto"] {
            let dir = mkdir(t.join(root).join(style));
            for i in 0..3 {
                let name = if odd && style == "noto" && i == 2 {
                    9
                } else {
                    i
                };
                gray(dir.join(format!("{name}.png")), 8, 8);
            }
        }
    }
    fake_run(&t.join("cyclegan-run"), "cyclegan");
    let classes = t.join("classes");
    image::DynamicImage::new_rgb8(8, 8)
        .save(mkdir(classes.join("a")).join("0.png"))
        .expect("save");
    std::fs::write(mkdir(classes.join("b")).join("notes.txt"), "no images").expect("write");
    fake_run(&t.join("unstarted"), "vanilla");

    // A finished two-step run, and damaged copies of it.
    let runs = t.join("runs");
    let run = run_dir(&ok(train_tiny(&mnist(), &runs, &["--steps", "2"])));
    std::fs::rename(&run, t.join("run")).expect("move the run");
    // The same run before its first checkpoint: its config and no checkpoint.
    let fresh = mkdir(t.join("fresh-run/checkpoints"));
    for f in ["run.toml", "config.toml"] {
        std::fs::copy(t.join("run").join(f), fresh.join("..").join(f)).expect("copy");
    }
    let cgan = run_dir(&ok(zoo(&[
        "train",
        "cgan",
        "--quiet",
        "--data-dir",
        mnist().to_str().expect("utf-8"),
        "--out",
        runs.to_str().expect("utf-8"),
        "--set",
        "model.g_filters=4",
        "--set",
        "model.d_filters=4",
        "--set",
        "data.limit=64",
        "--batch-size",
        "8",
        "--steps",
        "2",
    ])));
    std::fs::rename(&cgan, t.join("cgan-run")).expect("move the run");
    // A two-step pix2pix run (A -> B) on the `two` folder paired with itself.
    let p2p = run_dir(&ok(zoo(&[
        "train",
        "pix2pix",
        "--quiet",
        "--domains",
        t.join("two").to_str().expect("utf-8"),
        t.join("two").to_str().expect("utf-8"),
        "--out",
        runs.to_str().expect("utf-8"),
        "--set",
        "data.image_size=8",
        "--set",
        "model.load_size=8",
        "--set",
        "model.g_filters=2",
        "--set",
        "model.d_filters=2",
        "--set",
        "model.d_layers=1",
        "--batch-size",
        "2",
        "--steps",
        "2",
    ])));
    std::fs::rename(&p2p, t.join("pix2pix-run")).expect("move the run");
    let corrupt = t.join("corrupt-run");
    copy_dir(&t.join("run"), &corrupt);
    // Both generators: sampling reads the moving average when the run keeps one (vanilla's
    // default), else the generator.
    for name in ["generator.bpk", "generator_ema.bpk"] {
        let f = corrupt.join("checkpoints/step_000002").join(name);
        if let Ok(bytes) = std::fs::read(&f) {
            std::fs::write(&f, &bytes[..bytes.len() / 3]).expect("truncate");
        }
    }
    let bad_config = t.join("bad-config-run");
    copy_dir(&t.join("run"), &bad_config);
    let f = bad_config.join("config.toml");
    let text = std::fs::read_to_string(&f).expect("read");
    std::fs::write(&f, text.replace("[train]", "[train")).expect("damage");
    // 64 bytes flipped inside both generators' weights: they would still load.
    let flipped = t.join("flipped-run");
    copy_dir(&t.join("run"), &flipped);
    let ck = flipped.join("checkpoints/step_000002");
    for name in ["generator.bpk", "generator_ema.bpk"] {
        flip_middle(&ck.join(name), |b| !b);
    }
    // The same with all-ones bytes (NaN floats) and no manifest, as a checkpoint written before
    // manifests existed.
    let nan = t.join("nan-run");
    copy_dir(&t.join("run"), &nan);
    let ck = nan.join("checkpoints/step_000002");
    std::fs::remove_file(ck.join("manifest.toml")).expect("no manifest");
    for name in ["generator.bpk", "generator_ema.bpk"] {
        flip_middle(&ck.join(name), |_| 0xff);
    }
    // A checkpoint of another run (other widths) copied into this one.
    let foreign = t.join("foreign-run");
    copy_dir(&t.join("run"), &foreign);
    let ours = foreign.join("checkpoints/step_000002");
    std::fs::remove_dir_all(&ours).expect("rm");
    let theirs = std::fs::read_to_string(t.join("cgan-run/checkpoints/latest")).expect("latest");
    copy_dir(&t.join("cgan-run/checkpoints").join(theirs.trim()), &ours);
    // An image folder whose only "image" is a FIFO (opening it would block).
    let fifo_folder = mkdir(t.join("fifo-folder"));
    let made = std::process::Command::new("mkfifo")
        .arg(fifo_folder.join("x.png"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // An IDX file far larger than memory, sparse (it takes no disk space).
    let huge = mkdir(t.join("huge-idx"));
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::File::create(huge.join(name))
            .and_then(|f| f.set_len(1 << 40))
            .expect("sparse file");
    }
    // config.toml edited after training: the intact checkpoint no longer fits it.
    let edited = t.join("edited-run");
    copy_dir(&t.join("run"), &edited);
    let f = edited.join("config.toml");
    let text = std::fs::read_to_string(&f).expect("read");
    std::fs::write(&f, text.replace("g_hidden = [32]", "g_hidden = [48]")).expect("edit");
}

/// Rewrites 64 bytes in the middle of a file with `f`.
fn flip_middle(path: &Path, f: impl Fn(u8) -> u8) {
    let mut bytes = std::fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = f(*b);
    }
    std::fs::write(path, bytes).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// A path under `t` whose name is not valid UTF-8.
fn non_utf8(t: &Path) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = t.as_os_str().to_owned().into_vec();
    bytes.extend_from_slice(b"/data-\xff\xfe");
    OsString::from_vec(bytes)
}

#[test]
fn catalogue() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    fixtures(t);
    let t_str = t.to_str().expect("utf-8");
    let mnist = mnist();
    let mnist_str = mnist.to_str().expect("utf-8");
    // A port held for the whole catalogue, for the row of `zoo watch` on a taken port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = taken.local_addr().expect("addr").port().to_string();
    let mut rows = Vec::new();
    for (i, c) in CATALOGUE.iter().enumerate() {
        // `cd DIR && …`: run from DIR (under {T}), as a user in that folder would.
        let (cwd, rest) = match c.args.strip_prefix("cd ") {
            Some(r) => {
                let (dir, rest) = r.split_once(" && ").expect("cd DIR && ARGS");
                (PathBuf::from(dir.replace("{T}", t_str)), rest)
            }
            None => (t.to_path_buf(), c.args),
        };
        let mut args: Vec<OsString> = vec!["--quiet".into()];
        for a in rest.split_whitespace() {
            args.push(if a == "{NONUTF8}" {
                non_utf8(t)
            } else {
                a.replace("{T}", t_str)
                    .replace("{MNIST}", mnist_str)
                    .replace("{PORT}", &port)
                    .into()
            });
        }
        let out = t.join(format!("out-{i}"));
        let fresh_train =
            rest.starts_with("train ") && !rest.contains("--out ") && !rest.contains("--resume ");
        if fresh_train {
            args.extend(["--out".into(), out.clone().into_os_string()]);
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zoo"));
        cmd.args(&args)
            .env_remove("ZOO_DATA")
            .env("NO_COLOR", "1")
            .current_dir(&cwd);
        // Classifier rows never touch the user's cached classifiers.
        if rest.starts_with("classifier ") {
            cmd.env("ZOO_CACHE", t.join("cache"));
        }
        let o = cmd.output().expect("zoo runs");
        let err = stderr(&o);
        let context = format!("row {} ({}): zoo {}\n{err}", i + 1, c.what, c.args);
        assert_eq!(o.status.code(), Some(c.code), "exit code of {context}");
        assert!(!err.contains("panicked"), "panic in {context}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error:` line in {context}"));
        if c.code == 1 {
            assert!(
                err.trim_end().ends_with(line),
                "the error is not the last, single line in {context}"
            );
        }
        for n in c.needles {
            assert!(line.contains(n), "`{n}` missing in {context}");
        }
        if fresh_train {
            assert!(
                ls(&out).is_empty(),
                "left behind {:?} by {context}",
                ls(&out)
            );
        }
        // The --threads bound is 4 per core: machine-dependent, so shown as a formula.
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let shown = line
            .replace(t_str, "{T}")
            .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:{PORT}")
            .replace(mnist_str, "{MNIST}")
            .replace(
                &format!("between 1 and {} (4 per core", 4 * cores),
                "between 1 and {4·CORES} (4 per core",
            );
        // A classifier's accuracy may differ in its last digit between CPUs: shown as a name.
        let shown = match shown.split_once("reached only ") {
            Some((head, tail)) => match tail.split_once("% test accuracy") {
                Some((_, rest)) => format!("{head}reached only {{ACC}}% test accuracy{rest}"),
                None => shown,
            },
            None => shown,
        };
        // The memory available changes from run to run: shown as a name.
        let shown = match shown.split_once(" of memory is needed, and ") {
            Some((head, tail)) => match tail.split_once(" is available") {
                Some((_, rest)) => {
                    format!("{head} of memory is needed, and {{AVAILABLE}} is available{rest}")
                }
                None => shown,
            },
            None => shown,
        };
        let command = match c.args.split_once(" && ") {
            Some((cd, rest)) if cd.starts_with("cd ") => format!("{cd} && zoo {rest}"),
            _ => format!("zoo {}", c.args),
        };
        rows.push(format!(
            "| {} | {} | `{command}` | {} | `{}` |\n",
            i + 1,
            c.what,
            c.code,
            shown.replace('|', "\\|").replace('`', "'")
        ));
    }
    assert!(rows.len() >= 25, "the catalogue has {} rows", rows.len());
    let doc = format!(
        "# Bad inputs\n\nEvery bad input zoo has been tried on, the command, the exit code and the \
         exact message it printed. `{{T}}` is a scratch folder holding the broken files, \
         `{{MNIST}}` the real MNIST; `{{NONUTF8}}` is a path whose name is not UTF-8; \
         `{{AVAILABLE}}` stands for the memory free at the time, `{{4·CORES}}` for four times \
         the machine's cores and `{{ACC}}` for a classifier's accuracy, `{{PORT}}` for a port another program holds. Each row is \
         a check in `tests/bad_input.rs` (the exit code, one `error:` line naming the problem \
         and the fix, no panic, and for `zoo train` no run folder left behind), and this page is \
         compared with what zoo prints on every test run.\n\n\
         | # | bad input | command | exit | message |\n|---|---|---|---|---|\n{}",
        rows.concat()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bad-inputs.md");
    if std::env::var_os("ZOO_BLESS").is_some() {
        std::fs::write(&path, &doc).expect("write docs/bad-inputs.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/bad-inputs.md differs from what zoo prints; rerun with ZOO_BLESS=1 to update it"
    );
}

#[test]
fn no_data_anywhere_by_default() {
    // Run from an empty folder, without ZOO_DATA.
    let tmp = tempfile::tempdir().expect("tmp");
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

/// Inputs zoo accepts by converting them: 16-bit, palette and RGBA PNGs, grayscale and RGB
/// mixed, several sizes, and a few unreadable files among readable ones (skipped with a
/// warning).
#[test]
fn accepted_image_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("mixed");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("broken.png"), b"not a png").expect("write");
    let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
    for i in 0..24u8 {
        let (name, bytes) = match i % 4 {
            0 => ("gray16", png(20, 20, 16, 0, &[i * 9, 0].repeat(20), &[])),
            1 => ("palette", png(24, 20, 8, 3, &[i % 4; 24], &palette)),
            2 => (
                "rgba16",
                png(
                    20,
                    30,
                    16,
                    6,
                    &[200, 0, 90, 0, 40, 0, 255, 255].repeat(20),
                    &[],
                ),
            ),
            _ => ("gray8", png(16, 16, 8, 0, &[i * 5; 16], &[])),
        };
        std::fs::write(dir.join(format!("{name}_{i:02}.png")), bytes).expect("write");
    }
    let out = tempfile::tempdir().expect("tmp");
    for model in ["vanilla", "dcgan"] {
        let o = zoo(&[
            "train",
            model,
            "--quiet",
            "--data-dir",
            dir.to_str().expect("utf-8"),
            "--out",
            out.path().to_str().expect("utf-8"),
            "--set",
            "data.dataset=folder",
            "--set",
            "data.image_size=16",
            "--set",
            "data.channels=3",
            "--batch-size",
            "8",
            "--steps",
            "1",
        ]);
        let err = stderr(&o);
        assert!(err.contains("skipping unreadable image"), "{err}");
        assert!(err.contains("broken.png"), "{err}");
        ok(o);
    }
}
