//! A folder of the user's own pictures as a training set: every PNG or JPEG under it (any size),
//! made square by a centre crop or by white padding, shrunk by area averaging to `side`×`side`,
//! composited on white, RGB or grey. If every picture sits in a subfolder, the subfolders'
//! names are the classes (sorted); otherwise the set has one class, "image". Files with other
//! extensions are skipped and counted; a PNG or JPEG that does not decode is an error naming it,
//! so that a broken file is found, not silently dropped.

use std::path::{Path, PathBuf};

use super::{DataError, Images};

pub const DEFAULT_SIDE: usize = 32;
/// The share of each class's pictures held out.
pub const HELD_OUT_SHARE: f64 = 0.1;
pub const SPLIT_SEED: u64 = 2026;
/// At most this many pictures (a folder of more is refused rather than read for hours).
pub const MAX_IMAGES: usize = 200_000;

/// How a picture that is not square becomes square.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The largest centred square.
    #[default]
    Crop,
    /// The whole picture, centred on a white square.
    Pad,
}

impl std::str::FromStr for Fit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "crop" => Ok(Fit::Crop),
            "pad" => Ok(Fit::Pad),
            _ => Err(format!("expected crop or pad, got `{s}`")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FolderOptions {
    pub path: PathBuf,
    pub side: usize,
    pub fit: Fit,
    /// 3 (RGB) or 1 (grey).
    pub channels: usize,
}

/// Reads the pictures under the folder (one group each).
pub fn load(options: &FolderOptions) -> Result<Images, DataError> {
    let FolderOptions { path, side, fit, channels } = options;
    if !(2..=256).contains(side) {
        return Err(DataError::Invalid(format!("side must be in 2..=256, got {side}")));
    }
    if ![1, 3].contains(channels) {
        return Err(DataError::Invalid(format!("channels must be 1 or 3, got {channels}")));
    }
    let files = pictures(path)?;
    if files.is_empty() {
        return Err(DataError::Invalid(format!("{}: no PNG or JPEG pictures in it", path.display())));
    }
    if files.len() > MAX_IMAGES {
        return Err(DataError::Invalid(format!("{}: {} pictures, at most {MAX_IMAGES}", path.display(), files.len())));
    }
    // Classes: the first path component under the folder, if every picture has one.
    let class_of = |f: &Path| -> Option<String> {
        let rel = f.strip_prefix(path).ok()?;
        (rel.components().count() > 1).then(|| rel.components().next().unwrap().as_os_str().to_string_lossy().to_string())
    };
    let labelled = files.iter().all(|f| class_of(f).is_some());
    let mut classes: Vec<String> = if labelled { files.iter().filter_map(|f| class_of(f)).collect() } else { vec!["image".into()] };
    classes.sort();
    classes.dedup();
    let mut images = Images::empty([*channels, *side, *side], classes.clone());
    for (i, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).map_err(|e| super::io_err(file, e))?;
        let bad = |reason: String| DataError::BadImage { path: file.display().to_string(), reason };
        let picture = image::load_from_memory(&bytes).map_err(|e| bad(format!("not a readable PNG or JPEG ({e})")))?.to_rgba8();
        let (w, h) = (picture.width() as usize, picture.height() as usize);
        if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
            return Err(bad(format!("{w}×{h} pixels: sides must be in 1..=16384")));
        }
        let square = squared(picture.as_raw(), w, h, *fit);
        let n = match fit { Fit::Crop => w.min(h), Fit::Pad => w.max(h) };
        let planes = super::planes_on_white(&square, n, n, *channels);
        let label = if labelled { classes.iter().position(|c| Some(c) == class_of(file).as_ref()).unwrap() } else { 0 };
        images.push(&super::resize_area(&planes, [*channels, n, n], [*side, *side]), label as u16, i as u32);
    }
    Ok(images)
}

/// The PNG and JPEG files under `dir`, sorted by path (so every run reads the same set in the
/// same order); hidden files and folders are passed over.
pub fn pictures(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| super::io_err(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| super::io_err(&d, e))?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str())) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An RGBA picture made square: the centred n×n crop (n = min side) or the picture centred on
/// an n×n transparent square (n = max side), which compositing then turns white.
fn squared(rgba: &[u8], w: usize, h: usize, fit: Fit) -> Vec<u8> {
    match fit {
        Fit::Crop => {
            let n = w.min(h);
            let (x0, y0) = ((w - n) / 2, (h - n) / 2);
            (0..n).flat_map(|y| rgba[4 * ((y0 + y) * w + x0)..4 * ((y0 + y) * w + x0 + n)].iter().copied()).collect()
        }
        Fit::Pad => {
            let n = w.max(h);
            let (x0, y0) = ((n - w) / 2, (n - h) / 2);
            let mut out = vec![0u8; 4 * n * n];
            for y in 0..h {
                out[4 * ((y0 + y) * n + x0)..4 * ((y0 + y) * n + x0 + w)].copy_from_slice(&rgba[4 * y * w..4 * (y + 1) * w]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, rgba: &[u8], w: u32, h: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, crate::data::emoji::tests::png(rgba, w, h)).unwrap();
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scorefield-folder-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    /// Subfolders become classes; a 4×2 picture, half red half blue, cropped to its centre 2×2
    /// keeps one column of each, padded it is centred on white; other files are skipped.
    #[test]
    fn a_folder_of_pictures_becomes_a_labelled_set() {
        let dir = temp("labelled");
        let rgba: Vec<u8> = (0..8).flat_map(|p| if p % 4 < 2 { [255, 0, 0, 255] } else { [0, 0, 255, 255] }).collect();
        write_png(&dir.join("cats/a.png"), &rgba, 4, 2);
        write_png(&dir.join("dogs/b.PNG"), &rgba, 4, 2);
        std::fs::write(dir.join("dogs/notes.txt"), "not a picture").unwrap();
        let crop = load(&FolderOptions { path: dir.clone(), side: 2, fit: Fit::Crop, channels: 3 }).unwrap();
        assert_eq!(crop.classes, vec!["cats", "dogs"]);
        assert_eq!(crop.labels, vec![0, 1]);
        assert_eq!(crop.image(0), &[255, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 255], "R plane, G plane, B plane");
        let pad = load(&FolderOptions { path: dir.clone(), side: 4, fit: Fit::Pad, channels: 1 }).unwrap();
        // Grey: red and blue are 85, the padding rows (top and bottom) white.
        assert_eq!(&pad.image(0)[..8], &[255, 255, 255, 255, 85, 85, 85, 85]);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A file named .png that is not one is an error naming the file.
    #[test]
    fn a_broken_picture_is_named() {
        let dir = temp("broken");
        write_png(&dir.join("good.png"), &[0, 0, 0, 255], 1, 1);
        std::fs::write(dir.join("bad.png"), b"\x89PNG but not really").unwrap();
        let err = load(&FolderOptions { path: dir.clone(), side: 4, fit: Fit::Crop, channels: 3 }).unwrap_err();
        assert!(matches!(err, DataError::BadImage { .. }) && err.to_string().contains("bad.png"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
