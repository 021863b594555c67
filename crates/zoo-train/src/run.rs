//! The run folder `<out>/<model>-<timestamp>/` and its checkpoints.
//!
//! ```text
//! run.toml            model name, zoo version, creation time
//! config.toml         the resolved config
//! metrics.csv         one row per logged step
//! losses.png          the live figure
//! samples/step_XXXXXX.png
//! checkpoints/latest  name of the newest complete checkpoint
//! checkpoints/step_XXXXXX/{generator,discriminator,optim_g,optim_d}.bpk + state.toml
//! ```
//! A checkpoint is written into a temporary folder, synced, and renamed into place; only
//! then does `latest` (itself written atomically) point at it. A crash at any moment leaves
//! the previous checkpoint intact and `latest` naming a complete one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use zoo_core::io::{sync_dir, write_atomic};

/// `run.toml`: what a run folder is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// The registry name of the model.
    pub model: String,
    /// zoo's version when the run was created.
    pub zoo_version: String,
    /// Creation time (RFC 3339, UTC).
    pub created: String,
}

/// `state.toml` inside a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// Generator updates completed.
    pub step: u64,
    /// The run's seed (every random stream derives from it and the step).
    pub seed: u64,
    /// Total steps the run was configured for when this was written.
    pub total_steps: u64,
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `<out>/<model>-<YYYYmmdd-HHMMSS>[-k]/` (never reusing an existing folder).
    pub fn create(out: &Path, model: &str) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| {
            format!(
                "cannot create the output folder {}; choose a writable --out",
                out.display()
            )
        })?;
        let now = std::time::SystemTime::now();
        let stamp: String = humantime::format_rfc3339_seconds(now)
            .to_string()
            .chars()
            .filter_map(|c| match c {
                'T' => Some('-'),
                '-' | ':' | 'Z' => None,
                c => Some(c),
            })
            .collect();
        for k in 0..1000 {
            let name = if k == 0 {
                format!("{model}-{stamp}")
            } else {
                format!("{model}-{stamp}-{k}")
            };
            let path = out.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let run = RunDir { path };
                    let info = RunInfo {
                        model: model.to_string(),
                        zoo_version: env!("CARGO_PKG_VERSION").to_string(),
                        created: humantime::format_rfc3339_seconds(now).to_string(),
                    };
                    write_atomic(
                        &run.path.join("run.toml"),
                        toml::to_string(&info)?.as_bytes(),
                    )?;
                    std::fs::create_dir_all(run.samples_dir())
                        .and_then(|()| std::fs::create_dir_all(run.checkpoints_dir()))
                        .with_context(|| {
                            format!("cannot create folders in {}", run.path.display())
                        })?;
                    return Ok(run);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create a run folder in {}; choose a writable --out",
                            out.display()
                        )
                    });
                }
            }
        }
        bail!("too many runs named {model}-{stamp} in {}", out.display())
    }

    /// Opens an existing run folder, checking it belongs to `model` when given.
    pub fn open(path: &Path, model: Option<&str>) -> Result<(Self, RunInfo)> {
        ensure!(
            path.is_dir(),
            "{} is not a folder; pass a run folder created by `zoo train` (e.g. runs/vanilla-…)",
            path.display()
        );
        let info_path = path.join("run.toml");
        ensure!(
            info_path.is_file(),
            "{} is not a zoo run (no run.toml); pass a folder created by `zoo train`",
            path.display()
        );
        let text = std::fs::read_to_string(&info_path)
            .with_context(|| format!("cannot read {}", info_path.display()))?;
        let info: RunInfo = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is corrupt: {}", info_path.display(), e.message()))?;
        if let Some(m) = model {
            ensure!(
                info.model == m,
                "{} is a `{}` run, not `{m}`; use `zoo train {} --resume {}`",
                path.display(),
                info.model,
                info.model,
                path.display()
            );
        }
        Ok((
            RunDir {
                path: path.to_path_buf(),
            },
            info,
        ))
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    /// `metrics.csv`.
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }
    /// `samples/`.
    pub fn samples_dir(&self) -> PathBuf {
        self.path.join("samples")
    }
    /// `checkpoints/`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// Takes the run's lock (`.lock`, held by the returned guard; the file is removed when the
    /// guard drops and released by the OS if the process dies), so two processes never train
    /// one run at once.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.path.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} is being trained by another zoo process; wait for it to finish (or stop it) \
                 before resuming",
                self.path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // The lock file of a process that just finished is removed after we opened it: then
        // the lock we hold is on a file no one else can see. Only the file at the path counts.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let same = std::fs::metadata(&path)
                .and_then(|at_path| Ok(at_path.ino() == file.metadata()?.ino()))
                .unwrap_or(false);
            if !same {
                drop(file);
                return self.lock();
            }
        }
        Ok(RunLock { path, _file: file })
    }

    /// Removes the temporary files and folders a killed process left behind (`.name.PID.tmp`
    /// in the run folder, `checkpoints/` and `samples/`): they were never renamed into place,
    /// so nothing refers to them.
    pub fn remove_partial_files(&self) {
        for dir in [
            self.path.clone(),
            self.checkpoints_dir(),
            self.samples_dir(),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !(name.starts_with('.') && name.ends_with(".tmp")) {
                    continue;
                }
                let p = e.path();
                let removed = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                match removed {
                    Ok(()) => tracing::info!("removed {}, left by an interrupted run", p.display()),
                    Err(err) => tracing::warn!("cannot remove {}: {err}", p.display()),
                }
            }
        }
    }

    /// The newest complete, intact checkpoint, if any: the one `checkpoints/latest` names when
    /// it verifies against its manifest, else (with a warning) the newest older one that does.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let dir = self.checkpoints_dir();
        let named = self.read_pointer("latest", "step");
        let mut damage = None;
        if let Some(ck) = &named {
            match ck.state().and_then(|_| ck.verify()) {
                Ok(()) => return Ok(named),
                Err(e) => {
                    tracing::warn!("{e:#}; looking for an older checkpoint");
                    if ck.state().is_ok() {
                        damage = Some(e);
                    }
                }
            }
        }
        // No pointer (or a bad one): the newest folder with a readable state that verifies.
        let mut found: Vec<(u64, Checkpoint)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !is_checkpoint_name(&name, "step") || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let ck = Checkpoint { path: e.path() };
                if named.as_ref().is_some_and(|n| n.path == ck.path) {
                    continue;
                }
                if let Ok(s) = ck.state() {
                    found.push((s.step, ck));
                }
            }
        }
        found.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
        for (_, ck) in found {
            match ck.verify() {
                Ok(()) => {
                    if named.is_some() {
                        tracing::warn!("using {}", ck.path.display());
                    }
                    return Ok(Some(ck));
                }
                Err(e) => {
                    tracing::warn!("{e:#}; skipped");
                    damage.get_or_insert(e);
                }
            }
        }
        // Complete checkpoints that are all damaged: an error, not "no checkpoint yet" (which
        // would train the run again from step 0 over them).
        match damage {
            Some(e) => Err(e.context(format!(
                "{} has no intact checkpoint left (the damaged ones stay for inspection); \
                 start a new run",
                self.path.display()
            ))),
            None => Ok(None),
        }
    }

    /// The checkpoint a pointer file of `checkpoints/` (`latest`, `best`) names: a regular
    /// file, not a link, holding one name `<prefix>_NNNNNN` of a folder right there. Anything
    /// else (a path with `/` or `..`, an absolute path, a link, a huge file) is ignored with a
    /// warning that never prints its content.
    fn read_pointer(&self, pointer: &str, prefix: &str) -> Option<Checkpoint> {
        let path = self.checkpoints_dir().join(pointer);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let refuse = |why: &str| {
            tracing::warn!("{} {why}; ignored", path.display());
            None
        };
        if meta.file_type().is_symlink() {
            return refuse("is a link, not a pointer file zoo wrote");
        }
        if !meta.is_file() || meta.len() > 64 {
            return refuse("is not a pointer file zoo wrote");
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let name = text.trim();
        if !is_checkpoint_name(name, prefix) {
            return refuse(&format!(
                "does not hold a checkpoint name of this folder ({prefix}_NNNNNN)"
            ));
        }
        Some(Checkpoint {
            path: self.checkpoints_dir().join(name),
        })
    }

    /// Writes a checkpoint atomically: `fill` writes the files into a temporary folder, which is
    /// then renamed to `step_XXXXXX` and made `latest`; older ones beyond `keep` are removed.
    pub fn save_checkpoint(
        &self,
        state: CheckpointState,
        keep: usize,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Checkpoint> {
        self.save_as("step", "latest", state, keep, fill)
    }

    /// Writes the best checkpoint so far (by an evaluation metric): `best_XXXXXX`, pointed to by
    /// `checkpoints/best`; only the newest best is kept.
    pub fn save_best(
        &self,
        state: CheckpointState,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Checkpoint> {
        self.save_as("best", "best", state, 1, fill)
    }

    /// The checkpoint `checkpoints/best` points to, if it is complete and intact.
    pub fn best_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let Some(ck) = self.read_pointer("best", "best") else {
            return Ok(None);
        };
        match ck.state().and_then(|_| ck.verify()) {
            Ok(()) => Ok(Some(ck)),
            Err(e) => {
                tracing::warn!("{e:#}; no best checkpoint");
                Ok(None)
            }
        }
    }

    fn save_as(
        &self,
        prefix: &str,
        pointer: &str,
        state: CheckpointState,
        keep: usize,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Checkpoint> {
        let dir = self.checkpoints_dir();
        let name = format!("{prefix}_{:06}", state.step);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create checkpoint folder {}", tmp.display()))?;
        let written = fill(&tmp).and_then(|()| {
            // The state file, then the manifest of every file's sha256, go last: a folder with
            // a state.toml is complete, and the manifest tells an intact one.
            write_atomic(&tmp.join("state.toml"), toml::to_string(&state)?.as_bytes())?;
            write_manifest(&tmp)?;
            for e in std::fs::read_dir(&tmp)? {
                let f = std::fs::File::open(e?.path())?;
                f.sync_all()?;
            }
            sync_dir(&tmp);
            Ok(())
        });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.context(format!(
                "cannot write checkpoint {name} (the previous checkpoint is intact: free disk \
                 space or fix the folder's permissions, then continue with --resume)"
            )));
        }
        let final_path = dir.join(&name);
        if final_path.exists() {
            std::fs::remove_dir_all(&final_path)
                .with_context(|| format!("cannot replace {}", final_path.display()))?;
        }
        std::fs::rename(&tmp, &final_path)
            .with_context(|| format!("cannot move checkpoint into {}", final_path.display()))?;
        sync_dir(&dir);
        write_atomic(&dir.join(pointer), name.as_bytes())?;
        sync_dir(&dir);
        self.prune(prefix, keep, state.step);
        Ok(Checkpoint { path: final_path })
    }

    fn prune(&self, prefix: &str, keep: usize, newest: u64) {
        let Ok(entries) = std::fs::read_dir(self.checkpoints_dir()) else {
            return;
        };
        let mut steps: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let step = name
                    .strip_prefix(prefix)?
                    .strip_prefix('_')?
                    .parse::<u64>()
                    .ok()?;
                Some((step, e.path()))
            })
            .filter(|(s, _)| *s <= newest)
            .collect();
        steps.sort();
        let n = steps.len();
        for (_, p) in steps.into_iter().take(n.saturating_sub(keep)) {
            if let Err(e) = std::fs::remove_dir_all(&p) {
                tracing::warn!("cannot remove old checkpoint {}: {e}", p.display());
            }
        }
    }
}

/// One checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Its path.
    pub path: PathBuf,
}

impl Checkpoint {
    /// Reads `state.toml`.
    pub fn state(&self) -> Result<CheckpointState> {
        let p = self.path.join("state.toml");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is corrupt: {}", p.display(), e.message()))
    }
    /// Path of a file in the checkpoint.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Checks every file against the checkpoint's manifest (sha256), naming the first that
    /// differs. A checkpoint written before manifests existed has none and passes.
    pub fn verify(&self) -> Result<()> {
        let path = self.path.join(MANIFEST);
        if !path.exists() {
            return Ok(());
        }
        let damaged =
            |what: String| anyhow::anyhow!("checkpoint {} is damaged: {what}", self.path.display());
        let text = zoo_core::io::read_regular_text(&path)
            .map_err(|e| damaged(format!("its {MANIFEST} cannot be read ({e:#})")))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| damaged(format!("its {MANIFEST} is corrupt ({})", e.message())))?;
        for (name, want) in &manifest.sha256 {
            ensure!(
                is_plain_name(name),
                damaged(format!("its {MANIFEST} names `{name}`, not a file of it"))
            );
            let got = sha256_file(&self.path.join(name))
                .map_err(|e| damaged(format!("{name} cannot be read ({e:#})")))?;
            ensure!(
                &got == want,
                damaged(format!("{name} does not match its recorded sha256"))
            );
        }
        Ok(())
    }
}

/// The manifest of a checkpoint: every other file's sha256, written last.
pub const MANIFEST: &str = "manifest.toml";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    sha256: std::collections::BTreeMap<String, String>,
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `dir`'s manifest: the sha256 of each of its files (sorted, so equal checkpoints
/// write equal manifests).
fn write_manifest(dir: &Path) -> Result<()> {
    let mut sha256 = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == MANIFEST || !e.file_type()?.is_file() || name.starts_with('.') {
            continue;
        }
        sha256.insert(name, sha256_file(&e.path())?);
    }
    let text = format!(
        "# sha256 of every file of this checkpoint, written last by zoo\n{}",
        toml::to_string(&Manifest { sha256 }).context("serialising the manifest")?
    );
    write_atomic(&dir.join(MANIFEST), text.as_bytes())
}

/// A file name without any path (no `/`, no `..`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}

/// `<prefix>_NNNNNN`: the name of a checkpoint folder.
fn is_checkpoint_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_rotate_and_latest_points_to_a_complete_one() {
        let out = tempfile::tempdir().expect("tmp");
        let run = RunDir::create(out.path(), "toy").expect("create");
        let run2 = RunDir::create(out.path(), "toy").expect("create");
        assert_ne!(
            run.path, run2.path,
            "two runs in one second get two folders"
        );
        assert!(run.latest_checkpoint().expect("ok").is_none());
        for step in [10, 20, 30] {
            run.save_checkpoint(
                CheckpointState {
                    step,
                    seed: 1,
                    total_steps: 30,
                },
                2,
                |dir| Ok(std::fs::write(dir.join("generator.bpk"), b"g")?),
            )
            .expect("save");
        }
        let latest = run.latest_checkpoint().expect("ok").expect("some");
        assert_eq!(latest.state().expect("state").step, 30);
        let names: Vec<String> = std::fs::read_dir(run.checkpoints_dir())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}"); // latest + two kept
        assert!(!names.contains(&"step_000010".to_string()));

        // A failing write leaves the previous checkpoint as latest and no temp folder.
        let err = run.save_checkpoint(
            CheckpointState {
                step: 40,
                seed: 1,
                total_steps: 40,
            },
            2,
            |_| anyhow::bail!("disk full"),
        );
        assert!(format!("{:#}", err.expect_err("fails")).contains("previous checkpoint is intact"));
        assert_eq!(
            run.latest_checkpoint()
                .expect("ok")
                .expect("some")
                .state()
                .expect("state")
                .step,
            30
        );
        // A dangling pointer falls back to the newest complete folder.
        std::fs::write(run.checkpoints_dir().join("latest"), "step_000099").expect("write");
        assert_eq!(
            run.latest_checkpoint()
                .expect("ok")
                .expect("some")
                .state()
                .expect("state")
                .step,
            30
        );
    }

    #[test]
    fn open_checks_the_model() {
        let out = tempfile::tempdir().expect("tmp");
        let run = RunDir::create(out.path(), "toy").expect("create");
        assert!(RunDir::open(&run.path, Some("toy")).is_ok());
        let err = RunDir::open(&run.path, Some("other")).expect_err("wrong model");
        assert!(err.to_string().contains("is a `toy` run"), "{err}");
        let err = RunDir::open(out.path(), None).expect_err("not a run");
        assert!(err.to_string().contains("not a zoo run"), "{err}");
    }
}

/// The lock of a run being trained ([`RunDir::lock`]): removes `.lock` when dropped, so a
/// finished run holds no stale lock file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held: a process waiting for it finds it gone and takes a new one.
        let _ = std::fs::remove_file(&self.path);
    }
}
