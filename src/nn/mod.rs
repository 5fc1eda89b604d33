//! The networks and the layers they share: [`unet`], the residual U-Net the EDM denoiser wraps;
//! [`ncsn`], the first score network (version-1 cards); [`classifier`], the noise-conditional
//! classifier of guided sampling; [`layers`], the checks, sizes and features they have in common.
//! A network knows nothing of SDEs, scores or files: [`crate::model`] turns one into a score and
//! [`crate::store`] reads and writes it.

pub mod classifier;
pub mod layers;
pub mod ncsn;
pub mod unet;
