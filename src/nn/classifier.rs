//! The noise-conditional classifier p_σ(y | x) of guided sampling: Bayes' rule for scores,
//! ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p_t(y | x) (Song et al. 2021, §5 and appendix I;
//! Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", scale the second term by s).
//!
//! The network is the downsampling half of the score model's U-Net (Dhariwal & Nichol's choice):
//! the same residual blocks with the noise embedding as scale and shift, then GroupNorm → SiLU →
//! a mean over the pixels → a dense layer to the class logits. It sees what the EDM denoiser
//! sees, c_in(σ)·x and c_noise(σ) (Karras et al. 2022, table 1), so one set of weights covers the
//! score model's whole σ range. Its card and weights: [`crate::store::classifier`]; its training:
//! [`crate::train::classifier`].

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, silu};
use serde::{Deserialize, Serialize};

use super::layers::groups;
use super::unet::{ResBlock, UNetConfig, noise_embedding};
use crate::error::ConfigError;
use crate::sampling::guidance::ClassGradient;

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
    /// A classifier of images into `classes` (the names, in the order of the logits).
    pub fn new(trunk: UNetConfig, classes: Vec<String>, sigma_data: f64) -> Self {
        Self { trunk, classes, sigma_data }
    }

    /// Images 0–9.
    pub fn digits(trunk: UNetConfig, sigma_data: f64) -> Self {
        Self::new(trunk, (0..10).map(|c: usize| c.to_string()).collect(), sigma_data)
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
        let freqs = super::layers::gaussian_frequencies(t.fourier_seed, e / 2, t.fourier_scale);
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
    pub(crate) fn with_frozen_features(mut self) -> Self {
        self.fourier = self.fourier.set_require_grad(false);
        self
    }

    /// The same network with dropout off (guidance differentiates it; a card may have trained
    /// it with dropout).
    pub fn without_dropout(mut self) -> Self {
        for block in &mut self.blocks {
            block.dropout = 0.0;
        }
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

impl ClassGradient for NoisyClassifier {
    fn classes(&self) -> usize {
        NoisyClassifier::classes(self)
    }

    fn grad_log_prob(&self, x: Tensor<4>, sigma: f64, labels: &[usize]) -> Tensor<4> {
        NoisyClassifier::grad_log_prob(self, x, sigma, labels)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tiny() -> ClassifierArch {
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
}
