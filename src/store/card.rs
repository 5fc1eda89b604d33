//! The model card, `NAME.json`: architecture, parameterisation, SDE, image shape and range, data
//! set, training record and measured metrics, checked as a whole on load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::Architecture;
use crate::precond::Parameterisation;
use crate::sampling::defaults::SamplingDefaults;
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
    /// The value of the images' empty background where the data have one (the emoji's white
    /// 1.0; the digits' black is the range's low end, the default): a front end's blank canvas,
    /// whose ink is the other end of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<f32>,
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
    /// The card of the score model a consistency model was distilled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distilled_from: Option<String>,
}

/// A card from its JSON value: deserialised, then checked (the model's card and the classifier's).
pub fn checked<T: serde::de::DeserializeOwned>(value: serde_json::Value, validate: impl Fn(&T) -> Result<(), ConfigError>) -> Result<T, ConfigError> {
    let card: T = serde_json::from_value(value).map_err(|e| ConfigError::Json(e.to_string()))?;
    validate(&card)?;
    Ok(card)
}

/// A card as the JSON written beside its weights.
pub fn pretty(card: &impl Serialize) -> String {
    serde_json::to_string_pretty(card).expect("a card always serialises")
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
    /// What one image of the model is called, for the page's and the widget's words ("16
    /// digits", "16 emoji"); cards without it draw "images".
    #[serde(default)]
    pub subject: Subject,
    #[serde(default)]
    pub training: TrainingRecord,
    /// Measured numbers (bits/dim, sample-quality scores), free-form.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The card of the noise-conditional classifier that guides this model to a class
    /// ([`crate::nn::classifier`]), relative to this card; none: the model draws unguided only.
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
    /// How this model is sampled when a run says nothing: its default sampler, each sampler's
    /// starting and fewest steps, its guided and autoguided runs, measured for it
    /// ([`crate::sampling::defaults`]). A card without it (a model nobody has measured) starts
    /// from the library's starting points.
    #[serde(default)]
    pub sampling: SamplingDefaults,
    /// The scorefield that wrote the card (`scorefield 0.1.0`): every card written is stamped
    /// with the writer's version ([`ModelCard::to_json`]); cards from before the stamp have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
}

/// The name of one of a model's images and of several, as a reader's sentence uses them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub one: String,
    pub many: String,
}

impl Subject {
    /// The longest name a card may give (the page puts it in buttons and headings).
    pub const MAX_CHARS: usize = 40;

    pub fn new(one: &str, many: &str) -> Self {
        Self { one: one.into(), many: many.into() }
    }
}

impl Default for Subject {
    fn default() -> Self {
        Self::new("image", "images")
    }
}

/// This build, as cards record their writer.
pub const WRITER: &str = concat!("scorefield ", env!("CARGO_PKG_VERSION"));

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
        let image = ImageSpec { channels, height, width, range: [0.0, 1.0], background: None };
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
            subject: Subject::default(),
            training: TrainingRecord::default(),
            metrics: BTreeMap::new(),
            classifier: None,
            likelihood_references: None,
            guide: None,
            sampling: SamplingDefaults::default(),
            written_by: None,
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
        checked(value, ModelCard::validate)
    }

    /// The card as written beside its weights, stamped with this build's version (`written_by`).
    pub fn to_json(&self) -> String {
        pretty(&ModelCard { written_by: Some(WRITER.into()), ..self.clone() })
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
        self.sampling.validate()?;
        if self.parameterisation.is_consistency() {
            for (field, named) in [("guide", &self.guide), ("classifier", &self.classifier)] {
                if let Some(name) = named {
                    return Err(ConfigError::invalid(field, format!("names `{name}`, but a consistency model takes no guidance: guide models and classifiers act on the scores of score models")));
                }
            }
        }
        if self.parameterisation.is_consistency() != self.sampling.sampler.is_consistency() {
            let want = if self.parameterisation.is_consistency() { "`consistency`, the only sampler of a consistency model" } else { "a score model's sampler, not `consistency`" };
            return Err(ConfigError::invalid("sampling.sampler", format!("is `{}`, but the parameterisation is `{}`: it must be {want}", self.sampling.sampler.name(), self.parameterisation.name())));
        }
        self.sde.validate()?;
        // (Falling and positive already: `sampling.validate` above.)
        let (min, max) = self.sde.noise_levels();
        if let Some((_, level)) = crate::sampling::misplaced_level(&self.sampling.consistency_levels, min, max) {
            return Err(ConfigError::invalid("sampling.consistency_levels", format!("has {level}, outside this model's noise levels ({min}, {max})")));
        }
        for (field, word) in [("subject.one", &self.subject.one), ("subject.many", &self.subject.many)] {
            if word.trim().is_empty() || word.chars().count() > Subject::MAX_CHARS || word.chars().any(char::is_control) {
                return Err(ConfigError::invalid(field, format!("must be a word or two for the page's sentences (1 to {} characters, no control characters), got {word:?}", Subject::MAX_CHARS)));
            }
        }
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
        if let Some(b) = i.background.filter(|b| !(lo..=hi).contains(b)) {
            return Err(ConfigError::invalid("image.background", format!("must lie in the range [{lo}, {hi}], got {b}")));
        }
        Ok(())
    }

    /// [C, H, W] of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.image.channels, self.image.height, self.image.width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::unet::UNetConfig;
    use crate::sampling::Sampler;

    /// A card's default sampler fits its kind of model: `consistency` for a consistency model and
    /// only for one; the error names the field and both. A consistency model names no guide model
    /// (nor classifier): guidance acts on scores. Its measured levels lie inside its SDE's noise
    /// levels (σ̂_min, σ̂_max).
    #[test]
    fn the_default_sampler_fits_the_kind_of_model() {
        let arch = Architecture::Unet(UNetConfig { widths: vec![8], embed_dim: 8, ..Default::default() });
        let mut card = ModelCard::new("cm", arch, Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 }, Sde::ve(40.0));
        let err = card.validate().err().unwrap().to_string();
        assert!(err.contains("sampling.sampler") && err.contains("dpmpp-2m") && err.contains("`consistency`"), "{err}");
        card.sampling.sampler = Sampler::Consistency;
        card.validate().unwrap();
        card.guide = Some("mnist-guide.json".into());
        let err = card.validate().err().unwrap().to_string();
        assert!(err.contains("`guide`") && err.contains("mnist-guide.json") && err.contains("consistency model"), "{err}");
        card.guide = None;
        card.sampling.consistency_levels = vec![1.4, 0.5];
        card.validate().unwrap();
        for level in [40.0, 0.001] {
            card.sampling.consistency_levels = vec![level];
            let err = card.validate().err().unwrap().to_string();
            assert!(err.contains("sampling.consistency_levels") && err.contains("noise levels"), "{err}");
        }
        card.sampling.consistency_levels.clear();
        card.parameterisation = Parameterisation::Edm { sigma_data: 0.3 };
        assert!(card.validate().err().unwrap().to_string().contains("not `consistency`"));
    }

    /// Every card written names the scorefield that wrote it (Cargo.toml's version); a card
    /// without the stamp (written before it existed) still reads.
    #[test]
    fn written_cards_carry_the_writers_version() {
        let arch = Architecture::Unet(UNetConfig { widths: vec![8], embed_dim: 8, ..Default::default() });
        let card = ModelCard::new("m", arch, Parameterisation::Edm { sigma_data: 0.3 }, Sde::ve(40.0));
        let text = card.to_json();
        let read = ModelCard::from_json(&text).unwrap();
        assert_eq!(read.written_by.as_deref(), Some(concat!("scorefield ", env!("CARGO_PKG_VERSION"))));
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value.as_object_mut().unwrap().remove("written_by");
        assert_eq!(ModelCard::from_json(&value.to_string()).unwrap().written_by, None);
    }

    /// A card names its images for the page ("digit"/"digits"); without the field they are
    /// "image"/"images"; an empty, over-long or control-character name is refused by field, and
    /// so is a background outside the images' range.
    #[test]
    fn the_subject_names_the_images() {
        let arch = Architecture::Unet(UNetConfig { widths: vec![8], embed_dim: 8, ..Default::default() });
        let mut card = ModelCard::new("m", arch, Parameterisation::Edm { sigma_data: 0.3 }, Sde::ve(40.0));
        let mut value: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        value.as_object_mut().unwrap().remove("subject");
        assert_eq!(ModelCard::from_json(&value.to_string()).unwrap().subject, Subject::new("image", "images"));
        card.subject = Subject::new("emoji", "emoji");
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap().subject.many, "emoji");
        card.image.background = Some(1.5);
        assert!(card.validate().err().unwrap().to_string().contains("image.background"));
        card.image.background = Some(1.0);
        card.validate().unwrap();
        for (one, many, field) in [(" ", "digits", "subject.one"), ("digit", &"x".repeat(41) as &str, "subject.many"), ("dig\nit", "digits", "subject.one")] {
            card.subject = Subject::new(one, many);
            let err = card.validate().err().unwrap().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
