//! scorefield: score-based generative modeling through SDEs (Song et al. 2021) on Burn.
//!
//! - [`score`]: the bottom layer: `ScoreFn` s(x, t), the observer and its steps.
//! - [`sde`]: the VE, VP and sub-VP SDEs: drift, diffusion, marginals, prior, discretisation.
//! - [`nn`]: the networks and their layers: the residual U-Net the EDM denoiser wraps, the first
//!   (version-1) score network, the noise-conditional classifier.
//! - [`precond`]: parameterisations: EDM preconditioning (Karras et al. 2022), or net/σ.
//! - [`model`]: the architectures a card names and the one adapter from network output to score.
//! - [`store`]: model files: the card, bounds-checked safetensors, f16 and 8-bit encodings.
//! - [`sampling`]: Euler–Maruyama, reverse diffusion, predictor–corrector, annealed Langevin,
//!   probability-flow ODE (Euler, Heun, RK45); inpainting.
//! - [`compose`]: the one composition of model, guide model and classifier into a run's score.
//! - [`evaluate`]: a digit classifier's view of samples (confident share, class entropy,
//!   Fréchet distance of its features).
//! - [`onnx`]: the score network written as an ONNX model, for other runtimes.
//! - [`mixture`]: Gaussian mixtures whose perturbed density and score are exact.
//! - [`field`]: the 2-D explainer: preset distributions, the field over them and through time,
//!   particles moved by the samplers, a score network learned in the page.
//! - [`likelihood`]: exact log-likelihood and bits/dim through the probability-flow ODE.

pub mod backend;
pub mod compose;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluate;
pub mod field;
pub mod frontend;
#[cfg(not(target_arch = "wasm32"))]
pub mod io;
pub mod likelihood;
pub mod mixture;
pub mod model;
pub mod nn;
#[cfg(not(target_arch = "wasm32"))]
pub mod onnx;
pub mod posthoc;
pub mod precond;
pub mod rng;
pub mod sampling;
pub mod score;
pub mod sde;
pub mod serde_fields;
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use burn::prelude::{Device, Tensor};
pub use error::{ConfigError, SampleError, WeightsError};
pub use model::{Architecture, Network, ScoreModel};
pub use nn::ncsn::{ScoreNet, ScoreNetConfig};
pub use nn::unet::{UNet, UNetConfig};
pub use precond::Parameterisation;
pub use sampling::{SampleOptions, Sampler};
pub use score::ScoreFn;
pub use sde::Sde;
pub use store::ModelCard;
