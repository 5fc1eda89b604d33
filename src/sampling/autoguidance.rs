//! Autoguidance: guiding a model with a worse version of itself (Karras et al. 2024, "Guiding a
//! Diffusion Model with a Bad Version of Itself", eq. 2):
//!
//! D_w(x; σ) = D_bad(x; σ) + w·(D_good(x; σ) − D_bad(x; σ)),
//!
//! where the bad model has the good one's task and data but less capacity or training. Where the
//! good model is right and the bad one wrong in the same direction as the good one's own remaining
//! errors (too much mass between the modes, blurred strokes), extrapolating away from the bad model
//! moves samples towards the data; unlike classifier-free guidance it needs no labels and, in the
//! paper, it sharpens samples without narrowing their variety.
//!
//! A score is affine in its denoiser with coefficients that depend only on x and σ,
//! s = (D − x)/σ², so the guided denoiser's score is the same extrapolation of the two scores:
//! s_w = s_bad + w·(s_good − s_bad). `Autoguided` is therefore a [`ScoreFn`] over two score
//! functions, and every sampler and inpainting runs guided without knowing it (the likelihood
//! stays the model's own: it is a property of the model, not of a sampler). Where
//! guidance acts, each of its evaluations costs one evaluation of each model
//! ([`Autoguided::bad_evals`] counts the bad model's).
//!
//! Guidance acts at noise levels σ̂ = σ(t)/m(t) in (`min_sigma`, `max_sigma`] (Kynkäänniemi et
//! al. 2024's limited interval); elsewhere the good model alone is evaluated.

use std::cell::Cell;

use burn::prelude::*;

use super::ScoreFn;
use crate::error::SampleError;
use crate::sde::Sde;

/// The weight the page, the widget and the CLI start with, for a model whose card names a guide
/// model (measured on the shipped pair: docs/EVALUATION.md, "Autoguidance").
pub const DEFAULT_AUTOGUIDANCE: f64 = 2.0;
/// Guidance acts at noise levels in (min, max] σ̂ unless a run says otherwise (measured:
/// docs/EVALUATION.md, "Autoguidance": guided below σ = 1 as well, the strokes come out closer to
/// training digits — more near-copies than among held-out digits — for the same confident share).
pub const DEFAULT_AUTOGUIDANCE_MIN_SIGMA: f64 = 1.0;
pub const DEFAULT_AUTOGUIDANCE_MAX_SIGMA: f64 = f64::INFINITY;
/// The largest weight accepted: far beyond it the difference of two scores swamps both.
pub const MAX_AUTOGUIDANCE: f64 = 20.0;

/// How strongly, and where, the bad model steers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Autoguidance {
    /// w: 1 is the good model alone, more extrapolates away from the bad one.
    pub weight: f64,
    /// Guidance acts at noise levels min_sigma < σ̂ ≤ max_sigma (0 and ∞: at every level).
    pub min_sigma: f64,
    pub max_sigma: f64,
}

impl Autoguidance {
    /// Guidance at weight w over the default interval.
    pub fn new(weight: f64) -> Self {
        Self { weight, min_sigma: DEFAULT_AUTOGUIDANCE_MIN_SIGMA, max_sigma: DEFAULT_AUTOGUIDANCE_MAX_SIGMA }
    }

    /// Guidance at weight w at every noise level.
    pub fn everywhere(weight: f64) -> Self {
        Self { weight, min_sigma: 0.0, max_sigma: f64::INFINITY }
    }

    pub fn validate(&self) -> Result<(), SampleError> {
        if !(self.weight.is_finite() && (1.0..=MAX_AUTOGUIDANCE).contains(&self.weight)) {
            return Err(SampleError::invalid("autoguidance", format!("must be in [1, {MAX_AUTOGUIDANCE}] (1: the model alone), got {}", self.weight)));
        }
        super::check_sigma_interval(self.min_sigma, self.max_sigma, "autoguidanceMinSigma", "autoguidanceMaxSigma")
    }

    /// Weight w over (min, max], each end the default where not given; checked.
    pub fn with_interval(weight: f64, min_sigma: Option<f64>, max_sigma: Option<f64>) -> Result<Self, SampleError> {
        let d = Self::new(weight);
        let g = Self { min_sigma: min_sigma.unwrap_or(d.min_sigma), max_sigma: max_sigma.unwrap_or(d.max_sigma), ..d };
        g.validate()?;
        Ok(g)
    }

    /// Whether the bad model is evaluated at noise level σ̂.
    pub fn acts_at(&self, sigma_hat: f64) -> bool {
        self.weight != 1.0 && super::in_sigma_interval(sigma_hat, self.min_sigma, self.max_sigma)
    }
}

/// The score s_bad + w·(s_good − s_bad), or s_good where guidance does not act or there is no
/// bad model.
pub struct Autoguided<'a, G, B> {
    good: &'a G,
    bad: Option<&'a B>,
    sde: Sde,
    guidance: Autoguidance,
    bad_evals: Cell<usize>,
}

impl<'a, G: ScoreFn, B: ScoreFn> Autoguided<'a, G, B> {
    /// The good model guided by `guide` (the bad model and how), or, without one, the good model
    /// alone: the one score function every caller samples with, as [`super::guidance::Guided`].
    pub fn new(good: &'a G, sde: Sde, guide: Option<(&'a B, Autoguidance)>) -> Result<Self, SampleError> {
        let (bad, guidance) = match guide {
            Some((bad, guidance)) => {
                guidance.validate()?;
                (Some(bad), guidance)
            }
            None => (None, Autoguidance::new(1.0)),
        };
        Ok(Self { good, bad, sde, guidance, bad_evals: Cell::new(0) })
    }

    /// How many times the bad model was evaluated (for a whole batch at once each time): a run's
    /// cost in network evaluations is the sampler's count plus this.
    pub fn bad_evals(&self) -> usize {
        self.bad_evals.get()
    }
}

impl<G: ScoreFn, B: ScoreFn> ScoreFn for Autoguided<'_, G, B> {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let (m, s) = self.sde.marginal(t);
        let good = self.good.score(x.clone(), t);
        let Some(bad) = self.bad.filter(|_| self.guidance.acts_at(s / m)) else { return good };
        self.bad_evals.set(self.bad_evals.get() + 1);
        let bad = bad.score(x, t);
        bad.clone() + (good - bad) * self.guidance.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::Mixture;
    use crate::sampling::{self, no_observer, SampleOptions, Sampler};

    /// Two centred Gaussians with variances a (good) and b (bad): on the VE SDE their scores are
    /// −x/(a + σ²) and −x/(b + σ²), and the guided score is −λ(σ)·x with
    /// λ = w/(a + σ²) + (1 − w)/(b + σ²), checked pointwise; at w = 1 it is the good score.
    #[test]
    fn the_guided_score_extrapolates_from_the_bad_score() {
        let device = Device::flex();
        let sde = Sde::ve(10.0);
        let (a, b) = (0.25f64, 1.0f64);
        let good = Mixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![a.sqrt()]).unwrap();
        let bad = Mixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![b.sqrt()]).unwrap();
        let (good_fn, bad_fn) = (good.score_fn(&sde), bad.score_fn(&sde));
        let points = [0.7f32, -0.3, -1.2, 2.0];
        let x = Tensor::<4>::from_data(TensorData::new(points.to_vec(), [2, 2, 1, 1]), &device);
        for w in [1.0, 2.0, 3.5] {
            let guided = Autoguided::new(&good_fn, sde, Some((&bad_fn, Autoguidance::everywhere(w)))).unwrap();
            for t in [0.05, 0.3, 0.9] {
                let sigma = sde.marginal(t).1;
                let lambda = w / (a + sigma * sigma) + (1.0 - w) / (b + sigma * sigma);
                let got = guided.score(x.clone(), t).into_data().try_to_vec::<f32>().unwrap();
                for (g, p) in got.iter().zip(points) {
                    let exact = -lambda * p as f64;
                    assert!((*g as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "w = {w}, t = {t}: {g} vs {exact}");
                }
            }
        }
    }

    /// Where the guided probability-flow ODE takes the two Gaussians above: on the VE SDE it is
    /// dx/dσ = −σ·s = σ·λ(σ)·x, linear, so a start x(S) ~ N(0, S²) ends at x(0) = x(S)·r with
    /// ln r = −∫₀ˢ σλ dσ, i.e. variance S²·(a/(a + S²))^w·(b/(b + S²))^(1−w) ≈ a^w·b^(1−w): the good
    /// model's a at w = 1, and narrower than a at w > 1 (extrapolating away from the wider bad
    /// model). Heun on the Karras grid, 4,000 two-dimensional points (standard error of a variance
    /// about 1.6 %), within 5 %.
    #[test]
    fn the_guided_ode_ends_at_the_closed_form_variance() {
        let device = Device::flex();
        let sde = Sde::ve(10.0);
        let (a, b, s2) = (0.25f64, 1.0f64, 100.0f64);
        let good = Mixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![a.sqrt()]).unwrap();
        let bad = Mixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![b.sqrt()]).unwrap();
        let (good_fn, bad_fn) = (good.score_fn(&sde), bad.score_fn(&sde));
        for w in [1.0, 2.0, 3.0] {
            let guided = Autoguided::new(&good_fn, sde, Some((&bad_fn, Autoguidance::everywhere(w)))).unwrap();
            let options = SampleOptions { sampler: Sampler::EdmHeun, steps: 100, seed: 3, ..Default::default() };
            let out = pollster::block_on(sampling::sample(&guided, &sde, [4000, 2, 1, 1], &options, &device, &mut no_observer())).unwrap();
            let v = out.x.into_data().try_to_vec::<f32>().unwrap();
            let variance = v.iter().map(|&z| (z as f64).powi(2)).sum::<f64>() / v.len() as f64;
            let exact = s2 * (a / (a + s2)).powf(w) * (b / (b + s2)).powf(1.0 - w);
            assert!((variance / exact - 1.0).abs() < 0.05, "w = {w}: variance {variance}, closed form {exact}");
        }
    }

    #[test]
    fn weights_and_intervals_are_checked() {
        let field = |g: Autoguidance| match g.validate().unwrap_err() {
            SampleError::InvalidOption { field, .. } => field,
            e => panic!("{e}"),
        };
        Autoguidance::new(1.0).validate().unwrap();
        assert_eq!(field(Autoguidance::new(0.5)), "autoguidance");
        assert_eq!(field(Autoguidance::new(f64::NAN)), "autoguidance");
        assert_eq!(field(Autoguidance::new(1e3)), "autoguidance");
        assert_eq!(field(Autoguidance { min_sigma: 2.0, max_sigma: 1.0, ..Autoguidance::new(2.0) }), "autoguidanceMinSigma");
        assert!(matches!(Autoguidance::with_interval(2.0, Some(2.0), Some(1.0)), Err(SampleError::InvalidOption { field, .. }) if field == "autoguidanceMinSigma"));
        assert_eq!(Autoguidance::with_interval(2.0, None, Some(3.0)).unwrap(), Autoguidance { max_sigma: 3.0, ..Autoguidance::new(2.0) });
        assert_eq!(field(Autoguidance { max_sigma: 0.0, ..Autoguidance::new(2.0) }), "autoguidanceMaxSigma");
        assert!(!Autoguidance::new(1.0).acts_at(1.0));
        // Only where guidance acts is the bad model evaluated (and counted).
        let device = Device::flex();
        let sde = Sde::ve(10.0);
        let unit = Mixture::new(vec![1.0], vec![vec![0.0]], vec![1.0]).unwrap();
        let score = unit.score_fn(&sde);
        let x = Tensor::<4>::zeros([3, 1, 1, 1], &device);
        let guided = Autoguided::new(&score, sde, Some((&score, Autoguidance::with_interval(2.0, Some(0.5), Some(5.0)).unwrap()))).unwrap();
        let alone = Autoguided::<_, crate::mixture::MixtureScore<'_>>::new(&score, sde, None).unwrap();
        for sigma in [0.1, 1.0, 3.0, 8.0] {
            let t = sde.time_of_noise_level(sigma);
            guided.score(x.clone(), t);
            alone.score(x.clone(), t);
        }
        assert_eq!((guided.bad_evals(), alone.bad_evals()), (2, 0));
        let bounded = Autoguidance { min_sigma: 0.5, max_sigma: 5.0, ..Autoguidance::new(2.0) };
        assert!(bounded.acts_at(1.0) && !bounded.acts_at(0.5) && !bounded.acts_at(6.0));
    }
}
