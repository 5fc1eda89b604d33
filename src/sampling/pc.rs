//! The predictor–corrector family (Song et al. 2021, §4.2 and appendix G): one loop over a time
//! grid, a predictor that moves x from t to t_next, a corrector that refines x at t. Euler–Maruyama,
//! reverse diffusion and the fixed-step ODE solvers are predictors with no corrector; annealed
//! Langevin dynamics is a corrector with no predictor.

use burn::prelude::*;

use super::{Flow, Known, Noise, Observer, SampleError, SampleOptions, Sampler, ScoreFn, Step, per_sample_norm};
use super::{DEFAULT_ALD_STEP_FRACTION, DEFAULT_ALD_STEPS_PER_LEVEL};
use crate::sde::{Sde, T_END};

/// Moves x from t to t_next < t. Every variant returns (x, x_mean), x_mean being the update
/// without its noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Predictor {
    None,
    EulerMaruyama,
    ReverseDiffusion,
    OdeEuler,
    OdeHeun,
}

impl Predictor {
    pub fn update<S: ScoreFn>(self, score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
        match self {
            Predictor::None => (x.clone(), x),
            Predictor::EulerMaruyama => euler_maruyama(score, sde, x, t, t_next, noise),
            Predictor::ReverseDiffusion => reverse_diffusion(score, sde, x, t, t_next, noise),
            Predictor::OdeEuler => {
                let x = x.clone() + ode_drift(score, sde, x, t) * (t_next - t);
                (x.clone(), x)
            }
            Predictor::OdeHeun => heun(score, sde, x, t, t_next),
        }
    }
}

/// Euler–Maruyama on the reverse SDE dx = [f(x,t) − g(t)² s(x,t)] dt + g(t) dw̄ (Song et al.
/// 2021, eq. 6), with dt = t_next − t < 0:
/// x_mean = x + [f − g² s] dt,  x = x_mean + g sqrt(−dt) z.
fn euler_maruyama<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
    let dt = t_next - t;
    let (f, s_coef) = sde.reverse_drift_coefs(t);
    let drift = x.clone() * f + score.score(x.clone(), t) * s_coef;
    let x_mean = x + drift * dt;
    let z = noise.normal_like(&x_mean);
    let diffusion = sde.diffusion(t);
    (x_mean.clone() + z * (diffusion * (-dt).sqrt()), x_mean)
}

/// Reverse diffusion (Song et al. 2021, eq. 47): the forward discretisation x_{i+1} = x_i + f_i +
/// G_i z run backwards, x_mean = x − f_i + G_i² s,  x = x_mean + G_i z.
fn reverse_diffusion<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
    let (f, g) = sde.discretize(t, t_next);
    let x_mean = x.clone() * (1.0 - f) + score.score(x, t) * (g * g);
    let z = noise.normal_like(&x_mean);
    (x_mean.clone() + z * g, x_mean)
}

/// Probability-flow ODE drift f(x,t) − ½ g(t)² s(x,t) (Song et al. 2021, eq. 13).
pub fn ode_drift<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64) -> Tensor<4> {
    let (f, s_coef) = sde.ode_drift_coefs(t);
    x.clone() * f + score.score(x, t) * s_coef
}

/// Heun's method on the probability-flow ODE: an Euler step, then the trapezoid of the drifts
/// at both ends (Karras et al. 2022, algorithm 1, without churn).
fn heun<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64) -> (Tensor<4>, Tensor<4>) {
    let dt = t_next - t;
    let d1 = ode_drift(score, sde, x.clone(), t);
    let x_euler = x.clone() + d1.clone() * dt;
    let d2 = ode_drift(score, sde, x_euler, t_next);
    let x = x + (d1 + d2) * (0.5 * dt);
    (x.clone(), x)
}

/// Refines x at a fixed t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corrector {
    None,
    /// Langevin corrector with signal-to-noise ratio `snr` (Song et al. 2021, algorithms 4, 5).
    Langevin { snr: f64, steps: usize },
    /// One noise level of annealed Langevin dynamics (Song & Ermon 2019, algorithm 1), with
    /// α_i = ε σ_i² / σ_L² where σ_L = `sigma_last`.
    Annealed { eps: f64, steps: usize, sigma_last: f64 },
}

impl Corrector {
    /// One corrector iteration at time t (the loop runs [`Corrector::steps`] of them). `t_next` is
    /// the next grid time; the VP Langevin step uses α_i = 1 − β_i of that interval.
    pub fn update<S: ScoreFn>(self, score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
        match self {
            Corrector::None => (x.clone(), x),
            Corrector::Langevin { snr, .. } => langevin(score, sde, x, t, t_next, snr, noise),
            Corrector::Annealed { eps, sigma_last, .. } => annealed_langevin(score, sde, x, t, eps, sigma_last, noise),
        }
    }

    /// Iterations per time step.
    pub fn steps(self) -> usize {
        match self {
            Corrector::None => 0,
            Corrector::Langevin { steps, .. } | Corrector::Annealed { steps, .. } => steps,
        }
    }
}

/// One Langevin corrector step: ε = 2 α (r ‖z‖ / ‖s‖)², x_mean = x + ε s, x = x_mean + sqrt(2ε) z
/// (Song et al. 2021, algorithm 4 (VE) and 5 (VP)).
/// As in score_sde, ‖z‖ and ‖s‖ are averaged over the batch: per-sample norms would give a
/// sample sitting near a mode (‖s‖ ≈ 0) a huge step, which in low dimensions, where the norms do
/// not concentrate, blows the sample away. The price: a sample depends on its batch.
fn langevin<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, snr: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
    let alpha = sde.langevin_alpha(t, t_next);
    let grad = score.score(x.clone(), t);
    let z = noise.normal_like(&x);
    let grad_norm = per_sample_norm(grad.clone()).mean().clamp_min(1e-12); // [1]
    let noise_norm = per_sample_norm(z.clone()).mean(); // [1]
    let step_size = ((noise_norm / grad_norm).powi_scalar(2) * (2.0 * alpha * snr * snr)).reshape([1, 1, 1, 1]);
    let x_mean = x + grad * step_size.clone();
    (x_mean.clone() + z * (step_size * 2.0).sqrt(), x_mean)
}

/// One step of annealed Langevin dynamics at noise level σ_i = σ(t) (Song & Ermon 2019,
/// algorithm 1): α_i = ε σ_i² / σ_L², x_mean = x + (α_i/2) s, x = x_mean + sqrt(α_i) z.
fn annealed_langevin<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64, eps: f64, sigma_last: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
    let alpha = eps * (sde.sigma(t) / sigma_last).powi(2);
    let z = noise.normal_like(&x);
    let x_mean = x.clone() + score.score(x, t) * (0.5 * alpha);
    (x_mean.clone() + z * alpha.sqrt(), x_mean)
}

/// Chooses the predictor, corrector and time grid of a sampler.
///
/// Predictor samplers: N + 1 times from T down to ε, N predictor steps, the corrector run at each
/// of the first N times before the predictor (score_sde's order). ALD: N noise levels σ(t_i) with
/// t_i from T down to ε (geometric in σ for VE), T_ALD Langevin steps at each. RK45 and the
/// σ-grid samplers (edm-heun, dpmpp-2m) have loops of their own and no plan here.
pub fn plan(sampler: Sampler, sde: &Sde, options: &SampleOptions) -> Result<(Predictor, Corrector, Vec<f64>), SampleError> {
    let eps = sde.eps();
    let n = options.steps;
    let grid = |points: usize| -> Vec<f64> {
        (0..points).map(|i| T_END - (T_END - eps) * i as f64 / (points - 1) as f64).collect()
    };
    let langevin = Corrector::Langevin { snr: options.snr, steps: options.corrector_steps.unwrap_or(1) };
    Ok(match sampler {
        Sampler::EulerMaruyama => (Predictor::EulerMaruyama, Corrector::None, grid(n + 1)),
        Sampler::ReverseDiffusion => (Predictor::ReverseDiffusion, Corrector::None, grid(n + 1)),
        Sampler::PredictorCorrector => (Predictor::ReverseDiffusion, langevin, grid(n + 1)),
        Sampler::OdeEuler => (Predictor::OdeEuler, Corrector::None, grid(n + 1)),
        Sampler::OdeHeun => (Predictor::OdeHeun, Corrector::None, grid(n + 1)),
        Sampler::OdeRk45 | Sampler::EdmHeun | Sampler::DpmSolver2M | Sampler::Consistency => {
            return Err(SampleError::invalid("sampler", format!("{} runs a loop of its own, not predictor and corrector steps on the t grid", sampler.name())));
        }
        Sampler::AnnealedLangevin => {
            let sigma_last = sde.sigma(eps);
            let corrector = Corrector::Annealed {
                eps: options.ald_eps.unwrap_or(DEFAULT_ALD_STEP_FRACTION * sigma_last * sigma_last),
                steps: options.corrector_steps.unwrap_or(DEFAULT_ALD_STEPS_PER_LEVEL),
                sigma_last,
            };
            (Predictor::None, corrector, grid(n.max(2)))
        }
    })
}

/// The predictor–corrector loop over `times` (decreasing). With `known`, the known pixels are
/// replaced by the data diffused to the current time after every corrector and every predictor
/// update (score_sde `controllable_generation.get_pc_inpainter`).
#[allow(clippy::too_many_arguments)]
pub async fn run<S: ScoreFn, O: Observer>(
    sampler: Sampler,
    score: &S,
    sde: &Sde,
    mut x: Tensor<4>,
    times: &[f64],
    predictor: Predictor,
    corrector: Corrector,
    known: Option<&Known>,
    noise: &mut Noise,
    observer: &mut O,
) -> Result<Tensor<4>, SampleError> {
    let constrain = |x: Tensor<4>, x_mean: Tensor<4>, t: f64, noise: &mut Noise| match known {
        Some(k) => k.constrain(sde, x, x_mean, t, noise),
        None => (x, x_mean),
    };
    let levels = if predictor == Predictor::None { times.len() } else { times.len() - 1 };
    let span = times[0] - times[times.len() - 1];
    for i in 0..levels {
        let t = times[i];
        let t_next = times.get(i + 1).copied().unwrap_or(t);
        // Corrector iterations, the known pixels re-imposed after each one (score_sde re-imposes
        // them only after all M: in between, Langevin moves the known pixels too, which drags the
        // unknown ones towards the unconditional distribution as M grows).
        let (mut xn, mut xn_mean) = (x.clone(), x);
        for _ in 0..corrector.steps() {
            let (xc, xc_mean) = corrector.update(score, sde, xn, t, t_next, noise);
            (xn, xn_mean) = constrain(xc, xc_mean, t, noise);
        }
        if predictor != Predictor::None {
            let (xp, xp_mean) = predictor.update(score, sde, xn, t, t_next, noise);
            (xn, xn_mean) = constrain(xp, xp_mean, t_next, noise);
        }
        x = xn;
        let t_reached = if predictor == Predictor::None { t } else { t_next };
        let step = Step {
            step: i + 1,
            total: Some(levels),
            t: t_reached,
            progress: if span > 0.0 { (times[0] - t_reached) / span } else { 1.0 },
            x: &x,
            x_mean: &xn_mean,
        };
        match observer.observe(step).await {
            Flow::Continue => {}
            Flow::Cancel => return Err(SampleError::Cancelled { step: i + 1 }),
            Flow::NonFinite => return Err(sampler.non_finite(i + 1, t_reached)),
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default ALD step at the last level is α_L = 0.2 σ_L²: Song & Ermon 2019's ε = 2·10⁻⁵
    /// on their σ_L = 0.01, and the same fraction (not the same ε) at EDM's σ_min = 0.002, where
    /// a fixed 2·10⁻⁵ would be 5 σ_L². A given ε is used as it is.
    #[test]
    fn default_ald_step_is_a_fixed_fraction_of_the_last_level() {
        let options = SampleOptions { sampler: Sampler::AnnealedLangevin, steps: 10, ..Default::default() };
        let sigma_last = |sde: &Sde| sde.sigma(sde.eps());
        let eps_of = |sde: &Sde, options: &SampleOptions| match plan(Sampler::AnnealedLangevin, sde, options).unwrap().1 {
            Corrector::Annealed { eps, .. } => eps,
            other => panic!("{other:?}"),
        };
        let song = Sde::Ve { sigma_min: 0.01, sigma_max: 50.0 };
        let edm = Sde::Ve { sigma_min: 0.002, sigma_max: 40.0 };
        for sde in [song, edm] {
            let eps = eps_of(&sde, &options);
            assert!((eps / sigma_last(&sde).powi(2) - 0.2).abs() < 1e-12, "{eps}");
        }
        assert!((eps_of(&song, &options) - 2e-5).abs() < 1e-7);
        assert_eq!(eps_of(&edm, &SampleOptions { ald_eps: Some(3e-6), ..options }), 3e-6);
    }
}
