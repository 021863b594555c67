//! Labelled image folders (torchvision's and burn-dataset's ImageFolder convention:
//! `ROOT/<class>/*.png`, one sub-folder per class, class indices in sorted name order) and the
//! class names of the built-in sets.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use super::{ImageSet, list_images, load_image_files};
use crate::config::{DataConfig, DatasetKind};

/// Fashion-MNIST's ten classes, label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// The class names of a built-in labelled set (`None` for unlabelled kinds).
pub fn builtin_classes(kind: DatasetKind) -> Option<Vec<String>> {
    match kind {
        DatasetKind::Mnist => Some((0..10).map(|d| d.to_string()).collect()),
        DatasetKind::FashionMnist => Some(FASHION_CLASSES.iter().map(|s| s.to_string()).collect()),
        _ => None,
    }
}

/// The class names of the data a config names: the built-in sets' classes, or the class
/// sub-folders of `data.dir` for `dataset = "folder"`.
pub fn classes_of(cfg: &DataConfig) -> Result<Vec<String>> {
    if let Some(names) = builtin_classes(cfg.dataset) {
        return Ok(names);
    }
    ensure!(
        cfg.dataset == DatasetKind::Folder,
        "data.dataset = \"{}\" has no class labels; a conditional model trains on mnist, \
         fashion-mnist or a folder with one sub-folder per class",
        cfg.dataset.name()
    );
    let dir = cfg.dir.as_deref().context(
        "data.dataset = \"folder\" needs a folder: pass --data-dir DIR (or --set data.dir=DIR)",
    )?;
    Ok(class_dirs(dir)?.into_iter().map(|(n, _)| n).collect())
}

/// The class names of a conditional run: `data.classes` when the run recorded them, else
/// those of its data ([`classes_of`]).
pub fn run_classes(cfg: &DataConfig) -> Result<Vec<String>> {
    if cfg.classes.is_empty() {
        return classes_of(cfg);
    }
    let mut seen = std::collections::HashSet::new();
    for name in &cfg.classes {
        ensure!(
            !name.is_empty() && seen.insert(name.as_str()),
            "data.classes must list distinct, non-empty class names (`{name}` is {})",
            if name.is_empty() { "empty" } else { "repeated" }
        );
    }
    ensure!(
        cfg.classes.len() <= 256,
        "data.classes lists {} classes; zoo supports at most 256",
        cfg.classes.len()
    );
    Ok(cfg.classes.clone())
}

/// The labelled training set a config names (a folder is read one sub-folder per class),
/// conformed to its channels and size, with its class names.
pub fn load_labelled_set(cfg: &DataConfig) -> Result<(ImageSet, Vec<String>)> {
    let names = classes_of(cfg)?;
    if cfg.dataset != DatasetKind::Folder {
        return Ok((super::load_training_set(cfg)?, names));
    }
    let dir = cfg.dir.as_deref().context("data.dir")?;
    load_class_folder(dir, cfg.channels, cfg.image_size, cfg.limit)
}

/// The class sub-folders of `root`, sorted by name (hidden folders skipped).
pub fn class_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(root)
        .with_context(|| format!("cannot read folder {}", root.display()))?;
    let mut dirs = Vec::new();
    for e in entries {
        let path = e
            .with_context(|| format!("cannot read folder {}", root.display()))?
            .path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| !n.starts_with('.'))
            && path.is_dir()
        {
            dirs.push((name, path));
        }
    }
    dirs.sort();
    ensure!(
        !dirs.is_empty(),
        "{} has no class sub-folders; a labelled image folder holds one sub-folder of images per \
         class (ROOT/<class>/*.png)",
        root.display()
    );
    Ok(dirs)
}

/// Loads a labelled image folder: every image of `ROOT/<class>/` (searched recursively) with
/// the class's index, or with a `limit` that many taken from the classes in turn (so that
/// every class keeps images). Returns the set and the class names, index order.
pub fn load_class_folder(
    root: &Path,
    channels: usize,
    size: usize,
    limit: Option<usize>,
) -> Result<(ImageSet, Vec<String>)> {
    let classes = class_dirs(root)?;
    if let Some(n) = limit {
        ensure!(
            n >= classes.len(),
            "data.limit = {n} is below the {} classes of {}; a conditional run needs an image \
             of every class",
            classes.len(),
            root.display()
        );
    }
    let mut per_class = Vec::with_capacity(classes.len());
    for (name, dir) in &classes {
        let found = match list_images(dir) {
            Ok(found) => found,
            // An empty class is the user's layout, not a wrong --data-dir.
            Err(_) if dir.is_dir() => anyhow::bail!(
                "class `{name}` ({}) holds no .png/.jpg/.jpeg images; add images to it or \
                 remove the folder",
                dir.display()
            ),
            Err(e) => return Err(e.context(format!("class `{name}`"))),
        };
        per_class.push(found);
    }
    let mut files = Vec::new();
    let mut of_file = Vec::new();
    match limit {
        None => {
            for (k, found) in per_class.into_iter().enumerate() {
                of_file.extend(std::iter::repeat_n(k, found.len()));
                files.extend(found);
            }
        }
        Some(n) => {
            let longest = per_class.iter().map(Vec::len).max().unwrap_or(0);
            'rounds: for r in 0..longest {
                for (k, found) in per_class.iter().enumerate() {
                    if files.len() == n {
                        break 'rounds;
                    }
                    if let Some(f) = found.get(r) {
                        files.push(f.clone());
                        of_file.push(k);
                    }
                }
            }
        }
    }
    ensure!(
        classes.len() <= 256,
        "{} has {} class folders; zoo supports at most 256 classes",
        root.display(),
        classes.len()
    );
    let (mut set, loaded) = load_image_files(&files, channels, size)?;
    // Unreadable files were skipped: label what made it in.
    let mut labels = Vec::with_capacity(loaded.len());
    let mut next = 0;
    for f in &loaded {
        while files[next] != *f {
            next += 1;
        }
        labels.push(of_file[next] as u8);
    }
    for (k, (name, _)) in classes.iter().enumerate() {
        ensure!(
            labels.contains(&(k as u8)),
            "class `{name}` of {} has no readable image; add images or remove the folder",
            root.display()
        );
    }
    set.labels = Some(labels);
    Ok((set, classes.into_iter().map(|(n, _)| n).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, v: u8) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        image::GrayImage::from_pixel(4, 4, image::Luma([v]))
            .save(path)
            .expect("png");
    }

    #[test]
    fn class_folders_give_sorted_labels() {
        let dir = tempfile::tempdir().expect("tmp");
        png(&dir.path().join("cat/a.png"), 10);
        png(&dir.path().join("cat/b.png"), 20);
        png(&dir.path().join("ant/x/c.png"), 30);
        let (set, names) = load_class_folder(dir.path(), 1, 4, None).expect("loads");
        assert_eq!(names, ["ant", "cat"]);
        assert_eq!(set.len, 3);
        assert_eq!(set.labels.as_deref(), Some(&[0u8, 1, 1][..]));
        // Each image's pixels go with its label.
        assert_eq!(set.pixels[0], 30);
        assert_eq!(set.pixels[16], 10);
        assert_eq!(
            builtin_classes(DatasetKind::Mnist).map(|c| c.len()),
            Some(10)
        );
        assert_eq!(builtin_classes(DatasetKind::Folder), None);
        // A limit takes the classes in turn, so that each keeps images.
        let (set, _) = load_class_folder(dir.path(), 1, 4, Some(2)).expect("loads");
        assert_eq!(set.labels.as_deref(), Some(&[0u8, 1][..]));
        assert_eq!((set.pixels[0], set.pixels[16]), (30, 10));
        let err = load_class_folder(dir.path(), 1, 4, Some(1))
            .expect_err("fewer images than classes")
            .to_string();
        assert!(err.contains("below the 2 classes"), "{err}");
    }

    #[test]
    fn flat_folders_and_empty_classes_are_rejected() {
        let dir = tempfile::tempdir().expect("tmp");
        png(&dir.path().join("a.png"), 1);
        let err = load_class_folder(dir.path(), 1, 4, None)
            .expect_err("flat")
            .to_string();
        assert!(err.contains("no class sub-folders"), "{err}");
        std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
        png(&dir.path().join("full/a.png"), 1);
        let err = format!(
            "{:#}",
            load_class_folder(dir.path(), 1, 4, None).expect_err("empty class")
        );
        assert!(err.contains("class `empty`"), "{err}");
    }
}
