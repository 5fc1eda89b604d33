//! scorefield: score-based generative modeling through SDEs (Song et al. 2021) on Burn.
//!
//! - [`sde`]: the VE, VP and sub-VP SDEs: drift, diffusion, marginals, prior, discretisation.
//! - [`model`]: the time-conditioned U-Net and the one adapter from its output to a score.
//! - [`weights`]: safetensors weights + JSON model card, checked on load.
//! - [`sampling`]: Euler–Maruyama, reverse diffusion, predictor–corrector, annealed Langevin,
//!   probability-flow ODE (Euler, Heun, RK45); inpainting.
//! - [`evaluate`]: a digit classifier's view of samples (confident share, class entropy,
//!   Fréchet distance of its features).
//! - [`onnx`]: the score network written as an ONNX model, for other runtimes.
//! - [`likelihood`]: exact log-likelihood and bits/dim through the probability-flow ODE.

pub mod backend;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluate;
#[cfg(not(target_arch = "wasm32"))]
pub mod io;
#[cfg(not(target_arch = "wasm32"))]
pub mod likelihood;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod onnx;
pub mod sampling;
pub mod sde;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod weights;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use burn::prelude::{Device, Tensor};
pub use error::{ConfigError, SampleError, WeightsError};
pub use model::{ScoreModel, ScoreNet, ScoreNetConfig};
pub use sampling::{SampleOptions, Sampler, ScoreFn};
pub use sde::Sde;
pub use weights::ModelCard;
