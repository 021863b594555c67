//! Crash-safe file output: everything is written to a temporary name, synced, then renamed,
//! so a reader (or a resumed run) never sees a half-written file that looks complete. And the
//! two guards of input files: only regular files are read ([`read_regular`]: a FIFO would block
//! `open` forever), and an output never lands in or over an input ([`ensure_apart`]).

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// Whether `path` is a regular file (after links): not a folder, FIFO, socket or device.
pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Reads a file that must be a regular file: a FIFO, socket or device is refused before it is
/// opened (opening a FIFO blocks until a writer comes).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        meta.is_file(),
        "{} is not a regular file ({}); pass a file",
        path.display(),
        kind_of(&meta)
    );
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path) -> Result<String> {
    String::from_utf8(read_regular(path)?)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// "a folder", "a FIFO", … for messages.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_file() {
        "a file"
    } else {
        "not a file"
    }
}

/// `path` made absolute and free of `.`, `..` and links as far as it exists (the part that does
/// not exist yet is appended as written, normalised).
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    // The longest prefix that exists, canonicalised; then the rest.
    let parts: Vec<Component> = abs.components().collect();
    for keep in (0..=parts.len()).rev() {
        let head: PathBuf = parts[..keep].iter().collect();
        if let Ok(mut real) = head.canonicalize() {
            for c in &parts[keep..] {
                match c {
                    Component::ParentDir => {
                        real.pop();
                    }
                    Component::CurDir => {}
                    other => real.push(other.as_os_str()),
                }
            }
            return real;
        }
    }
    abs
}

/// Refuses an output folder `out` (flag `out_flag`) that is the input folder `input` (flag
/// `in_flag`), lies inside it or holds it: writing there would overwrite or mix with the inputs.
/// Paths are compared resolved (`..`, links).
pub fn ensure_apart(out: &Path, out_flag: &str, input: &Path, in_flag: &str) -> Result<()> {
    let (o, i) = (resolve(out), resolve(input));
    if o == i {
        bail!(
            "{out_flag} {} is the {in_flag} folder: its files would be overwritten; pass another \
             {out_flag}",
            out.display()
        );
    }
    if o.starts_with(&i) {
        bail!(
            "{out_flag} {} lies inside the {in_flag} folder {}: the outputs would mix with the \
             inputs; pass a {out_flag} outside it",
            out.display(),
            input.display()
        );
    }
    if i.starts_with(&o) {
        bail!(
            "{out_flag} {} holds the {in_flag} folder {}: the outputs would land among the \
             inputs; pass a {out_flag} outside it",
            out.display(),
            input.display()
        );
    }
    Ok(())
}

/// A sibling temporary path for `path` (same folder, so the rename stays on one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A float32 array as NumPy's `.npy` (format 1.0, little-endian, C order), for `np.load`.
pub fn npy_f32(dims: &[usize], values: &[f32]) -> Vec<u8> {
    let shape = match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// Writes `bytes` to `path` atomically (temp file + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Runs `write` on a temporary path, then renames the result to `path`.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Fsyncs a folder so that renames inside it are durable (best effort on platforms without it).
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert!(is_regular(&p) && !is_regular(dir.path()));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        let bad = dir.path().join("missing").join("a.txt");
        assert!(write_atomic(&bad, b"x").is_err());
    }

    #[test]
    fn outputs_apart_from_inputs_resolved() {
        let dir = tempfile::tempdir().expect("tmp");
        let input = dir.path().join("in");
        std::fs::create_dir_all(input.join("sub")).expect("mkdir");
        let same = input.join("sub/..");
        for (out, needle) in [
            (input.clone(), "is the --input folder"),
            (same, "is the --input folder"),
            (input.join("out"), "lies inside"),
            (dir.path().to_path_buf(), "holds the --input"),
        ] {
            let e = ensure_apart(&out, "--out", &input, "--input").expect_err("refused");
            assert!(format!("{e:#}").contains(needle), "{e:#}");
        }
        std::os::unix::fs::symlink(&input, dir.path().join("link")).expect("link");
        assert!(ensure_apart(&dir.path().join("link"), "--out", &input, "--input").is_err());
        assert!(ensure_apart(&dir.path().join("other"), "--out", &input, "--input").is_ok());
        assert!(ensure_apart(&dir.path().join("in2"), "--out", &input, "--input").is_ok());
    }

    #[test]
    fn fifos_are_refused_without_opening_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("x.png");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(ok.success());
        assert!(!is_regular(&fifo));
        let e = read_regular(&fifo).expect_err("refused");
        assert!(format!("{e:#}").contains("a FIFO"), "{e:#}");
    }
}
