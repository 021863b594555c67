//! The image history pool (Shrivastava et al. 2017, as in the CycleGAN reference): D sees a
//! mix of current fakes and fakes from earlier steps.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use burn::tensor::Distribution;

/// Up to `capacity` earlier fakes of one domain.
#[derive(Debug, Clone)]
pub struct ImagePool {
    capacity: usize,
    images: Vec<Tensor<4>>,
}

const MAGIC: &[u8; 8] = b"ZOOPOOL1";

impl ImagePool {
    /// An empty pool; capacity 0 disables it (fakes pass through).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            images: Vec::new(),
        }
    }

    /// Images held.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The reference's `query`: while the pool fills, each fake is stored and returned; once
    /// full, each fake is, with probability ½, swapped for a random stored one (which is
    /// returned, the new fake taking its place), else returned as is. Fakes must be detached.
    /// Randomness comes from the device RNG.
    pub fn query(&mut self, fakes: Tensor<4>) -> Tensor<4> {
        if self.capacity == 0 {
            return fakes;
        }
        let n = fakes.dims()[0];
        let device = fakes.device();
        let coins = Tensor::<1>::random([2 * n], Distribution::Uniform(0.0, 1.0), &device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("converted to f32");
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let img = fakes.clone().narrow(0, i, 1);
            if self.images.len() < self.capacity {
                self.images.push(img.clone());
                out.push(img);
            } else if coins.get(2 * i).copied().unwrap_or(1.0) > 0.5 {
                let u = coins.get(2 * i + 1).copied().unwrap_or(0.0) as f64;
                let j = ((u * self.capacity as f64) as usize).min(self.capacity - 1);
                let old = std::mem::replace(&mut self.images[j], img);
                out.push(old);
            } else {
                out.push(img);
            }
        }
        Tensor::cat(out, 0)
    }

    /// Writes the pool (raw little-endian f32 with a small header).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(self.images.len() as u32).to_le_bytes());
        let dims = self.images.first().map_or([0; 4], |t| t.dims());
        for d in &dims[1..] {
            buf.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        for img in &self.images {
            let v = img.clone().into_data().convert::<f32>().try_to_vec::<f32>();
            let v = v.map_err(|e| anyhow::anyhow!("pool image: {e:?}"))?;
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut f = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(&buf)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Replaces the pool's content with what [`ImagePool::save`] wrote.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let bad = || format!("{} is not an image pool written by zoo", path.display());
        ensure!(buf.len() >= 24 && &buf[..8] == MAGIC, bad());
        let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (n, c, h, w) = (
            word(8) as usize,
            word(12) as usize,
            word(16) as usize,
            word(20) as usize,
        );
        let per = c * h * w;
        ensure!(buf.len() == 24 + 4 * n * per, bad());
        ensure!(
            n <= self.capacity,
            "{} holds more images than the pool size",
            path.display()
        );
        self.images = (0..n)
            .map(|k| {
                let start = 24 + 4 * k * per;
                let v: Vec<f32> = buf[start..start + 4 * per]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Tensor::from_data(TensorData::new(v, [1, c, h, w]), device)
            })
            .collect();
        Ok(())
    }
}
