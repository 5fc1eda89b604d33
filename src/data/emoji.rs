//! Colour emoji: Twemoji (CC-BY 4.0, Twitter, Inc. and other contributors) and Noto Emoji
//! (Apache-2.0, Google), as the npm packages `emoji-datasource-twitter` and
//! `emoji-datasource-google` 16.0.0 ship them: 64×64 RGBA PNGs, one per emoji and skin tone, with
//! `emoji.json` giving each emoji's category. Fetched with `npm pack`, checked against pinned
//! SHA-256s, composited on white, shrunk to `side`×`side` RGB by area averaging, and cached.
//!
//! The classes are emoji.json's nine categories (its "Component" category, the bare skin-tone
//! swatches and hair styles, is left out). A group is one base emoji: both vendors' drawings
//! and every skin tone of it, so that the held-out emoji (a tenth of each category's) have no
//! recoloured or redrawn twin among the training images.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use super::{DataError, Images, io_err};

/// The two packages and the SHA-256 of their tarballs as the npm registry serves them
/// (measured 2026-12-07).
pub const PACKAGES: [(&str, &str, &str); 2] = [
    ("emoji-datasource-twitter@16.0.0", "twitter", "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877"),
    ("emoji-datasource-google@16.0.0", "google", "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"),
];
/// Credit line for cards, README and the page.
pub const CREDIT: &str = "Twemoji (CC-BY 4.0, Twitter, Inc. and other contributors) and Noto Emoji (Apache-2.0, Google), from emoji-datasource-twitter and emoji-datasource-google 16.0.0";
/// The side the shipped emoji model works at.
pub const SIDE: usize = 32;
/// The side of the packages' PNGs.
pub const SOURCE_SIDE: usize = 64;
/// emoji.json's categories, in its own order, less "Component".
pub const CATEGORIES: [&str; 9] =
    ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects", "Symbols", "Flags"];
/// The share of each category's base emoji held out.
pub const HELD_OUT_SHARE: f64 = 0.1;
pub const SPLIT_SEED: u64 = 2026;

/// Reads the emoji at `side`×`side` from the cache, or fetches, checks and converts them first.
pub fn load_or_fetch(cache: &Path, side: usize) -> Result<Images, DataError> {
    if !(4..=SOURCE_SIDE).contains(&side) {
        return Err(DataError::Invalid(format!("emoji side must be in 4..={SOURCE_SIDE}, got {side}")));
    }
    let converted = cache.join(format!("emoji-16.0.0-{side}.images"));
    if let Some(images) = std::fs::read(&converted).ok().and_then(|b| Images::from_cache(&b)) {
        return Ok(images);
    }
    let mut tarballs = Vec::new();
    for (package, vendor, sha) in PACKAGES {
        tarballs.push((vendor, super::npm_tarball(cache, package, sha)?));
    }
    let images = from_tarballs(&tarballs.iter().map(|(v, b)| (*v, b.as_slice())).collect::<Vec<_>>(), side)?;
    std::fs::write(&converted, images.to_cache()).map_err(|e| io_err(&converted, e))?;
    Ok(images)
}

#[derive(serde::Deserialize)]
struct Entry {
    unified: String,
    image: String,
    category: String,
    #[serde(default)]
    skin_variations: BTreeMap<String, Variation>,
    #[serde(flatten)]
    has: HashMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Variation {
    image: String,
    #[serde(flatten)]
    has: HashMap<String, serde_json::Value>,
}

fn has_image(has: &HashMap<String, serde_json::Value>, vendor: &str) -> bool {
    has.get(&format!("has_img_{vendor}")).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// Converts the packages' tarballs (vendor name, bytes; already checked) into one set: vendor
/// after vendor, emoji in emoji.json's order, each base drawing then its skin tones.
pub fn from_tarballs(tarballs: &[(&str, &[u8])], side: usize) -> Result<Images, DataError> {
    let mut images = Images::empty([3, side, side], CATEGORIES.iter().map(|c| c.to_string()).collect());
    let mut group_of: BTreeMap<String, u32> = BTreeMap::new();
    for &(vendor, bytes) in tarballs {
        let (entries, pngs) = read_package(vendor, bytes)?;
        for entry in &entries {
            let Some(class) = CATEGORIES.iter().position(|&c| c == entry.category) else {
                continue; // "Component"
            };
            let next = group_of.len() as u32;
            let group = *group_of.entry(entry.unified.clone()).or_insert(next);
            let drawings = std::iter::once((&entry.image, &entry.has)).chain(entry.skin_variations.values().map(|v| (&v.image, &v.has)));
            for (file, has) in drawings {
                if !has_image(has, vendor) {
                    continue;
                }
                let png = pngs.get(file.as_str()).ok_or_else(|| DataError::Format(format!("{vendor}: emoji.json names {file}, which the package lacks")))?;
                let rgba = decode_png(png).map_err(|e| DataError::Format(format!("{vendor}/{file}: {e}")))?;
                if (rgba.1, rgba.2) != (SOURCE_SIDE, SOURCE_SIDE) {
                    return Err(DataError::Format(format!("{vendor}/{file}: {}×{}, expected {SOURCE_SIDE}×{SOURCE_SIDE}", rgba.1, rgba.2)));
                }
                let planes = super::planes_on_white(&rgba.0, SOURCE_SIDE, SOURCE_SIDE, 3);
                images.push(&super::resize_area(&planes, [3, SOURCE_SIDE, SOURCE_SIDE], [side, side]), class as u16, group);
            }
        }
    }
    if images.is_empty() {
        return Err(DataError::Format("no emoji images in the packages".into()));
    }
    Ok(images)
}

/// emoji.json and the 64-pixel PNGs (by file name) of one package.
fn read_package(vendor: &str, bytes: &[u8]) -> Result<(Vec<Entry>, HashMap<String, Vec<u8>>), DataError> {
    let fmt = |e: std::io::Error| DataError::Format(format!("{vendor} tarball: {e}"));
    let prefix = format!("package/img/{vendor}/{SOURCE_SIDE}/");
    let (mut entries, mut pngs) = (None, HashMap::new());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().map_err(fmt)? {
        let mut entry = entry.map_err(fmt)?;
        let path = entry.path().map_err(fmt)?.to_string_lossy().to_string();
        if path == "package/emoji.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(fmt)?;
            entries = Some(serde_json::from_str::<Vec<Entry>>(&text).map_err(|e| DataError::Format(format!("{vendor}: emoji.json: {e}")))?);
        } else if let Some(file) = path.strip_prefix(&prefix) {
            let mut png = Vec::new();
            entry.read_to_end(&mut png).map_err(fmt)?;
            pngs.insert(file.to_string(), png);
        }
    }
    let entries = entries.ok_or_else(|| DataError::Format(format!("{vendor}: the package has no emoji.json")))?;
    Ok((entries, pngs))
}

/// Any PNG as 8-bit RGBA: (pixels, width, height).
pub fn decode_png(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize), String> {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    Ok((rgba.into_raw(), w as usize, h as usize))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PNG of a w×h RGBA picture.
    pub fn png(rgba: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut out), rgba, w, h, image::ExtendedColorType::Rgba8).unwrap();
        out
    }

    /// A package shaped like emoji-datasource-VENDOR: emoji.json with a smiley (two skin tones,
    /// one missing for this vendor), a flag and a Component, and their 64×64 PNGs.
    pub fn package(vendor: &str, colour: [u8; 3]) -> Vec<u8> {
        let json = format!(
            r#"[{{"unified":"1F600","image":"1f600.png","category":"Smileys & Emotion","has_img_{vendor}":true,
                 "skin_variations":{{"1F3FB":{{"image":"1f600-1f3fb.png","has_img_{vendor}":true}},"1F3FC":{{"image":"1f600-1f3fc.png","has_img_{vendor}":false}}}}}},
               {{"unified":"1F1EB-1F1F7","image":"1f1eb-1f1f7.png","category":"Flags","has_img_{vendor}":true}},
               {{"unified":"1F3FB","image":"1f3fb.png","category":"Component","has_img_{vendor}":true}}]"#
        );
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut add = |path: String, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        };
        add("package/emoji.json".into(), json.as_bytes());
        // Left half opaque colour, right half transparent.
        let rgba: Vec<u8> = (0..64 * 64).flat_map(|p| if p % 64 < 32 { [colour[0], colour[1], colour[2], 255] } else { [0, 0, 0, 0] }).collect();
        for file in ["1f600.png", "1f600-1f3fb.png", "1f1eb-1f1f7.png", "1f3fb.png"] {
            add(format!("package/img/{vendor}/64/{file}"), &png(&rgba, 64, 64));
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// Two vendors × (smiley + one skin tone + flag) = 6 images at 8×8×3, the Component and the
    /// vendor's missing skin tone left out; a vendor's two drawings of one emoji share a group;
    /// the left half keeps the colour and the transparent right half is white.
    #[test]
    fn packages_convert_to_grouped_colour_images() {
        let (a, b) = (package("twitter", [200, 0, 0]), package("google", [0, 0, 200]));
        let images = from_tarballs(&[("twitter", &a), ("google", &b)], 8).unwrap();
        assert_eq!(images.shape, [3, 8, 8]);
        assert_eq!(images.len(), 6);
        assert_eq!(images.labels, vec![0, 0, 8, 0, 0, 8]);
        assert_eq!(images.groups, vec![0, 0, 1, 0, 0, 1]);
        let first = images.image(0);
        assert_eq!((first[0], first[64], first[128]), (200, 0, 0), "left: red");
        assert_eq!((first[7], first[64 + 7], first[128 + 7]), (255, 255, 255), "right: white");
        assert_eq!(images.image(3)[128], 200, "the second vendor's blue");
    }

    #[test]
    fn a_package_missing_a_named_png_is_refused_by_name() {
        let mut bad = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let json = r#"[{"unified":"1F600","image":"1f600.png","category":"Smileys & Emotion","has_img_twitter":true}]"#;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        bad.append_data(&mut header, "package/emoji.json", json.as_bytes()).unwrap();
        let bytes = bad.into_inner().unwrap().finish().unwrap();
        let err = from_tarballs(&[("twitter", &bytes)], 8).unwrap_err().to_string();
        assert!(err.contains("1f600.png"), "{err}");
    }
}
