//! Fuzzing the loaders of user files: the IDX reader (raw and gzip), the image loader and the
//! config parser (files and `--set`). A proptest suite rather than cargo-fuzz, which needs a
//! nightly toolchain and a sanitizer-instrumented build of burn that CI cannot afford.
//!
//! Inputs are seed files from `tests/fuzz/corpus/` (and the shipped `configs/`) with up to
//! eight random mutations each: bit flips, byte overwrites with boundary values, inserted and
//! deleted runs, truncation, splices of another seed. The property is always the same: zoo
//! returns `Ok` or an `Err`, never panics (and a decoded image has the requested size). Each
//! target runs for a bounded time, see [`fuzz`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed files of one target.
fn seeds(dirs: &[&str], ext: &[&str]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in dirs {
        let dir = repo().join(d);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                ext.is_empty()
                    || p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| ext.contains(&x))
            })
            .collect();
        files.sort();
        out.extend(files.iter().map(|f| std::fs::read(f).expect("seed")));
    }
    assert!(!out.is_empty(), "no seeds in {dirs:?}");
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Overwrite(Index, u8),
    Boundary(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
    Truncate(Index),
    Splice(Index, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        (any::<Index>(), 0..6u8).prop_map(|(i, k)| Mutation::Boundary(i, k)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1..32u8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(s, a, b)| Mutation::Splice(s, a, b)),
    ]
}

/// Overwrites 4 bytes at `at` with a boundary value (0, 1, 0xff…, 0x7fff…, 0x8000…, 2^16).
fn boundary(v: &mut [u8], at: usize, k: u8) {
    let word: u32 = match k {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => i32::MAX as u32,
        4 => 0x8000_0000,
        _ => 1 << 16,
    };
    for (i, b) in word.to_be_bytes().iter().enumerate() {
        if let Some(x) = v.get_mut(at + i) {
            *x = *b;
        }
    }
}

fn apply(mut v: Vec<u8>, muts: &[Mutation], seeds: &[Vec<u8>]) -> Vec<u8> {
    for m in muts {
        let n = v.len().max(1);
        match m {
            Mutation::FlipBit(i, b) => {
                if !v.is_empty() {
                    let at = i.index(n);
                    v[at] ^= 1 << b;
                }
            }
            Mutation::Overwrite(i, x) => {
                if !v.is_empty() {
                    let at = i.index(n);
                    v[at] = *x;
                }
            }
            Mutation::Boundary(i, k) => boundary(&mut v, i.index(n), *k),
            Mutation::Insert(i, bytes) => {
                let at = i.index(v.len() + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(i, len) => {
                if !v.is_empty() {
                    let at = i.index(n);
                    let end = (at + *len as usize).min(v.len());
                    v.drain(at..end);
                }
            }
            Mutation::Truncate(i) => v.truncate(i.index(v.len() + 1)),
            Mutation::Splice(s, a, b) => {
                let other = &seeds[s.index(seeds.len())];
                let from = a.index(other.len().max(1)).min(other.len());
                let at = b.index(v.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

/// A seed with mutations.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), prop::collection::vec(mutation(), 0..8)).prop_map(move |(i, muts)| {
        let seed = seeds[i.index(seeds.len())].clone();
        apply(seed, &muts, &seeds)
    })
}

/// Runs `check` on inputs from `strategy` for `ZOO_FUZZ_SECONDS` (default 30), in rounds of
/// 500 cases with seeds `ZOO_FUZZ_SEED + round` (the base seed is printed, so a run can be
/// replayed). A panic or failed check is shrunk by proptest, stored in
/// `tests/fuzz.proptest-regressions` (replayed first from then on) and fails the test.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seconds: f64 = std::env::var("ZOO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0);
    let base = crate::util::seed_from_env("ZOO_FUZZ_SEED");
    let runs = AtomicU64::new(0);
    let start = std::time::Instant::now();
    let mut round = 0;
    while round == 0 || start.elapsed().as_secs_f64() < seconds {
        let mut runner = TestRunner::new(ProptestConfig {
            cases: 500,
            rng_seed: RngSeed::Fixed(base.wrapping_add(round)),
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
                "proptest-regressions",
            ))),
            max_shrink_time: 60_000,
            ..ProptestConfig::default()
        });
        if let Err(e) = runner.run(&strategy, |v| {
            runs.fetch_add(1, Ordering::Relaxed);
            check(v)
        }) {
            panic!("fuzz {name} (ZOO_FUZZ_SEED={base}, round {round}): {e}");
        }
        round += 1;
    }
    eprintln!(
        "fuzz {name}: {} inputs in {:.0} s, no panic (ZOO_FUZZ_SEED={base})",
        runs.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}

/// The config parser as `zoo train vanilla --config FILE --set …` runs it.
fn resolve(file: &Path, sets: &[String]) -> anyhow::Result<()> {
    zoo_train::tasks::fresh_config::<zoo_vanilla::Vanilla>(Some(file), sets, Vec::new()).map(|_| ())
}

#[test]
fn idx_reader() {
    fuzz(
        "idx",
        mutated(seeds(&["tests/fuzz/corpus/idx"], &[])),
        |bytes| {
            let _ = zoo_core::data::idx::parse(&bytes);
            if let Ok(raw) = zoo_core::data::idx::gunzip_if_needed(bytes) {
                let _ = zoo_core::data::idx::parse(&raw);
            }
            Ok(())
        },
    );
}

#[test]
fn image_loader() {
    fuzz(
        "image",
        (
            mutated(seeds(&["tests/fuzz/corpus/image"], &[])),
            1..40usize,
        ),
        |(bytes, size)| {
            if let Ok(img) = zoo_core::data::decode_image(&bytes, size) {
                prop_assert_eq!((img.width() as usize, img.height() as usize), (size, size));
            }
            Ok(())
        },
    );
}

#[test]
fn config_parser() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("c.toml");
    fuzz(
        "config",
        (
            mutated(seeds(&["configs", "tests/fuzz/corpus/config"], &["toml"])),
            mutated(seeds(&["tests/fuzz/corpus/config"], &["txt"])),
        ),
        |(text, set)| {
            std::fs::write(&file, &text).expect("write");
            let sets: Vec<String> = String::from_utf8_lossy(&set)
                .lines()
                .map(str::to_string)
                .collect();
            let _ = resolve(&file, &sets);
            let _ = resolve(&file, &[]);
            Ok(())
        },
    );
}

#[test]
fn the_seeds_are_valid_input() {
    // The mutations start from files the readers accept.
    for s in seeds(&["tests/fuzz/corpus/image"], &[]) {
        zoo_core::data::decode_image(&s, 8).expect("an image seed decodes");
    }
    for name in [
        "images-3x28x28",
        "images-3x28x28.gz",
        "labels-3.gz",
        "four-dims",
    ] {
        let raw = std::fs::read(repo().join("tests/fuzz/corpus/idx").join(name)).expect("seed");
        let bytes = zoo_core::data::idx::gunzip_if_needed(raw).expect("gzip");
        zoo_core::data::idx::parse(&bytes).expect("an IDX seed parses");
    }
    let dir = tempfile::tempdir().expect("tmp");
    for name in [
        "configs/vanilla.toml",
        "configs/vanilla-toy.toml",
        "tests/fuzz/corpus/config/sparse.toml",
        "tests/fuzz/corpus/config/toy.toml",
    ] {
        let file = dir.path().join("c.toml");
        std::fs::copy(repo().join(name), &file).expect("copy");
        resolve(&file, &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}
