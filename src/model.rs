//! A model: the network a card names ([`Architecture`], [`Network`]) and the one adapter that
//! turns its output into a score ([`ScoreModel`]). The networks themselves live in [`crate::nn`].

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::nn::layers::max_batch_for;
use crate::nn::ncsn::{ScoreNet, ScoreNetConfig};
use crate::nn::unet::{UNet, UNetConfig};
use crate::precond::{Parameterisation, edm_coefficients};
use crate::score::{ConsistencyFn, ScoreFn};
use crate::sde::Sde;

/// A model card's architecture, tagged by `type`: the first score network of version-1 cards
/// (`ncsn`) or the residual U-Net (`unet`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Architecture {
    Ncsn(ScoreNetConfig),
    Unet(UNetConfig),
}

impl Architecture {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Architecture::Ncsn(c) => c.validate(),
            Architecture::Unet(c) => c.validate(),
        }
    }

    /// [C, H, W] of the images the network takes.
    pub fn image_shape(&self) -> [usize; 3] {
        match self {
            Architecture::Ncsn(c) => [c.channels, c.height, c.width],
            Architecture::Unet(c) => [c.channels, c.height, c.width],
        }
    }

    pub fn flops_per_image(&self) -> u64 {
        match self {
            Architecture::Ncsn(c) => c.flops_per_image(),
            Architecture::Unet(c) => c.flops_per_image(),
        }
    }

    pub fn largest_tensor_per_image(&self) -> usize {
        match self {
            Architecture::Ncsn(c) => c.largest_tensor_per_image(),
            Architecture::Unet(c) => c.largest_tensor_per_image(),
        }
    }

    pub fn max_batch_for(&self, max_tensor_bytes: u64) -> usize {
        max_batch_for(self.largest_tensor_per_image(), max_tensor_bytes)
    }

    pub fn init(&self, device: &Device) -> Result<Network, ConfigError> {
        Ok(match self {
            Architecture::Ncsn(c) => Network::Ncsn(c.init(device)?),
            Architecture::Unet(c) => Network::Unet(c.init(device)?),
        })
    }
}

/// The network of a model.
#[derive(Clone, Debug)]
pub enum Network {
    Ncsn(ScoreNet),
    Unet(UNet),
}

impl Network {
    /// Raw output for a batch `x` [B, C, H, W] and per-sample noise labels [B] (t for `ncsn`,
    /// c_noise for `unet`).
    pub fn forward(&self, x: Tensor<4>, label: Tensor<1>) -> Tensor<4> {
        match self {
            Network::Ncsn(n) => n.forward(x, label),
            Network::Unet(n) => n.forward(x, label),
        }
    }

    pub fn num_params(&self) -> usize {
        match self {
            Network::Ncsn(n) => n.num_params(),
            Network::Unet(n) => n.num_params(),
        }
    }
}

/// Exactly one adapter from network output to score (score_sde `models/utils.py:get_score_fn`):
/// the only code that knows the network's parameterisation and the SDE's marginals together.
#[derive(Clone, Debug)]
pub struct ScoreModel {
    pub net: Network,
    pub param: Parameterisation,
    pub sde: Sde,
}

impl ScoreModel {
    /// The network's raw output at time t for the whole batch, with the input scaling and noise
    /// label of the parameterisation: net(x, t) for `noise`; F(c_in·x/m, c_noise) for `edm`
    /// (what the ONNX export computes from its inputs).
    pub fn network_output(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let b = x.dims()[0];
        let device = x.device();
        let (m, sigma) = self.sde.marginal(t);
        match self.param {
            Parameterisation::Noise => self.net.forward(x, Tensor::full([b], t as f32, &device)),
            Parameterisation::Edm { sigma_data } | Parameterisation::Consistency { sigma_data, .. } => {
                let c = edm_coefficients(sigma / m, sigma_data);
                self.net.forward(x * (c.c_in / m), Tensor::full([b], c.c_noise as f32, &device))
            }
        }
    }

    /// The model's estimate of the clean image from the scaled state x̂ = x/m at noise level σ̂:
    /// c_skip·x̂ + c_out·F for the parameterisations built on EDM's — the denoiser D(x̂; σ̂) ≈
    /// E[x₀ | x̂] of a score model, the consistency function f(x̂, σ̂) of a consistency model —
    /// and Tweedie's formula (x + σ²·s)/m for `noise`.
    pub fn clean_estimate(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
        let t = self.sde.time_of_noise_level(sigma_hat);
        let (m, sigma) = self.sde.marginal(t);
        match self.param.coefficients(sigma_hat) {
            Some(c) => {
                let f = self.network_output(x_hat.clone() * m, t);
                x_hat * c.c_skip + f * c.c_out
            }
            None => {
                let x = x_hat * m;
                (x.clone() + self.score(x, t) * (sigma * sigma)) / m
            }
        }
    }
}

/// A consistency model's f(x̂, σ̂) ([`ScoreModel::clean_estimate`]). For a score model this is its
/// denoiser, which is no consistency function: [`crate::compose`] refuses to run the consistency
/// sampler on one.
impl ConsistencyFn for ScoreModel {
    fn origin(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
        self.clean_estimate(x_hat, sigma_hat)
    }
}

impl ScoreFn for ScoreModel {
    /// `noise`: s = net(x, t)/σ(t).
    ///
    /// `edm`: with x(t) = m(t)·(y + σ̂n), σ̂ = σ(t)/m(t), the denoiser sees x̂ = x/m at σ̂ and
    /// s(x, t) = (m·D(x̂; σ̂) − x)/σ². Expanding D − x̂ = −σ̂²/(σ̂² + σ_d²)·x̂ + c_out·F avoids the
    /// cancellation of D − x̂ in f32 at small σ: s = −x̂/(m(σ̂² + σ_d²)) + (m·c_out/σ²)·F.
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let (m, sigma) = self.sde.marginal(t);
        match self.param {
            Parameterisation::Noise => self.network_output(x, t) / sigma,
            Parameterisation::Edm { sigma_data } => {
                let s_hat = sigma / m;
                let c = edm_coefficients(s_hat, sigma_data);
                let f = self.network_output(x.clone(), t);
                x * (-1.0 / (m * m * (s_hat * s_hat + sigma_data * sigma_data))) + f * (m * c.c_out / (sigma * sigma))
            }
            // What Tweedie's formula gives if f were the denoiser: no sampler sees it, since
            // [`crate::compose`] refuses to run score samplers on a consistency model.
            Parameterisation::Consistency { .. } => {
                let s_hat = sigma / m;
                (self.clean_estimate(x.clone() / m, s_hat) * m - x) / (sigma * sigma)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// s_θ(x, t) · σ(t) equals the raw network output at every t: the 1/σ(t) scaling.
    #[test]
    fn score_is_network_output_over_marginal_std() {
        let device = Device::flex();
        let cfg = ScoreNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
        let sde = Sde::ve(50.0);
        let model = ScoreModel { net: Network::Ncsn(cfg.init(&device).unwrap()), param: Parameterisation::Noise, sde };
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        for t in [1e-5, 0.3, 1.0] {
            let raw = model.net.forward(x.clone(), Tensor::full([2], t as f32, &device));
            let score = model.score(x.clone(), t) * sde.marginal(t).1;
            let diff: f32 = (raw - score).abs().max().into_scalar();
            assert!(diff < 1e-4, "t = {t}: max |net − σ·s| = {diff}");
        }
    }
}
