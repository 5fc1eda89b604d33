// <score-field mode="field">: the score of a 2-D distribution as a live figure. The density p_σ as
// a heat map, its score ∇ log p_σ as arrows, and particles moved by the library's samplers with the
// exact score (src/field/ through the worker). A run is computed first and then played: the
// slider under the figure scrubs through it, and the heat map follows the particles' noise level.
//
// Loaded by score-field.js only when a widget asks for this mode.
import { RemoteField, namedError } from './client.js';
import { prop } from './widget-style.js';

// Cells a side of the density and score grids, and noise levels precomputed (t = ε … 1).
const GRID = 64;
const LEVELS = 25;
// Arrows a side, and how long a played run takes.
const ARROWS = 16;
const PLAY_SECONDS = 4;
// Frames of trail behind each particle.
const TRAIL = 6;
// The time picture: columns (t from 0 to 1) by rows (u·x from +8 to −8), and paths drawn on it.
const SLICE_T = 140;
const SLICE_X = 100;
const PATHS = 24;
// A drawn point is added once the pointer moved this far (in data units).
const DRAW_SPACING = 0.25;
const DRAW = 'draw';
// Learning: steps per call to the worker, and a fresh comparison with the exact score every this
// many steps (on a grid this many cells a side).
const TRAIN_CHUNK = 25;
const COMPARE_EVERY = 100;
const COMPARE_GRID = 32;
// The controls a field widget can show (its `controls` attribute), and those it shows by default.
const CONTROLS = ['run', 'distribution', 'sampler', 'sigma', 'particles', 'seed', 'learn'];
const DEFAULT_CONTROLS = ['run', 'distribution', 'sampler', 'sigma', 'seed', 'learn'];
// Pixels a side of the learned-score and error figures.
const SIDE = 280;

const CSS = `
.field-canvas { aspect-ratio: 1; cursor: default; image-rendering: auto; }
.time-canvas { aspect-ratio: 14 / 5; image-rendering: auto; margin-top: 6px; }
.field-canvas.drawing { cursor: crosshair; }
.readout { font-size: 12px; margin-top: 4px; font-variant-numeric: tabular-nums; min-height: 1.4em; }
.readout b { font-weight: 600; }
.row { display: flex; gap: 8px; align-items: center; margin-top: 6px; }
.row input[type=range] { flex: 1; }
.row output { font-variant-numeric: tabular-nums; font-size: 12px; min-width: 11em; }
.learn { margin-top: 8px; padding-top: 6px; border-top: 1px solid ${prop('border')}; }
.learn .row { flex-wrap: wrap; }
.beside { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-top: 6px; }
.beside figure { margin: 0; }
.beside figcaption { font-size: 12px; color: ${prop('muted')}; margin-top: 2px; }
.side-canvas { aspect-ratio: 1; image-rendering: auto; }
/* The loss curve is drawn in the canvas's own colour (drawLoss reads it). */
.loss-canvas { width: 100%; height: 48px; background: ${prop('surface')}; color: ${prop('accent')}; border: 1px solid ${prop('border')}; border-radius: calc(${prop('radius')} / 2); image-rendering: auto; }
`;

// Five stops from dark blue through teal to pale yellow (density, low to high).
const STOPS = [[20, 24, 48], [40, 70, 130], [30, 140, 140], [120, 200, 110], [250, 240, 170]];
function colour(v) {
  const x = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => c + f * (STOPS[i + 1][k] - c));
}

/** A density as an image on a log scale: `density` × `size` (1 = uniform over the view) from
 * 10⁻¹ to 10². */
function logImage(density, width, height, size) {
  const img = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = colour((Math.log10(Math.max(density[i] * size, 1e-6)) + 1) / 3);
    img.data.set([r, g, b, 255], 4 * i);
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d').putImageData(img, 0, 0);
  return canvas;
}

function percent(v) {
  return `${(100 * v).toFixed(0)}%`;
}

export class FieldView {
  /** `host` is the <score-field> element; `el` its element factory; `ui` the widget's shared
   * parts (root, status, notice, error, progress); `about` is Field2D.describe(); `hooks` are the
   * element's {setState, showError, attributes} (attributes(): the element's attribute reader). */
  constructor(host, el, ui, about, hooks) {
    this.host = host;
    this.hooks = hooks;
    this.el = el;
    this.ui = ui;
    this.about = about;
    this.dynamics = new Map(about.dynamics.map((d) => [d.name, d]));
    this.presets = new Map(about.presets.map((p) => [p.name, p]));
    this.points = []; // a drawing, in data units
    this.field = null;
    this.info = null; // {weights, means, modes}
    this.grids = []; // [{t, sigma, n, density, score, image}]
    this.slice = null; // the time picture's image
    this.learning = null; // {points, losses, step, compare: learnedGrid result + step, t, sigma} once learn() ran
    this.training = false;
    this.trainRun = null; // the token of the training loop that may go on
    this.trainLoop = null; // its promise
    this.level = 0; // index into grids shown when no run is playing
    this.run = null; // the last run
    this.ticket = null; // the run being computed, until cancel() drops it
    this.frame = 0;
    this.playing = null; // {start, ticks, drawMs}
    this.fps = null; // frames drawn per second during the last complete playback
    this.drawMs = null; // median time to draw one of its frames
    this.build();
  }

  /** The attributes, checked against the library's description: {values, problems}. */
  read() {
    const a = this.about;
    const h = this.host;
    const { problems, pick, whole, list } = this.hooks.attributes();
    const values = {
      distribution: pick('distribution', [...this.presets.keys(), DRAW], a.defaultDistribution),
      sampler: pick('sampler', [...this.dynamics.keys()], a.defaultSampler),
      sde: pick('sde', a.sdes, a.defaultSde),
      particles: whole('particles', 1, a.maxParticles, a.defaultParticles),
      seed: whole('seed', 0, a.maxSeed, 1),
      steps: h.hasAttribute('steps') ? whole('steps', 1, a.maxSteps, null) : null,
      sigma: null,
      controls: list('controls', CONTROLS, DEFAULT_CONTROLS),
    };
    const sigma = h.getAttribute('sigma');
    if (sigma !== null) {
      const s = Number(sigma);
      if (sigma.trim() !== '' && Number.isFinite(s) && s > 0) values.sigma = s;
      else problems.push(`sigma="${sigma}" is not a positive number; using the smallest noise level`);
    }
    return { values, problems };
  }

  build() {
    const { el, ui } = this;
    ui.root.prepend(el('style', { text: CSS }));
    ui.canvas.classList.add('field-canvas');
    ui.canvas.setAttribute('aria-label', 'the density of the distribution as a heat map, its score as arrows, and the particles');
    ui.canvas.tabIndex = 0;
    ui.timeCanvas = el('canvas', { class: 'time-canvas', part: 'canvas time', width: 2 * 280, height: 200, role: 'img', 'aria-label': 'the density of the projection u·x(t) through time, with particle paths' });
    ui.timeCaption = el('div', { class: 'caption', text: '' });
    ui.canvas.after(ui.timeCanvas, ui.timeCaption);
    ui.sigma = el('input', { type: 'range', min: 0, max: LEVELS - 1, value: 0, step: 1, 'aria-label': 'noise level σ' });
    ui.sigmaOut = el('output', { text: '' });
    ui.scrub = el('input', { type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'frame of the run' });
    ui.scrub.disabled = true;
    ui.play = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Play' });
    ui.play.disabled = true;
    ui.frameOut = el('output', { text: 'no run yet' });
    ui.readout = el('div', { class: 'readout', 'aria-live': 'polite' });
    ui.train = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Learn the score' });
    ui.resetLearning = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Reset' });
    ui.resetLearning.disabled = true;
    // The learned field beside the true one (the figure above), and its error, at the noise level
    // of the last comparison.
    ui.learnedCanvas = el('canvas', { class: 'side-canvas learned-canvas', part: 'canvas learned', width: SIDE, height: SIDE, role: 'img', 'aria-label': 'the learned score as arrows over the true density, with the samples it learned from' });
    ui.errorCanvas = el('canvas', { class: 'side-canvas error-canvas', part: 'canvas learned-error', width: SIDE, height: SIDE, role: 'img', 'aria-label': 'the error of the learned score, |learned − true|, with the samples it learned from' });
    ui.learnedCaption = el('figcaption', { text: '' });
    ui.errorCaption = el('figcaption', { text: '' });
    ui.beside = el('div', { class: 'beside' },
      el('figure', {}, ui.learnedCanvas, ui.learnedCaption),
      el('figure', {}, ui.errorCanvas, ui.errorCaption));
    ui.beside.hidden = true;
    ui.useLearned = el('input', { type: 'checkbox', name: 'use-learned' });
    ui.useLearned.disabled = true;
    ui.loss = el('canvas', { class: 'loss-canvas', part: 'canvas loss', width: 560, height: 96, role: 'img', 'aria-label': 'training loss' });
    ui.learnOut = el('div', { class: 'caption', 'aria-live': 'polite', text: this.learnHint() });
    ui.learn = el('div', { class: 'learn' },
      el('div', { class: 'row' }, ui.train, ui.resetLearning, el('label', { class: 'caption' }, ui.useLearned, ' sample with it')),
      ui.beside, ui.loss, ui.learnOut);
    ui.views.after(
      el('div', { class: 'row' }, el('span', { class: 'caption', text: 'σ' }), ui.sigma, ui.sigmaOut),
      el('div', { class: 'row' }, ui.play, ui.scrub, ui.frameOut),
      ui.readout,
      ui.learn,
    );
    ui.train.addEventListener('click', () => (this.training ? this.pauseTraining() : this.startTraining()));
    ui.resetLearning.addEventListener('click', () => this.resetLearning());
    ui.distribution = el('select', { name: 'distribution', part: 'input' },
      ...this.about.presets.map((p) => el('option', { value: p.name, text: p.label })),
      el('option', { value: DRAW, text: 'Draw your own' }));
    ui.fieldSampler = el('select', { name: 'sampler', part: 'input' }, ...this.about.dynamics.map((d) => el('option', { value: d.name, text: d.label })));
    ui.particles = el('input', { name: 'particles', part: 'input', type: 'number', min: 1, max: this.about.maxParticles });
    ui.clear = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Clear drawing' });
    ui.labels.distribution = el('label', {}, 'distribution', ui.distribution);
    ui.labels.sampler.replaceChildren('sampler', ui.fieldSampler);
    ui.labels.particles = el('label', {}, 'particles', ui.particles);
    ui.labels.steps.hidden = true;
    ui.labels.batch.hidden = true;
    ui.controls.prepend(ui.labels.distribution);
    ui.labels.sampler.after(ui.labels.particles);
    ui.run.textContent = 'Run';
    ui.run.after(ui.clear);

    ui.sigma.addEventListener('input', () => {
      // A new noise level: the field there, without the last run's particles (for Langevin, the
      // next run's σ).
      this.level = Number(ui.sigma.value);
      this.stop();
      this.clearRun();
      this.draw();
      if (this.learning && !this.training) this.compare().catch((e) => this.hooks.showError(e.message));
    });
    ui.scrub.addEventListener('input', () => {
      this.stop();
      this.frame = Number(ui.scrub.value);
      this.draw();
    });
    ui.play.addEventListener('click', () => (this.playing ? this.stop() : this.play()));
    ui.distribution.addEventListener('change', () => this.setDistribution(ui.distribution.value));
    ui.clear.addEventListener('click', () => {
      this.points = [];
      this.setDistribution(DRAW);
    });
    ui.canvas.addEventListener('keydown', (e) => {
      if (!this.run) return;
      if (e.key === ' ') this.playing ? this.stop() : this.play();
      else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        this.stop();
        this.frame = Math.min(this.run.frameCount - 1, Math.max(0, this.frame + (e.key === 'ArrowRight' ? 1 : -1)));
        this.draw();
      } else return;
      e.preventDefault();
    });
    this.#drawing();
  }

  /** Pointer drawing (mouse, pen or touch) when the distribution is "draw your own". */
  #drawing() {
    const c = this.ui.canvas;
    let down = false;
    const toData = (e) => {
      const r = c.getBoundingClientRect();
      const w = this.about.viewHalfWidth;
      return [((e.clientX - r.left) / r.width) * 2 * w - w, w - ((e.clientY - r.top) / r.height) * 2 * w];
    };
    const add = (e) => {
      const p = toData(e);
      const last = this.points[this.points.length - 1];
      if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) >= DRAW_SPACING) {
        this.points.push(p);
        this.draw();
      }
    };
    c.addEventListener('pointerdown', (e) => {
      if (this.ui.distribution.value !== DRAW || this.host.state === 'running') return;
      down = true;
      c.setPointerCapture(e.pointerId);
      this.stop();
      this.run = null;
      add(e);
    });
    c.addEventListener('pointermove', (e) => down && add(e));
    const up = () => {
      if (!down) return;
      down = false;
      this.setDistribution(DRAW);
    };
    c.addEventListener('pointerup', up);
    c.addEventListener('pointercancel', up);
  }

  /** Applies the attributes to the controls and loads the distribution; `more` are the problems
   * the element found with its own attributes (mode, width, backend). */
  async sync(more = []) {
    const read = this.read();
    const values = read.values;
    const problems = [...more, ...read.problems];
    const ui = this.ui;
    ui.distribution.value = values.distribution;
    ui.fieldSampler.value = values.sampler;
    ui.particles.value = values.particles;
    ui.seed.value = values.seed;
    this.values = values;
    ui.notice.textContent = problems.join('\n');
    ui.notice.hidden = problems.length === 0;
    for (const p of problems) console.warn(`<score-field>: ${p}`);
    const controls = values.controls;
    ui.learn.hidden = !controls.includes('learn');
    for (const [name, node] of Object.entries(ui.labels)) node.hidden = !controls.includes(name);
    ui.run.hidden = !controls.includes('run');
    ui.sigma.parentElement.hidden = !controls.includes('sigma');
    await this.setDistribution(values.distribution);
    if (values.sigma !== null) this.level = this.nearestLevel(values.sigma);
    ui.sigma.value = this.level;
    this.draw();
  }

  /** The field computes on the CPU unless the widget's `backend` asks for WebGPU (a run is a few
   * thousand points: on most devices the CPU is as fast, without a GPU round trip per frame). */
  backend() {
    return this.host.getAttribute('backend') === 'webgpu' ? 'webgpu' : 'cpu';
  }

  /** The noise level's name: σ(t) for VE; σ(t)/m(t), the noise of x(t)/m(t), for VP. */
  sigmaName() {
    return (this.values?.sde ?? this.about.defaultSde) === 've' ? 'σ' : 'σ/m';
  }

  nearestLevel(sigma) {
    let best = 0;
    this.grids.forEach((g, i) => {
      if (Math.abs(Math.log(g.sigma / sigma)) < Math.abs(Math.log(this.grids[best].sigma / sigma))) best = i;
    });
    return best;
  }

  clearRun() {
    const ui = this.ui;
    this.run = null;
    ui.scrub.disabled = true;
    ui.play.disabled = true;
    ui.readout.textContent = '';
    ui.frameOut.textContent = 'no run yet';
  }

  /** Loads a preset or the drawing into the worker and computes its grids. */
  async setDistribution(name) {
    const ui = this.ui;
    this.stop();
    this.clearRun();
    this.dropLearning();
    ui.clear.hidden = name !== DRAW;
    ui.canvas.classList.toggle('drawing', name === DRAW);
    this.hooks.showError('');
    const sde = this.values?.sde ?? this.about.defaultSde;
    if (name === DRAW) {
      if (this.points.length === 0) {
        this.field = null;
        this.grids = [];
        this.slice = null;
        ui.status.textContent = 'draw points on the canvas: each becomes a small Gaussian';
        this.hooks.setState('ready');
        this.draw();
        return;
      }
      this.field = new RemoteField({ points: this.points.flat(), sde, backend: this.backend() });
    } else {
      this.field = new RemoteField({ distribution: name, sde, backend: this.backend() });
    }
    const field = this.field;
    ui.status.textContent = 'computing the field…';
    const eps = this.about.sdeEps[sde];
    const times = Array.from({ length: LEVELS }, (_, i) => eps + ((1 - eps) * i) / (LEVELS - 1));
    try {
      const [info, grids, slice] = await Promise.all([field.info(), field.grids(times, GRID), field.slice(SLICE_T, SLICE_X)]);
      if (field !== this.field) return; // another distribution was picked meanwhile
      this.info = info;
      this.grids = grids.map((g) => ({ ...g, image: this.heatMap(g) }));
      this.slice = this.sliceImage(slice);
      const [ux, uy] = info.direction;
      const axis = ux === 1 && uy === 0 ? 'x' : `(${ux.toFixed(2)}, ${uy.toFixed(2)})·x`;
      ui.timeCaption.textContent = `the density of ${axis} through time: data at t = 0 (left), the prior at t = 1 (right); lines: particle paths`;
      this.level = Math.min(this.level, LEVELS - 1);
      ui.status.textContent = `${name === DRAW ? `your drawing (${this.points.length} points)` : this.presets.get(name).label} · ${sde.toUpperCase()} SDE · ${info.backend === 'webgpu' ? 'WebGPU' : 'CPU'}`;
      this.hooks.setState('ready');
    } catch (error) {
      if (field !== this.field) return;
      this.hooks.showError(error.message);
      this.hooks.setState('error');
    }
    this.draw();
  }

  /** The density as an image, on one logarithmic scale for every noise level: p times the view's
   * area (1 = uniform over the view) from 10⁻¹ to 10², so that a density spreading out with σ
   * also dims, as it does. */
  heatMap(g) {
    return logImage(g.density, g.n, g.n, (2 * this.about.viewHalfWidth) ** 2);
  }

  /** The time picture as an image, on the same scale (times the view's width: 1-D). */
  sliceImage(slice) {
    return logImage(slice.density, slice.nt, slice.nx, 2 * this.about.viewHalfWidth);
  }

  /** The options of the next run, from the controls: {options} or {problem}. */
  options() {
    const ui = this.ui;
    const d = this.dynamics.get(ui.fieldSampler.value);
    const particles = Number(ui.particles.value);
    if (!Number.isInteger(particles) || particles < 1 || particles > this.about.maxParticles) {
      return { problem: `particles must be a whole number in 1..${this.about.maxParticles}, not ${ui.particles.value}` };
    }
    const options = { sampler: d.name, particles, seed: Number(ui.seed.value), frames: this.about.defaultFrames };
    if (this.values?.steps && d.name === this.values.sampler) options.steps = this.values.steps;
    if (d.fixedSigma) options.sigma = this.grids[this.level]?.sigma;
    if (ui.useLearned.checked && this.learning) options.score = 'learned';
    return { options };
  }

  /** Why a run cannot start as the controls are (the element names it and fires an
   * InvalidOptionError), or null. */
  problem() {
    if (!this.field) return 'the drawing is empty: draw at least one point on the canvas first';
    return this.options().problem ?? null;
  }

  /** One particle run: computed in the worker, then played. Resolves to what the element's
   * `result` holds; throws the worker's error, or a CancelledError when cancel() or another
   * distribution dropped the run while it was computed (the worker finishes it; no figure shows
   * it). */
  async start() {
    const ui = this.ui;
    const { options } = this.options();
    this.stop();
    this.hooks.showError('');
    this.hooks.setState('running');
    ui.run.disabled = true;
    ui.status.textContent = `running ${this.dynamics.get(options.sampler).label}…`;
    const started = performance.now();
    const field = this.field;
    const ticket = {};
    this.ticket = ticket;
    try {
      const run = await field.particles(options);
      if (ticket !== this.ticket || field !== this.field) throw namedError('CancelledError', 'the run was cancelled');
      run.frameCount = run.times.length;
      run.seconds = (performance.now() - started) / 1000;
      run.sampler = options.sampler;
      run.fixedSigma = this.dynamics.get(options.sampler).fixedSigma;
      this.run = run;
      ui.scrub.max = run.frameCount - 1;
      ui.scrub.disabled = false;
      ui.play.disabled = false;
      ui.status.textContent = `${run.count} particles, ${run.updates} updates in ${run.seconds.toFixed(2)} s`;
      this.showShares();
      this.hooks.setState('done');
      const reduced = matchMedia('(prefers-reduced-motion: reduce)').matches;
      if (reduced) {
        this.frame = run.frameCount - 1;
        this.draw();
      } else {
        this.play();
      }
      const positions = Array.from(run.frames.subarray(2 * run.count * (run.frameCount - 1)));
      return { shares: run.shares ? Array.from(run.shares) : null, weights: run.shares ? Array.from(this.info.weights) : null, positions, count: run.count, updates: run.updates, frames: run.frameCount, seconds: run.seconds };
    } catch (error) {
      // Dropped: the figure is the new distribution's (it set the state and status), or, after a
      // cancel, the last run's.
      if (field !== this.field) throw namedError('CancelledError', 'the run was dropped: another distribution was picked');
      if (ticket !== this.ticket) {
        ui.status.textContent = 'cancelled';
        this.hooks.setState('ready');
        throw namedError('CancelledError', 'the run was cancelled');
      }
      throw error;
    } finally {
      if (ticket === this.ticket) this.ticket = null;
      ui.run.disabled = false;
    }
  }

  /** Drops the run being computed, if there is one (see start). */
  cancel() {
    this.ticket = null;
  }

  showShares() {
    const ui = this.ui;
    const run = this.run;
    if (!run?.shares || !this.info.modes) {
      ui.readout.textContent = '';
      return;
    }
    const w = this.info.weights;
    const s = run.shares;
    if (s.length <= 4) {
      ui.readout.replaceChildren('particles per mode: ', ...Array.from(s, (v, k) => this.el('span', {}, k ? ' · ' : '', this.el('b', { text: percent(v) }), ` (weight ${percent(w[k])})`)));
    } else {
      let worst = 0;
      s.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - w[k]))));
      ui.readout.replaceChildren('particles per mode against the weights: largest gap ', this.el('b', { text: `${(100 * worst).toFixed(1)} points` }));
    }
  }

  learnHint() {
    return `a small network learns this score from ${this.about.trainingPoints} samples by denoising score matching`;
  }

  /** Trains in chunks until paused, drawing the loss and, every few chunks, the learned field. A
   * Resume waits for the paused loop's last chunk, so that one loop trains at a time. */
  async startTraining() {
    const ui = this.ui;
    if (!this.field) {
      this.hooks.showError('the drawing is empty: draw at least one point on the canvas first');
      return;
    }
    const run = {};
    this.trainRun = run;
    this.training = true;
    ui.train.textContent = 'Pause';
    ui.resetLearning.disabled = false;
    const previous = this.trainLoop;
    this.trainLoop = (async () => {
      await previous?.catch(() => {});
      await this.#train(run, this.field);
    })();
    return this.trainLoop;
  }

  async #train(run, field) {
    const ui = this.ui;
    const current = () => run === this.trainRun && field === this.field;
    try {
      if (!this.learning) {
        const { points } = await field.learn(Number(ui.seed.value));
        if (!current()) return;
        this.learning = { points, losses: [], step: 0, compare: null };
        ui.useLearned.disabled = false;
      }
      while (current()) {
        const { losses, step } = await field.train(TRAIN_CHUNK);
        if (!current() || !this.learning) return;
        this.learning.losses.push(...losses);
        this.learning.step = step;
        if (step % COMPARE_EVERY < TRAIN_CHUNK) await this.compare();
        this.drawLoss();
      }
    } catch (error) {
      // A Reset or a new distribution while a request was in flight is not an error.
      if (!current()) return;
      this.hooks.showError(error.message);
      this.pauseTraining();
    }
  }

  pauseTraining() {
    this.training = false;
    this.trainRun = null;
    this.ui.train.textContent = this.learning ? 'Resume' : 'Learn the score';
  }

  /** Stops everything this view does in the background (the element is rebuilt or removed). */
  dispose() {
    this.stop();
    this.dropLearning();
  }

  /** Drops the network (a new distribution, or Reset). */
  dropLearning() {
    this.training = false;
    this.trainRun = null;
    if (this.learning) this.field?.forget().catch(() => {}); // the field may be gone already
    this.learning = null;
    const ui = this.ui;
    ui.train.textContent = 'Learn the score';
    ui.resetLearning.disabled = true;
    ui.useLearned.checked = false;
    ui.useLearned.disabled = true;
    ui.beside.hidden = true;
    ui.learnOut.textContent = this.learnHint();
    ui.loss.getContext('2d').clearRect(0, 0, ui.loss.width, ui.loss.height);
  }

  resetLearning() {
    this.dropLearning();
    this.draw();
  }

  /** The learned score against the exact one at the noise level shown. */
  async compare() {
    const g = this.currentGrid();
    if (!g || !this.learning) return;
    const learning = this.learning;
    const step = learning.step;
    const c = await this.field.learnedGrid(g.t, COMPARE_GRID);
    if (learning !== this.learning) return;
    learning.compare = { ...c, step, t: g.t, sigma: g.sigma, image: logImage(c.error, c.n, c.n, 1) };
    const far = c.sparseAbsError > 0 ? `${(c.sparseAbsError / c.denseAbsError).toFixed(1)}× larger where it is under 0.1 % of its peak` : 'the density is nowhere under 0.1 % of its peak at this σ';
    this.ui.learnOut.textContent = `step ${step} at ${this.sigmaName()} = ${g.sigma.toPrecision(2)}: error ${percent(c.denseError)} of the score where the density is high, ${far}`;
    this.drawBeside();
  }

  /** The learned score beside the true one: its arrows over the true density, and its error
   * |learned − true| on the heat map's log scale, both with the samples it learned from (the
   * error grows where they are few). Drawn when a comparison arrives, not every frame. */
  drawBeside() {
    const ui = this.ui;
    const c = this.learning?.compare;
    ui.beside.hidden = !c;
    if (!c) return;
    const g = this.grids.find((x) => x.t === c.t) ?? this.currentGrid();
    const panels = [[ui.learnedCanvas, g.image, c], [ui.errorCanvas, c.image, null]];
    for (const [canvas, image, arrows] of panels) {
      const ctx = canvas.getContext('2d');
      const size = canvas.width;
      ctx.fillStyle = '#141830';
      ctx.fillRect(0, 0, size, size);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(image, 0, 0, size, size);
      if (arrows) this.arrows(ctx, arrows, size);
      this.samples(ctx, size);
    }
    const at = `${this.sigmaName()} = ${c.sigma.toPrecision(2)}`;
    ui.learnedCaption.textContent = `learned score after ${c.step} steps (${at}); the true one is above`;
    ui.errorCanvas.dataset.step = c.step;
    ui.errorCaption.textContent = `its error |learned − true| (${at}), 0.1 to 100 on a log scale`;
  }

  /** The samples the network learns from, as white dots. */
  samples(ctx, size) {
    const w = this.about.viewHalfWidth;
    const p = this.learning.points;
    ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
    for (let i = 0; i < p.length; i += 2) ctx.fillRect(((p[i] + w) / (2 * w)) * size - 1, ((w - p[i + 1]) / (2 * w)) * size - 1, 2, 2);
  }

  drawLoss() {
    const c = this.ui.loss;
    const ctx = c.getContext('2d');
    const losses = this.learning?.losses ?? [];
    ctx.clearRect(0, 0, c.width, c.height);
    if (losses.length < 2) return;
    // A running mean over 25 steps, on a log scale.
    const smooth = [];
    let sum = 0;
    losses.forEach((v, i) => {
      sum += v - (i >= 25 ? losses[i - 25] : 0);
      smooth.push(sum / Math.min(i + 1, 25));
    });
    let [lo, hi] = [Infinity, -Infinity];
    for (const v of smooth) [lo, hi] = [Math.min(lo, Math.log(v)), Math.max(hi, Math.log(v))];
    ctx.strokeStyle = getComputedStyle(c).color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    smooth.forEach((v, i) => {
      const x = (i / (smooth.length - 1)) * c.width;
      const y = c.height - 4 - ((Math.log(v) - lo) / Math.max(hi - lo, 1e-6)) * (c.height - 8);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = getComputedStyle(this.ui.learnOut).color;
    ctx.font = `20px ${getComputedStyle(c).fontFamily}`;
    ctx.fillText(`loss ${smooth[smooth.length - 1].toFixed(3)} · step ${losses.length}`, 8, 22);
  }

  play() {
    if (!this.run) return;
    if (this.frame >= this.run.frameCount - 1) this.frame = 0;
    const from = this.frame;
    this.playing = { start: performance.now(), ticks: 0, from, drawMs: [] };
    this.ui.play.textContent = 'Pause';
    const tick = (now) => {
      const p = this.playing;
      if (!p) return;
      p.ticks += 1;
      const total = this.run.frameCount - 1;
      // (A frame's timestamp may precede the call that started the playback.)
      const elapsed = Math.max(0, now - p.start) / 1000;
      this.frame = Math.min(total, from + Math.floor((elapsed / PLAY_SECONDS) * total));
      const drawStart = performance.now();
      this.draw();
      p.drawMs.push(performance.now() - drawStart);
      if (this.frame < total) {
        requestAnimationFrame(tick);
      } else {
        this.fps = p.ticks / Math.max(elapsed, 1e-3);
        this.drawMs = [...p.drawMs].sort((a, b) => a - b)[Math.floor((p.drawMs.length - 1) / 2)];
        this.stop();
      }
    };
    requestAnimationFrame(tick);
  }

  stop() {
    this.playing = null;
    this.ui.play.textContent = 'Play';
  }

  /** Grid shown: the one nearest the current frame's noise level during a run, else the slider's. */
  currentGrid() {
    if (!this.grids.length) return null;
    if (this.run && !this.run.fixedSigma) return this.grids[this.nearestLevel(this.run.sigmas[this.frame])];
    if (this.run?.fixedSigma) return this.grids[this.nearestLevel(this.run.sigmas[0])];
    return this.grids[this.level];
  }

  draw() {
    const ui = this.ui;
    const c = ui.canvas;
    const ctx = c.getContext('2d');
    const size = c.width;
    const w = this.about.viewHalfWidth;
    const px = (x) => ((x + w) / (2 * w)) * size;
    const py = (y) => ((w - y) / (2 * w)) * size;
    ctx.fillStyle = '#141830';
    ctx.fillRect(0, 0, size, size);
    const g = this.currentGrid();
    if (g) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(g.image, 0, 0, size, size);
      this.arrows(ctx, g, size);
      ui.sigmaOut.textContent = `${this.sigmaName()} = ${g.sigma.toPrecision(3)} (t = ${g.t.toFixed(2)})`;
      ui.sigma.value = this.grids.indexOf(g);
    }
    if (this.ui.distribution.value === DRAW) {
      ctx.fillStyle = '#ffffff';
      for (const [x, y] of this.points) ctx.fillRect(px(x) - 1.5, py(y) - 1.5, 3, 3);
    }
    this.drawTime();
    const run = this.run;
    if (!run) return;
    const n = run.count;
    const f = run.frames;
    const at = (k, i) => 2 * (k * n + i);
    // Trails: a segment per particle between consecutive recent frames, older ones fainter.
    ctx.lineWidth = 1;
    for (let back = TRAIL; back >= 1; back--) {
      const k = this.frame - back;
      if (k < 0) continue;
      ctx.strokeStyle = `rgba(255, 170, 60, ${(0.5 * (TRAIL - back + 1)) / TRAIL})`;
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        ctx.moveTo(px(f[at(k, i)]), py(f[at(k, i) + 1]));
        ctx.lineTo(px(f[at(k + 1, i)]), py(f[at(k + 1, i) + 1]));
      }
      ctx.stroke();
    }
    ctx.fillStyle = '#ffb040';
    for (let i = 0; i < n; i++) ctx.fillRect(px(f[at(this.frame, i)]) - 1, py(f[at(this.frame, i) + 1]) - 1, 2, 2);
    ui.scrub.value = this.frame;
    const t = run.times[this.frame];
    ui.frameOut.textContent = `frame ${this.frame + 1}/${run.frameCount} · t = ${t.toFixed(3)} · ${this.sigmaName()} = ${run.sigmas[this.frame].toPrecision(3)}`;
  }

  /** The time picture: the density of u·x(t) with t across, the first particles' paths up to the
   * current frame, and a line at the current frame's t. */
  drawTime() {
    const c = this.ui.timeCanvas;
    const ctx = c.getContext('2d');
    const [width, height] = [c.width, c.height];
    const w = this.about.viewHalfWidth;
    ctx.fillStyle = '#141830';
    ctx.fillRect(0, 0, width, height);
    if (!this.slice) return;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.slice, 0, 0, width, height);
    const run = this.run;
    if (!run) return;
    const [ux, uy] = this.info.direction;
    const n = run.count;
    const f = run.frames;
    const tx = (t) => t * width;
    const py = (k, i) => ((w - (ux * f[2 * (k * n + i)] + uy * f[2 * (k * n + i) + 1])) / (2 * w)) * height;
    if (!run.fixedSigma) {
      ctx.strokeStyle = 'rgba(255, 176, 64, 0.8)';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let i = 0; i < Math.min(PATHS, n); i++) {
        ctx.moveTo(tx(run.times[0]), py(0, i));
        for (let k = 1; k <= this.frame; k++) ctx.lineTo(tx(run.times[k]), py(k, i));
      }
      ctx.stroke();
    }
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.8)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(tx(run.times[this.frame]), 0);
    ctx.lineTo(tx(run.times[this.frame]), height);
    ctx.stroke();
  }

  /** The score as arrows on a coarser grid: direction of ∇ log p, length growing with its size
   * (square root, relative to the largest), so that both steep and flat regions read. */
  arrows(ctx, g, size) {
    const step = g.n / ARROWS;
    const cell = size / ARROWS;
    let top = 0;
    const picks = [];
    for (let r = 0; r < ARROWS; r++) {
      for (let c = 0; c < ARROWS; c++) {
        const i = Math.floor((r + 0.5) * step) * g.n + Math.floor((c + 0.5) * step);
        const sx = g.score[2 * i];
        const sy = g.score[2 * i + 1];
        const m = Math.hypot(sx, sy);
        top = Math.max(top, m);
        picks.push([r, c, sx, sy, m]);
      }
    }
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.75)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [r, c, sx, sy, m] of picks) {
      if (m === 0) continue;
      const len = 0.45 * cell * Math.sqrt(m / top);
      const [dx, dy] = [(sx / m) * len, (-sy / m) * len];
      const [x0, y0] = [(c + 0.5) * cell - dx / 2, (r + 0.5) * cell - dy / 2];
      const [x1, y1] = [x0 + dx, y0 + dy];
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      // Arrow head.
      const a = Math.atan2(dy, dx);
      const head = Math.min(4, len * 0.4);
      ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - head * Math.cos(a - 0.5), y1 - head * Math.sin(a - 0.5));
      ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - head * Math.cos(a + 0.5), y1 - head * Math.sin(a + 0.5));
    }
    ctx.stroke();
  }
}
