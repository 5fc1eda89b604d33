//! The bottom of the library: what a sampler asks of a score, and what it tells an observer.
//!
//! A score function s(x, t) ≈ ∇ₓ log p_t(x) is all a sampler sees: a network becomes one through
//! its card's parameterisation ([`crate::model::ScoreModel`]), guidance and autoguidance are score
//! functions over score functions ([`crate::sampling::guidance`], [`crate::sampling::autoguidance`]),
//! and the tests hand the samplers exact scores of Gaussians and mixtures ([`crate::mixture`]).

use burn::prelude::*;

/// A score function s(x, t) ≈ ∇ₓ log p_t(x), for a batch `x` [B, C, H, W] at one time `t`.
pub trait ScoreFn {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4>;
}

impl<F: Fn(Tensor<4>, f64) -> Tensor<4>> ScoreFn for F {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        self(x, t)
    }
}

/// A consistency function f(x̂, σ̂) ≈ the point at σ̂_min of the probability-flow ODE's trajectory
/// through x̂ at noise level σ̂ (Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models", §3),
/// for a batch in the scaled state x̂ = x/m(t) of the σ̂-grid samplers ([`crate::sampling::karras`]):
/// what a consistency model computes, and all that its sampler asks of it. It obeys the boundary
/// condition f(x̂, σ̂_min) = x̂.
pub trait ConsistencyFn {
    fn origin(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4>;
}

/// What an observer sees after each step: the step number (1-based), the planned total (`None`
/// for the adaptive solver), the time reached, and the current state. Reading `x` back is the
/// observer's choice (and cost).
pub struct Step<'a> {
    pub step: usize,
    pub total: Option<usize>,
    pub t: f64,
    /// Fraction of the time interval [ε, T] covered so far, in [0, 1].
    pub progress: f64,
    pub x: &'a Tensor<4>,
    /// The noise-free part of the last update (score_sde's `x_mean`): the better preview.
    pub x_mean: &'a Tensor<4>,
}

/// Whether the run should go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Cancel,
    /// The observer saw NaN or ±∞ in x (it read x back anyway, e.g. for a preview): the run stops
    /// with [`SampleError::NonFinite`] naming the sampler and the step.
    NonFinite,
}

/// Progress callback, called after every step; async so that it can read tensors back in a
/// browser (where only asynchronous readback exists) and yield to the event loop.
#[allow(async_fn_in_trait)]
pub trait Observer {
    async fn observe(&mut self, step: Step<'_>) -> Flow;
}

/// Any `FnMut(&Step) -> Flow` closure is an observer (one that never awaits).
impl<F: FnMut(&Step<'_>) -> Flow> Observer for F {
    async fn observe(&mut self, step: Step<'_>) -> Flow {
        self(&step)
    }
}

/// An observer that lets every run finish.
pub fn no_observer() -> impl Observer {
    |_: &Step<'_>| Flow::Continue
}

