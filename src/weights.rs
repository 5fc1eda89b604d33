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
    /// The card of the worse model that autoguides this one
    /// ([`crate::sampling::autoguidance`]): same data, images and noise levels, less training;
    /// relative to this card. None: the model draws on its own only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guide: Option<String>,
}

impl ModelCard {
    /// Whether `guide` can autoguide this model: the same noise levels (the SDE) and images, so
    /// that both score the same x(t) at the same t.
    pub fn check_guide(&self, guide: &ModelCard) -> Result<(), ConfigError> {
        if guide.sde != self.sde {
            return Err(ConfigError::invalid("guide", format!("`{}` has another SDE ({:?}) than `{}` ({:?})", guide.name, guide.sde, self.name, self.sde)));
        }
        if guide.image != self.image {
            return Err(ConfigError::invalid("guide", format!("`{}` draws other images ({:?}) than `{}` ({:?})", guide.name, guide.image, self.name, self.image)));
        }
        Ok(())
    }

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
            guide: None,
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
        // The other files the card names, each beside it.
        for (field, name) in [("classifier", &self.classifier), ("guide", &self.guide), ("likelihood_references", &self.likelihood_references)] {
            if let Some(name) = name {
                check_weights_path(name).map_err(|_| ConfigError::invalid(field, format!("must be a relative path beside the card, got `{name}`")))?;
            }
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
            "I8" => 1,
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
    /// Weight-only 8-bit quantisation, symmetric, one scale per channel: every tensor of rank ≥ 2
    /// (convolution kernels, linear maps: 99 % of the values) is stored as I8 values q in
    /// −127…127 with an F32 tensor `NAME_scale` (s = max |w| / 127 over the channel), read back
    /// as w = q·s, so each weight moves by at most s/2; biases and norms stay F16. A quarter of
    /// F32's bytes; the network still computes in f32.
    Int8,
}

/// The scale tensor that belongs to an I8 tensor `NAME` is `NAME_scale` (the naming of
/// quantised checkpoints in compressed-tensors and vLLM); its shape has the I8 tensor's rank,
/// with 1 on every axis but the quantised one, so that w = q·s broadcasts.
pub const SCALE_SUFFIX: &str = "_scale";

/// The axis an [`Dtype::Int8`] file quantises per channel: a kernel's first (a convolution's
/// output channels, [out, in, kh, kw]; a transposed one's inputs, [in, out, kh, kw]), a Burn
/// linear map's second (its outputs, [in, out]).
fn channel_axis(shape: &[usize]) -> usize {
    if shape.len() == 2 { 1 } else { 0 }
}

/// Bytes per value of a float entry and the function that decodes one value (F16 and BF16 widen
/// exactly to f32). I8 entries are decoded with their scale by [`decode`].
fn decoder(entry: &TensorEntry) -> (usize, fn(&[u8]) -> f32) {
    match entry.dtype.as_str() {
        "F32" => (4, |c| f32::from_le_bytes(c.try_into().unwrap())),
        "F16" => (2, |c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        "BF16" => (2, |c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        _ => (1, |c| c[0] as i8 as f32),
    }
}

/// The values of one tensor entry as f32 (an I8 entry's raw integers).
fn values_f32(entry: &TensorEntry, data: &[u8]) -> Vec<f32> {
    let (size, decode) = decoder(entry);
    data.chunks_exact(size).map(decode).collect()
}

/// One tensor of a weights file, decoded to f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    /// Its dtype in the file.
    pub dtype: String,
}

/// Every tensor of a safetensors file as f32, in file order: F32, F16 and BF16 widened exactly,
/// an I8 tensor multiplied by its `NAME_scale` (which is consumed, not listed). An I8 tensor
/// without a float scale of a broadcastable shape, or with a negative or non-finite scale, is
/// refused by name.
pub fn decode(bytes: &[u8]) -> Result<Vec<Decoded>, WeightsError> {
    let (entries, _) = parse_safetensors(bytes)?;
    let by_name: BTreeMap<&str, &TensorEntry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let is_scale = |e: &TensorEntry| e.name.strip_suffix(SCALE_SUFFIX).and_then(|base| by_name.get(base)).is_some_and(|b| b.dtype == "I8");
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries.iter().filter(|e| !is_scale(e)) {
        let mut values = values_f32(entry, &bytes[entry.start..entry.end]);
        if entry.dtype == "I8" {
            let scale_name = format!("{}{SCALE_SUFFIX}", entry.name);
            let corrupt = |what: String| WeightsError::Corrupt(format!("tensor `{}`: {what}", entry.name));
            let scale = by_name.get(scale_name.as_str()).ok_or_else(|| corrupt(format!("8-bit values need their scale tensor `{scale_name}`, which the file lacks")))?;
            if scale.dtype == "I8" {
                return Err(corrupt(format!("its scale `{scale_name}` must be a float tensor, not I8")));
            }
            let fits = scale.shape.len() == entry.shape.len() && scale.shape.iter().zip(&entry.shape).all(|(&s, &n)| s == 1 || s == n);
            if !fits {
                return Err(corrupt(format!("its scale `{scale_name}` has shape {:?}, which does not broadcast to {:?}", scale.shape, entry.shape)));
            }
            let scales = values_f32(scale, &bytes[scale.start..scale.end]);
            check_finite(&scale_name, &scales)?;
            if let Some(s) = scales.iter().find(|s| **s < 0.0) {
                return Err(corrupt(format!("its scale `{scale_name}` holds a negative value ({s})")));
            }
            // Row-major strides of the scale, 0 on its broadcast axes.
            let mut strides = vec![0usize; scale.shape.len()];
            let mut stride = 1;
            for axis in (0..scale.shape.len()).rev() {
                if scale.shape[axis] != 1 {
                    strides[axis] = stride;
                }
                stride *= scale.shape[axis];
            }
            let mut index = vec![0usize; entry.shape.len()];
            for v in values.iter_mut() {
                *v *= scales[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()];
                for axis in (0..index.len()).rev() {
                    index[axis] += 1;
                    if index[axis] < entry.shape[axis] {
                        break;
                    }
                    index[axis] = 0;
                }
            }
        }
        out.push(Decoded { name: entry.name.clone(), shape: entry.shape.clone(), values, dtype: entry.dtype.clone() });
    }
    Ok(out)
}

/// Symmetric 8-bit values of `values` (shape `shape`) per channel of `axis`, and the scales.
fn quantise(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let inner: usize = shape[axis + 1..].iter().product();
    let channels = shape[axis];
    let channel = |flat: usize| (flat / inner) % channels;
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        max[channel(i)] = max[channel(i)].max(v.abs());
    }
    let scales: Vec<f32> = max.iter().map(|m| m / 127.0).collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales[channel(i)];
            if s > 0.0 { (v / s).round().clamp(-127.0, 127.0) as i8 } else { 0 }
        })
        .collect();
    (q, scales)
}

/// Rewrites every tensor of a safetensors file in `to`, keeping names, shapes, order and
/// metadata. Narrowing to F16 rounds to nearest and refuses values beyond F16's range.
pub fn convert_safetensors(bytes: &[u8], to: Dtype) -> Result<Vec<u8>, WeightsError> {
    convert_safetensors_where(bytes, to, |_| true)
}

/// [`convert_safetensors`], where [`Dtype::Int8`] quantises only the tensors whose names
/// `select` accepts (the others are stored in F16): a network's layers differ in how much
/// 8-bit rounding costs (docs/EVALUATION.md, "8-bit weights").
pub fn convert_safetensors_where(bytes: &[u8], to: Dtype, select: impl Fn(&str) -> bool) -> Result<Vec<u8>, WeightsError> {
    encode(&decode(bytes)?, metadata(bytes)?.as_ref(), to, select)
}

/// A safetensors file's `__metadata__`, if it has one (kept when the file is rewritten).
pub(crate) fn metadata(bytes: &[u8]) -> Result<Option<serde_json::Value>, WeightsError> {
    let (_, data_start) = parse_safetensors(bytes)?;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start]).map_err(|e| WeightsError::Corrupt(e.to_string()))?;
    Ok(header.remove("__metadata__"))
}

/// Decoded tensors as safetensors bytes in `to` (with `select` as in
/// [`convert_safetensors_where`]) and the given `__metadata__`.
pub(crate) fn encode(tensors: &[Decoded], metadata: Option<&serde_json::Value>, to: Dtype, select: impl Fn(&str) -> bool) -> Result<Vec<u8>, WeightsError> {
    let mut header = serde_json::Map::new();
    if let Some(meta) = metadata {
        header.insert("__metadata__".into(), meta.clone());
    }
    let mut data = Vec::new();
    let mut put = |header: &mut serde_json::Map<String, serde_json::Value>, name: &str, dtype: &str, shape: &[usize], bytes: Vec<u8>| {
        let start = data.len();
        data.extend(bytes);
        header.insert(name.into(), serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [start, data.len()] }));
    };
    let as_f16 = |t: &Decoded| -> Result<Vec<u8>, WeightsError> {
        let mut out = Vec::with_capacity(2 * t.values.len());
        for (index, &v) in t.values.iter().enumerate() {
            let h = half::f16::from_f32(v);
            if !h.is_finite() {
                return Err(WeightsError::NonFinite { name: format!("{} (as F16)", t.name), index, value: v.to_string() });
            }
            out.extend(h.to_le_bytes());
        }
        Ok(out)
    };
    for t in tensors {
        match to {
            Dtype::F32 => put(&mut header, &t.name, "F32", &t.shape, t.values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            Dtype::F16 => put(&mut header, &t.name, "F16", &t.shape, as_f16(t)?),
            Dtype::Int8 if t.shape.len() >= 2 && select(&t.name) => {
                check_finite(&t.name, &t.values)?;
                let axis = channel_axis(&t.shape);
                let (q, scales) = quantise(&t.values, &t.shape, axis);
                put(&mut header, &t.name, "I8", &t.shape, q.iter().map(|&q| q as u8).collect());
                let scale_shape: Vec<usize> = t.shape.iter().enumerate().map(|(a, &n)| if a == axis { n } else { 1 }).collect();
                put(&mut header, &format!("{}{SCALE_SUFFIX}", t.name), "F32", &scale_shape, scales.iter().flat_map(|s| s.to_le_bytes()).collect());
            }
            Dtype::Int8 => put(&mut header, &t.name, "F16", &t.shape, as_f16(t)?),
        }
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

/// Refuses the first NaN or ±∞ among a tensor's values, naming the tensor and the index.
fn check_finite(name: &str, values: &[f32]) -> Result<(), WeightsError> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, value)) => Err(WeightsError::NonFinite { name: name.to_string(), index, value: value.to_string() }),
        None => Ok(()),
    }
}

/// Names and shapes of the tensors a module has.
fn expected_tensors<M: ModuleSnapshot>(module: &M) -> BTreeMap<String, Vec<usize>> {
    module.collect(None, None, false).into_iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect()
}

/// Fills `module` with the tensors of safetensors bytes, after checking them: every tensor the
/// module has is there with its shape, no other, none holds NaN or ±∞. The score network and the
/// classifier of guided sampling load through this.
pub fn fill<M: ModuleSnapshot>(module: &mut M, weights: &[u8]) -> Result<(), WeightsError> {
    let tensors = decode(weights)?;
    let mut expected = expected_tensors(module);
    for t in &tensors {
        match expected.remove(&t.name) {
            None => return Err(WeightsError::UnexpectedTensor { name: t.name.clone() }),
            Some(shape) if shape != t.shape => {
                return Err(WeightsError::ShapeMismatch { name: t.name.clone(), expected: shape, found: t.shape.clone() });
            }
            Some(_) => {}
        }
        check_finite(&t.name, &t.values)?;
    }
    if let Some(name) = expected.into_keys().next() {
        return Err(WeightsError::MissingTensor { name });
    }
    // Half-precision and 8-bit files (a half and a quarter of the download) are widened here:
    // the networks compute in f32.
    let weights = if tensors.iter().any(|t| t.dtype != "F32") { encode(&tensors, None, Dtype::F32, |_| true)? } else { weights.to_vec() };
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

    /// A file a card names (its weights, classifier, guide), which lies beside the card.
    pub fn beside(card_path: &Path, name: &str) -> PathBuf {
        card_path.parent().unwrap_or(Path::new(".")).join(name)
    }

    pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
        beside(card_path, &card.weights)
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
        write(card_path, card, &super::save(model)?)?;
        Ok(())
    }

    /// Writes safetensors bytes where `card` names its weights, then `card` as JSON to
    /// `card_path`; returns the weights' path.
    pub fn write(card_path: &Path, card: &ModelCard, weights: &[u8]) -> Result<PathBuf, WeightsError> {
        let path = weights_path(card_path, card);
        std::fs::write(&path, weights).map_err(|e| io(&path, e))?;
        std::fs::write(card_path, card.to_json() + "\n").map_err(|e| io(card_path, e))?;
        Ok(path)
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

    /// An 8-bit file stores every tensor of rank ≥ 2 as I8 values with one F32 scale per output
    /// channel, s = max |w| / 127 over the channel, and the rest as F16: each weight comes back
    /// within s/2 (round to nearest) from one byte per value, it loads, and it
    /// computes what its widened F32 copy computes. Quantising the widened copy again gives the
    /// same weights.
    #[test]
    fn eight_bit_files_round_each_weight_within_half_a_step_and_load() {
        let (card, bytes, device) = saved();
        let q = convert_safetensors(&bytes, Dtype::Int8).unwrap();
        let (entries, _) = parse_safetensors(&q).unwrap();
        let (original, back) = (decode(&bytes).unwrap(), decode(&q).unwrap());
        assert_eq!(original.len(), back.len());
        let mut moved = 0;
        for (a, b) in original.iter().zip(&back) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            if a.shape.len() < 2 {
                assert_eq!(b.dtype, "F16", "{}", a.name);
                continue;
            }
            assert_eq!(b.dtype, "I8", "{}", a.name);
            let stored = entries.iter().find(|e| e.name == a.name).unwrap();
            assert_eq!(stored.end - stored.start, a.values.len(), "{}: one byte per value", a.name);
            let axis = channel_axis(&a.shape);
            let scale = entries.iter().find(|e| e.name == format!("{}_scale", a.name)).unwrap();
            let expected: Vec<usize> = a.shape.iter().enumerate().map(|(i, &n)| if i == axis { n } else { 1 }).collect();
            assert_eq!(scale.shape, expected, "{}", a.name);
            let inner: usize = a.shape[axis + 1..].iter().product();
            let mut max = vec![0f32; a.shape[axis]];
            for (i, x) in a.values.iter().enumerate() {
                let c = (i / inner) % a.shape[axis];
                max[c] = max[c].max(x.abs());
            }
            for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
                let step = max[(i / inner) % a.shape[axis]] / 127.0;
                assert!((x - y).abs() <= 0.5 * step * (1.0 + 1e-5), "{}[{i}]: {x} became {y} (step {step})", a.name);
                moved += (x != y) as usize;
            }
        }
        assert!(moved > 0, "quantisation changed nothing");
        let widened = convert_safetensors(&q, Dtype::F32).unwrap();
        for (a, b) in decode(&convert_safetensors(&widened, Dtype::Int8).unwrap()).unwrap().iter().zip(&back) {
            for (x, y) in a.values.iter().zip(&b.values) {
                assert!((x - y).abs() <= 1e-6 * y.abs(), "{}: {y} became {x}", a.name);
            }
        }
        // A selection quantises only the tensors it names.
        let some = convert_safetensors_where(&bytes, Dtype::Int8, |name| name.starts_with("down.1")).unwrap();
        let (entries, _) = parse_safetensors(&some).unwrap();
        assert!(entries.iter().any(|e| e.dtype == "I8"));
        for e in entries.iter().filter(|e| !e.name.ends_with("_scale")) {
            let expected = if e.name.starts_with("down.1") && e.shape.len() >= 2 { "I8" } else { "F16" };
            assert_eq!(e.dtype, expected, "{}", e.name);
        }
        load(&card, &some, &device).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::from_floats([0.1, 0.9], &device);
        let from_q = load(&card, &q, &device).unwrap().net.forward(x.clone(), t.clone());
        let from_widened = load(&card, &widened, &device).unwrap().net.forward(x, t);
        let diff: f32 = (from_q - from_widened).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }

    /// An I8 tensor is only as good as its scale: a missing one, one that does not broadcast, a
    /// negative or a NaN one are refused, naming the tensor.
    #[test]
    fn eight_bit_tensors_without_a_valid_scale_are_refused_by_name() {
        let (card, bytes, device) = saved();
        let q = convert_safetensors(&bytes, Dtype::Int8).unwrap();
        let name = "down.1.conv.weight";
        let scale = format!("{name}_scale");
        let corrupt = |file: &[u8], words: &str| match load(&card, file, &device).unwrap_err() {
            WeightsError::Corrupt(m) => assert!(m.contains(name) && m.contains(words), "{m}"),
            other => panic!("expected a corrupt file, got {other}"),
        };
        corrupt(&with_header(&q, |h| drop(h.remove(&scale))), "lacks");
        let (entries, _) = parse_safetensors(&q).unwrap();
        let entry = entries.iter().find(|e| e.name == scale).unwrap();
        let channels = entry.shape[0];
        corrupt(&with_header(&q, |h| h.get_mut(&scale).unwrap()["shape"] = serde_json::json!([channels, 1, 1])), "does not broadcast");
        let mut negative = q.clone();
        negative[entry.start..entry.start + 4].copy_from_slice(&(-0.5f32).to_le_bytes());
        corrupt(&negative, "negative");
        let mut poisoned = q.clone();
        poisoned[entry.start + 4..entry.start + 8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(load(&card, &poisoned, &device).unwrap_err(), WeightsError::NonFinite { name, index: 1, .. } if name == scale));
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

    /// A guide model must score the same x(t) at the same t: same SDE, same images; the
    /// architecture may differ.
    #[test]
    fn a_guide_model_must_share_the_noise_levels_and_images() {
        let card = small_card();
        let mut guide = card.clone();
        guide.name = "guide".into();
        guide.architecture = Architecture::Ncsn(crate::model::ScoreNetConfig { height: 8, width: 8, widths: vec![4, 8], embed_dim: 8, ..Default::default() });
        card.check_guide(&guide).unwrap();
        let mut other = guide.clone();
        other.sde = Sde::Ve { sigma_min: 0.01, sigma_max: 7.0 };
        let e = card.check_guide(&other).unwrap_err().to_string();
        assert!(e.contains("guide") && e.contains("SDE"), "{e}");
        let mut other = guide.clone();
        other.image.range = [-1.0, 1.0];
        let e = card.check_guide(&other).unwrap_err().to_string();
        assert!(e.contains("guide") && e.contains("images"), "{e}");
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
        let mut c = card.clone();
        c.guide = Some("/models/guide.json".into());
        assert_eq!(field_of(&c), "guide");
        // Unknown fields and wrong types are JSON errors that name them.
        let text = card.to_json().replace("\"dataset\"", "\"datset\"");
        assert!(matches!(ModelCard::from_json(&text), Err(ConfigError::Json(m)) if m.contains("datset")));
        let text = card.to_json().replace("\"channels\": 1", "\"channels\": \"one\"");
        assert!(matches!(ModelCard::from_json(&text), Err(ConfigError::Json(_))));
    }
}
