//! Checkpoints: everything a run needs to continue exactly where it stopped (weights, EMA,
//! Adam's moments, the generators' positions, the learning curve), and EMA snapshots.
//!
//! The weights and their EMA are stored exactly (f32). Adam's moments are stored in bfloat16,
//! which halves the checkpoint (a committed checkpoint stays in every clone): bfloat16 keeps
//! f32's exponent range, so the second moment (squared gradients, 1e-12 and smaller) does not
//! flush to zero as it would in f16, where Adam would then divide by ε alone. The live optimiser
//! takes the same rounded moments at every checkpoint, so a run resumed from a checkpoint
//! continues bit for bit as the run that wrote it.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::burn_pack::{self, Reader, Writer};
use burn::tensor::{Bytes, DType, bf16};
use serde::{Deserialize, Serialize};

use super::{CURVE_HEADER, RunLog, Session, TrainConfig, TrainError, Trainer, ckpt_err, optimizer};
use crate::data::{DataSpec, Images};
use crate::nn::unet::UNetConfig;
use crate::rng::SplitMix;
use crate::sampling::Noise;
use crate::sde::Sde;
use burn::prelude::Device;

/// Saved beside the tensors of a checkpoint.
#[derive(Serialize, Deserialize)]
struct CheckpointState {
    config: TrainConfig,
    arch: UNetConfig,
    sde: Sde,
    sigma_data: f64,
    #[serde(flatten)]
    run: RunState,
}

/// The part of `state.json` every run writes: its step, where its generators stand, its sessions
/// and wall time, its data.
#[derive(Serialize, Deserialize)]
pub(super) struct RunState {
    pub(super) step: u64,
    pub(super) noise_draws: u64,
    /// Stored under its old name, `batches`, as in every checkpoint so far.
    #[serde(rename = "batches")]
    pub(super) host_rng: SplitMix,
    /// None before the first step (JSON has no NaN).
    pub(super) last_loss: Option<f64>,
    pub(super) wall_time_s: f64,
    #[serde(default)]
    pub(super) sessions: Vec<Session>,
    /// Absent in the checkpoints of the MNIST run, which trained on the digits.
    #[serde(default)]
    pub(super) data: DataSpec,
}

impl RunState {
    /// The state of a run at `step`, its current session closed now.
    pub(super) fn now(step: u64, noise: &Noise, host_rng: SplitMix, last_loss: f64, log: &mut RunLog, data: &DataSpec) -> Self {
        log.sessions = log.sessions_to(step);
        Self { step, noise_draws: noise.draws(), host_rng, last_loss: last_loss.is_finite().then_some(last_loss), wall_time_s: log.wall_time(), sessions: log.sessions.clone(), data: data.clone() }
    }

    /// Puts a run's log back as the checkpoint left it; returns the last loss (NaN before the
    /// first step).
    pub(super) fn restore(self, log: &mut RunLog) -> f64 {
        log.wall_time_before = self.wall_time_s;
        log.sessions = self.sessions;
        self.last_loss.unwrap_or(f64::NAN)
    }
}

impl Trainer {
    /// Writes `dir/{net.bpk, ema.bpk, optim.bpk, state.json, curve.tsv}` (through a temporary
    /// folder, so a crash mid-write leaves the previous checkpoint intact).
    pub fn save_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        let tmp = begin_checkpoint(dir)?;
        self.net.clone().save_file(tmp.join("net.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        self.ema.clone().save_file(tmp.join("ema.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        self.optim = save_moments(&self.optim, &tmp)?;
        let run = RunState::now(self.step, &self.noise, self.host_rng, self.last_loss, &mut self.log, &self.data);
        let state = CheckpointState { config: self.config.clone(), arch: self.arch.clone(), sde: self.sde, sigma_data: self.sigma_data, run };
        finish_checkpoint(dir, &tmp, &state, CURVE_HEADER, &mut self.log)
    }

    /// Restores a trainer from a checkpoint folder. `steps` may extend the run.
    pub fn load_checkpoint(dir: &Path, device: &Device, steps: Option<u64>) -> Result<Self, TrainError> {
        let state: CheckpointState = read_state(dir)?;
        let mut trainer = Trainer::new(state.arch.clone(), state.sde, state.sigma_data, state.config.clone(), device)?;
        trainer.net = trainer.net.try_load_file(dir.join("net.bpk")).map_err(|e| ckpt_err(dir, e))?.with_frozen_features();
        trainer.ema = trainer.ema.try_load_file(dir.join("ema.bpk")).map_err(|e| ckpt_err(dir, e))?;
        trainer.optim = load_moments(optimizer(&state.config), dir)?;
        trainer.step = state.run.step;
        trainer.noise = Noise::resume(state.config.seed ^ 0x5eed, state.run.noise_draws);
        trainer.host_rng = state.run.host_rng;
        trainer.data = state.run.data.clone();
        trainer.last_loss = state.run.restore(&mut trainer.log);
        if let Some(steps) = steps {
            trainer.config.steps = steps;
        }
        Ok(trainer)
    }

    /// Writes the EMA weights as an f16 model file `dir/ema-{images}.json` (+ `.safetensors`),
    /// with the card a shipped model needs (`data`: what it was trained on).
    pub fn save_snapshot(&self, dir: &Path, data: &Images) -> Result<PathBuf, TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| ckpt_err(dir, e))?;
        let name = format!("ema-{:09}", self.images_seen());
        let mut card = self.card(&name);
        card.dataset = Some(self.data.card_dataset(data));
        card.subject = self.data.subject();
        card.image.background = data.background();
        let bytes = crate::store::save(&self.ema_model())?;
        let half = crate::store::safetensors::convert_safetensors(&bytes, crate::store::Dtype::F16)?;
        let path = dir.join(format!("{name}.json"));
        std::fs::write(dir.join(&card.weights), half).map_err(|e| ckpt_err(dir, e))?;
        std::fs::write(&path, card.to_json() + "\n").map_err(|e| ckpt_err(dir, e))?;
        Ok(path)
    }
}

/// A fresh temporary folder beside `dir` for the next checkpoint.
pub(super) fn begin_checkpoint(dir: &Path) -> Result<PathBuf, TrainError> {
    let tmp = dir.with_extension("tmp");
    std::fs::remove_dir_all(&tmp).ok();
    std::fs::create_dir_all(&tmp).map_err(|e| ckpt_err(&tmp, e))?;
    Ok(tmp)
}

/// Writes `optim.bpk` (the moments in bfloat16) into `tmp`; returns the optimiser that carries
/// exactly the stored moments, for the run to go on with.
pub(super) fn save_moments(optim: &ModuleOptimizer, tmp: &Path) -> Result<ModuleOptimizer, TrainError> {
    let (rounded, moments) = round_moments(optim).map_err(|e| ckpt_err(tmp, e))?;
    std::fs::write(tmp.join("optim.bpk"), &moments[..]).map_err(|e| ckpt_err(tmp, e))?;
    Ok(rounded)
}

/// `optim` with the moments of `dir/optim.bpk`.
pub(super) fn load_moments(optim: ModuleOptimizer, dir: &Path) -> Result<ModuleOptimizer, TrainError> {
    let path = dir.join("optim.bpk");
    let moments = std::fs::read(&path).map_err(|e| ckpt_err(&path, e))?;
    let moments = widen(Bytes::from_bytes_vec(moments)).map_err(|e| ckpt_err(&path, e))?;
    optim.from_bytes(moments).map_err(|e| ckpt_err(&path, e))
}

/// Writes `state.json` and `curve.tsv` (the previous checkpoint's rows, then the log's new ones) into `tmp`,
/// then swaps `tmp` in for `dir` by renames, so that at every moment one complete checkpoint is
/// on disk: `dir`, or `dir.old` if the process dies between the two renames.
pub(super) fn finish_checkpoint(dir: &Path, tmp: &Path, state: &impl Serialize, header: &str, log: &mut RunLog) -> Result<(), TrainError> {
    std::fs::write(tmp.join("state.json"), serde_json::to_string_pretty(state).expect("serialises")).map_err(|e| ckpt_err(tmp, e))?;
    let mut curve = std::fs::read_to_string(dir.join("curve.tsv")).unwrap_or_else(|_| format!("{header}\n"));
    for row in log.pending_curve.drain(..) {
        curve.push_str(&row);
        curve.push('\n');
    }
    std::fs::write(tmp.join("curve.tsv"), curve).map_err(|e| ckpt_err(tmp, e))?;
    let old = dir.with_extension("old");
    std::fs::remove_dir_all(&old).ok();
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| ckpt_err(dir, e))?;
    }
    std::fs::rename(tmp, dir).map_err(|e| ckpt_err(dir, e))?;
    std::fs::remove_dir_all(&old).ok();
    Ok(())
}

/// A checkpoint's `state.json`; a write interrupted between the two renames is named.
pub(super) fn read_state<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T, TrainError> {
    let old = dir.with_extension("old");
    if !dir.join("state.json").exists() && old.join("state.json").exists() {
        return Err(ckpt_err(dir, format!("missing, but {} holds the previous checkpoint (a write was interrupted): rename it to {} to resume", old.display(), dir.display())));
    }
    let text = std::fs::read_to_string(dir.join("state.json")).map_err(|e| ckpt_err(dir, e))?;
    serde_json::from_str(&text).map_err(|e| ckpt_err(dir, e))
}

/// Adam's state as a checkpoint stores it (every f32 tensor rounded to bfloat16, to nearest even),
/// and the optimiser carrying exactly those rounded moments, widened back to f32.
fn round_moments(optim: &ModuleOptimizer) -> Result<(ModuleOptimizer, Bytes), String> {
    let full = optim.into_bytes().map_err(|e| e.to_string())?;
    let stored = convert(full, DType::F32, DType::BF16)?;
    let rounded = optim.clone().from_bytes(widen(stored.clone())?).map_err(|e| e.to_string())?;
    Ok((rounded, stored))
}

/// A stored optimiser state with its bfloat16 tensors widened to f32 (exactly); f32 states, as
/// in checkpoints written before the moments were rounded, pass through unchanged.
fn widen(stored: Bytes) -> Result<Bytes, String> {
    convert(stored, DType::BF16, DType::F32)
}

/// Rewrites a burnpack buffer with its `from` tensors converted to `to` (f32 ↔ bf16), keeping
/// names, shapes, parameter ids, scalars and metadata.
fn convert(bytes: Bytes, from: DType, to: DType) -> Result<Bytes, String> {
    let reader = Reader::from_bytes(bytes).map_err(|e| e.to_string())?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = Vec::new();
    for tensor in reader.into_tensors().map_err(|e| e.to_string())? {
        let (name, dtype, shape, param_id, data) = tensor.into_parts().map_err(|e| e.to_string())?;
        let (dtype, data) = match (dtype == from, to) {
            (false, _) => (dtype, data),
            (true, DType::BF16) => {
                let values: Vec<bf16> = data.chunks_exact(4).map(|b| bf16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
                (to, Bytes::from_bytes_vec(values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            }
            (true, DType::F32) => {
                let values: Vec<f32> = data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
                (to, Bytes::from_bytes_vec(values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            }
            (true, other) => return Err(format!("no conversion to {other:?}")),
        };
        tensors.push(burn_pack::Tensor::new(name, dtype, shape, param_id, data));
    }
    let mut writer = Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    writer.into_bytes().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(values: &[f32]) -> Bytes {
        let data = Bytes::from_bytes_vec(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        let tensor = burn_pack::Tensor::new("7.moment_2".into(), DType::F32, [values.len()], Some(7), data);
        Writer::new(vec![tensor]).with_scalar("7.__rank", burn_pack::Scalar::from(1usize)).into_bytes().unwrap()
    }

    fn values(bytes: Bytes) -> (DType, Vec<f32>) {
        let tensor = Reader::from_bytes(bytes).unwrap().into_tensors().unwrap().remove(0);
        let (_, dtype, _, id, data) = tensor.into_parts().unwrap();
        assert_eq!(id, Some(7), "the parameter id is kept");
        let floats = match dtype {
            DType::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            _ => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        };
        (dtype, floats)
    }

    /// Stored moments are bfloat16: 2 bytes a value, each within half a unit in the last place
    /// (2⁻⁸ of the value: 8 significant bits) of the f32 it rounds, and squared gradients as
    /// small as 1e-30 stay non-zero (f16's smallest subnormal is 6e-8: Adam's v would flush to 0
    /// there and its step m/(√v + ε) blow up); widening back to f32 is exact; scalars are kept.
    #[test]
    fn moments_are_stored_in_bfloat16_without_flushing_small_ones() {
        let original = [1e-30f32, 3.7e-12, 1e-8, 0.1234567, 1.0, -2.5e5, 0.0];
        let full = pack(&original);
        let stored = convert(full.clone(), DType::F32, DType::BF16).unwrap();
        assert!(stored.len() < full.len(), "{} bytes stored against {}", stored.len(), full.len());
        let (dtype, rounded) = values(stored.clone());
        assert_eq!(dtype, DType::BF16);
        for (&x, &r) in original.iter().zip(&rounded) {
            assert!((r - x).abs() <= x.abs() * 2f32.powi(-8), "{x} stored as {r}");
            assert_eq!(x == 0.0, r == 0.0, "{x} stored as {r}");
        }
        let wide = widen(stored).unwrap();
        assert_eq!(values(wide.clone()), (DType::F32, rounded));
        assert_eq!(Reader::from_bytes(wide).unwrap().scalars().len(), 1);
        // A state that is already f32 (an older checkpoint) widens to itself.
        assert_eq!(values(widen(full).unwrap()), (DType::F32, original.to_vec()));
    }
}
