//! Every sampler against targets whose score is known in closed form (tests/common): the samplers
//! are checked against the math, not against themselves.

mod common;

use burn::prelude::*;
use common::{Gaussian, max_abs_diff, mean_cov, rows};
use pollster::block_on;
use scorefield::sampling::{self, Flow, SampleOptions, Sampler, ScoreFn, Step, no_observer};
use scorefield::mixture::Mixture;
use scorefield::{SampleError, Sde};

const N: usize = 4000;

fn gaussian(sde: Sde) -> Gaussian {
    // A correlated 2-D Gaussian: unit and half variances, correlation 0.6/sqrt(0.5) ≈ 0.85.
    Gaussian { sde, mean: vec![1.0, -0.5], cov: vec![1.0, 0.6, 0.6, 0.5] }
}

fn mixture() -> Mixture {
    Mixture::new(vec![0.3, 0.7], vec![vec![-2.0, 1.0], vec![2.0, -1.0]], vec![0.5, 0.5]).unwrap()
}

fn options(sampler: Sampler) -> SampleOptions {
    let steps = match sampler {
        Sampler::PredictorCorrector => 200,
        Sampler::AnnealedLangevin => 100,
        Sampler::OdeHeun => 100,
        // The σ-grid samplers are the few-evaluation ones: 49 and 40 evaluations.
        Sampler::EdmHeun => 25,
        Sampler::DpmSolver2M => 40,
        _ => 400,
    };
    let corrector_steps = if sampler == Sampler::AnnealedLangevin { Some(20) } else { None };
    SampleOptions { sampler, steps, corrector_steps, seed: 7, ..Default::default() }
}

fn draw<S: ScoreFn>(score: &S, sde: &Sde, d: usize, options: &SampleOptions) -> Vec<f64> {
    let device = Device::flex();
    let out = block_on(sampling::sample(score, sde, [N, 1, 1, d], options, &device, &mut no_observer())).unwrap();
    rows(out.x).0
}

/// Tolerances for 4,000 samples: the standard error of a mean of unit variance is 0.016 and of a
/// variance 0.022, so 0.08 on means and 0.12 on covariance entries is ≥ 4.5 standard errors plus
/// room for the discretisation error of the stated step counts.
const MEAN_TOL: f64 = 0.08;
const COV_TOL: f64 = 0.12;

fn check_gaussian(sampler: Sampler, sde: Sde) {
    let target = gaussian(sde);
    let x = draw(&target, &sde, 2, &options(sampler));
    let (mean, cov) = mean_cov(&x, 2);
    let (dm, dc) = (max_abs_diff(&mean, &target.mean), max_abs_diff(&cov, &target.cov));
    println!("{} on {}: mean {mean:.3?} cov {cov:.3?} (errors {dm:.3}, {dc:.3})", sampler.name(), sde.name());
    assert!(dm < MEAN_TOL, "{} on {}: mean {mean:?} vs {:?}", sampler.name(), sde.name(), target.mean);
    assert!(dc < COV_TOL, "{} on {}: cov {cov:?} vs {:?}", sampler.name(), sde.name(), target.cov);
}

/// The mixture: overall mean and covariance as above, and the share of samples nearer the first
/// mode (x₀ < 0) equals its weight 0.3 within 0.04 (≥ 5 standard errors of a proportion).
fn check_mixture(sampler: Sampler, sde: Sde) {
    let target = mixture();
    let x = draw(&target.score_fn(&sde), &sde, 2, &options(sampler));
    let (mean, cov) = mean_cov(&x, 2);
    let share = x.chunks(2).filter(|r| r[0] < 0.0).count() as f64 / N as f64;
    let (dm, dc) = (max_abs_diff(&mean, &target.mean()), max_abs_diff(&cov, &target.cov()));
    println!("{} mixture on {}: weight {share:.3} (errors {dm:.3}, {dc:.3})", sampler.name(), sde.name());
    assert!((share - 0.3).abs() < 0.04, "{}: first-mode share {share}", sampler.name());
    // The mixture's variance along x₀ is 4.2, so its tolerances scale by sqrt(4.2) and 4.2.
    assert!(dm < MEAN_TOL * 2.05, "{}: mean {mean:?} vs {:?}", sampler.name(), target.mean());
    assert!(dc < COV_TOL * 4.2, "{}: cov {cov:?} vs {:?}", sampler.name(), target.cov());
}

macro_rules! sampler_tests {
    ($($name:ident: $sampler:expr, [$($sde:expr),*];)*) => {$(
        #[test]
        fn $name() {
            $(check_gaussian($sampler, $sde);)*
            $(check_mixture($sampler, $sde);)*
        }
    )*};
}

sampler_tests! {
    euler_maruyama_matches_gaussian_and_mixture: Sampler::EulerMaruyama, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    reverse_diffusion_matches_gaussian_and_mixture: Sampler::ReverseDiffusion, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    predictor_corrector_matches_gaussian_and_mixture: Sampler::PredictorCorrector, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    annealed_langevin_matches_gaussian_and_mixture: Sampler::AnnealedLangevin, [Sde::ve(20.0)];
    ode_euler_matches_gaussian_and_mixture: Sampler::OdeEuler, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    ode_heun_matches_gaussian_and_mixture: Sampler::OdeHeun, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    ode_rk45_matches_gaussian_and_mixture: Sampler::OdeRk45, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    edm_heun_matches_gaussian_and_mixture: Sampler::EdmHeun, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
    dpmpp_2m_matches_gaussian_and_mixture: Sampler::DpmSolver2M, [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()];
}

/// Heun with churn (S_churn = 40) still samples the target: the churn adds noise and the next
/// steps remove it (Karras et al. 2022, alg. 2).
#[test]
fn edm_heun_with_churn_matches_gaussian() {
    let sde = Sde::ve(20.0);
    let target = gaussian(sde);
    let opts = SampleOptions { sampler: Sampler::EdmHeun, steps: 40, churn: 40.0, seed: 5, ..Default::default() };
    let (mean, cov) = mean_cov(&draw(&target, &sde, 2, &opts), 2);
    let (dm, dc) = (max_abs_diff(&mean, &target.mean), max_abs_diff(&cov, &target.cov));
    println!("edm-heun churn 40: errors {dm:.3}, {dc:.3}");
    assert!(dm < MEAN_TOL && dc < COV_TOL, "mean {mean:?} cov {cov:?}");
}

/// Each sampler's evaluation count is what `Sampler::evals` promises: N + 1 for the
/// Euler-type predictors (the +1 is the final denoising step), N(1 + M) + 1 for PC, 2N + 1 for
/// ODE Heun, 2N − 1 for EDM Heun (no second evaluation at σ = 0), N for DPM-Solver++(2M).
#[test]
fn evaluation_counts_are_as_stated() {
    let sde = Sde::ve(20.0);
    let target = gaussian(sde);
    let device = Device::flex();
    for sampler in Sampler::ALL {
        if sampler == Sampler::OdeRk45 {
            continue;
        }
        let opts = SampleOptions { sampler, steps: 7, corrector_steps: Some(2), ..Default::default() };
        let out = block_on(sampling::sample(&target, &sde, [4, 1, 1, 2], &opts, &device, &mut no_observer())).unwrap();
        assert_eq!(Some(out.evals), sampler.evals(7, Some(2), true), "{}", sampler.name());
    }
    assert_eq!(Sampler::EdmHeun.evals(10, None, true), Some(19));
    assert_eq!(Sampler::DpmSolver2M.evals(20, None, true), Some(20));
}

/// Few evaluations, VE SDE: at 10 score evaluations DPM-Solver++(2M) is far closer to the
/// target than Euler steps of the probability-flow ODE on the t grid (9 steps + denoising), and
/// within 0.25 of it: its own discretisation error at 10 steps is a covariance ≈ 15 % too large
/// (measured with 20,000 samples, five seeds: max errors 0.150–0.177), against 1.0 for Euler. At 19
/// evaluations, Heun on the σ grid (10 steps) beats Euler at 19 likewise.
#[test]
fn few_evaluation_samplers_beat_euler_at_equal_evaluations() {
    let sde = Sde::ve(20.0);
    let target = gaussian(sde);
    let device = Device::flex();
    let err = |sampler, steps, evals| {
        let opts = SampleOptions { sampler, steps, seed: 3, ..Default::default() };
        let out = block_on(sampling::sample(&target, &sde, [N, 1, 1, 2], &opts, &device, &mut no_observer())).unwrap();
        assert_eq!(out.evals, evals, "{}", sampler.name());
        let (mean, cov) = mean_cov(&rows(out.x).0, 2);
        max_abs_diff(&cov, &target.cov).max(max_abs_diff(&mean, &target.mean))
    };
    let (euler10, dpm10) = (err(Sampler::OdeEuler, 9, 10), err(Sampler::DpmSolver2M, 10, 10));
    let (euler19, heun19, heun9) = (err(Sampler::OdeEuler, 18, 19), err(Sampler::EdmHeun, 10, 19), err(Sampler::EdmHeun, 5, 9));
    println!("10 evaluations: ode-euler {euler10:.3}, dpmpp-2m {dpm10:.3}; 19: ode-euler {euler19:.3}, edm-heun {heun19:.3}; edm-heun at 9: {heun9:.3}");
    assert!(dpm10 < 0.5 * euler10 && dpm10 < 0.25, "10 evaluations: ode-euler {euler10}, dpmpp-2m {dpm10}");
    assert!(heun19 < 0.5 * euler19, "19 evaluations: ode-euler {euler19}, edm-heun {heun19}");
}

/// Predictor–corrector against predictors alone at equal predictor steps, VE SDE, 20,000 samples
/// (covariance standard error ≈ 0.01), metric: max |covariance error|.
/// - 50 steps: one Langevin step per level (snr 0.16) cuts the error of its own predictor,
///   reverse diffusion, whose per-step variance excess is Δσ⁴/(λ+σ²) (Song et al. 2021, table 1:
///   PC beats P-only samplers at equal predictor steps);
/// - 5 steps: PC stays near the target where Euler–Maruyama's explicit step (g²|Δt| = 1.5σ²)
///   overshoots and blows the covariance up by orders of magnitude.
#[test]
fn predictor_corrector_beats_predictors_at_equal_steps() {
    let sde = Sde::ve(20.0);
    let target = gaussian(sde);
    let device = Device::flex();
    let err = |sampler, steps| {
        let opts = SampleOptions { sampler, steps, seed: 3, ..Default::default() };
        let out = block_on(sampling::sample(&target, &sde, [20_000, 1, 1, 2], &opts, &device, &mut no_observer())).unwrap();
        let (mean, cov) = mean_cov(&rows(out.x).0, 2);
        max_abs_diff(&cov, &target.cov).max(max_abs_diff(&mean, &target.mean))
    };
    let (rd, pc) = (err(Sampler::ReverseDiffusion, 50), err(Sampler::PredictorCorrector, 50));
    println!("50 steps: RD error {rd:.3}, PC error {pc:.3}");
    assert!(pc < 0.75 * rd, "PC error {pc} is not clearly below reverse-diffusion error {rd}");
    let (em, pc) = (err(Sampler::EulerMaruyama, 5), err(Sampler::PredictorCorrector, 5));
    println!("5 steps: EM error {em:.3}, PC error {pc:.3}");
    assert!(pc < em, "PC error {pc} is not below EM error {em}");
}

/// The probability-flow ODE is a bijection: data → prior (ε to T) → data (T to ε) with RK45
/// returns the data within 1e-3 (max abs) on a 1×8×8 Gaussian image.
#[test]
fn probability_flow_ode_round_trip_is_identity() {
    for sde in [Sde::ve(20.0), Sde::vp()] {
        let target = image_gaussian(sde);
        let device = Device::flex();
        device.seed(11);
        let x0 = sample_exact(&target, 16, &device);
        let flat = |x: Tensor<4>| x.reshape([16, 64]);
        let drift = |t: f64, y: Tensor<2>| sampling::pc::ode_drift(&target, &sde, y.reshape([16, 1, 8, 8]), t).reshape([16, 64]);
        let forward = block_on(sampling::ode::solve_rk45(drift, flat(x0.clone()), sde.eps(), 1.0, 1e-6, 1e-6, async |_, _, _| Flow::Continue)).unwrap();
        let back = block_on(sampling::ode::solve_rk45(drift, forward.y.clone(), 1.0, sde.eps(), 1e-6, 1e-6, async |_, _, _| Flow::Continue)).unwrap();
        let err: f32 = (back.y - flat(x0)).abs().max().into_scalar();
        println!("{}: round trip max error {err:.2e} ({} + {} evals)", sde.name(), forward.evals, back.evals);
        assert!(err < 1e-3, "{}: round trip error {err}", sde.name());
    }
}

/// A 1×8×8 Gaussian "image": mean 0.5, std 0.2, correlation 0.5^|i−j| between pixels i, j along
/// the raster order.
pub fn image_gaussian(sde: Sde) -> Gaussian {
    let d = 64;
    let cov = (0..d * d).map(|k| 0.04 * 0.5f64.powi(((k / d) as i32 - (k % d) as i32).abs())).collect();
    Gaussian { sde, mean: vec![0.5; d], cov }
}

/// Exact samples of a Gaussian target via its Cholesky factor.
pub fn sample_exact(target: &Gaussian, n: usize, device: &Device) -> Tensor<4> {
    let d = target.dim();
    let l = target.cholesky();
    let lt: Vec<f32> = (0..d * d).map(|k| l[(k % d) * d + k / d] as f32).collect(); // Lᵀ
    let z = Tensor::<2>::random([n, d], burn::tensor::Distribution::Normal(0.0, 1.0), device);
    let mean = Tensor::<2>::from_data(TensorData::new(target.mean.iter().map(|&v| v as f32).collect(), [1, d]), device);
    (z.matmul(Tensor::from_data(TensorData::new(lt, [d, d]), device)) + mean).reshape([n, 1, 8, 8])
}

#[test]
fn cancel_stops_within_one_step_and_bad_options_are_named() {
    let sde = Sde::ve(20.0);
    let target = gaussian(sde);
    let device = Device::flex();
    let mut seen = 0;
    let mut stop_at_three = |s: &Step<'_>| {
        seen = s.step;
        if s.step == 3 { Flow::Cancel } else { Flow::Continue }
    };
    let opts = SampleOptions { steps: 50, ..Default::default() };
    let err = block_on(sampling::sample(&target, &sde, [8, 1, 1, 2], &opts, &device, &mut stop_at_three)).err().unwrap();
    assert_eq!(err, SampleError::Cancelled { step: 3 });
    assert_eq!(seen, 3);

    let bad = |opts: SampleOptions, shape: [usize; 4]| match block_on(sampling::sample(&target, &sde, shape, &opts, &device, &mut no_observer())) {
        Err(SampleError::InvalidOption { field, .. }) => field,
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(bad(SampleOptions { steps: 0, ..Default::default() }, [1, 1, 1, 2]), "steps");
    assert_eq!(bad(SampleOptions { steps: 10_000_000, ..Default::default() }, [1, 1, 1, 2]), "steps");
    assert_eq!(bad(SampleOptions { snr: f64::NAN, ..Default::default() }, [1, 1, 1, 2]), "snr");
    assert_eq!(bad(SampleOptions { rtol: -1.0, ..Default::default() }, [1, 1, 1, 2]), "rtol");
    assert_eq!(bad(SampleOptions::default(), [0, 1, 1, 2]), "batch");
    assert_eq!(bad(SampleOptions { rho: 0.0, ..Default::default() }, [1, 1, 1, 2]), "rho");
    assert_eq!(bad(SampleOptions { churn: -1.0, ..Default::default() }, [1, 1, 1, 2]), "churn");
    assert_eq!(bad(SampleOptions { s_tmin: -0.1, ..Default::default() }, [1, 1, 1, 2]), "s_tmin");
    assert_eq!(bad(SampleOptions { s_tmin: 2.0, s_tmax: 1.0, ..Default::default() }, [1, 1, 1, 2]), "s_tmax");
    assert_eq!(bad(SampleOptions { s_noise: f64::NAN, ..Default::default() }, [1, 1, 1, 2]), "s_noise");
    assert_eq!(bad(SampleOptions { s_noise: 3.0, ..Default::default() }, [1, 1, 1, 2]), "s_noise");
    let vp = Sde::vp();
    let ald = SampleOptions { sampler: Sampler::AnnealedLangevin, steps: 10, ..Default::default() };
    let err = block_on(sampling::sample(&gaussian(vp), &vp, [1, 1, 1, 2], &ald, &device, &mut no_observer())).err().unwrap();
    assert!(matches!(err, SampleError::InvalidOption { field: "sampler", .. }), "{err}");
    assert!(matches!("euler".parse::<Sampler>(), Err(SampleError::InvalidOption { field: "sampler", .. })));
    for s in Sampler::ALL {
        assert_eq!(s.name().parse::<Sampler>().unwrap(), s);
    }
}

/// A score that turns NaN below t = 0.5 (a blown-up network): an observer that checks x each step
/// stops the run at the first step past t = 0.5, and the error names the sampler and that step.
#[test]
fn non_finite_values_stop_the_run_naming_sampler_and_step() {
    let sde = Sde::ve(20.0);
    let device = Device::flex();
    let broken = |x: Tensor<4>, t: f64| if t < 0.5 { x * f32::NAN } else { -x / 400.0 };
    let mut check = |s: &Step<'_>| if s.x.clone().sum().into_scalar::<f32>().is_finite() { Flow::Continue } else { Flow::NonFinite };
    // Step k evaluates the score at t ≈ 1 − (k − 1)/10 (Heun also at 1 − k/10): the first NaN
    // comes at step 7 (Heun: 6). RK45's steps are adaptive.
    for (sampler, name, expected) in [(Sampler::EulerMaruyama, "em", 7), (Sampler::PredictorCorrector, "pc", 7), (Sampler::OdeHeun, "ode-heun", 6), (Sampler::OdeRk45, "ode-rk45", 0)] {
        let opts = SampleOptions { sampler, steps: 10, corrector_steps: Some(1), ..Default::default() };
        match block_on(sampling::sample(&broken, &sde, [2, 1, 1, 2], &opts, &device, &mut check)) {
            Err(SampleError::NonFinite { sampler: s, step, t, advice }) => {
                assert_eq!(s, name);
                assert_eq!(advice, sampler.if_non_finite());
                if sampler != Sampler::OdeRk45 {
                    assert!(t < 0.5, "{name}: stopped at t = {t}");
                    assert_eq!(step, expected, "{name}");
                } else {
                    // RK45 checks its own error norm: it stops at the step whose stages reached
                    // t < 0.5, reporting the step's start time.
                    assert!(t < 0.75, "{name}: stopped at t = {t}");
                }
                let message = SampleError::NonFinite { sampler: s, step, t, advice }.to_string();
                assert!(message.contains(name) && message.contains(&format!("step {step}")), "{message}");
                // The advice fits the sampler: only pc has an snr, only RK45 a tolerance.
                assert_eq!(message.contains("snr"), sampler == Sampler::PredictorCorrector, "{message}");
                assert_eq!(message.contains("rtol"), sampler == Sampler::OdeRk45, "{message}");
            }
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name}: a NaN score gave samples"),
        }
    }
}
