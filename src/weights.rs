//! Model files: `NAME.safetensors` (the network's tensors, written and read through Burn's
//! SafeTensors store) and `NAME.json`, the model card (architecture, SDE, image shape and range,
//! data set, training record, measured metrics).
//!
//! Loading checks everything before Burn sees the bytes: the safetensors header is parsed here
//! with bounds checks (a header that claims more bytes than the file has is refused before any
//! allocation), every tensor the card's architecture needs must be present with its shape and a
//! float dtype, no tensor may hold NaN or ±∞, and the card must agree with itself.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, WeightsError};
use crate::model::{Architecture, Network, ScoreModel};
use crate::precond::Parameterisation;
use crate::sde::Sde;

pub const CARD_FORMAT: &str = "scorefield-model-card";
/// Version 2 (the EDM U-Net) tags the architecture with `type` and adds `parameterisation`;
/// version-1 cards (the first network, net/σ) are read as `ncsn` + `noise`.
pub const CARD_VERSION: u32 = 2;
/// The oldest card version this build reads.
pub const CARD_VERSION_OLDEST: u32 = 1;
/// A model card larger than this is not a model card.
pub const MAX_CARD_BYTES: usize = 1 << 20;
/// Weights larger than this are refused (the shipped model is ~4 MB).
pub const MAX_WEIGHTS_BYTES: usize = 512 << 20;
/// The safetensors JSON header may not exceed this (the format's own limit is 100 MB).
pub const MAX_HEADER_BYTES: usize = 16 << 20;

/// Shape and value range of the model's images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The data range the model was trained on, e.g. [0, 1].
    pub range: [f32; 2],
}

/// How the weights were made. Every field is a record of the run, not a setting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingRecord {
    pub command: Option<String>,
    /// Optimiser steps, over all sessions of the run.
    pub steps: Option<u64>,
    /// Training images seen (steps × batch size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_seen: Option<u64>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    /// Fixed EMA decay per step (version-1 runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_rate: Option<f64>,
    /// EMA half-life in images (EDM's schedule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_halflife_images: Option<f64>,
    /// Training wall time over all sessions.
    pub wall_time_s: Option<f64>,
    /// The machine of the latest session.
    pub hardware: Option<String>,
    /// Every session of the run: hardware, steps, wall time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<serde_json::Value>,
    pub final_loss: Option<f64>,
    pub seed: Option<u64>,
    /// Warm-up, rate and cool-down, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate_schedule: Option<String>,
}

/// A card's JSON text as a value, at most [`MAX_CARD_BYTES`] (the model's and the classifier's).
pub fn card_json(text: &str) -> Result<serde_json::Value, ConfigError> {
    if text.len() > MAX_CARD_BYTES {
        return Err(ConfigError::Json(format!("card is {} bytes; the limit is {MAX_CARD_BYTES}", text.len())));
    }
    serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))
}

/// A card's `weights`: a file name beside the card (no `..`, no absolute path, no drive).
pub fn check_weights_path(weights: &str) -> Result<(), ConfigError> {
    if weights.is_empty() || weights.contains("..") || weights.starts_with('/') || weights.contains('\\') || weights.contains(':') {
        return Err(ConfigError::invalid("weights", format!("must be a relative path beside the card, got `{weights}`")));
    }
    Ok(())
}

/// The model card, `NAME.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// The safetensors file, relative to the card.
    pub weights: String,
    pub architecture: Architecture,
    /// How the network's output becomes a denoiser and a score.
    pub parameterisation: Parameterisation,
    pub sde: Sde,
    pub image: ImageSpec,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub training: TrainingRecord,
    /// Measured numbers (bits/dim, sample-quality scores), free-form.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The card of the noise-conditional classifier that guides this model to a class
    /// ([`crate::classifier`]), relative to this card; none: the model draws unguided only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<String>,
    /// Reference likelihoods of these weights (`scorefield likelihood --references`): a few
    /// 8-bit images with the bits/dim the CLI measured for them, which the page shows beside a
    /// reader's own; relative to this card. They belong to one set of weights (the file records
    /// its SHA-256), so a trainer's card does not carry them over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood_references: Option<String>,
}

impl ModelCard {
    /// A card for an untrained network of the given architecture.
    pub fn new(name: &str, architecture: Architecture, parameterisation: Parameterisation, sde: Sde) -> Self {
        let [channels, height, width] = architecture.image_shape();
        let image = ImageSpec { channels, height, width, range: [0.0, 1.0] };
        Self {
            format: CARD_FORMAT.into(),
            version: CARD_VERSION,
            name: name.into(),
            weights: format!("{name}.safetensors"),
            architecture,
            parameterisation,
            sde,
            image,
            dataset: None,
            training: TrainingRecord::default(),
            metrics: BTreeMap::new(),
            classifier: None,
            likelihood_references: None,
        }
    }

    /// Parses and checks a card.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut value = card_json(text)?;
        let version = value.get("version").and_then(|v| v.as_u64());
        if let Some(v) = version.filter(|&v| v < CARD_VERSION_OLDEST as u64 || v > CARD_VERSION as u64) {
            return Err(ConfigError::invalid("version", format!("is {v}; this build reads versions {CARD_VERSION_OLDEST} to {CARD_VERSION}")));
        }
        if version == Some(1) {
            // Version 1: the first network, untagged, with the net/σ parameterisation.
            if let Some(arch) = value.get_mut("architecture").and_then(|a| a.as_object_mut()) {
                arch.insert("type".into(), "ncsn".into());
            }
            if let Some(card) = value.as_object_mut() {
                card.insert("parameterisation".into(), serde_json::json!({"type": "noise"}));
                card.insert("version".into(), CARD_VERSION.into());
            }
        }
        let card: ModelCard = serde_json::from_value(value).map_err(|e| ConfigError::Json(e.to_string()))?;
        card.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a card always serialises")
    }

    /// Checks that the card agrees with itself.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.format != CARD_FORMAT {
            return Err(ConfigError::invalid("format", format!("is `{}`; expected `{CARD_FORMAT}`", self.format)));
        }
        if self.version != CARD_VERSION {
            return Err(ConfigError::invalid("version", format!("is {}; this build reads version {CARD_VERSION}", self.version)));
        }
        check_weights_path(&self.weights)?;
        if let Some(classifier) = &self.classifier {
            check_weights_path(classifier).map_err(|_| ConfigError::invalid("classifier", format!("must be a relative path beside the card, got `{classifier}`")))?;
        }
        if let Some(references) = &self.likelihood_references {
            check_weights_path(references).map_err(|_| ConfigError::invalid("likelihood_references", format!("must be a relative path beside the card, got `{references}`")))?;
        }
        self.architecture.validate()?;
        self.parameterisation.validate()?;
        self.sde.validate()?;
        let i = &self.image;
        let [channels, height, width] = self.architecture.image_shape();
        for (field, card, arch) in [("image.channels", i.channels, channels), ("image.height", i.height, height), ("image.width", i.width, width)] {
            if card != arch {
                return Err(ConfigError::invalid(field, format!("is {card} but the architecture is built for {arch}")));
            }
        }
        let [lo, hi] = i.range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ConfigError::invalid("image.range", format!("must be two finite numbers [low, high] with low < high, got [{lo}, {hi}]")));
        }
        Ok(())
    }

    /// [C, H, W] of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.image.channels, self.image.height, self.image.width]
    }
}

/// One tensor as the safetensors header describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// Parses a safetensors header with bounds checks: 8-byte little-endian header length, a JSON
/// object of `name: {dtype, shape, data_offsets}`, then the data.
pub fn parse_safetensors(bytes: &[u8]) -> Result<(Vec<TensorEntry>, usize), WeightsError> {
    if bytes.len() > MAX_WEIGHTS_BYTES {
        return Err(WeightsError::Corrupt(format!("file is {} bytes; the limit is {MAX_WEIGHTS_BYTES}", bytes.len())));
    }
    if bytes.len() < 8 {
        return Err(WeightsError::Corrupt(format!("file is {} bytes; a safetensors file starts with an 8-byte header length", bytes.len())));
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let available = (bytes.len() - 8) as u64;
    if header_len > available || header_len > MAX_HEADER_BYTES as u64 {
        return Err(WeightsError::Corrupt(format!("header claims {header_len} bytes but the file has {available} after the length field")));
    }
    let data_start = 8 + header_len as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start]).map_err(|e| WeightsError::Corrupt(format!("header is not a JSON object: {e}")))?;
    let data_len = bytes.len() - data_start;
    let mut entries = Vec::new();
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let corrupt = |what: &str| WeightsError::Corrupt(format!("tensor `{name}`: {what}"));
        let dtype = value.get("dtype").and_then(|v| v.as_str()).ok_or_else(|| corrupt("no dtype"))?.to_string();
        let shape: Vec<usize> = value
            .get("shape")
            .and_then(|v| v.as_array())
            .ok_or_else(|| corrupt("no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| corrupt("shape is not a list of sizes"))?;
        let offsets: Vec<usize> = value
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .ok_or_else(|| corrupt("no data_offsets"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| corrupt("data_offsets are not two byte offsets"))?;
        let [start, end] = offsets[..] else { return Err(corrupt("data_offsets are not two byte offsets")) };
        if start > end || end > data_len {
            return Err(corrupt(&format!("data [{start}, {end}) lies outside the {data_len} data bytes (file truncated?)")));
        }
        let elem = match dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(WeightsError::UnsupportedDtype { name, found: other.to_string() }),
        };
        let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| corrupt("shape overflows"))?;
        if numel.checked_mul(elem) != Some(end - start) {
            return Err(corrupt(&format!("shape {shape:?} of {dtype} needs {} bytes but data_offsets span {}", numel.saturating_mul(elem), end - start)));
        }
        entries.push(TensorEntry { name, dtype, shape, start: data_start + start, end: data_start + end });
    }
    entries.sort_by_key(|e| e.start);
    Ok((entries, data_start))
}

/// How float tensors are stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    /// IEEE half precision: half the bytes; 11 significant bits (relative rounding error ≤ 2⁻¹¹),
    /// finite up to 65504.
    F16,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
        }
    }
}

/// Bytes per value of a float entry and the function that decodes one value (F16 and BF16 widen
/// exactly to f32).
fn decoder(entry: &TensorEntry) -> (usize, fn(&[u8]) -> f32) {
    match entry.dtype.as_str() {
        "F32" => (4, |c| f32::from_le_bytes(c.try_into().unwrap())),
        "F16" => (2, |c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        _ => (2, |c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32()),
    }
}

/// The values of one tensor entry as f32.
fn values_f32(entry: &TensorEntry, data: &[u8]) -> Vec<f32> {
    let (size, decode) = decoder(entry);
    data.chunks_exact(size).map(decode).collect()
}

/// Rewrites every tensor of a safetensors file in `to`, keeping names, shapes, order and
/// metadata. Narrowing to F16 rounds to nearest and refuses values beyond F16's range.
pub fn convert_safetensors(bytes: &[u8], to: Dtype) -> Result<Vec<u8>, WeightsError> {
    let (entries, data_start) = parse_safetensors(bytes)?;
    let old: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start]).map_err(|e| WeightsError::Corrupt(e.to_string()))?;
    let mut header = serde_json::Map::new();
    if let Some(meta) = old.get("__metadata__") {
        header.insert("__metadata__".into(), meta.clone());
    }
    let mut data = Vec::new();
    for entry in &entries {
        let values = values_f32(entry, &bytes[entry.start..entry.end]);
        let start = data.len();
        match to {
            Dtype::F32 => data.extend(values.iter().flat_map(|v| v.to_le_bytes())),
            Dtype::F16 => {
                for (index, &v) in values.iter().enumerate() {
                    let h = half::f16::from_f32(v);
                    if !h.is_finite() {
                        return Err(WeightsError::NonFinite { name: format!("{} (as F16)", entry.name), index, value: v.to_string() });
                    }
                    data.extend(h.to_le_bytes());
                }
            }
        }
        header.insert(entry.name.clone(), serde_json::json!({ "dtype": to.name(), "shape": entry.shape, "data_offsets": [start, data.len()] }));
    }
    let mut header = serde_json::to_vec(&header).map_err(|e| WeightsError::Save(e.to_string()))?;
    // The format pads the header with spaces to a multiple of 8 bytes, so the data is aligned.
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    out.extend(data);
    Ok(out)
}

/// First non-finite value of a tensor's raw little-endian data, if any.
fn first_non_finite(entry: &TensorEntry, data: &[u8]) -> Option<(usize, f32)> {
    let (size, decode) = decoder(entry);
    data.chunks_exact(size).map(decode).enumerate().find(|(_, v)| !v.is_finite())
}

/// Names and shapes of the tensors a module has.
fn expected_tensors<M: ModuleSnapshot>(module: &M) -> BTreeMap<String, Vec<usize>> {
    module.collect(None, None, false).into_iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect()
}

/// Fills `module` with the tensors of safetensors bytes, after checking them: every tensor the
/// module has is there with its shape, no other, none holds NaN or ±∞. The score network and the
/// classifier of guided sampling load through this.
pub fn fill<M: ModuleSnapshot>(module: &mut M, weights: &[u8]) -> Result<(), WeightsError> {
    let (entries, _) = parse_safetensors(weights)?;
    let mut expected = expected_tensors(module);
    for entry in &entries {
        match expected.remove(&entry.name) {
            None => return Err(WeightsError::UnexpectedTensor { name: entry.name.clone() }),
            Some(shape) if shape != entry.shape => {
                return Err(WeightsError::ShapeMismatch { name: entry.name.clone(), expected: shape, found: entry.shape.clone() });
            }
            Some(_) => {}
        }
        if let Some((index, value)) = first_non_finite(entry, &weights[entry.start..entry.end]) {
            return Err(WeightsError::NonFinite { name: entry.name.clone(), index, value: value.to_string() });
        }
    }
    if let Some(name) = expected.into_keys().next() {
        return Err(WeightsError::MissingTensor { name });
    }
    // Half-precision files (half the download) are widened here: the networks compute in f32.
    let weights = if entries.iter().any(|e| e.dtype != "F32") { convert_safetensors(weights, Dtype::F32)? } else { weights.to_vec() };
    let mut store = SafetensorsStore::from_bytes(Some(weights)).allow_partial(false).validate(true);
    let result = module.load_from(&mut store).map_err(|e| WeightsError::Apply(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(WeightsError::Apply(format!("{result:?}")));
    }
    Ok(())
}

/// A module's tensors as safetensors bytes, through Burn's store.
pub fn to_safetensors<M: ModuleSnapshot>(module: &M) -> Result<Vec<u8>, WeightsError> {
    let mut store = SafetensorsStore::from_bytes(None).metadata("producer", "scorefield");
    module.save_into(&mut store).map_err(|e| WeightsError::Save(e.to_string()))?;
    store.get_bytes().map_err(|e| WeightsError::Save(e.to_string()))
}

/// Builds the network a card describes and fills it with the given safetensors bytes, for
/// inference (dropout off).
pub fn load(card: &ModelCard, weights: &[u8], device: &Device) -> Result<ScoreModel, WeightsError> {
    card.validate()?;
    let mut net = card.architecture.init(device)?;
    match &mut net {
        Network::Ncsn(n) => fill(n, weights)?,
        Network::Unet(n) => fill(n, weights)?,
    }
    // A loaded model is for inference: no dropout, also where inference differentiates.
    let net = match net {
        Network::Unet(n) => Network::Unet(n.without_dropout()),
        ncsn => ncsn,
    };
    Ok(ScoreModel { net, param: card.parameterisation, sde: card.sde })
}

/// Serialises the network's tensors as safetensors bytes through Burn's store.
pub fn save(model: &ScoreModel) -> Result<Vec<u8>, WeightsError> {
    match &model.net {
        Network::Ncsn(n) => to_safetensors(n),
        Network::Unet(n) => to_safetensors(n),
    }
}

/// A freshly initialised model for a card (the `scorefield init` command).
pub fn init(card: &ModelCard, device: &Device) -> Result<ScoreModel, WeightsError> {
    card.validate()?;
    Ok(ScoreModel { net: card.architecture.init(device)?, param: card.parameterisation, sde: card.sde })
}

/// Native file helpers: the card at `card_path`, its weights resolved beside it.
#[cfg(not(target_arch = "wasm32"))]
pub mod files {
    use std::path::{Path, PathBuf};

    use super::*;

    fn io(path: &Path, e: impl std::fmt::Display) -> WeightsError {
        WeightsError::Io { path: path.display().to_string(), reason: e.to_string() }
    }

    pub fn read_card(card_path: &Path) -> Result<ModelCard, WeightsError> {
        let text = std::fs::read_to_string(card_path).map_err(|e| io(card_path, e))?;
        Ok(ModelCard::from_json(&text)?)
    }

    pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
        card_path.parent().unwrap_or(Path::new(".")).join(&card.weights)
    }

    /// Reads a card and its weights.
    pub fn load(card_path: &Path, device: &Device) -> Result<(ModelCard, ScoreModel), WeightsError> {
        let card = read_card(card_path)?;
        let path = weights_path(card_path, &card);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let model = super::load(&card, &bytes, device)?;
        Ok((card, model))
    }

    /// Writes `card` as JSON to `card_path` and the weights beside it.
    pub fn save(card_path: &Path, card: &ModelCard, model: &ScoreModel) -> Result<(), WeightsError> {
        card.validate()?;
        let bytes = super::save(model)?;
        let path = weights_path(card_path, card);
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        std::fs::write(card_path, card.to_json() + "\n").map_err(|e| io(card_path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_card() -> ModelCard {
        let arch = crate::model::ScoreNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
        ModelCard::new("tiny", Architecture::Ncsn(arch), Parameterisation::Noise, Sde::ve(10.0))
    }

    /// F32 → F16 rounds each value to within 2⁻¹¹ relative (F16 has 11 significant bits), F16 →
    /// F32 is exact, and a network loaded from F16 weights computes what the rounded F32 one does.
    #[test]
    fn half_precision_files_round_within_f16_precision_and_load() {
        let (card, bytes, device) = saved();
        let half = convert_safetensors(&bytes, Dtype::F16).unwrap();
        let (entries, _) = parse_safetensors(&half).unwrap();
        assert!(entries.iter().all(|e| e.dtype == "F16"));
        let (originals, _) = parse_safetensors(&bytes).unwrap();
        let data = |es: &[TensorEntry]| es.iter().map(|e| e.end - e.start).sum::<usize>();
        assert_eq!(2 * data(&entries), data(&originals));
        for (a, b) in originals.iter().zip(&entries) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            for (x, y) in values_f32(a, &bytes[a.start..a.end]).into_iter().zip(values_f32(b, &half[b.start..b.end])) {
                assert!((x - y).abs() <= x.abs() * 2f32.powi(-11) + 6e-8, "{}: {x} became {y}", a.name);
            }
        }
        // Back to F32 is exact, and both files load into the same network.
        let widened = convert_safetensors(&half, Dtype::F32).unwrap();
        assert_eq!(convert_safetensors(&widened, Dtype::F16).unwrap(), half);
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::from_floats([0.1, 0.9], &device);
        let from_half = load(&card, &half, &device).unwrap().net.forward(x.clone(), t.clone());
        let from_widened = load(&card, &widened, &device).unwrap().net.forward(x, t);
        let diff: f32 = (from_half - from_widened).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }

    /// A loaded U-Net has no dropout, also on an autodiff device (where the likelihood takes
    /// vᵀ ∂s/∂x): its output there equals the plain device's to float rounding, the same twice. The trainer's own
    /// network (built from the card, not loaded) keeps its dropout and differs.
    #[test]
    fn a_loaded_unet_has_no_dropout_where_inference_differentiates() {
        let device = Device::flex();
        let arch = crate::unet::UNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.5, ..Default::default() };
        let card = ModelCard::new("tiny-unet", Architecture::Unet(arch), Parameterisation::Edm { sigma_data: 0.5 }, Sde::ve(10.0));
        // Random weights everywhere (a fresh U-Net's last convolutions are zero, which would hide
        // the dropout before them).
        let mut bytes = save(&init(&card, &device).unwrap()).unwrap();
        let (entries, _) = parse_safetensors(&bytes).unwrap();
        let mut rng = crate::rng::SplitMix::new(5);
        for e in &entries {
            for chunk in bytes[e.start..e.end].chunks_mut(4) {
                chunk.copy_from_slice(&(0.2 * rng.normal() as f32).to_le_bytes());
            }
        }
        let loaded = load(&card, &bytes, &device).unwrap();
        let mut training = card.architecture.init(&device).unwrap();
        if let Network::Unet(n) = &mut training {
            fill(n, &bytes).unwrap();
        }
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::from_floats([0.1, 0.9], &device);
        let plain = loaded.net.forward(x.clone(), t.clone());
        let gap = |net: &Network| -> f32 { (net.forward(x.clone().autodiff(), t.clone().autodiff()).without_autodiff() - plain.clone()).abs().max().into_scalar() };
        let (first, second) = (gap(&loaded.net), gap(&loaded.net));
        assert!(first < 1e-5 && first == second, "{first}, {second}");
        assert!(gap(&training) > 1e-3, "the trainer's network keeps its dropout");
    }

    #[test]
    fn values_beyond_half_precision_are_refused_by_name() {
        let (_, bytes, _) = saved();
        let (entries, _) = parse_safetensors(&bytes).unwrap();
        let mut big = bytes.clone();
        let e = &entries[0];
        big[e.start..e.start + 4].copy_from_slice(&1e5f32.to_le_bytes());
        let err = convert_safetensors(&big, Dtype::F16).unwrap_err().to_string();
        assert!(err.contains(&e.name) && err.contains("100000"), "{err}");
    }

    fn saved() -> (ModelCard, Vec<u8>, Device) {
        let device = Device::flex();
        let card = small_card();
        let model = init(&card, &device).unwrap();
        (card, save(&model).unwrap(), device)
    }

    /// Rewrites one header entry of a valid file and keeps the data.
    fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        edit(&mut header);
        let mut text = serde_json::to_vec(&header).unwrap();
        while text.len() % 8 != 0 {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }

    #[test]
    fn save_then_load_is_bit_exact() {
        let (card, bytes, device) = saved();
        let model = load(&card, &bytes, &device).unwrap();
        let again = save(&model).unwrap();
        let (a, _) = parse_safetensors(&bytes).unwrap();
        let (b, _) = parse_safetensors(&again).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.name, &x.shape), (&y.name, &y.shape));
            assert_eq!(bytes[x.start..x.end], again[y.start..y.end], "tensor {} changed", x.name);
        }
        // And the card survives JSON.
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
    }

    #[test]
    fn truncated_or_garbage_files_are_corrupt() {
        let (card, bytes, device) = saved();
        for cut in [0, 4, 9, bytes.len() / 2, bytes.len() - 1] {
            let err = load(&card, &bytes[..cut], &device).unwrap_err();
            assert!(matches!(err, WeightsError::Corrupt(_)), "cut at {cut}: {err}");
        }
        let err = load(&card, b"definitely not a safetensors file", &device).unwrap_err();
        assert!(matches!(err, WeightsError::Corrupt(_)), "{err}");
    }

    /// A header claiming 100 GB is refused from its length field, before anything is allocated.
    #[test]
    fn huge_claims_are_refused_up_front() {
        let mut bytes = (100u64 << 30).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(parse_safetensors(&bytes), Err(WeightsError::Corrupt(m)) if m.contains("header claims")));
        let (_, valid, _) = saved();
        let huge = with_header(&valid, |h| {
            let key = h.keys().find(|k| *k != "__metadata__").unwrap().clone();
            h.insert(key, serde_json::json!({"dtype": "F32", "shape": [100_000, 100_000, 10], "data_offsets": [0, 400_000_000_000u64]}));
        });
        assert!(matches!(parse_safetensors(&huge), Err(WeightsError::Corrupt(m)) if m.contains("outside")));
    }

    #[test]
    fn missing_unexpected_and_misshapen_tensors_are_named() {
        let (card, bytes, device) = saved();
        let missing = with_header(&bytes, |h| {
            h.remove("out.bias");
        });
        assert_eq!(load(&card, &missing, &device).unwrap_err(), WeightsError::MissingTensor { name: "out.bias".into() });
        let renamed = with_header(&bytes, |h| {
            let v = h.remove("out.bias").unwrap();
            h.insert("out.bias_typo".into(), v);
        });
        assert_eq!(load(&card, &renamed, &device).unwrap_err(), WeightsError::UnexpectedTensor { name: "out.bias_typo".into() });

        // A card whose architecture disagrees with the file: wider first level.
        let mut wider = card.clone();
        let Architecture::Ncsn(arch) = &mut wider.architecture else { unreachable!() };
        arch.widths = vec![12, 16];
        match load(&wider, &bytes, &device).unwrap_err() {
            WeightsError::ShapeMismatch { name, expected, found } => {
                assert!(name.starts_with("down.0") || name.starts_with("up.") || name.starts_with("out"), "{name}");
                assert_ne!(expected, found);
            }
            other => panic!("expected a shape mismatch, got {other}"),
        }
    }

    #[test]
    fn wrong_dtype_and_non_finite_values_are_named() {
        let (card, bytes, device) = saved();
        let as_int = with_header(&bytes, |h| {
            h.get_mut("out.bias").unwrap()["dtype"] = "I32".into();
        });
        assert!(matches!(load(&card, &as_int, &device).unwrap_err(), WeightsError::UnsupportedDtype { name, .. } if name == "out.bias"));

        let (entries, _) = parse_safetensors(&bytes).unwrap();
        let entry = entries.iter().find(|e| e.name == "down.1.conv.weight").unwrap();
        let mut poisoned = bytes.clone();
        poisoned[entry.start + 8..entry.start + 12].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            load(&card, &poisoned, &device).unwrap_err(),
            WeightsError::NonFinite { name, index: 2, .. } if name == "down.1.conv.weight"
        ));
        poisoned[entry.start + 8..entry.start + 12].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert!(matches!(load(&card, &poisoned, &device).unwrap_err(), WeightsError::NonFinite { .. }));
    }

    #[test]
    fn inconsistent_cards_name_the_field() {
        let card = small_card();
        let field_of = |c: &ModelCard| match c.validate().unwrap_err() {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        let mut c = card.clone();
        c.image.height = 9;
        assert_eq!(field_of(&c), "image.height");
        let mut c = card.clone();
        c.image.range = [1.0, 0.0];
        assert_eq!(field_of(&c), "image.range");
        let mut c = card.clone();
        c.weights = "../../etc/passwd".into();
        assert_eq!(field_of(&c), "weights");
        let mut c = card.clone();
        c.format = "something-else".into();
        assert_eq!(field_of(&c), "format");
        let mut c = card.clone();
        c.sde = Sde::Ve { sigma_min: 0.01, sigma_max: -1.0 };
        assert_eq!(field_of(&c), "sde.sigma_max");
        // Unknown fields and wrong types are JSON errors that name them.
        let text = card.to_json().replace("\"dataset\"", "\"datset\"");
        assert!(matches!(ModelCard::from_json(&text), Err(ConfigError::Json(m)) if m.contains("datset")));
        let text = card.to_json().replace("\"channels\": 1", "\"channels\": \"one\"");
        assert!(matches!(ModelCard::from_json(&text), Err(ConfigError::Json(_))));
    }
}
