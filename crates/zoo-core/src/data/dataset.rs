//! zoo's image sets as burn-dataset [`Dataset`]s, so that they compose with burn's dataset
//! tools (`PartialDataset`, `ShuffledDataset`, `MapperDataset`, `DataLoader`…). Training
//! itself keeps zoo's [`Batches`](super::Batches): seeded, addressed by a global batch index,
//! so a resumed run sees exactly the batches an uninterrupted one would (datasets.md says why).

use burn_dataset::{Dataset, DatasetError};

use super::ImageSet;

/// One image of a set: `C × S × S` values in [-1, 1] (channel-planar) and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    /// The pixels, scaled as the networks see them.
    pub pixels: Vec<f32>,
    /// The class index, for labelled sets.
    pub label: Option<usize>,
}

impl Dataset<ImageItem> for ImageSet {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        assert!(index < self.len, "index {index} out of {}", self.len);
        let il = self.image_len();
        let pixels = match &self.floats {
            Some(f) => f[index * il..(index + 1) * il].to_vec(),
            None => self.pixels[index * il..(index + 1) * il]
                .iter()
                .map(|&p| p as f32 / 127.5 - 1.0)
                .collect(),
        };
        Ok(ImageItem {
            pixels,
            label: self.labels.as_ref().map(|l| l[index] as usize),
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::prelude::*;
    use burn_dataset::transform::{PartialDataset, ShuffledDataset};

    use super::*;

    #[test]
    fn image_sets_compose_with_burn_dataset_tools() {
        let mut set = ImageSet::synthetic(10, 1, 2);
        set.labels = Some((0..10).collect());
        let set = Arc::new(set);
        // Items equal the tensors zoo batches.
        let item = set.get(3).expect("item");
        let t: Vec<f32> = set
            .tensor(&[3], &Device::flex())
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert_eq!(item.pixels, t);
        assert_eq!(item.label, Some(3));
        let part = PartialDataset::new(set.clone(), 2, 6);
        assert_eq!(part.len(), 4);
        assert_eq!(part.get(0).expect("item").label, Some(2));
        let shuffled = ShuffledDataset::new(part, 5);
        let mut labels: Vec<usize> = shuffled
            .iter()
            .map(|i| i.expect("item").label.expect("labelled"))
            .collect();
        labels.sort();
        assert_eq!(labels, [2, 3, 4, 5]);
    }
}
