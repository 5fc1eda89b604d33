//! Training the noise-conditional classifier ([`crate::nn::classifier`]) on a data set's labelled
//! images, noised at σ drawn over the score model's range; its held-out accuracy against σ goes
//! into its card.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Images;
use crate::error::ConfigError;
use crate::nn::classifier::{ClassifierArch, NoisyClassifier};
use crate::nn::layers::cross_entropy;
use crate::rng::SplitMix;

/// How the classifier is trained (Adam on cross-entropy over noised training images).
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

/// The distribution of a training image's noise level σ, within the model's [σ_min, σ_max].
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

/// The classifiers' schedule: `epochs` passes over the examples in shuffled mini-batches, Adam at
/// `learning_rate` and at a tenth of it for the last quarter of the passes.
pub struct Epochs {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
}

impl Epochs {
    /// Fits `model` to `labels` on the cross-entropy of the logits `logits(model, batch, rng)` gives
    /// for a batch of example indices; `after_step` tidies the model after each update (frozen
    /// features), `on_epoch(epoch, mean loss)` hears of each pass. Returns the model and the mean
    /// loss of its last pass.
    pub fn fit<M: Module>(&self, mut model: M, labels: &[u16], rng: &mut SplitMix, logits: impl Fn(&M, &[usize], &mut SplitMix) -> Tensor<2>, after_step: impl Fn(M) -> M, mut on_epoch: impl FnMut(usize, f64)) -> (M, f64) {
        let mut optim = AdamConfig::new().init();
        let mut last = f64::NAN;
        for epoch in 0..self.epochs {
            let lr = if 4 * epoch >= 3 * self.epochs { self.learning_rate / 10.0 } else { self.learning_rate };
            let mut order: Vec<usize> = (0..labels.len()).collect();
            rng.shuffle(&mut order);
            let (mut sum, mut count) = (0.0, 0);
            for idx in order.chunks(self.batch_size) {
                let targets: Vec<usize> = idx.iter().map(|&i| labels[i] as usize).collect();
                let loss = cross_entropy(logits(&model, idx, rng), &targets);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                sum += loss.into_scalar::<f32>() as f64;
                count += 1;
                model = after_step(optim.step(lr, model, grads));
            }
            last = sum / count as f64;
            on_epoch(epoch + 1, last);
        }
        (model, last)
    }
}

/// Training images as the score model's data: [B, C, H, W] in `range`, plus N(0, σ²) noise.
fn noised(train: &Images, idx: &[usize], sigmas: &[f32], range: [f32; 2], rng: &mut SplitMix) -> Vec<f32> {
    let pixels: usize = train.shape.iter().product();
    let mut out = train.floats(idx);
    for (i, v) in out.iter_mut().enumerate() {
        *v = *v * (range[1] - range[0]) + range[0] + sigmas[i / pixels] * rng.normal() as f32;
    }
    out
}

/// Trains a classifier of `arch` on labelled training images noised over `sigma_range`; calls
/// `progress(epoch, mean loss)` after each epoch. Returns the network and its last epoch's loss.
/// The images must have the trunk's shape and the architecture's classes.
pub fn train(
    train: &Images,
    arch: &ClassifierArch,
    sigma_range: [f64; 2],
    range: [f32; 2],
    config: &ClassifierTraining,
    device: &Device,
    progress: impl FnMut(usize, f64),
) -> Result<(NoisyClassifier, f64), ConfigError> {
    let t = &arch.trunk;
    if train.shape != [t.channels, t.height, t.width] {
        return Err(ConfigError::invalid("image", format!("the images are {:?} (C, H, W) but the classifier is built for {:?}", train.shape, [t.channels, t.height, t.width])));
    }
    if train.classes != arch.classes {
        return Err(ConfigError::invalid("architecture.classes", format!("the images' classes {:?} are not the classifier's {:?}", train.classes, arch.classes)));
    }
    let [c, h, w] = train.shape;
    let ad = device.clone().autodiff();
    ad.seed(config.seed);
    let model = arch.init(&ad)?;
    let mut rng = SplitMix::new(config.seed);
    let schedule = Epochs { epochs: config.epochs, batch_size: config.batch_size, learning_rate: config.learning_rate };
    let (model, last) = schedule.fit(model, &train.labels, &mut rng, |model, idx, rng| {
        let b = idx.len();
        let sigmas = config.sigmas.draw(rng, b, sigma_range);
        let x = Tensor::<4>::from_data(TensorData::new(noised(train, idx, &sigmas, range, rng), [b, c, h, w]), &ad);
        let sigma = Tensor::<1>::from_data(TensorData::new(sigmas, [b]), &ad);
        model.logits(x, sigma)
    }, NoisyClassifier::with_frozen_features, progress);
    Ok((model.valid(), last))
}

/// Held-out accuracy at each noise level in `sigmas` (every image noised once per level, with a
/// fixed seed): [[σ, accuracy], …].
pub fn accuracy_by_sigma(model: &NoisyClassifier, held: &Images, sigmas: &[f64], range: [f32; 2], device: &Device) -> Vec<[f64; 2]> {
    let [c, h, w] = held.shape;
    let mut rng = SplitMix::new(0x5eed);
    sigmas
        .iter()
        .map(|&sigma| {
            let mut correct = 0;
            let all: Vec<usize> = (0..held.len()).collect();
            for idx in all.chunks(200) {
                let b = idx.len();
                let x = Tensor::<4>::from_data(TensorData::new(noised(held, idx, &vec![sigma as f32; b], range, &mut rng), [b, c, h, w]), device);
                let predicted = model.logits(x, Tensor::full([b], sigma as f32, device)).argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().expect("argmax is an integer tensor");
                correct += idx.iter().zip(predicted).filter(|&(&i, p)| held.labels[i] as i64 == p).count();
            }
            [sigma, correct as f64 / held.len() as f64]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colour images of two classes (reddish and bluish 3×8×8 squares with noise): a tiny
    /// classifier trained on them tells the classes apart at low noise, and images of another
    /// shape or other classes are refused by name.
    #[test]
    fn a_colour_classifier_learns_its_classes_and_refuses_other_images() {
        use crate::nn::unet::UNetConfig;
        let mut rng = SplitMix::new(5);
        let (n, shape) = (64usize, [3usize, 8, 8]);
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let class = i % 2;
            for ch in 0..3 {
                let base = if (class == 0 && ch == 0) || (class == 1 && ch == 2) { 0.8 } else { 0.2 };
                pixels.extend((0..64).map(|_| ((base + 0.1 * rng.normal()).clamp(0.0, 1.0) * 255.0) as u8));
            }
            labels.push(class as u16);
        }
        let images = Images { shape, pixels, labels, classes: vec!["red".into(), "blue".into()], groups: (0..n as u32).collect() };
        let trunk = UNetConfig { channels: 3, height: 8, width: 8, widths: vec![8, 8], embed_dim: 8, dropout: 0.0, ..UNetConfig::default() };
        let arch = ClassifierArch::new(trunk.clone(), images.classes.clone(), 0.5);
        let config = ClassifierTraining { epochs: 6, batch_size: 16, learning_rate: 5e-3, seed: 1, sigmas: SigmaDraw::LogUniform };
        let device = Device::flex();
        let (net, _) = train(&images, &arch, [0.01, 1.0], [0.0, 1.0], &config, &device, |_, _| {}).unwrap();
        let [[_, acc]] = accuracy_by_sigma(&net, &images, &[0.05], [0.0, 1.0], &device)[..] else { panic!() };
        assert!(acc >= 0.9, "accuracy at σ = 0.05: {acc}");
        let grey = ClassifierArch::new(UNetConfig { channels: 1, ..trunk }, images.classes.clone(), 0.5);
        assert!(train(&images, &grey, [0.01, 1.0], [0.0, 1.0], &config, &device, |_, _| {}).unwrap_err().to_string().contains("image"));
        let other = ClassifierArch::new(arch.trunk.clone(), vec!["a".into(), "b".into()], 0.5);
        assert!(train(&images, &other, [0.01, 1.0], [0.0, 1.0], &config, &device, |_, _| {}).unwrap_err().to_string().contains("classes"));
    }

    /// Training noise levels: log-uniform draws have ln σ uniform on [ln lo, ln hi] (mean at the
    /// middle, variance (ln hi − ln lo)²/12); log-normal ones have ln σ ~ N(mean, std²), clamped to
    /// the range (with 40,000 draws the sample mean and deviation are within 3 % of the
    /// distribution's). Malformed settings are named.
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
}
