// <score-field mode="field">: the score of a 2-D distribution as a live figure. The density p_σ as
// a heat map, its score ∇ log p_σ as arrows, and particles moved by the library's samplers with the
// exact score (src/field/ through the worker). A run is computed first and then played: the
// slider under the figure scrubs through it, and the heat map follows the particles' noise level.
//
// Loaded by score-field.js only when a widget asks for this mode. This module holds the view's
// state, its controls and its runs; field-draw.js draws it, field-learn.js learns its score.
import { RemoteField, namedError } from './client.js';
import { drawField, drawTime, heatMap } from './field-draw.js';
import { Learner, percent } from './field-learn.js';
import { DRAW, readField } from './widget-attributes.js';
import { prop } from './widget-style.js';

// Cells a side of the density and score grids, and noise levels precomputed (t = ε … 1).
const GRID = 64;
const LEVELS = 25;
// How long a played run takes.
const PLAY_SECONDS = 4;
// The time picture: columns (t from 0 to 1) by rows (u·x from +8 to −8).
const SLICE_T = 140;
const SLICE_X = 100;
// A drawn point is added once the pointer moved this far (in data units).
const DRAW_SPACING = 0.25;

const CSS = `
.field-canvas { aspect-ratio: 1; cursor: default; image-rendering: auto; }
.time-canvas { aspect-ratio: 14 / 5; image-rendering: auto; margin-top: 6px; }
.field-canvas.drawing { cursor: crosshair; }
.readout { font-size: 12px; margin-top: 4px; font-variant-numeric: tabular-nums; min-height: 1.4em; }
.readout b { font-weight: 600; }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 6px; }
.row input[type=range] { flex: 1 1 8em; min-width: 0; }
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

export class FieldView {
  /** `host` is the <score-field> element; `el` its element factory; `ui` the widget's shared
   * parts (root, status, notice, error, progress); `about` is Field2D.describe(); `hooks` are the
   * element's {setState, showError, attributes} (attributes(): the element's attributes, name →
   * value, as widget-attributes.js reads them). */
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
    this.learner = new Learner(this); // the score network trained in the page
    this.level = 0; // index into grids shown when no run is playing
    this.run = null; // the last run
    this.ticket = null; // the run being computed, until cancel() drops it
    this.frame = 0;
    this.playing = null; // {start, ticks, drawMs}
    this.fps = null; // frames drawn per second during the last complete playback
    this.drawMs = null; // median time to draw one of its frames
    this.build();
  }

  /** The network learning this score: {points, losses, step, compare}, or null (field-learn.js). */
  get learning() {
    return this.learner.learning;
  }

  /** Whether it is training now. */
  get training() {
    return this.learner.training;
  }

  /** The attributes, checked against the library's description: {values, problems}. */
  read() {
    return readField(this.hooks.attributes(), this.about);
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
    ui.views.after(
      el('div', { class: 'row' }, el('span', { class: 'caption', text: 'σ' }), ui.sigma, ui.sigmaOut),
      el('div', { class: 'row' }, ui.play, ui.scrub, ui.frameOut),
      ui.readout,
      this.learner.build(ui, el),
    );
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
      if (this.learning && !this.training) this.learner.compare().catch((e) => this.hooks.showError(e.message));
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
    this.learner.drop();
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
    return heatMap(g.density, g.n, g.n, (2 * this.about.viewHalfWidth) ** 2);
  }

  /** The time picture as an image, on the same scale (times the view's width: 1-D). */
  sliceImage(slice) {
    return heatMap(slice.density, slice.nt, slice.nx, 2 * this.about.viewHalfWidth);
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

  /** Stops everything this view does in the background (the element is rebuilt or removed). */
  dispose() {
    this.stop();
    this.learner.drop();
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

  /** The figure and the time picture at the current frame, with their readouts. */
  draw() {
    const ui = this.ui;
    const halfWidth = this.about.viewHalfWidth;
    const grid = this.currentGrid();
    const run = this.run;
    const points = ui.distribution.value === DRAW ? this.points : null;
    drawField(ui.canvas, { grid, halfWidth, points, run, frame: this.frame });
    if (grid) {
      ui.sigmaOut.textContent = `${this.sigmaName()} = ${grid.sigma.toPrecision(3)} (t = ${grid.t.toFixed(2)})`;
      ui.sigma.value = this.grids.indexOf(grid);
    }
    drawTime(ui.timeCanvas, { slice: this.slice, run, frame: this.frame, direction: this.info?.direction, halfWidth });
    if (!run) return;
    ui.scrub.value = this.frame;
    const t = run.times[this.frame];
    ui.frameOut.textContent = `frame ${this.frame + 1}/${run.frameCount} · t = ${t.toFixed(3)} · ${this.sigmaName()} = ${run.sigmas[this.frame].toPrecision(3)}`;
  }
}
