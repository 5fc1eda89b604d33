//! The probability-flow ODE dx/dt = f(x,t) − ½ g(t)² s(x,t) (Song et al. 2021, eq. 13) solved with
//! the adaptive Dormand–Prince 5(4) pair (Dormand & Prince 1980; Hairer, Nørsett & Wanner,
//! "Solving ODEs I", §II.5), the RK45 that score_sde calls through scipy.
//!
//! The step-size control needs one number per step on the host (the error norm), so the solver is
//! async and reads it with `into_scalar_async`; everything else stays on the device.

use burn::prelude::*;

use super::pc::ode_drift;
use super::{Flow, Observer, SampleError, Sampler, ScoreFn, Step, MAX_ODE_EVALS};
use crate::sde::{Sde, T_END};

// Dormand–Prince coefficients: c (nodes), a (stages), b (5th-order weights = last stage, FSAL),
// e = b − b̂ (difference to the embedded 4th-order weights).
const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
];
const E: [f64; 7] = [71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0];

/// Result of an adaptive solve.
pub struct OdeSolution {
    pub y: Tensor<2>,
    /// Right-hand-side evaluations.
    pub evals: usize,
    pub accepted: usize,
    pub rejected: usize,
}

/// Integrates dy/dt = f(t, y) from t0 to t1 (either direction) for a batch of states y [B, D],
/// with one step size for the whole batch and the error measured as scipy does:
/// RMS over all entries of err / (atol + rtol · max(|y|, |y_new|)) ≤ 1.
/// `on_step(accepted, t, y)` is awaited after each accepted step.
pub async fn solve_rk45<F>(
    mut f: F,
    y0: Tensor<2>,
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    mut on_step: impl AsyncFnMut(usize, f64, &Tensor<2>) -> Flow,
) -> Result<OdeSolution, SampleError>
where
    F: FnMut(f64, Tensor<2>) -> Tensor<2>,
{
    let span = t1 - t0;
    let dir = span.signum();
    let mut t = t0;
    let mut y = y0;
    let mut k1 = f(t, y.clone());
    let mut evals = 1;
    let (mut accepted, mut rejected) = (0, 0);
    let mut h_abs = 0.01 * span.abs();
    while (t1 - t) * dir > 0.0 {
        if evals >= MAX_ODE_EVALS {
            return Err(SampleError::Solver(format!("gave up after {evals} evaluations at t = {t:.6}; loosen rtol/atol")));
        }
        let h_abs_min = 1e-12 * t.abs().max(1.0);
        if h_abs < h_abs_min {
            return Err(SampleError::Solver(format!("step size underflow at t = {t:.6}")));
        }
        let h = (h_abs.min((t1 - t).abs())) * dir;
        // Stages k2..k7; k7 = f(t + h, y_new) is the next step's k1 (first same as last).
        let mut k = vec![k1.clone()];
        let mut y_new = y.clone();
        for (stage, (&c, a)) in C.iter().zip(A.iter()).enumerate() {
            let mut acc = y.clone();
            for (j, &a_j) in a.iter().enumerate() {
                if a_j != 0.0 {
                    acc = acc + k[j].clone() * (h * a_j);
                }
            }
            if stage == 5 {
                y_new = acc.clone();
            }
            k.push(f(t + c * h, acc));
            evals += 1;
        }
        let mut err = k[0].clone() * (h * E[0]);
        for (j, &e_j) in E.iter().enumerate().skip(1) {
            if e_j != 0.0 {
                err = err + k[j].clone() * (h * e_j);
            }
        }
        let scale = y.clone().abs().max_pair(y_new.clone().abs()) * rtol + atol;
        let norm_t = (err / scale).powi_scalar(2).mean().sqrt();
        let norm = norm_t.into_scalar_async::<f32>().await.map_err(|e| SampleError::Readback(format!("{e:?}")))? as f64;
        if !norm.is_finite() {
            return Err(Sampler::OdeRk45.non_finite(accepted + 1, t));
        }
        if norm <= 1.0 {
            t += h;
            if (t1 - t) * dir <= 0.0 {
                t = t1;
            }
            y = y_new;
            k1 = k.pop().expect("seven stages");
            accepted += 1;
            let factor = if norm == 0.0 { 10.0 } else { (0.9 * norm.powf(-0.2)).min(10.0) };
            h_abs *= factor;
            match on_step(accepted, t, &y).await {
                Flow::Continue => {}
                Flow::Cancel => return Err(SampleError::Cancelled { step: accepted }),
                Flow::NonFinite => return Err(Sampler::OdeRk45.non_finite(accepted, t)),
            }
        } else {
            rejected += 1;
            h_abs *= (0.9 * norm.powf(-0.2)).max(0.2);
        }
    }
    Ok(OdeSolution { y, evals, accepted, rejected })
}

/// Samples by integrating the probability-flow ODE from T down to ε with RK45.
pub async fn sample_rk45<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, rtol: f64, atol: f64, observer: &mut O) -> Result<Tensor<4>, SampleError> {
    flow_rk45(score, sde, x, T_END, sde.eps(), rtol, atol, observer).await
}

/// Encodes data into the prior: the probability-flow ODE from ε up to T with RK45, the inverse of
/// [`sample_rk45`] (Song et al. 2021, §4.3: a deterministic, unique code x(T) for each x(0) that
/// decoding maps back to it, up to the solver's tolerance).
pub async fn encode_rk45<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, rtol: f64, atol: f64, observer: &mut O) -> Result<Tensor<4>, SampleError> {
    flow_rk45(score, sde, x, sde.eps(), T_END, rtol, atol, observer).await
}

/// The probability-flow ODE for a batch of images from `t0` to `t1` (either direction); the
/// observer's `progress` is the share of the interval covered.
#[allow(clippy::too_many_arguments)]
async fn flow_rk45<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, t0: f64, t1: f64, rtol: f64, atol: f64, observer: &mut O) -> Result<Tensor<4>, SampleError> {
    let shape = x.dims();
    let [b, c, h, w] = shape;
    let drift = |t: f64, y: Tensor<2>| ode_drift(score, sde, y.reshape(shape), t).reshape([b, c * h * w]);
    let on_step = async |step: usize, t: f64, y: &Tensor<2>| {
        let x = y.clone().reshape(shape);
        let progress = (t - t0) / (t1 - t0);
        observer.observe(Step { step, total: None, t, progress, x: &x, x_mean: &x }).await
    };
    let solution = solve_rk45(drift, x.reshape([b, c * h * w]), t0, t1, rtol, atol, on_step).await?;
    Ok(solution.y.reshape(shape))
}
