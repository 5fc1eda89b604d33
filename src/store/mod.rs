//! Model files: `NAME.safetensors` (the network's tensors) and `NAME.json`, the model card
//! ([`card`]); the bounds-checked reader and the f16 and 8-bit encodings ([`safetensors`]); the
//! classifier's card and weights ([`classifier`]). Loading checks everything before Burn sees the
//! bytes, and the card must agree with itself.

pub mod card;
pub mod classifier;
pub mod safetensors;

use burn::prelude::*;

pub use card::{ImageSpec, ModelCard, Subject, TrainingRecord};
use crate::error::WeightsError;
use crate::model::{Network, ScoreModel};
pub use self::safetensors::{Dtype, fill, to_safetensors};


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
    use super::card::*;
    use super::safetensors::*;
    use super::*;
    use crate::error::ConfigError;
    use crate::model::Architecture;
    use crate::precond::Parameterisation;
    use crate::sde::Sde;

    fn small_card() -> ModelCard {
        let arch = crate::nn::ncsn::ScoreNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
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
        corrupt(&without(&q, &scale), "lacks");
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
        let arch = crate::nn::unet::UNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.5, ..Default::default() };
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
    /// The file without tensor `name`, still valid safetensors: its bytes dropped and the later
    /// tensors' offsets moved down (the format refuses a gap in the data).
    fn without(bytes: &[u8], name: &str) -> Vec<u8> {
        let (entries, data_start) = parse_safetensors(bytes).unwrap();
        let gone = entries.iter().find(|e| e.name == name).unwrap().clone();
        let len = gone.end - gone.start;
        let moved = with_header(bytes, |h| {
            h.remove(name);
            for e in entries.iter().filter(|e| e.start > gone.start) {
                h.get_mut(&e.name).unwrap()["data_offsets"] = serde_json::json!([e.start - data_start - len, e.end - data_start - len]);
            }
        });
        let new_start = 8 + u64::from_le_bytes(moved[..8].try_into().unwrap()) as usize;
        let mut out = moved[..new_start].to_vec();
        out.extend_from_slice(&bytes[data_start..gone.start]);
        out.extend_from_slice(&bytes[gone.end..]);
        out
    }

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
        // And the card survives JSON, stamped with its writer.
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), ModelCard { written_by: Some(card::WRITER.into()), ..card });
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
        let missing = without(&bytes, "out.bias");
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
        guide.architecture = Architecture::Ncsn(crate::nn::ncsn::ScoreNetConfig { height: 8, width: 8, widths: vec![4, 8], embed_dim: 8, ..Default::default() });
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
