//! Error types. Each message names the field, tensor or value that was wrong, so that the CLI can
//! print it as one line and the web layer can hand it to JavaScript unchanged.

use thiserror::Error;

/// A configuration, option or model-card field that is missing, malformed or out of range.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("model card is not valid JSON for a scorefield card: {0}")]
    Json(String),
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// Why a set of weights could not be loaded into the architecture a model card describes.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WeightsError {
    #[error("weights file is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("weights file lacks tensor `{name}` that the card's architecture needs")]
    MissingTensor { name: String },
    #[error("weights file has tensor `{name}` that the card's architecture does not have")]
    UnexpectedTensor { name: String },
    #[error("tensor `{name}` has shape {found:?} in the weights file, but the card's architecture expects {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has dtype {found}; supported are F32, F16 and BF16")]
    UnsupportedDtype { name: String, found: String },
    #[error("tensor `{name}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite { name: String, index: usize, value: String },
    #[error("model card: {0}")]
    Card(#[from] ConfigError),
    #[error("could not apply the weights to the network: {0}")]
    Apply(String),
    #[error("could not serialise the weights: {0}")]
    Save(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// Why a sampler, inpainting or likelihood run stopped without a result.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SampleError {
    #[error("`{field}` {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("cancelled at step {step}")]
    Cancelled { step: usize },
    #[error("{sampler} produced non-finite values by step {step} (t = {t:.4}); try more steps or a smaller snr")]
    NonFinite { sampler: &'static str, step: usize, t: f64 },
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
    #[error("ODE solver did not reach the end time: {0}")]
    Solver(String),
    #[error("training diverged at step {step}: the loss is not finite; reset the network")]
    Diverged { step: usize },
}

impl SampleError {
    /// Names the sampler in a non-finite error raised below the sampler level.
    pub fn for_sampler(self, sampler: crate::Sampler) -> Self {
        match self {
            SampleError::NonFinite { step, t, .. } => SampleError::NonFinite { sampler: sampler.name(), step, t },
            other => other,
        }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SampleError::InvalidOption { field, reason: reason.into() }
    }
}
