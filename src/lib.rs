//! scorefield: score-based generative modeling through SDEs (Song et al. 2021) on Burn.
//!
//! - [`sde`]: the VE, VP and sub-VP SDEs: drift, diffusion, marginals, prior, discretisation.
//! - [`model`]: the architectures a card names, the first (version-1) score network, and the one
//!   adapter from network output to score.
//! - [`unet`]: the residual U-Net with attention that the EDM denoiser wraps.
//! - [`precond`]: parameterisations: EDM preconditioning (Karras et al. 2022), or net/σ.
//! - [`weights`]: safetensors weights + JSON model card, checked on load.
//! - [`sampling`]: Euler–Maruyama, reverse diffusion, predictor–corrector, annealed Langevin,
//!   probability-flow ODE (Euler, Heun, RK45); inpainting.
//! - [`evaluate`]: a digit classifier's view of samples (confident share, class entropy,
//!   Fréchet distance of its features).
//! - [`onnx`]: the score network written as an ONNX model, for other runtimes.
//! - [`mixture`]: Gaussian mixtures whose perturbed density and score are exact.
//! - [`field`]: the 2-D explainer: preset distributions, the field over them and through time,
//!   particles moved by the samplers, a score network learned in the page.
//! - [`likelihood`]: exact log-likelihood and bits/dim through the probability-flow ODE.

pub mod backend;
pub mod classifier;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluate;
pub mod field;
#[cfg(not(target_arch = "wasm32"))]
pub mod io;
pub mod likelihood;
pub mod mixture;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod onnx;
pub mod posthoc;
pub mod precond;
pub mod rng;
pub mod sampling;
pub mod sde;
pub mod serde_fields;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod unet;
pub mod weights;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use burn::prelude::{Device, Tensor};
pub use error::{ConfigError, SampleError, WeightsError};
pub use model::{Architecture, Network, ScoreModel, ScoreNet, ScoreNetConfig};
pub use precond::Parameterisation;
pub use unet::{UNet, UNetConfig};
pub use sampling::{SampleOptions, Sampler, ScoreFn};
pub use sde::Sde;
pub use weights::ModelCard;
