//! The 2-D explainer's browser API: a distribution with its SDE, the field over it, and particle
//! runs recorded frame by frame ([`crate::field`]), and a score network learned in the page. It
//! runs on the CPU device unless asked for the page's WebGPU device: a run is a few thousand
//! points, for which a GPU round trip per recorded frame costs more than it saves.
//!
//! ```js
//! const about = Field2D.describe();            // presets, dynamics, limits and defaults
//! const field = await Field2D.create({ distribution: 'two-modes', sde: 've', backend: 'cpu' });
//! const { n, density, score } = field.grid(0.5, 64);
//! const run = await field.particles({ sampler: 'ald', particles: 1000, seed: 1 });
//! // run.frames: Float32Array [F, N, 2]; run.times: t of each frame; run.shares vs field.weights
//! const { points } = await field.learn(1);     // a network and its 256 training samples
//! const losses = await field.train(50);        // 50 Adam steps of denoising score matching
//! const cmp = await field.learnedGrid(t, 48);  // {score, error, denseError, sparseError, …}
//! await field.particles({ sampler: 'ald', score: 'learned' });
//! ```

use js_sys::{Float32Array, Float64Array, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{ErrorName, WebError, count, refuse_unknown_keys, take_numbers};
use std::cell::{Cell, RefCell};

use crate::field::learned::{self, Learner};
use crate::field::{self, Dynamics, DynamicsInfo, Field, ParticleOptions, Preset, PresetInfo};
use crate::backend::{self, Backend};
use crate::sde::T_END;

/// What the page and the widget build their controls from.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Description {
    presets: Vec<PresetInfo>,
    dynamics: Vec<DynamicsInfo>,
    sdes: [&'static str; 2],
    default_distribution: &'static str,
    default_sampler: &'static str,
    default_sde: &'static str,
    default_particles: usize,
    default_frames: usize,
    max_particles: usize,
    max_frames: usize,
    max_point_updates: usize,
    max_recorded_points: usize,
    max_steps: usize,
    max_seed: u32,
    /// ε of each SDE: the grids of noise levels run from t = ε to 1.
    sde_eps: std::collections::BTreeMap<&'static str, f64>,
    /// The learned score's training set size and the most steps one train() call takes.
    training_points: usize,
    max_train_steps_per_call: usize,
    view_half_width: f64,
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    distribution: Option<String>,
    sde: String,
    /// `cpu` (the default: a run is a few thousand points) or `webgpu` (the page's GPU device).
    backend: String,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { distribution: None, sde: field::SDES[0].into(), backend: "cpu".into() }
    }
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RunOptions {
    sampler: String,
    /// `exact` or `learned`.
    score: String,
    particles: f64,
    steps: Option<f64>,
    corrector_steps: Option<f64>,
    sigma: Option<f64>,
    step_size: Option<f64>,
    seed: f64,
    frames: f64,
}

impl Default for RunOptions {
    fn default() -> Self {
        let d = ParticleOptions::default();
        RunOptions { sampler: d.dynamics.name().into(), score: "exact".into(), particles: d.particles as f64, steps: None, corrector_steps: None, sigma: None, step_size: None, seed: 0.0, frames: d.frames as f64 }
    }
}

impl RunOptions {
    fn to_particle_options(&self) -> Result<ParticleOptions, WebError> {
        let dynamics: Dynamics = self.sampler.parse()?;
        let seed = count("seed", self.seed, 0, u32::MAX as usize)? as u64;
        Ok(ParticleOptions {
            dynamics,
            particles: count("particles", self.particles, 1, field::MAX_PARTICLES)?,
            steps: self.steps.map(|v| count("steps", v, 1, crate::sampling::MAX_STEPS)).transpose()?,
            corrector_steps: self.corrector_steps.map(|v| count("correctorSteps", v, 1, crate::sampling::MAX_CORRECTOR_STEPS)).transpose()?,
            sigma: self.sigma,
            step_size: self.step_size,
            seed,
            frames: count("frames", self.frames, 2, field::MAX_FRAMES)?,
        })
    }
}

#[wasm_bindgen(js_name = Field2D)]
pub struct WebField {
    field: Field,
    backend: Backend,
    learner: RefCell<Option<Learner>>,
    /// Bumped by learn() and forget(): a train() that awaited across one drops its network.
    generation: Cell<u64>,
}

#[wasm_bindgen(js_class = Field2D)]
impl WebField {
    /// Presets, dynamics (the default first in the story's order), SDEs, defaults and limits.
    pub fn describe() -> JsValue {
        let defaults = ParticleOptions::default();
        let d = Description {
            presets: Preset::ALL.iter().map(|p| p.info()).collect(),
            dynamics: Dynamics::ALL.iter().map(|d| d.info()).collect(),
            sdes: field::SDES,
            default_distribution: field::DEFAULT_PRESET.name(),
            default_sampler: defaults.dynamics.name(),
            default_sde: field::SDES[0],
            default_particles: defaults.particles,
            default_frames: defaults.frames,
            max_particles: field::MAX_PARTICLES,
            max_frames: field::MAX_FRAMES,
            max_point_updates: field::MAX_POINT_UPDATES,
            max_recorded_points: field::MAX_RECORDED_POINTS,
            max_steps: crate::sampling::MAX_STEPS,
            max_seed: u32::MAX,
            sde_eps: field::SDES.iter().map(|&name| (name, field::sde(name).expect("a listed SDE").eps())).collect(),
            training_points: learned::TRAINING_POINTS,
            max_train_steps_per_call: learned::MAX_STEPS_PER_CALL,
            view_half_width: field::VIEW_HALF_WIDTH,
        };
        // `sdeEps` as a plain object, not a JS Map.
        d.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true)).unwrap_or(JsValue::NULL)
    }

    /// `{distribution: 'two-modes' | 'ring' | 'moons' | 'spiral', sde: 've' | 'vp', backend:
    /// 'cpu' | 'webgpu'}`, or `{points: [x0, y0, x1, y1, …], sde, backend}` for a drawing (each
    /// point smoothed into a component). On `webgpu` it shares the worker's one GPU device.
    pub async fn create(spec: JsValue) -> Result<WebField, WebError> {
        let spec = if spec.is_undefined() || spec.is_null() { js_sys::Object::new().into() } else { spec };
        refuse_unknown_keys(&spec, &["distribution", "points", "sde", "backend"], "field")?;
        let (rest, points) = take_numbers(&spec, "points")?;
        let spec: Spec = serde_wasm_bindgen::from_value(rest).map_err(|e| WebError::invalid(format!("field: {e}")))?;
        let sde = field::sde(&spec.sde)?;
        let field = match (points, spec.distribution) {
            (Some(_), Some(_)) => return Err(WebError::invalid("give `distribution` or `points`, not both")),
            (Some(p), None) => {
                if p.len() % 2 != 0 {
                    return Err(WebError::invalid(format!("`points` must hold x, y pairs; got {} numbers", p.len())));
                }
                if let Some(v) = p.iter().find(|v| !v.is_finite()) {
                    return Err(WebError::invalid(format!("`points` must be finite, got {v}")));
                }
                let pairs = p.chunks_exact(2).map(|c| [c[0] as f64, c[1] as f64]).collect();
                Field::drawn(pairs, sde)?
            }
            (None, name) => {
                let preset: Preset = name.as_deref().unwrap_or(field::DEFAULT_PRESET.name()).parse()?;
                Field::preset(preset, sde)
            }
        };
        let backend = match spec.backend.as_str() {
            "cpu" => backend::cpu(),
            "webgpu" => super::start_webgpu().await?,
            other => return Err(WebError::invalid(format!("`backend` is `{other}`; expected cpu or webgpu"))),
        };
        Ok(WebField { field, backend, learner: RefCell::new(None), generation: Cell::new(0) })
    }

    /// `cpu` or `webgpu`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.kind.to_string()
    }

    /// The mixture's weights, one per component.
    #[wasm_bindgen(getter)]
    pub fn weights(&self) -> Float64Array {
        Float64Array::from(self.field.mixture.weights.as_slice())
    }

    /// The components' means, [K, 2] flattened.
    #[wasm_bindgen(getter)]
    pub fn means(&self) -> Float64Array {
        let flat: Vec<f64> = self.field.mixture.means.iter().flatten().copied().collect();
        Float64Array::from(flat.as_slice())
    }

    /// Whether particle shares per component mean something (a few modes, not a point set).
    #[wasm_bindgen(getter)]
    pub fn modes(&self) -> bool {
        self.field.modes
    }

    /// The noise level σ̂(t) of the SDE (VE: σ(t); VP: σ(t)/m(t)).
    #[wasm_bindgen(js_name = noiseLevel)]
    pub fn noise_level(&self, t: f64) -> f64 {
        self.field.sde.noise_level(t)
    }

    /// The time whose noise level is `sigma`, clamped to [ε, T].
    #[wasm_bindgen(js_name = timeOfNoiseLevel)]
    pub fn time_of_noise_level(&self, sigma: f64) -> f64 {
        self.field.sde.time_of_noise_level(sigma).clamp(self.field.sde.eps(), T_END)
    }

    /// p_t and its score on an n × n grid over the view, rows from the top: `{n, density, score}`
    /// (`density` [n²], `score` [n², 2]).
    pub fn grid(&self, t: f64, n: f64) -> Result<JsValue, WebError> {
        let n = count("n", n, 2, field::MAX_GRID)?;
        let g = self.field.grid(t, n)?;
        let out = js_sys::Object::new();
        Reflect::set(&out, &"n".into(), &(g.n as f64).into()).ok();
        Reflect::set(&out, &"density".into(), &Float32Array::from(g.density.as_slice())).ok();
        Reflect::set(&out, &"score".into(), &Float32Array::from(g.score.as_slice())).ok();
        Ok(out.into())
    }

    /// The unit vector u whose projection u·x(t) the time picture shows.
    #[wasm_bindgen(getter)]
    pub fn direction(&self) -> Float64Array {
        Float64Array::from(self.field.direction.as_slice())
    }

    /// The time picture: the density of u·x(t), `nt` times from 0 to T (columns) by `nx`
    /// positions from +8 down to −8 (rows), as a Float32Array [nx, nt].
    pub fn slice(&self, nt: f64, nx: f64) -> Result<Float32Array, WebError> {
        let (nt, nx) = (count("nt", nt, 2, field::MAX_SLICE)?, count("nx", nx, 2, field::MAX_SLICE)?);
        Ok(Float32Array::from(self.field.slice(nt, nx)?.as_slice()))
    }

    /// Moves particles and records them: `{count, frames: Float32Array [F, N, 2], times:
    /// Float64Array [F], updates, shares: Float64Array | null}`.
    pub async fn particles(&self, options: JsValue) -> Result<JsValue, WebError> {
        let run: RunOptions = if options.is_undefined() || options.is_null() {
            RunOptions::default()
        } else {
            refuse_unknown_keys(&options, crate::serde_fields::field_names::<RunOptions>(), "particle option")?;
            serde_wasm_bindgen::from_value(options).map_err(|e| WebError::invalid(format!("particle options: {e}")))?
        };
        let options = run.to_particle_options()?;
        let out = match run.score.as_str() {
            "exact" => self.field.particles(&options, &self.backend.device).await,
            "learned" => {
                let score = self.learner.borrow().as_ref().map(Learner::score).ok_or_else(|| WebError::invalid("`score: 'learned'` needs a trained network: call learn() and train() first"))?;
                self.field.particles_with(&score, &options, &self.backend.device).await
            }
            other => return Err(WebError::invalid(format!("`score` is `{other}`; expected exact or learned"))),
        }?;
        let result = js_sys::Object::new();
        Reflect::set(&result, &"count".into(), &(out.count as f64).into()).ok();
        Reflect::set(&result, &"frames".into(), &Float32Array::from(out.frames.as_slice())).ok();
        Reflect::set(&result, &"times".into(), &Float64Array::from(out.times.as_slice())).ok();
        Reflect::set(&result, &"updates".into(), &(out.updates as f64).into()).ok();
        let shares = out.shares.map(|s| Float64Array::from(s.as_slice()).into()).unwrap_or(JsValue::NULL);
        Reflect::set(&result, &"shares".into(), &shares).ok();
        Ok(result.into())
    }

    /// Starts learning the score: a fresh network and [`learned::TRAINING_POINTS`] samples of
    /// the distribution, from `seed`. Resolves to `{points}`, the training set [N, 2].
    pub async fn learn(&self, seed: f64) -> Result<JsValue, WebError> {
        let seed = count("seed", seed, 0, u32::MAX as usize)? as u64;
        self.generation.set(self.generation.get() + 1);
        let generation = self.generation.get();
        let learner = Learner::new(&self.field, seed, &self.backend.device).await?;
        let points = learner.points().await?;
        if generation != self.generation.get() {
            return Err(WebError::new(ErrorName::Cancelled, "this network was replaced or dropped while it was being made"));
        }
        *self.learner.borrow_mut() = Some(learner);
        let out = js_sys::Object::new();
        Reflect::set(&out, &"points".into(), &Float32Array::from(points.as_slice())).ok();
        Ok(out.into())
    }

    /// `steps` training steps (at most [`learned::MAX_STEPS_PER_CALL`] per call): their losses.
    /// One call at a time.
    pub async fn train(&self, steps: f64) -> Result<Float32Array, WebError> {
        let steps = count("steps", steps, 1, learned::MAX_STEPS_PER_CALL)?;
        // The network is taken out while it trains (the await may let other calls in); a learn()
        // or forget() meanwhile wins, and this one's network is dropped.
        let generation = self.generation.get();
        let mut learner = self.learner.borrow_mut().take().ok_or_else(|| WebError::invalid("no network to train: call learn() first (or another train() call is running)"))?;
        let losses = learner.train(steps).await;
        if generation != self.generation.get() {
            return Err(WebError::new(ErrorName::Cancelled, "the network was reset while it trained"));
        }
        *self.learner.borrow_mut() = Some(learner);
        Ok(Float32Array::from(losses?.as_slice()))
    }

    /// Training steps taken so far (0 before learn()).
    #[wasm_bindgen(getter, js_name = trainedSteps)]
    pub fn trained_steps(&self) -> usize {
        self.learner.borrow().as_ref().map_or(0, |l| l.step)
    }

    /// Drops the network (reset).
    pub fn forget(&self) {
        self.generation.set(self.generation.get() + 1);
        *self.learner.borrow_mut() = None;
    }

    /// The learned score at t on an n × n grid against the exact one: `{n, score, error,
    /// denseError, sparseError, denseAbsError, sparseAbsError}` (src/field/learned.rs).
    #[wasm_bindgen(js_name = learnedGrid)]
    pub async fn learned_grid(&self, t: f64, n: f64) -> Result<JsValue, WebError> {
        let n = count("n", n, 2, field::MAX_GRID)?;
        let score = self.learner.borrow().as_ref().map(Learner::score).ok_or_else(|| WebError::invalid("no network yet: call learn() first"))?;
        let c = self.field.compare(&score, t, n, &self.backend.device).await?;
        let out = js_sys::Object::new();
        Reflect::set(&out, &"n".into(), &(c.n as f64).into()).ok();
        Reflect::set(&out, &"score".into(), &Float32Array::from(c.score.as_slice())).ok();
        Reflect::set(&out, &"error".into(), &Float32Array::from(c.error.as_slice())).ok();
        for (key, v) in [("denseError", c.dense_error), ("sparseError", c.sparse_error), ("denseAbsError", c.dense_abs_error), ("sparseAbsError", c.sparse_abs_error)] {
            Reflect::set(&out, &key.into(), &v.into()).ok();
        }
        Ok(out.into())
    }
}
