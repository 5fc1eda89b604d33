//! Safetensors files, read with bounds checks before Burn sees the bytes, and their f16 and 8-bit
//! encodings.
//!
//! The format is read by the `safetensors` crate; on top of it, our limits (a header that claims more
//! bytes than the file has is refused before any allocation), and for a network: every tensor it
//! needs present with its shape and a float dtype (or 8 bits with its scales), and no NaN or ±∞.

use std::collections::BTreeMap;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use safetensors::tensor::{SafeTensorError, SafeTensors};
use safetensors::{self as st};

use super::card::{MAX_HEADER_BYTES, MAX_WEIGHTS_BYTES};
use crate::error::WeightsError;


/// One tensor as the safetensors header describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// Reads a safetensors file's header: our limits first (the file's size, and the header's length
/// before anything is allocated), then the format itself through the `safetensors` crate (the
/// JSON, each tensor's dtype, shape and byte range, the data covered exactly), then the dtypes a
/// network can be filled from.
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
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Corrupt(format_error(e, bytes.len() - data_start)))?;
    let mut entries = Vec::new();
    for (name, info) in metadata.tensors() {
        let dtype = match info.dtype {
            st::Dtype::F32 => "F32",
            st::Dtype::F16 => "F16",
            st::Dtype::BF16 => "BF16",
            st::Dtype::I8 => "I8",
            other => return Err(WeightsError::UnsupportedDtype { name, found: format!("{other:?}") }),
        };
        let (start, end) = info.data_offsets;
        entries.push(TensorEntry { name, dtype: dtype.into(), shape: info.shape.clone(), start: data_start + start, end: data_start + end });
    }
    entries.sort_by_key(|e| e.start);
    Ok((entries, data_start))
}

/// What a format error of the `safetensors` crate means for a reader of our messages.
fn format_error(e: SafeTensorError, data_len: usize) -> String {
    match e {
        SafeTensorError::InvalidOffset(name) => format!("tensor `{name}`: its data lies outside the {data_len} data bytes or overlaps another tensor's (file truncated?)"),
        SafeTensorError::TensorInvalidInfo => "a tensor's shape and dtype do not match the size of its data".into(),
        SafeTensorError::ValidationOverflow => "a tensor's shape overflows".into(),
        SafeTensorError::MetadataIncompleteBuffer => format!("the tensors do not cover the {data_len} data bytes exactly (file truncated or padded?)"),
        SafeTensorError::InvalidHeader(e) => format!("header is not UTF-8: {e}"),
        SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => format!("header is not a safetensors JSON object: {e}"),
        other => format!("{other}"),
    }
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
pub(crate) fn channel_axis(shape: &[usize]) -> usize {
    if shape.len() == 2 { 1 } else { 0 }
}

/// Bytes per value of a float entry and the function that decodes one value (F16 and BF16 widen
/// exactly to f32). I8 entries are decoded with their scale by [`decode`].
pub(crate) fn decoder(entry: &TensorEntry) -> (usize, fn(&[u8]) -> f32) {
    match entry.dtype.as_str() {
        "F32" => (4, |c| f32::from_le_bytes(c.try_into().unwrap())),
        "F16" => (2, |c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        "BF16" => (2, |c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        _ => (1, |c| c[0] as i8 as f32),
    }
}

/// The values of one tensor entry as f32 (an I8 entry's raw integers).
pub(crate) fn values_f32(entry: &TensorEntry, data: &[u8]) -> Vec<f32> {
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
pub(crate) fn quantise(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
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
/// [`convert_safetensors_where`]) and the given `__metadata__`, in the tensors' order. Written
/// here rather than by the `safetensors` crate, whose writer orders `__metadata__` through a hash
/// map, so that its files would differ from run to run; the crate reads what this writes.
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
pub(crate) fn check_finite(name: &str, values: &[f32]) -> Result<(), WeightsError> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, value)) => Err(WeightsError::NonFinite { name: name.to_string(), index, value: value.to_string() }),
        None => Ok(()),
    }
}

/// Names and shapes of the tensors a module has.
pub(crate) fn expected_tensors<M: ModuleSnapshot>(module: &M) -> BTreeMap<String, Vec<usize>> {
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
