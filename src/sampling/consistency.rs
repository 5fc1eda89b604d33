//! Sampling with a consistency function f(x̂, σ̂), which maps every point of a probability-flow
//! ODE trajectory to the trajectory's origin at σ̂_min (Song, Dhariwal, Chen & Sutskever 2023,
//! "Consistency Models"): one evaluation turns noise into a sample, and a few more refine it.
//!
//! Multistep sampling (their algorithm 1): x̂ ~ N(0, σ̂_max² I), x₀ = f(x̂, σ̂_max); then for each
//! further level σ̂_n, re-noise x̂ = x₀ + √(σ̂_n² − σ̂_min²)·z and evaluate x₀ = f(x̂, σ̂_n).
//!
//! Zero-shot inpainting (their algorithm 4, with A the identity): the known pixels of the first
//! x̂ are the data itself, and after every evaluation the known pixels of x₀ are put back before
//! it is re-noised, so the next evaluation sees the data under the same noise as the rest of the
//! image; the result keeps the known pixels exactly.
//!
//! The sampler works in the scaled state x̂ = x/m(t) and the noise level σ̂ = σ(t)/m(t) of the
//! σ̂-grid samplers ([`super::karras`]), so it runs on every SDE; a consistency model is trained
//! for one SDE's σ̂ range.

use burn::prelude::*;

use super::karras::{karras_sigmas, report};
use super::{Known, Noise, Observer, SampleError, SampleOptions, Sampler, Samples, prior_sample, validate_batch};
use crate::score::ConsistencyFn;
use crate::sde::{Sde, T_END};

/// The N noise levels where a run of N steps evaluates f: σ̂_max, then the next N − 1 levels of
/// the Karras grid (ρ from the options) of N + 1 levels from σ̂_max down to σ̂_min. So one step is
/// f(x̂, σ̂_max), and each further step starts lower, where less of the sample is left to decide.
pub fn sigmas(sde: &Sde, steps: usize, rho: f64) -> Vec<f64> {
    let (min, max) = sde.noise_levels();
    karras_sigmas(steps + 1, min, max, rho).into_iter().take(steps).collect()
}

/// The noise levels of a run with these options: σ̂_max, then the first N − 1 of
/// [`SampleOptions::levels`] when it has any (levels measured for the model, as Song et al. 2023
/// chose theirs by a search on sample quality), else [`sigmas`].
pub fn run_levels(sde: &Sde, options: &SampleOptions) -> Vec<f64> {
    if options.levels.is_empty() {
        return sigmas(sde, options.steps, options.rho);
    }
    std::iter::once(sde.noise_levels().1).chain(options.levels.iter().copied()).take(options.steps).collect()
}

/// Draws `shape`-shaped samples with the consistency function `f` ([`SampleOptions::steps`]
/// evaluations).
pub async fn sample<F: ConsistencyFn, O: Observer>(f: &F, sde: &Sde, shape: [usize; 4], options: &SampleOptions, device: &Device, observer: &mut O) -> Result<Samples, SampleError> {
    check(options, sde)?;
    validate_batch(shape)?;
    let mut noise = Noise::per_sample(options.seed, options.first_sample);
    let x = prior_sample(sde, shape, device, &mut noise);
    run(f, sde, x, options, None, &mut noise, observer).await
}

/// Fills in the pixels where the mask is 0 (their algorithm 4); the known pixels come back exactly.
pub async fn inpaint<F: ConsistencyFn, O: Observer>(f: &F, sde: &Sde, known: &Known, options: &SampleOptions, observer: &mut O) -> Result<Samples, SampleError> {
    check(options, sde)?;
    let mut noise = Noise::per_sample(options.seed, options.first_sample);
    let x = prior_sample(sde, known.shape(), &known.device(), &mut noise);
    run(f, sde, x, options, Some(known), &mut noise, observer).await
}

fn check(options: &SampleOptions, sde: &Sde) -> Result<(), SampleError> {
    if options.sampler != Sampler::Consistency {
        return Err(SampleError::invalid("sampler", format!("`{}` samples a score model; a consistency model samples with `consistency`", options.sampler.name())));
    }
    options.validate(sde)
}

async fn run<F: ConsistencyFn, O: Observer>(f: &F, sde: &Sde, x: Tensor<4>, options: &SampleOptions, known: Option<&Known>, noise: &mut Noise, observer: &mut O) -> Result<Samples, SampleError> {
    let levels = run_levels(sde, options);
    let sigma_min = sde.noise_level(sde.eps());
    let paste = |x: Tensor<4>| match known {
        Some(known) => known.paste(x),
        None => x,
    };
    let mut x_hat = paste(x / sde.marginal(T_END).0);
    let mut origin = x_hat.clone();
    for (i, &sigma) in levels.iter().enumerate() {
        if i > 0 {
            let z = noise.normal_like(&origin);
            x_hat = origin.clone() + z * (sigma * sigma - sigma_min * sigma_min).max(0.0).sqrt();
        }
        origin = paste(f.origin(x_hat.clone(), sigma));
        let next = levels.get(i + 1).copied().unwrap_or(0.0);
        report(observer, sde, Sampler::Consistency, i + 1, levels.len(), next, &origin, &origin).await?;
    }
    Ok(Samples { x: origin, evals: levels.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::Mixture;
    use crate::score::no_observer;

    const N: usize = 20_000;

    fn options(steps: usize) -> SampleOptions {
        SampleOptions { sampler: Sampler::Consistency, steps, seed: 3, ..SampleOptions::default() }
    }

    fn host(x: Tensor<4>) -> Vec<[f64; 2]> {
        x.into_data().try_to_vec::<f32>().unwrap().chunks(2).map(|p| [p[0] as f64, p[1] as f64]).collect()
    }

    fn device_points(points: &[[f64; 2]], device: &Device) -> Tensor<4> {
        let values: Vec<f32> = points.iter().flat_map(|p| [p[0] as f32, p[1] as f32]).collect();
        Tensor::from_data(TensorData::new(values, [points.len(), 2, 1, 1]), device)
    }

    fn mean_cov(points: &[[f64; 2]]) -> ([f64; 2], [[f64; 2]; 2]) {
        let n = points.len() as f64;
        let m = [0, 1].map(|i| points.iter().map(|p| p[i]).sum::<f64>() / n);
        let c = [0, 1].map(|i| [0, 1].map(|j| points.iter().map(|p| (p[i] - m[i]) * (p[j] - m[j])).sum::<f64>() / n));
        (m, c)
    }

    /// Data N(μ, Σ) with Σ = R diag(λ) Rᵀ, R a rotation by θ. Its ODE flow is linear: the
    /// marginal at σ̂ is N(μ, Σ + σ̂² I), and dx̂/dσ̂ = σ̂ (Σ + σ̂² I)⁻¹ (x̂ − μ) moves x̂ − μ by
    /// (Σ + σ̂² I)^{1/2} times a constant, so the consistency function is
    /// f(x̂, σ̂) = μ + (Σ + σ̂_min² I)^{1/2} (Σ + σ̂² I)^{−1/2} (x̂ − μ), in R's frame a scale of
    /// √((λ_i + σ̂_min²)/(λ_i + σ̂²)) per axis.
    struct Gaussian {
        mu: [f64; 2],
        lambda: [f64; 2],
        theta: f64,
        sigma_min: f64,
    }

    impl Gaussian {
        fn cov(&self) -> [[f64; 2]; 2] {
            let (c, s) = (self.theta.cos(), self.theta.sin());
            let [a, b] = self.lambda;
            [[c * c * a + s * s * b, c * s * (a - b)], [c * s * (a - b), s * s * a + c * c * b]]
        }

        /// K(σ̂) = R diag(√((λ_i + σ̂_min²)/(λ_i + σ̂²))) Rᵀ: f(x̂, σ̂) = μ + K(σ̂)(x̂ − μ).
        fn k(&self, sigma: f64) -> [[f64; 2]; 2] {
            let (c, s) = (self.theta.cos(), self.theta.sin());
            let [a, b] = self.lambda.map(|l| ((l + self.sigma_min * self.sigma_min) / (l + sigma * sigma)).sqrt());
            [[c * c * a + s * s * b, c * s * (a - b)], [c * s * (a - b), s * s * a + c * c * b]]
        }

        fn origin_of(&self, x: [f64; 2], sigma: f64) -> [f64; 2] {
            let k = self.k(sigma);
            let d = [x[0] - self.mu[0], x[1] - self.mu[1]];
            [0, 1].map(|i| self.mu[i] + k[i][0] * d[0] + k[i][1] * d[1])
        }
    }

    impl ConsistencyFn for Gaussian {
        fn origin(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
            let device = x_hat.device();
            let out: Vec<[f64; 2]> = host(x_hat).into_iter().map(|p| self.origin_of(p, sigma_hat)).collect();
            device_points(&out, &device)
        }
    }

    /// K A Kᵀ for 2×2 matrices (K symmetric).
    fn sandwich(k: [[f64; 2]; 2], a: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
        let ka = [0, 1].map(|i| [0, 1].map(|j| k[i][0] * a[0][j] + k[i][1] * a[1][j]));
        [0, 1].map(|i| [0, 1].map(|j| ka[i][0] * k[j][0] + ka[i][1] * k[j][1]))
    }

    /// With the exact consistency function of a Gaussian N(μ, Σ), one evaluation turns noise into
    /// samples with the data's mean and covariance, and so do two and four. Exactly, step by step:
    /// the first x̂ ~ N(0, σ̂_max² I) gives f ~ N(μ − Kμ, K σ̂_max² Kᵀ) (K = K(σ̂_max); the
    /// prior's mean 0 is not the marginal's μ, an O(|μ|/σ̂_max) error that consistency sampling
    /// shares with every sampler starting from N(0, σ̂_max² I)); re-noising x₀ ~ N(m, C) to σ̂ and
    /// evaluating gives N(μ + K(m − μ), K (C + (σ̂² − σ̂_min²) I) Kᵀ). The samples match these
    /// moments (4.5 standard errors on the mean; 6 % on the covariance, whose standard error is
    /// about √(2/N) = 1 % for N = 20,000), and the moments match the data's (Σ + σ̂_min² I) within
    /// 3 %.
    #[test]
    fn the_exact_consistency_function_of_a_gaussian_samples_it_in_one_step() {
        let device = Device::flex();
        let sde = Sde::ve(40.0);
        let g = Gaussian { mu: [1.5, -0.5], lambda: [1.0, 0.04], theta: 0.6, sigma_min: sde.noise_level(sde.eps()) };
        let smin2 = g.sigma_min * g.sigma_min;
        let data = { let c = g.cov(); [[c[0][0] + smin2, c[0][1]], [c[1][0], c[1][1] + smin2]] };
        for steps in [1, 2, 4] {
            let levels = sigmas(&sde, steps, 7.0);
            let (mut mean, mut cov) = ([0.0; 2], [[levels[0] * levels[0], 0.0], [0.0, levels[0] * levels[0]]]);
            for (i, &sigma) in levels.iter().enumerate() {
                if i > 0 {
                    cov = [[cov[0][0] + sigma * sigma - smin2, cov[0][1]], [cov[1][0], cov[1][1] + sigma * sigma - smin2]];
                }
                let k = g.k(sigma);
                let d = [mean[0] - g.mu[0], mean[1] - g.mu[1]];
                mean = [0, 1].map(|r| g.mu[r] + k[r][0] * d[0] + k[r][1] * d[1]);
                cov = sandwich(k, cov);
            }
            let out = pollster::block_on(sample(&g, &sde, [N, 2, 1, 1], &options(steps), &device, &mut no_observer())).unwrap();
            assert_eq!(out.evals, steps);
            let (m, c) = mean_cov(&host(out.x));
            for i in 0..2 {
                let se = (cov[i][i] / N as f64).sqrt();
                assert!((m[i] - mean[i]).abs() < 4.5 * se, "{steps} steps: mean {m:?}, want {mean:?}");
                assert!((mean[i] - g.mu[i]).abs() < 0.03 * data[i][i].sqrt(), "{steps} steps: exact mean {mean:?} against the data's {:?}", g.mu);
                for j in 0..2 {
                    let scale = (cov[i][i] * cov[j][j]).sqrt();
                    assert!((c[i][j] - cov[i][j]).abs() < 0.06 * scale, "{steps} steps: covariance {c:?}, want {cov:?}");
                    assert!((cov[i][j] - data[i][j]).abs() < 0.03 * scale, "{steps} steps: exact covariance {cov:?} against the data's {data:?}");
                }
            }
        }
    }

    /// A mixture's consistency function: its flow dx̂/dσ̂ = (x̂ − D(x̂; σ̂))/σ̂ with the exact
    /// denoiser D = x̂ + σ̂² ∇ log p_σ̂ (p_σ̂ the mixture with each variance raised by σ̂²),
    /// integrated in f64 by 400 Heun steps on a ρ = 7 grid from σ̂ down to σ̂_min.
    struct MixtureFlow<'a> {
        mixture: &'a Mixture,
        sigma_min: f64,
    }

    impl MixtureFlow<'_> {
        fn slope(&self, x: &[f64], sigma: f64) -> Vec<f64> {
            let smoothed = Mixture { stds: self.mixture.stds.iter().map(|s| (s * s + sigma * sigma).sqrt()).collect(), ..self.mixture.clone() };
            // (x − D)/σ = −σ ∇ log p_σ.
            smoothed.score_at(x).into_iter().map(|s| -sigma * s).collect()
        }

        fn origin_of(&self, mut x: Vec<f64>, sigma: f64) -> Vec<f64> {
            let grid = karras_sigmas(401, self.sigma_min, sigma, 7.0);
            for w in grid[..401].windows(2) {
                let (s, next) = (w[0], w[1]);
                let d = self.slope(&x, s);
                let euler: Vec<f64> = x.iter().zip(&d).map(|(x, d)| x + (next - s) * d).collect();
                let d_next = self.slope(&euler, next);
                x = x.iter().zip(d.iter().zip(&d_next)).map(|(x, (a, b))| x + (next - s) * 0.5 * (a + b)).collect();
            }
            x
        }
    }

    impl ConsistencyFn for MixtureFlow<'_> {
        fn origin(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
            let device = x_hat.device();
            let out: Vec<[f64; 2]> = host(x_hat).into_iter().map(|p| {
                let o = self.origin_of(p.to_vec(), sigma_hat);
                [o[0], o[1]]
            }).collect();
            device_points(&out, &device)
        }
    }
    /// With the flow of a two-component mixture (weights 0.25 and 0.75, means 4 apart, std 0.3)
    /// integrated to high precision, one and two evaluations give each component its weight
    /// (within 0.02; the standard error is 0.007 for 4,000 points) and points as spread as
    /// their component (RMS distance to its centre within 10 % of √2·0.3, 2-D). σ̂_max = 80, so
    /// the prior's mean 0 is 0.01 σ̂_max from the marginal's.
    #[test]
    fn the_exact_consistency_function_of_a_mixture_keeps_its_weights() {
        let device = Device::flex();
        let sde = Sde::ve(80.0);
        let mixture = Mixture::new(vec![0.25, 0.75], vec![vec![-2.0, 0.0], vec![2.0, 0.5]], vec![0.3, 0.3]).unwrap();
        let flow = MixtureFlow { mixture: &mixture, sigma_min: sde.noise_level(sde.eps()) };
        let n = 4000;
        for steps in [1, 2] {
            let out = pollster::block_on(sample(&flow, &sde, [n, 2, 1, 1], &options(steps), &device, &mut no_observer())).unwrap();
            let points = host(out.x);
            let mut count = [0usize; 2];
            let mut sq = [0.0f64; 2];
            for p in &points {
                let k = mixture.assign(p);
                count[k] += 1;
                sq[k] += (p[0] - mixture.means[k][0]).powi(2) + (p[1] - mixture.means[k][1]).powi(2);
            }
            let share = count[0] as f64 / n as f64;
            assert!((share - 0.25).abs() < 0.02, "{steps} steps: first component's share {share}");
            for k in 0..2 {
                let rms = (sq[k] / count[k] as f64).sqrt();
                let want = (2.0f64).sqrt() * 0.3;
                assert!((rms - want).abs() < 0.1 * want, "{steps} steps: component {k}'s RMS radius {rms}, want {want}");
            }
        }
    }

    /// Inpainting with algorithm 4 returns the known pixels exactly (here the first coordinate y of
    /// every point of a correlated Gaussian with μ = 0), evaluates f once per step, and follows
    /// the correlation as the algorithm says. With f linear the free coordinate stays a·y + noise:
    /// the first evaluation sees (y, σ̂_max z) and gives a = K₂₁(σ̂_max); each later one sees
    /// (y, a·y + noise + √(σ̂² − σ̂_min²) z) and gives a ← K₂₁(σ̂) + K₂₂(σ̂)·a. The regression slope
    /// of the result on y matches that a (within 0.05, its standard error being about 0.01), and
    /// four steps come closer than one to the conditional mean's slope Σ₂₁/Σ₁₁.
    #[test]
    fn inpainting_keeps_the_known_pixels_and_follows_the_correlation() {
        let device = Device::flex();
        let sde = Sde::ve(40.0);
        let g = Gaussian { mu: [0.0, 0.0], lambda: [1.0, 0.01], theta: 0.7, sigma_min: sde.noise_level(sde.eps()) };
        let cov = g.cov();
        let conditional = cov[1][0] / cov[0][0];
        let n = 4000;
        let mut rng = crate::rng::SplitMix::new(11);
        let given: Vec<f32> = (0..n).map(|_| (rng.normal() * cov[0][0].sqrt()) as f32).collect();
        let values: Vec<f32> = given.iter().flat_map(|&y| [y, 0.0]).collect();
        let known = Known::from_host(&values, &[1.0, 0.0], [n, 2, 1, 1], [-100.0, 100.0], &device).unwrap();
        let mut distance = Vec::new();
        for steps in [1, 4] {
            let exact = sigmas(&sde, steps, 7.0).iter().enumerate().fold(0.0, |a, (i, &sigma)| {
                let k = g.k(sigma);
                k[1][0] + k[1][1] * if i == 0 { 0.0 } else { a }
            });
            let out = pollster::block_on(inpaint(&g, &sde, &known, &options(steps), &mut no_observer())).unwrap();
            assert_eq!(out.evals, steps);
            let points = host(out.x);
            assert!(points.iter().zip(&given).all(|(p, &y)| p[0] == y as f64), "the known coordinate changed");
            let (_, c) = mean_cov(&points);
            let slope = c[1][0] / c[0][0];
            assert!((slope - exact).abs() < 0.05, "{steps} steps: slope {slope}, the algorithm's {exact}");
            distance.push((exact - conditional).abs());
        }
        assert!(distance[1] < distance[0], "distances to the conditional slope {conditional}: {distance:?}");
    }

    /// A consistency run refuses score samplers' names and the reverse is refused where models
    /// are put together ([`crate::compose`]); levels start at σ̂_max and fall.
    #[test]
    fn levels_start_at_the_top_and_a_score_sampler_is_refused() {
        let sde = Sde::ve(40.0);
        let one = sigmas(&sde, 1, 7.0);
        assert!(one.len() == 1 && (one[0] - 40.0).abs() < 1e-9, "{one:?}");
        let four = sigmas(&sde, 4, 7.0);
        assert!(four.len() == 4 && (four[0] - 40.0).abs() < 1e-9 && four.windows(2).all(|w| w[0] > w[1]) && four[3] > 0.002, "{four:?}");
        let g = Gaussian { mu: [0.0; 2], lambda: [1.0; 2], theta: 0.0, sigma_min: 0.002 };
        let wrong = SampleOptions { sampler: Sampler::DpmSolver2M, ..options(2) };
        let err = pollster::block_on(sample(&g, &sde, [2, 2, 1, 1], &wrong, &Device::flex(), &mut no_observer())).err().unwrap().to_string();
        assert!(err.contains("dpmpp-2m") && err.contains("consistency"), "{err}");
    }

    /// Records the noise levels it is evaluated at; returns x̂ unchanged.
    struct Recorder(std::cell::RefCell<Vec<f64>>);

    impl ConsistencyFn for Recorder {
        fn origin(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
            self.0.borrow_mut().push(sigma_hat);
            x_hat
        }
    }

    /// With chosen levels a run of N steps evaluates f at σ̂_max and the first N − 1 of them, in
    /// sampling and in inpainting; without, on the Karras grid. Levels are refused, by name, on a
    /// score sampler, when fewer than N − 1, when not falling, and outside (σ̂_min, σ̂_max).
    #[test]
    fn chosen_levels_are_where_f_is_evaluated() {
        let device = Device::flex();
        let sde = Sde::ve(40.0);
        let run = |options: &SampleOptions| {
            let f = Recorder(Default::default());
            let out = pollster::block_on(sample(&f, &sde, [1, 2, 1, 1], options, &device, &mut no_observer()));
            out.map(|out| (out.evals, f.0.into_inner())).map_err(|e| e.to_string())
        };
        let chosen = SampleOptions { levels: vec![3.0, 0.5, 0.1], ..options(3) };
        assert_eq!(run(&chosen), Ok((3, vec![40.0, 3.0, 0.5])));
        assert_eq!(run(&options(3)).unwrap().1, sigmas(&sde, 3, 7.0));
        let f = Recorder(Default::default());
        let known = Known::from_host(&[0.5, 0.0], &[1.0, 0.0], [1, 2, 1, 1], [-100.0, 100.0], &device).unwrap();
        pollster::block_on(inpaint(&f, &sde, &known, &chosen, &mut no_observer())).unwrap();
        assert_eq!(f.0.into_inner(), vec![40.0, 3.0, 0.5]);
        for (levels, steps, words) in [
            (vec![3.0], 3, "3 steps re-noise 2 times"),
            (vec![3.0, 4.0], 3, "level 1 is 4"),
            (vec![40.0], 2, "level 0 is 40"),
            (vec![3.0, 0.001], 3, "above σ̂_min"),
            (vec![f64::NAN], 2, "level 0 is NaN"),
        ] {
            let err = run(&SampleOptions { levels, ..options(steps) }).unwrap_err();
            assert!(err.contains("levels") && err.contains(words), "{err}");
        }
        let err = SampleOptions { sampler: Sampler::EdmHeun, levels: vec![1.0], ..options(2) }.validate(&sde).unwrap_err().to_string();
        assert!(err.contains("levels") && err.contains("edm-heun"), "{err}");
    }
}
