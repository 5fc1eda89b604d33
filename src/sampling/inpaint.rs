//! Inpainting: sampling x(0) given the pixels where mask = 1 (Song et al. 2021, appendix I.2;
//! score_sde `controllable_generation.get_pc_inpainter`). The sampler's own update is wrapped: after
//! each predictor and corrector update, the known pixels are replaced by the data diffused to the
//! current time, m(t) x_known + σ(t) z, and at the end by the data itself. The deterministic
//! samplers (the ODE ones, `edm-heun`, `dpmpp-2m`) use one draw of z for the whole run, so the
//! known pixels follow a smooth path instead of jumping at every step.

use burn::prelude::*;
use burn::tensor::Bool;

use super::{Noise, Observer, SampleError, SampleOptions, Sampler, Samples, ScoreFn, prior_sample, run, validate_batch};
use crate::sde::Sde;

/// The known part of a batch of images: the images and a mask with 1 = keep, 0 = generate.
#[derive(Clone, Debug)]
pub struct Known {
    data: Tensor<4>,
    keep: Tensor<4, Bool>,
    /// For the deterministic ODE samplers, one noise draw z for the whole run, so the known region
    /// follows a smooth path m(t) x + σ(t) z instead of jumping each step.
    fixed_noise: Option<Tensor<4>>,
}

impl Known {
    /// Builds the constraint from host data, checking it first.
    ///
    /// - `images`: B·C·H·W values, finite, in `range` (the model's data range);
    /// - `mask`: either C·H·W values (one mask for every image) or B·C·H·W values, each 0 or 1.
    pub fn from_host(images: &[f32], mask: &[f32], shape: [usize; 4], range: [f32; 2], device: &Device) -> Result<Self, SampleError> {
        let [b, c, h, w] = shape;
        validate_batch(shape)?;
        let per_image = c * h * w;
        if images.len() != b * per_image {
            return Err(SampleError::invalid("image", format!("has {} values; a batch of {b} images of {c}×{h}×{w} needs {}", images.len(), b * per_image)));
        }
        if let Some((i, v)) = images.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < range[0] || **v > range[1]) {
            return Err(SampleError::invalid("image", format!("value {v} at index {i} is outside the model's range [{}, {}]", range[0], range[1])));
        }
        let mask_full: Vec<f32> = if mask.len() == per_image {
            mask.iter().copied().cycle().take(b * per_image).collect()
        } else if mask.len() == b * per_image {
            mask.to_vec()
        } else {
            return Err(SampleError::invalid("mask", format!("has {} values; expected {per_image} ({c}×{h}×{w}) or {} (one mask per image)", mask.len(), b * per_image)));
        };
        if let Some((i, v)) = mask_full.iter().enumerate().find(|(_, v)| **v != 0.0 && **v != 1.0) {
            return Err(SampleError::invalid("mask", format!("value {v} at index {} is neither 0 (generate) nor 1 (keep)", i % per_image)));
        }
        let data = Tensor::<4>::from_data(TensorData::new(images.to_vec(), shape), device);
        let keep = Tensor::<4>::from_data(TensorData::new(mask_full, shape), device).equal_elem(1.0);
        Ok(Self { data, keep, fixed_noise: None })
    }

    pub fn shape(&self) -> [usize; 4] {
        self.data.dims()
    }

    pub fn device(&self) -> Device {
        self.data.device()
    }

    /// Replaces the known pixels of x by m(t)·data + σ(t)·z, and of x_mean by m(t)·data.
    pub(crate) fn constrain(&self, sde: &Sde, x: Tensor<4>, x_mean: Tensor<4>, t: f64, noise: &mut Noise) -> (Tensor<4>, Tensor<4>) {
        let (mean, std) = sde.marginal(t);
        let z = match &self.fixed_noise {
            Some(z) => z.clone(),
            None => noise.normal_like(&x),
        };
        let data_mean = self.data.clone() * mean;
        let data_t = data_mean.clone() + z * std;
        (x.mask_where(self.keep.clone(), data_t), x_mean.mask_where(self.keep.clone(), data_mean))
    }

    /// On the σ̂ grid of the Karras samplers (x̂ = x/m): replaces the known pixels of x̂ by
    /// data + σ̂·z with the run's one noise draw z, the same path that [`Known::constrain`] gives
    /// the ODE samplers, ending at the data itself when σ̂ = 0.
    pub(crate) fn constrain_scaled(&self, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
        let z = self.fixed_noise.clone().expect("the Karras samplers' inpainting draws its noise once, in `inpaint`");
        x_hat.mask_where(self.keep.clone(), self.data.clone() + z * sigma_hat)
    }

    /// The final output (and the Karras samplers' previews): exactly the data where mask = 1.
    pub(crate) fn paste(&self, x: Tensor<4>) -> Tensor<4> {
        x.mask_where(self.keep.clone(), self.data.clone())
    }
}

/// Fills in the pixels where mask = 0 with the chosen sampler; the pixels where mask = 1 are
/// returned exactly as given.
pub async fn inpaint<S: ScoreFn, O: Observer>(
    score: &S,
    sde: &Sde,
    known: &Known,
    options: &SampleOptions,
    observer: &mut O,
) -> Result<Samples, SampleError> {
    options.validate(sde)?;
    let device = known.data.device();
    let mut noise = Noise::per_sample(options.seed, options.first_sample);
    let x = prior_sample(sde, known.shape(), &device, &mut noise);
    let mut known = known.clone();
    if matches!(options.sampler, Sampler::OdeEuler | Sampler::OdeHeun | Sampler::EdmHeun | Sampler::DpmSolver2M) {
        known.fixed_noise = Some(noise.normal_like(&x));
    }
    let (x, _) = known.constrain(sde, x.clone(), x, crate::sde::T_END, &mut noise);
    run(score, sde, x, options, Some(&known), &mut noise, observer).await
}
