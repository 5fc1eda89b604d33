//! The noise-conditional classifier p_σ(y | x) of guided sampling: Bayes' rule for scores,
//! ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p_t(y | x) (Song et al. 2021, §5 and appendix I;
//! Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", scale the second term by s).
//!
//! The network is the downsampling half of the score model's U-Net (Dhariwal & Nichol's choice):
//! the same residual blocks with the noise embedding as scale and shift, then GroupNorm → SiLU →
//! a mean over the pixels → a dense layer to the class logits. It sees what the EDM denoiser
//! sees, c_in(σ)·x and c_noise(σ) (Karras et al. 2022, table 1), so one set of weights covers the
//! score model's whole σ range; it is trained on training digits noised at σ drawn log-uniformly
//! over that range, and its held-out accuracy against σ is recorded in its card.
//!
//! Files: `NAME.safetensors` and the card `NAME.json` (format `scorefield-classifier-card`),
//! checked as strictly as the score model's (`weights::fill`).

use std::collections::BTreeMap;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, silu};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, WeightsError};
use crate::unet::{ResBlock, UNetConfig, groups, noise_embedding};
use crate::weights::{ImageSpec, TrainingRecord};

pub const CLASSIFIER_CARD_FORMAT: &str = "scorefield-classifier-card";
pub const CLASSIFIER_CARD_VERSION: u32 = 1;

/// The trunk the shipped classifier uses: the score model's U-Net at two thirds of its widths
/// and half its embedding (a forward pass costs about a fifth of the score model's), no dropout.
pub fn default_trunk() -> UNetConfig {
    UNetConfig { widths: vec![16, 32, 64], embed_dim: 64, dropout: 0.0, ..UNetConfig::default() }
}

/// c_in·x and c_noise of a batch at noise levels σ [B]: EDM's input scaling
/// c_in = 1/√(σ² + σ_data²) and noise label c_noise = ln(σ)/4.
fn precondition(x: Tensor<4>, sigma: Tensor<1>, sigma_data: f64) -> (Tensor<4>, Tensor<1>) {
    let b = sigma.dims()[0];
    let c_in = (sigma.clone().powi_scalar(2) + sigma_data * sigma_data).sqrt().recip();
    (x * c_in.reshape([b, 1, 1, 1]), sigma.log() * 0.25)
}

/// The classifier network.
#[derive(Module, Debug)]
pub struct NoisyClassifier {
    fourier: Param<Tensor<1>>,
    map0: Linear,
    map1: Linear,
    conv_in: Conv2d,
    down: Vec<Conv2d>,
    blocks: Vec<ResBlock>,
    out_norm: GroupNorm,
    head: Linear,
    sigma_data: f64,
}

/// What the classifier is: its trunk, its classes, and the σ_data of its input scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierArch {
    pub trunk: UNetConfig,
    /// The class names, in the order of the logits.
    pub classes: Vec<String>,
    pub sigma_data: f64,
}

impl ClassifierArch {
    /// Images 0–9.
    pub fn digits(trunk: UNetConfig, sigma_data: f64) -> Self {
        Self { trunk, classes: (0..10).map(|c: usize| c.to_string()).collect(), sigma_data }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.trunk.validate()?;
        if !(2..=1000).contains(&self.classes.len()) {
            return Err(ConfigError::invalid("architecture.classes", format!("must name 2 to 1000 classes, got {}", self.classes.len())));
        }
        if !(self.sigma_data.is_finite() && self.sigma_data > 0.0) {
            return Err(ConfigError::invalid("architecture.sigma_data", format!("must be a positive number, got {}", self.sigma_data)));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Result<NoisyClassifier, ConfigError> {
        self.validate()?;
        let t = &self.trunk;
        let e = t.embed_dim;
        let conv3 = |c_in: usize, c_out: usize, stride: usize| {
            Conv2dConfig::new([c_in, c_out], [3, 3]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
        };
        let mut down = Vec::new();
        let mut blocks = Vec::new();
        for (i, &w) in t.widths.iter().enumerate() {
            let c_in = if i == 0 { t.widths[0] } else { t.widths[i - 1] };
            if i > 0 {
                down.push(conv3(c_in, c_in, 2));
            }
            blocks.push(ResBlock::new(c_in, w, e, t.dropout, device));
        }
        let last = *t.widths.last().expect("validated: at least one level");
        let freqs = crate::model::gaussian_frequencies(t.fourier_seed, e / 2, t.fourier_scale);
        let fourier = Param::from_tensor(Tensor::<1>::from_data(TensorData::new(freqs, [e / 2]), device)).set_require_grad(false);
        Ok(NoisyClassifier {
            fourier,
            map0: LinearConfig::new(e, e).init(device),
            map1: LinearConfig::new(e, e).init(device),
            conv_in: conv3(t.channels, t.widths[0], 1),
            down,
            blocks,
            out_norm: GroupNormConfig::new(groups(last), last).init(device),
            head: LinearConfig::new(last, self.classes.len()).init(device),
            sigma_data: self.sigma_data,
        })
    }
}

impl NoisyClassifier {
    /// Class logits of images `x` [B, C, H, W] (the data space of the score model) at noise
    /// levels `sigma` [B] → [B, K].
    pub fn logits(&self, x: Tensor<4>, sigma: Tensor<1>) -> Tensor<2> {
        let (x, c_noise) = precondition(x, sigma, self.sigma_data);
        let emb = noise_embedding(c_noise, &self.fourier, &self.map0, &self.map1);
        let mut h = self.conv_in.forward(x);
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                h = self.down[i - 1].forward(h);
            }
            h = block.forward(h, &emb);
        }
        let h = silu(self.out_norm.forward(h)); // [B, w_L, H_L, W_L]
        let [b, c, ..] = h.dims();
        self.head.forward(h.mean_dim(3).mean_dim(2).reshape([b, c])) // [B, K]
    }

    /// The number of classes K.
    pub fn classes(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// Keeps the Fourier frequencies fixed (a loaded checkpoint marks every tensor trainable).
    #[cfg(not(target_arch = "wasm32"))]
    fn with_frozen_features(mut self) -> Self {
        self.fourier = self.fourier.set_require_grad(false);
        self
    }

    /// ∇ₓ Σ_b log p_σ(y_b | x_b) of a batch at one noise level, through autodiff: each row is
    /// the gradient of its own image's log-probability (the images do not interact).
    /// `labels` holds one class per image.
    pub fn grad_log_prob(&self, x: Tensor<4>, sigma: f64, labels: &[usize]) -> Tensor<4> {
        let [b, ..] = x.dims();
        let k = self.classes();
        let x = x.without_autodiff().autodiff().require_grad();
        let device = x.device();
        let one_hot: Vec<f32> = labels.iter().flat_map(|&y| (0..k).map(move |j| if j == y { 1.0 } else { 0.0 })).collect();
        let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b, k]), &device);
        let log_p = (log_softmax(self.logits(x.clone(), Tensor::full([b], sigma as f32, &device)), 1) * one_hot).sum();
        let grads = log_p.backward();
        x.grad(&grads).expect("x requires grad")
    }
}

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
        let value = crate::weights::card_json(text)?;
        if value.get("format").and_then(|f| f.as_str()) != Some(CLASSIFIER_CARD_FORMAT) {
            return Err(ConfigError::invalid("format", format!("is {}; expected `{CLASSIFIER_CARD_FORMAT}`", value.get("format").map_or("missing".into(), |f| f.to_string()))));
        }
        let card: Self = serde_json::from_value(value).map_err(|e| ConfigError::Json(e.to_string()))?;
        card.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a card always serialises")
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CLASSIFIER_CARD_VERSION {
            return Err(ConfigError::invalid("version", format!("is {}; this build reads classifier cards of version {CLASSIFIER_CARD_VERSION}", self.version)));
        }
        crate::weights::check_weights_path(&self.weights)?;
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
    pub fn check_for(&self, model: &crate::weights::ModelCard) -> Result<(), ConfigError> {
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
    crate::weights::fill(&mut net, weights)?;
    // Guidance differentiates the classifier: dropout, if a card has any, must be off.
    for block in &mut net.blocks {
        block.dropout = 0.0;
    }
    Ok(net)
}

#[cfg(not(target_arch = "wasm32"))]
pub use training::{ClassifierTraining, SigmaDraw, accuracy_by_sigma, train};

/// Training on the digits (native: the data set is fetched by the CLI).
#[cfg(not(target_arch = "wasm32"))]
mod training {
    use burn::optim::{AdamConfig, GradientsParams};

    use super::*;
    use crate::data::Images;
    use crate::data::mnist::SIDE;
    use crate::rng::SplitMix;

    /// How the classifier is trained (Adam on cross-entropy over noised training digits).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct ClassifierTraining {
        pub epochs: usize,
        pub batch_size: usize,
        /// Adam's learning rate; divided by 10 for the last quarter of the epochs.
        pub learning_rate: f64,
        pub seed: u64,
        /// How the training noise levels are drawn over the model's σ range.
        pub sigmas: SigmaDraw,
    }

    impl Default for ClassifierTraining {
        fn default() -> Self {
            // The shipped classifier's settings (docs/EVALUATION.md, "Guided generation").
            Self { epochs: 48, batch_size: 64, learning_rate: 2e-3, seed: 11, sigmas: SigmaDraw::LogNormal { mean: 0.4, std: 1.2 } }
        }
    }

    /// The distribution of a training digit's noise level σ, within the model's [σ_min, σ_max].
    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    pub enum SigmaDraw {
        /// Every octave of the range alike.
        LogUniform,
        /// ln σ ~ N(mean, std²), clamped to the range: the training distribution of Karras et al.
        /// 2022 (their P_mean, P_std), here centred where guidance decides a digit's class
        /// rather than where the denoiser's loss is largest.
        LogNormal { mean: f64, std: f64 },
    }

    impl SigmaDraw {
        /// `log-uniform` or `log-normal:MEAN,STD` (of ln σ).
        pub fn parse(text: &str) -> Result<Self, ConfigError> {
            let bad = || ConfigError::invalid("sigmas", format!("must be `log-uniform` or `log-normal:MEAN,STD` with STD > 0, got `{text}`"));
            if text == "log-uniform" {
                return Ok(SigmaDraw::LogUniform);
            }
            let (mean, std) = text.strip_prefix("log-normal:").and_then(|r| r.split_once(',')).ok_or_else(bad)?;
            let (mean, std): (f64, f64) = (mean.trim().parse().map_err(|_| bad())?, std.trim().parse().map_err(|_| bad())?);
            if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                return Err(bad());
            }
            Ok(SigmaDraw::LogNormal { mean, std })
        }

        /// `n` draws in [lo, hi].
        pub fn draw(self, rng: &mut SplitMix, n: usize, [lo, hi]: [f64; 2]) -> Vec<f32> {
            (0..n)
                .map(|_| match self {
                    SigmaDraw::LogUniform => (lo.ln() + rng.uniform() * (hi / lo).ln()).exp() as f32,
                    SigmaDraw::LogNormal { mean, std } => (mean + std * rng.normal()).clamp(lo.ln(), hi.ln()).exp() as f32,
                })
                .collect()
        }
    }

    impl std::fmt::Display for SigmaDraw {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                SigmaDraw::LogUniform => write!(f, "log-uniform"),
                SigmaDraw::LogNormal { mean, std } => write!(f, "log-normal:{mean},{std}"),
            }
        }
    }

    /// Training digits as the score model's data: [B, 1, 28, 28] in `range`, plus N(0, σ²) noise.
    fn noised(train: &Images, idx: &[usize], sigmas: &[f32], range: [f32; 2], rng: &mut SplitMix) -> Vec<f32> {
        let pixels = SIDE * SIDE;
        let mut out = train.floats(idx);
        for (i, v) in out.iter_mut().enumerate() {
            *v = *v * (range[1] - range[0]) + range[0] + sigmas[i / pixels] * rng.normal() as f32;
        }
        out
    }

    /// Trains a classifier of `arch` on the training digits noised over `sigma_range`; calls
    /// `progress(epoch, mean loss)` after each epoch. Returns the network and its last epoch's loss.
    pub fn train(
        train: &Images,
        arch: &ClassifierArch,
        sigma_range: [f64; 2],
        range: [f32; 2],
        config: &ClassifierTraining,
        device: &Device,
        mut progress: impl FnMut(usize, f64),
    ) -> Result<(NoisyClassifier, f64), ConfigError> {
        let ad = device.clone().autodiff();
        ad.seed(config.seed);
        let mut model = arch.init(&ad)?;
        let mut optim = AdamConfig::new().init();
        let mut rng = SplitMix::new(config.seed);
        let k = arch.classes.len();
        let mut last = f64::NAN;
        for epoch in 0..config.epochs {
            let lr = if 4 * epoch >= 3 * config.epochs { config.learning_rate / 10.0 } else { config.learning_rate };
            let mut order: Vec<usize> = (0..train.len()).collect();
            rng.shuffle(&mut order);
            let (mut sum, mut count) = (0.0, 0);
            for idx in order.chunks(config.batch_size) {
                let b = idx.len();
                let sigmas = config.sigmas.draw(&mut rng, b, sigma_range);
                let x = Tensor::<4>::from_data(TensorData::new(noised(train, idx, &sigmas, range, &mut rng), [b, 1, SIDE, SIDE]), &ad);
                let sigma = Tensor::<1>::from_data(TensorData::new(sigmas, [b]), &ad);
                let one_hot: Vec<f32> = idx.iter().flat_map(|&i| (0..k).map(move |j| if j == train.labels[i] as usize { 1.0 } else { 0.0 })).collect();
                let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b, k]), &ad);
                // Cross-entropy −Σ_k y_k log softmax(logits)_k, averaged over the batch.
                let loss = (log_softmax(model.logits(x, sigma), 1) * one_hot).sum().neg() / b as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                sum += loss.into_scalar::<f32>() as f64;
                count += 1;
                model = optim.step(lr, model, grads).with_frozen_features();
            }
            last = sum / count as f64;
            progress(epoch + 1, last);
        }
        Ok((model.valid(), last))
    }

    /// Held-out accuracy at each noise level in `sigmas` (every digit noised once per level, with a
    /// fixed seed): [[σ, accuracy], …].
    pub fn accuracy_by_sigma(model: &NoisyClassifier, held: &Images, sigmas: &[f64], range: [f32; 2], device: &Device) -> Vec<[f64; 2]> {
        let mut rng = SplitMix::new(0x5eed);
        sigmas
            .iter()
            .map(|&sigma| {
                let mut correct = 0;
                let all: Vec<usize> = (0..held.len()).collect();
                for idx in all.chunks(200) {
                    let b = idx.len();
                    let x = Tensor::<4>::from_data(TensorData::new(noised(held, idx, &vec![sigma as f32; b], range, &mut rng), [b, 1, SIDE, SIDE]), device);
                    let predicted = model.logits(x, Tensor::full([b], sigma as f32, device)).argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().expect("argmax is an integer tensor");
                    correct += idx.iter().zip(predicted).filter(|&(&i, p)| held.labels[i] as i64 == p).count();
                }
                [sigma, correct as f64 / held.len() as f64]
            })
            .collect()
    }
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
        let path = crate::weights::files::beside(card_path, &card.weights);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let net = super::load(&card, &bytes, device)?;
        Ok((card, net))
    }

    pub fn save(card_path: &Path, card: &ClassifierCard, net: &NoisyClassifier) -> Result<(), WeightsError> {
        card.validate()?;
        let path = crate::weights::files::beside(card_path, &card.weights);
        std::fs::write(&path, crate::weights::to_safetensors(net)?).map_err(|e| io(&path, e))?;
        std::fs::write(card_path, card.to_json() + "\n").map_err(|e| io(card_path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ClassifierArch {
        ClassifierArch::digits(UNetConfig { widths: vec![4, 8], embed_dim: 8, dropout: 0.0, ..UNetConfig::default() }, 0.5)
    }

    /// The gradient autodiff gives is the derivative of log p_σ(y | x): along random directions v,
    /// the central difference (log p(x + h·v) − log p(x − h·v))/2h equals ∇ log p · v to 1 %.
    #[test]
    fn grad_log_prob_is_the_derivative_of_the_log_probability() {
        let device = Device::flex();
        device.seed(3);
        let net = tiny().init(&device).unwrap();
        let x = Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let (sigma, labels) = (0.3, [3usize, 8]);
        let grad = net.grad_log_prob(x.clone(), sigma, &labels);
        let log_p = |x: Tensor<4>| -> f64 {
            let lp: Vec<f32> = log_softmax(net.logits(x, Tensor::full([2], sigma as f32, &device)), 1).into_data().try_to_vec::<f32>().unwrap();
            (lp[labels[0]] + lp[10 + labels[1]]) as f64
        };
        let h = 1e-2;
        for seed in 0..3 {
            device.seed(100 + seed);
            let v = Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let analytic = (grad.clone() * v.clone()).sum().into_scalar::<f32>() as f64;
            let numeric = (log_p(x.clone() + v.clone() * h) - log_p(x.clone() - v * h)) / (2.0 * h);
            assert!(numeric.abs() > 1e-3, "the direction barely changes log p ({numeric}): the check would be vacuous");
            assert!((numeric - analytic).abs() <= 0.01 * numeric.abs(), "direction {seed}: autodiff {analytic} vs difference {numeric}");
        }
    }

    /// Training noise levels: log-uniform draws have ln σ uniform on [ln lo, ln hi] (mean at the
    /// middle, variance (ln hi − ln lo)²/12); log-normal ones have ln σ ~ N(mean, std²), clamped to
    /// the range (with 40,000 draws the sample mean and deviation are within 3 % of the
    /// distribution's). Malformed settings are named.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn training_noise_levels_follow_their_distribution() {
        let range = [0.002f64, 40.0];
        let (lo, hi) = (range[0].ln(), range[1].ln());
        let moments = |draw: SigmaDraw| {
            let mut rng = crate::rng::SplitMix::new(1);
            let logs: Vec<f64> = draw.draw(&mut rng, 40_000, range).iter().map(|&s| (s as f64).ln()).collect();
            assert!(logs.iter().all(|&l| l >= lo - 1e-5 && l <= hi + 1e-5));
            let mean = logs.iter().sum::<f64>() / logs.len() as f64;
            (mean, (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt())
        };
        let (mean, std) = moments(SigmaDraw::LogUniform);
        assert!((mean - (lo + hi) / 2.0).abs() < 0.03 * (hi - lo) && (std / ((hi - lo) / 12f64.sqrt()) - 1.0).abs() < 0.03, "{mean} {std}");
        let (mean, std) = moments(SigmaDraw::LogNormal { mean: 0.4, std: 1.0 });
        assert!((mean - 0.4).abs() < 0.03 && (std - 1.0).abs() < 0.03, "{mean} {std}");
        assert_eq!(SigmaDraw::parse("log-normal:0.4, 1.4").unwrap(), SigmaDraw::LogNormal { mean: 0.4, std: 1.4 });
        assert_eq!(SigmaDraw::parse(&SigmaDraw::LogNormal { mean: -1.2, std: 1.2 }.to_string()).unwrap(), SigmaDraw::LogNormal { mean: -1.2, std: 1.2 });
        assert_eq!(SigmaDraw::parse("log-uniform").unwrap(), SigmaDraw::LogUniform);
        for bad in ["log-normal:1", "log-normal:0,0", "log-normal:x,1", "normal:0,1", "log-normal:0,NaN"] {
            assert!(SigmaDraw::parse(bad).unwrap_err().to_string().contains("sigmas"), "{bad}");
        }
    }

    /// A card names its problems; weights of another architecture are refused by tensor name.
    #[test]
    fn cards_and_weights_are_checked() {
        let image = ImageSpec { channels: 1, height: 28, width: 28, range: [0.0, 1.0] };
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
        let bytes = crate::weights::to_safetensors(&other.init(&device).unwrap()).unwrap();
        let err = load(&card, &bytes, &device).unwrap_err();
        assert!(matches!(err, WeightsError::MissingTensor { .. } | WeightsError::ShapeMismatch { .. }), "{err}");
        let same = crate::weights::to_safetensors(&tiny().init(&device).unwrap()).unwrap();
        load(&card, &same, &device).unwrap();
        // It guides only a model of the same images: shape and value range.
        let model = crate::weights::ModelCard::new("m", crate::model::Architecture::Unet(UNetConfig::default()), crate::precond::Parameterisation::Edm { sigma_data: 0.5 }, crate::sde::Sde::ve(40.0));
        card.check_for(&model).unwrap();
        let mut other = model.clone();
        other.image.range = [-1.0, 1.0];
        assert!(card.check_for(&other).unwrap_err().to_string().contains("[-1.0, 1.0]"));
    }
}
