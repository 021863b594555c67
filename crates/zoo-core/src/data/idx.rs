//! The IDX format of MNIST and Fashion-MNIST (gzipped or raw).
//!
//! A file is a big-endian header — two zero bytes, a type code (0x08 = unsigned byte), the
//! number of dimensions — then one u32 per dimension, then the data.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes of each dimension.
    pub dims: Vec<usize>,
    /// Row-major data.
    pub data: Vec<u8>,
}

/// The largest IDX file zoo un-gzips (MNIST's training images are 47 MB): a guard against a
/// damaged or hostile file that inflates without end.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Un-gzips `bytes` when they start with the gzip magic; returns them unchanged otherwise.
pub fn gunzip_if_needed(bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    gunzip_at_most(bytes, MAX_IDX_BYTES)
}

fn gunzip_at_most(bytes: Vec<u8>, max: u64) -> std::io::Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(1 << 26));
    flate2::read::GzDecoder::new(bytes.as_slice())
        .take(max + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "it inflates to more than {max} bytes"
        )));
    }
    Ok(out)
}

/// Reads an IDX file, un-gzipping it when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<IdxArray> {
    // A file too large for the memory left is said to be that, not a corrupt download.
    if let Ok(meta) = std::fs::metadata(path) {
        crate::mem::ensure_fits(
            meta.len() as u128,
            &format!("reading {} ({} bytes)", path.display(), meta.len()),
            "the file's size (MNIST's largest file is 47 MB: is this the right file?)",
        )?;
    }
    let raw = crate::io::read_regular(path)?;
    let bytes = gunzip_if_needed(raw).map_err(|e| {
        anyhow::anyhow!(
            "{} is a corrupt or truncated gzip file ({e}); download it again (see datasets.md)",
            path.display()
        )
    })?;
    parse(&bytes).with_context(|| format!("{} is not a valid IDX file", path.display()))
}

/// Parses IDX bytes.
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    ensure!(
        bytes.len() >= 4,
        "it is {} bytes long, shorter than the 4-byte magic number",
        bytes.len()
    );
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        bail!(
            "wrong magic number 0x{magic:08x} (expected 0x00000801 for labels or 0x00000803 for images)"
        );
    }
    let ndim = bytes[3] as usize;
    ensure!(
        (1..=4).contains(&ndim),
        "magic number 0x{magic:08x} declares {ndim} dimensions (expected 1 to 4)"
    );
    let header = 4 + 4 * ndim;
    ensure!(
        bytes.len() >= header,
        "truncated header: {} bytes, need {header}",
        bytes.len()
    );
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .context("dimensions overflow")?;
    let got = bytes.len() - header;
    ensure!(
        got == expected,
        "header says {dims:?} = {expected} bytes of data but the file holds {got}"
    );
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes an array as raw IDX bytes (for tests and demo datasets).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_inflating_past_the_limit_is_refused() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 100_000]).expect("gz");
        let gz = e.finish().expect("gz");
        assert!(gz.len() < 1000, "{} bytes", gz.len());
        let err = gunzip_at_most(gz.clone(), 99_999).expect_err("over the limit");
        assert!(err.to_string().contains("more than 99999 bytes"), "{err}");
        assert_eq!(
            gunzip_at_most(gz, 100_000).expect("at the limit").len(),
            100_000
        );
    }

    #[test]
    fn round_trip_and_corruptions() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode(&[2, 3, 4], &data);
        let a = parse(&bytes).expect("valid");
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data, data);

        let mut bad = bytes.clone();
        bad[2] = 0x0d; // float type code
        assert!(
            parse(&bad)
                .expect_err("must fail")
                .to_string()
                .contains("magic")
        );
        let mut bad = bytes.clone();
        bad[3] = 9;
        assert!(
            parse(&bad)
                .expect_err("must fail")
                .to_string()
                .contains("dimensions")
        );
        let short = &bytes[..bytes.len() - 1];
        assert!(
            parse(short)
                .expect_err("must fail")
                .to_string()
                .contains("holds 23")
        );
        assert!(
            parse(&bytes[..6])
                .expect_err("must fail")
                .to_string()
                .contains("truncated header")
        );
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn truncated_gzip_is_reported() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tmp");
        let bytes = encode(&[100, 10], &[7u8; 1000]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).expect("gz");
        let gz = gz.finish().expect("gz");
        let ok = dir.path().join("ok.gz");
        std::fs::write(&ok, &gz).expect("write");
        assert_eq!(read(&ok).expect("read").dims, vec![100, 10]);
        let cut = dir.path().join("cut.gz");
        std::fs::write(&cut, &gz[..gz.len() / 2]).expect("write");
        let err = format!("{:#}", read(&cut).expect_err("must fail"));
        assert!(err.contains("corrupt or truncated gzip"), "{err}");
    }
}
