//! The classifier's files: its card, `NAME.json` (format `scorefield-classifier-card`), and its
//! weights, checked as strictly as the score model's ([`super::fill`]).

use std::collections::BTreeMap;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::card::{ImageSpec, ModelCard, TrainingRecord};
use crate::error::{ConfigError, WeightsError};
use crate::nn::classifier::{ClassifierArch, NoisyClassifier};

pub const CLASSIFIER_CARD_FORMAT: &str = "scorefield-classifier-card";
pub const CLASSIFIER_CARD_VERSION: u32 = 1;
/// The classifier card, `NAME.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierCard {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// The safetensors file, relative to the card.
    pub weights: String,
    pub architecture: ClassifierArch,
    /// The noise levels σ̂ it was trained on (log-uniform between the two): the score model's.
    pub sigma_range: [f64; 2],
    pub image: ImageSpec,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub training: TrainingRecord,
    /// Held-out accuracy against σ, and anything else measured.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

impl ClassifierCard {
    pub fn new(name: &str, architecture: ClassifierArch, sigma_range: [f64; 2], image: ImageSpec) -> Self {
        Self {
            format: CLASSIFIER_CARD_FORMAT.into(),
            version: CLASSIFIER_CARD_VERSION,
            name: name.into(),
            weights: format!("{name}.safetensors"),
            architecture,
            sigma_range,
            image,
            dataset: None,
            training: TrainingRecord::default(),
            metrics: BTreeMap::new(),
        }
    }

    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value = crate::store::card::card_json(text)?;
        if value.get("format").and_then(|f| f.as_str()) != Some(CLASSIFIER_CARD_FORMAT) {
            return Err(ConfigError::invalid("format", format!("is {}; expected `{CLASSIFIER_CARD_FORMAT}`", value.get("format").map_or("missing".into(), |f| f.to_string()))));
        }
        crate::store::card::checked(value, Self::validate)
    }

    pub fn to_json(&self) -> String {
        crate::store::card::pretty(self)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CLASSIFIER_CARD_VERSION {
            return Err(ConfigError::invalid("version", format!("is {}; this build reads classifier cards of version {CLASSIFIER_CARD_VERSION}", self.version)));
        }
        crate::store::card::check_weights_path(&self.weights)?;
        self.architecture.validate()?;
        let [lo, hi] = self.sigma_range;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi) {
            return Err(ConfigError::invalid("sigma_range", format!("must be [low, high] with 0 < low < high, got [{lo}, {hi}]")));
        }
        let t = &self.architecture.trunk;
        let i = &self.image;
        if [i.channels, i.height, i.width] != [t.channels, t.height, t.width] {
            return Err(ConfigError::invalid("image", format!("is {}×{}×{} but the trunk is built for {}×{}×{}", i.channels, i.height, i.width, t.channels, t.height, t.width)));
        }
        Ok(())
    }
}

impl ClassifierCard {
    /// Whether this classifier can guide `model`: the same image shape and value range (a
    /// classifier of other images would compute nonsense, or fail inside the network).
    pub fn check_for(&self, model: &ModelCard) -> Result<(), ConfigError> {
        let (i, m) = (&self.image, &model.image);
        if [i.channels, i.height, i.width] != [m.channels, m.height, m.width] || i.range != m.range {
            return Err(ConfigError::invalid(
                "image",
                format!("the classifier is for {}×{}×{} images in {:?}, the model makes {}×{}×{} in {:?}", i.channels, i.height, i.width, i.range, m.channels, m.height, m.width, m.range),
            ));
        }
        Ok(())
    }
}

/// Builds the classifier a card describes and fills it with safetensors bytes.
pub fn load(card: &ClassifierCard, weights: &[u8], device: &Device) -> Result<NoisyClassifier, WeightsError> {
    card.validate()?;
    let mut net = card.architecture.init(device)?;
    crate::store::fill(&mut net, weights)?;
    // Guidance differentiates the classifier: dropout, if a card has any, must be off.
    Ok(net.without_dropout())
}

/// Native file helpers: the card at `card_path`, its weights beside it.
#[cfg(not(target_arch = "wasm32"))]
pub mod files {
    use std::path::Path;

    use super::*;

    fn io(path: &Path, e: impl std::fmt::Display) -> WeightsError {
        WeightsError::Io { path: path.display().to_string(), reason: e.to_string() }
    }

    pub fn load(card_path: &Path, device: &Device) -> Result<(ClassifierCard, NoisyClassifier), WeightsError> {
        let text = std::fs::read_to_string(card_path).map_err(|e| io(card_path, e))?;
        let card = ClassifierCard::from_json(&text)?;
        let path = crate::store::files::beside(card_path, &card.weights);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let net = super::load(&card, &bytes, device)?;
        Ok((card, net))
    }

    pub fn save(card_path: &Path, card: &ClassifierCard, net: &NoisyClassifier) -> Result<(), WeightsError> {
        card.validate()?;
        let path = crate::store::files::beside(card_path, &card.weights);
        std::fs::write(&path, crate::store::to_safetensors(net)?).map_err(|e| io(&path, e))?;
        std::fs::write(card_path, card.to_json() + "\n").map_err(|e| io(card_path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::classifier::tests::tiny;
    use crate::nn::unet::UNetConfig;

    /// A card names its problems; weights of another architecture are refused by tensor name.
    #[test]
    fn cards_and_weights_are_checked() {
        let image = ImageSpec { channels: 1, height: 28, width: 28, range: [0.0, 1.0], background: None };
        let card = ClassifierCard::new("c", tiny(), [0.002, 40.0], image.clone());
        assert_eq!(ClassifierCard::from_json(&card.to_json()).unwrap(), card);
        let bad = |f: &dyn Fn(&mut ClassifierCard)| {
            let mut c = card.clone();
            f(&mut c);
            ClassifierCard::from_json(&c.to_json()).unwrap_err().to_string()
        };
        assert!(bad(&|c| c.sigma_range = [1.0, 0.5]).contains("sigma_range"));
        assert!(bad(&|c| c.version = 7).contains("version"));
        assert!(bad(&|c| c.weights = "../x.safetensors".into()).contains("weights"));
        assert!(bad(&|c| c.image.height = 27).contains("image"));
        assert!(bad(&|c| c.format = "scorefield-model-card".into()).contains("format"));
        let device = Device::flex();
        let other = ClassifierArch::digits(UNetConfig { widths: vec![4], embed_dim: 8, dropout: 0.0, ..UNetConfig::default() }, 0.5);
        let bytes = crate::store::to_safetensors(&other.init(&device).unwrap()).unwrap();
        let err = load(&card, &bytes, &device).unwrap_err();
        assert!(matches!(err, WeightsError::MissingTensor { .. } | WeightsError::ShapeMismatch { .. }), "{err}");
        let same = crate::store::to_safetensors(&tiny().init(&device).unwrap()).unwrap();
        load(&card, &same, &device).unwrap();
        // It guides only a model of the same images: shape and value range.
        let model = ModelCard::new("m", crate::model::Architecture::Unet(UNetConfig::default()), crate::precond::Parameterisation::Edm { sigma_data: 0.5 }, crate::sde::Sde::ve(40.0));
        card.check_for(&model).unwrap();
        let mut other = model.clone();
        other.image.range = [-1.0, 1.0];
        assert!(card.check_for(&other).unwrap_err().to_string().contains("[-1.0, 1.0]"));
    }
}
