//! The `zoo` command: the CLI crate, and the only one with network code (dataset downloads,
//! [`get`]). It may depend on every crate of the workspace: the command line (`cli`, clap
//! derive), one function per command below, the registry of models (`registry`, the one list)
//! and the registry's object-safe face of a model (`entry`).

mod bench;
mod cli;
mod entry;
mod export;
mod get;
mod registry;
mod web;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use zoo_core::burn::prelude::Device;
use zoo_core::config::DatasetKind;
use zoo_core::game::Direction;
use zoo_core::gan::group_digits;
use zoo_eval::compare::{CompareRequest, Contender};
use zoo_eval::evaluate::EvalRequest;
use zoo_train::checkpoint::Weights;
use zoo_train::engine::StopSignal;
use zoo_train::run::RunDir;
use zoo_train::tasks::{RunHook, SampleRequest, TrainRequest, TranslateRequest};

use crate::cli::{
    ClassifierCommand, Cli, Command, CompareArgs, DataCommand, DeviceArg, EvalArgs, GlobalArgs,
    SampleArgs, TrainArgs, TranslateArgs, WatchArgs,
};
use crate::entry::ModelEntry;

/// mimalloc keeps freed pages for reuse: a training step allocates and frees the same large
/// buffers every time, and with the system allocator each one came back as fresh pages to
/// fault in (the DCGAN 28² step was 140 ms with glibc's malloc, 113 ms with mimalloc; see
/// benches/NOTES.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): how long freed memory waits before it is
/// returned to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS: the next step needs it again (the
/// CycleGAN 64² step was ~850 ms with mimalloc's default 10 ms delay, ~800 ms without purging;
/// peak memory is unchanged, the process keeps it until it exits).
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an option value; any option index is range-checked
    // by mimalloc, and no allocation is in flight across this call.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// Colour in the logs only for a person at a terminal: never in a file or a pipe, and never
/// with `NO_COLOR` set (<https://no-color.org>).
fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let filter = if cli.global.quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZOO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_stderr())
        .with_target(false)
        .init();
    zoo_train::progress::enable(progress(&cli.global));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Stopped by a signal, as asked: not an error. The shell's convention for the exit
        // code, 128 + the signal number.
        Err(e) => match e.downcast_ref::<zoo_train::engine::Interrupted>() {
            Some(i) => {
                eprintln!("{i}");
                ExitCode::from(128 + i.signal as u8)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn device(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Flex => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => Ok(Device::cuda(0)),
        #[allow(unreachable_patterns)]
        other => {
            let name = format!("{other:?}").to_lowercase();
            bail!(
                "this zoo was built without the `{name}` feature; rebuild with \
                 `cargo build --release -p zoo --features {name}` or use --device flex"
            )
        }
    }
}

fn dataset(name: &str) -> Result<DatasetKind> {
    match name {
        "mnist" => Ok(DatasetKind::Mnist),
        "fashion-mnist" | "fashion_mnist" => Ok(DatasetKind::FashionMnist),
        other => bail!("unknown dataset `{other}`; `zoo data get` knows mnist and fashion-mnist"),
    }
}

fn run(cli: Cli) -> Result<()> {
    // Past a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, which would kill zoo
    // mid-write; with a handler installed the write fails with EFBIG instead, and that is
    // reported like any other failed write (the previous checkpoint stays intact).
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .context("cannot install the signal handler")?;
    if let Some(n) = cli.global.threads {
        // More threads than a few per core only add the cost of starting and waking them
        // (10,000 turned a 0.1 s `zoo sample` into minutes).
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let most = 4 * cores;
        ensure!(
            (1..=most).contains(&n),
            "--threads must be between 1 and {most} (4 per core here; got {n})"
        );
    }
    rayon::ThreadPoolBuilder::new()
        // 0: one thread per core.
        .num_threads(cli.global.threads.unwrap_or(0))
        // The main thread's size: the command runs on a worker (below).
        .stack_size(8 << 20)
        .build_global()
        .context("cannot set the number of threads")?;
    // The command runs on a worker of the pool, so that each parallel kernel starts on the
    // thread that calls it and wakes only the others. From the main thread, every kernel
    // handed its work to the pool and put the main thread to sleep until it was done, two
    // context switches per op even on `--threads 1` (`benches/NOTES.md` #23).
    rayon::scope(|_| command(cli))
}

/// Runs the command (on a worker of the thread pool, see [`run`]).
fn command(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match *cli.command {
        Command::List => list(),
        Command::Config { model } => config(&model),
        Command::Info { model, config } => info(&model, config.config.as_deref(), &config.sets),
        Command::Train(args) => train(args, g),
        Command::Sample(args) => sample(args, g),
        Command::Compare(args) => compare(args, g),
        Command::Eval(args) => eval(args, g),
        Command::Translate(args) => translate(args, g),
        Command::Export(args) => export::run(args, device(g.device)?),
        Command::Bench(args) => bench::run(args, g.device, device(g.device)?),
        Command::Classifier { command } => classifier(command, g),
        Command::Watch(args) => watch(args),
        Command::Data { command } => data(command),
    }
}

/// Whether to draw progress bars: not quiet, and stderr is a terminal.
fn progress(g: &GlobalArgs) -> bool {
    !g.quiet && std::io::stderr().is_terminal()
}

/// SIGINT / SIGTERM: inside the training loop the first one finishes the step, writes a
/// checkpoint and exits with 130 / 143 (a second one exits at once); anywhere else (loading
/// data, evaluating) they exit at once with that code. See [`zoo_train::engine::StopSignal`].
fn stop_flag() -> Result<StopSignal> {
    use signal_hook::flag;
    let stop = StopSignal::default();
    let again = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let code = 128 + sig;
        // In this order: exit now if not training or if this is the second signal; then
        // remember that one came, and its number.
        flag::register_conditional_shutdown(sig, code, stop.immediate.clone())
            .and_then(|_| flag::register_conditional_shutdown(sig, code, again.clone()))
            .and_then(|_| flag::register(sig, again.clone()))
            .and_then(|_| flag::register_usize(sig, stop.signal.clone(), sig as usize))
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// `zoo list`: each model, what it can do, and its line.
fn list() -> Result<()> {
    let width = registry::names().iter().map(|n| n.len()).max().unwrap_or(0);
    for m in registry::MODELS {
        let caps: Vec<&str> = m.capabilities().iter().map(|c| c.name()).collect();
        let caps = format!("[{}]", caps.join(", "));
        println!("{:width$}  {caps:<20}  {}", m.name(), m.about());
    }
    Ok(())
}

/// `zoo config`.
fn config(model: &str) -> Result<()> {
    print!("{}", registry::find(model)?.default_config()?);
    Ok(())
}

/// `zoo info`.
fn info(model: &str, file: Option<&Path>, sets: &[String]) -> Result<()> {
    print!("{}", registry::find(model)?.info(file, sets)?);
    Ok(())
}

/// `zoo train`.
fn train(args: TrainArgs, g: &GlobalArgs) -> Result<()> {
    let entry = registry::find(&args.model)?;
    let req = TrainRequest {
        config_file: args.config.config,
        sets: args.config.sets,
        data_dir: args.data_dir,
        domains: args.domains.unwrap_or_default(),
        steps: args.steps,
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        out: args.out,
        resume: args.resume,
        device: device(g.device)?,
        progress: progress(g),
        stop: Some(stop_flag()?),
        time_limit: args.time_limit,
        on_run: args.watch.then(|| {
            let port = args.port;
            RunHook(Arc::new(move |run: &Path| {
                let watch = zoo_watch::Watch::bind(run, port)?;
                // stderr: stdout stays the run's summary.
                eprintln!("zoo watch: {} (while this run trains)", watch.url());
                watch.spawn();
                Ok(())
            }))
        }),
    };
    let report = entry.train(&req)?;
    let s = &report.summary;
    println!("run: {}", report.run_dir.display());
    println!(
        "steps: {}/{}  time: {:.1}s  images/s: {:.0}",
        s.step, s.total_steps, s.seconds, s.images_per_s
    );
    if s.time_limited {
        println!(
            "stopped at the time limit; continue with `zoo train {} --resume {}`",
            entry.name(),
            report.run_dir.display()
        );
    }
    let last: Vec<String> = s
        .last
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "step" | "epoch" | "images_per_s"))
        .map(|(n, v)| format!("{n}={v:.4}"))
        .collect();
    if !last.is_empty() {
        println!("last: {}", last.join(" "));
    }
    println!("samples: {}", report.run_dir.join("samples").display());
    Ok(())
}

/// `zoo watch`.
fn watch(args: WatchArgs) -> Result<()> {
    let watch = zoo_watch::Watch::bind(&args.path, args.port)?;
    let runs = zoo_watch::find_runs(&args.path).len();
    println!(
        "zoo watch: {} ({runs} run{} in {} now; Ctrl-C to stop)",
        watch.url(),
        if runs == 1 { "" } else { "s" },
        args.path.display()
    );
    watch.serve();
    Ok(())
}

/// `zoo sample`.
fn sample(args: SampleArgs, g: &GlobalArgs) -> Result<()> {
    let entry = entry_of_run(&args.run_dir)?;
    let written = entry.sample(&SampleRequest {
        run_dir: args.run_dir,
        n: args.n,
        seed: args.seed,
        out: args.out,
        out_dir: args.out_dir,
        class: args.class,
        save_noise: args.save_noise,
        device: device(g.device)?,
    })?;
    if written.len() == 1 {
        println!("{}", written[0].display());
    } else if let Some(first) = written.first() {
        println!(
            "{} images in {}",
            group_digits(written.len()),
            first.parent().unwrap_or(Path::new(".")).display()
        );
    }
    Ok(())
}

/// `zoo compare`.
fn compare(args: CompareArgs, g: &GlobalArgs) -> Result<()> {
    let models = args
        .models
        .iter()
        .map(|m| registry::find(m).map(|e| e as &'static dyn Contender))
        .collect::<Result<Vec<_>>>()?;
    let req = CompareRequest {
        models,
        dataset: dataset(&args.dataset)?,
        data_dir: args.data_dir,
        out: args.out,
        steps: args.steps,
        seeds: args.seeds,
        n: args.n,
        device: device(g.device)?,
        progress: progress(g),
        stop: Some(stop_flag()?),
    };
    let c = zoo_eval::compare::compare(&req)?;
    print!(
        "{}",
        zoo_eval::compare::table(&c.summaries, &c.floor, c.class_floor.as_ref())
    );
    println!("report: {}", c.report.display());
    Ok(())
}

/// `zoo eval`.
fn eval(args: EvalArgs, g: &GlobalArgs) -> Result<()> {
    if let Some(dir) = args.images {
        if let Some(json) = &args.json {
            // The report never lands among the images it scores.
            zoo_core::io::ensure_apart(json, "--json", &dir, "--images")?;
        }
        let report = zoo_eval::evaluate::eval_images(&zoo_eval::evaluate::ImagesRequest {
            dir,
            dataset: dataset(&args.dataset)?,
            data_dir: args.data_dir,
            n: args.n,
            device: device(g.device)?,
        })?;
        print!("{}", report.table());
        if let Some(json) = &args.json {
            let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
            zoo_core::io::write_atomic(json, text.as_bytes())?;
            println!("written: {}", json.display());
        }
        return Ok(());
    }
    let run_dir = args.run_dir.context("name a run folder, or --images DIR")?;
    let entry = entry_of_run(&run_dir)?;
    let req = EvalRequest {
        run_dir,
        n: args.n,
        checkpoint: args.checkpoint,
        weights: if args.no_ema {
            Weights::Trained
        } else {
            Weights::Sampled
        },
        device: device(g.device)?,
    };
    let report = entry.eval(&req)?;
    print!("{}", report.table());
    println!("written: {}", req.json_path().display());
    Ok(())
}

/// `zoo translate`.
fn translate(args: TranslateArgs, g: &GlobalArgs) -> Result<()> {
    let direction = parse_direction(&args.direction)?;
    let entry = entry_of_run(&args.run_dir)?;
    let report = entry.translate(&TranslateRequest {
        run_dir: args.run_dir,
        direction,
        input: args.input,
        out: args.out,
        truth: args.truth,
        device: device(g.device)?,
    })?;
    println!(
        "{} images translated; see {}",
        report.count,
        report.index.display()
    );
    if let Some(e) = report.error {
        println!("{} scored {e}", report.scored);
    }
    Ok(())
}

/// `zoo classifier train`.
fn classifier(command: ClassifierCommand, g: &GlobalArgs) -> Result<()> {
    let ClassifierCommand::Train {
        dataset: name,
        data_dir,
        epochs,
        limit,
    } = command;
    let kind = dataset(&name)?;
    ensure!(epochs > 0, "--epochs must be at least 1 (got 0)");
    let info = zoo_eval::classifier::train_and_cache(
        kind,
        data_dir.as_deref(),
        epochs,
        limit,
        &device(g.device)?,
    )?;
    println!(
        "{} classifier: test accuracy {:.2}% after {} epochs on {} images; cached in {}",
        info.dataset,
        100.0 * info.test_accuracy,
        info.epochs,
        info.train_images,
        zoo_eval::classifier::cache_dir().display()
    );
    Ok(())
}

/// `zoo data get` and `zoo data pair`.
fn data(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Get {
            dataset: name,
            data_dir,
        } => {
            if name == "ort-web" {
                let dir = data_dir.unwrap_or_else(web::default_ort_dir);
                println!("{}", get::get_ort_web(&dir)?);
                return Ok(());
            }
            let kind = dataset(&name)?;
            let dir = data_dir.unwrap_or_else(|| default_data_dir(kind));
            println!("{}", get::get(kind, &dir)?);
        }
        DataCommand::Pair {
            pair,
            out,
            data_dir,
            train,
            test,
            unpaired,
            seed,
        } => data_pair(
            &pair,
            &out,
            data_dir.as_deref(),
            (train, test),
            unpaired,
            seed,
        )?,
    }
    Ok(())
}

/// `zoo data pair`.
fn data_pair(
    pair: &str,
    out: &Path,
    data_dir: Option<&Path>,
    (train, test): (Option<usize>, Option<usize>),
    unpaired: bool,
    seed: u64,
) -> Result<()> {
    use zoo_core::data::pair;
    match pair {
        "mnist-invert" => {
            ensure!(
                !unpaired && seed == 0,
                "--unpaired and --seed are options of the emoji pair; mnist-invert is always \
                 unpaired, its images taken in order"
            );
            let counts = pair::PairCounts {
                train: train.unwrap_or(2000),
                test: test.unwrap_or(200),
            };
            pair::make_mnist_invert(data_dir, out, counts)?;
            println!(
                "{}: trainA/ trainB/ {} images each, testA/ testB/ {} each; true mapping: invert",
                out.display(),
                counts.train,
                counts.test
            );
        }
        "emoji" => {
            let split = pair::EmojiSplit {
                test: test.unwrap_or(400),
                train,
                unpaired,
                seed,
            };
            let c = pair::make_emoji(data_dir, out, split)?;
            println!(
                "{}: trainA/ {} and trainB/ {} ({}), testA/ testB/ {} each with the same names \
                 (true counterparts); A = Twemoji, B = Noto, 64x64 RGB",
                out.display(),
                c.train_a,
                c.train_b,
                if unpaired {
                    "disjoint names: unpaired, for cyclegan"
                } else {
                    "the same names: paired, for pix2pix"
                },
                c.test
            );
        }
        other => bail!("unknown pair `{other}`; `zoo data pair` knows mnist-invert and emoji"),
    }
    Ok(())
}

/// The registered model that wrote a run folder.
/// `--direction`: `a2b` or `b2a`.
fn parse_direction(s: &str) -> Result<Direction> {
    match s {
        "a2b" => Ok(Direction::AToB),
        "b2a" => Ok(Direction::BToA),
        other => bail!("unknown --direction `{other}`; use a2b (A to B) or b2a (B to A)"),
    }
}

fn entry_of_run(run_dir: &Path) -> Result<&'static dyn ModelEntry> {
    let (_, info) = RunDir::open(run_dir, None)?;
    registry::find(&info.model)
        .with_context(|| format!("{} was written by another zoo", run_dir.display()))
}

fn default_data_dir(kind: DatasetKind) -> PathBuf {
    match std::env::var_os("ZOO_DATA") {
        Some(root) => PathBuf::from(root).join(kind.name()),
        None => PathBuf::from("data").join(kind.name()),
    }
}
