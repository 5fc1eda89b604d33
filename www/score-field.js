// <score-field>: the demo as an embeddable custom element. One script tag and one element:
//
//   <script type="module" src="https://example.org/scorefield/score-field.js"></script>
//   <score-field mode="trajectory" sampler="pc" steps="200"></score-field>
//
// docs/reference/widget.md lists its attributes, properties, methods, events, custom properties
// and parts. This module is the element: it reads its attributes (widget-attributes.js), builds
// the controls every image mode shares, loads the model, and runs one task at a time in the
// worker with progress, events and errors. What differs between modes lives in a module per
// mode: mode-generate.js (generate, inpaint), mode-trajectory.js, mode-interpolate.js,
// mode-likelihood.js; field mode (the 2-D explainer) in field-view.js, loaded only then. Its
// look is widget-style.js; mode.js says what a mode is.
//
// Everything lives in a Shadow DOM; nothing is added to the page's globals or styles. All widgets
// on a page share one pool of workers (client.js + worker.js): worker 0, hence one wasm instance,
// one GPU device and one copy of each model, serves every request; on the CPU the others draw
// parts of a batch. A widget loads only when it scrolls into view, and its errors stay in
// its own box.
import { RemoteField, RemoteModel, basePath, namedError } from './client.js';
import { Generate, Inpaint } from './mode-generate.js';
import { Interpolate } from './mode-interpolate.js';
import { Likelihood } from './mode-likelihood.js';
import { Trajectory } from './mode-trajectory.js';
import { Painter } from './painter.js';
import { drawGrid, fitScale } from './render.js';
import { counted, nameSubject } from './subject.js';
import { readChoice, readSettings, stepsProblem } from './widget-attributes.js';
import { Controls } from './widget-controls.js';
import { STYLE } from './widget-style.js';

// A page that bundled the element names the folder of the package's files with setBasePath.
export { setBasePath } from './client.js';
// The library's version (Cargo.toml), which build.sh writes beside the wasm module.
export { version } from './pkg/version.js';

/** The shipped model, in the package's folder (setBasePath). */
const defaultModel = () => new URL('models/mnist.json', basePath()).href;
// The image modes' classes; field mode is field-view.js's FieldView.
const IMAGE_MODES = { generate: Generate, inpaint: Inpaint, trajectory: Trajectory, interpolate: Interpolate, likelihood: Likelihood };
// Native pixel size of the widget's canvases (CSS scales them to the widget's width).
const CANVAS = 280;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

/** The element's attributes as widget-attributes.js reads them: name → value, present ones only. */
function attributesOf(node) {
  return Object.fromEntries(Array.from(node.attributes, (a) => [a.name, a.value]));
}

export class ScoreField extends HTMLElement {
  static observedAttributes = ['model', 'mode', 'sampler', 'steps', 'batch', 'seed', 'controls', 'width', 'backend', 'workers', 'distribution', 'sde', 'sigma', 'particles', 'label', 'guidance', 'autoguidance', 'live'];

  #shadow;
  #ui = null;
  #mode = null; // the image mode's object (IMAGE_MODES), or null in field mode
  #model = null;
  #info = null; // the model's description (RemoteModel.load); field mode: Field2D.describe()
  #controls = null; // the shared controls (widget-controls.js)
  #loading = null;
  #running = false; // a task (a run, or inpaint's New image) is in the worker
  #run = null; // {cancelled}: the run() in progress, from its call to its end
  #result = null;
  #visible = null; // IntersectionObserver
  #field = null; // the 2-D explainer (field mode): a FieldView
  #warned = new Set(); // problems with the attributes already warned about

  constructor() {
    super();
    this.#shadow = this.attachShadow({ mode: 'open' });
  }

  /** The current settings, from the attributes, with `problems`: a sentence for each bad value,
   * which falls back to its default (widget-attributes.js readSettings). `batch` and `seed` are
   * null until the model has loaded (their defaults and limits come with it), and `sampler` and
   * `steps` are checked against its samplers then; field mode checks its own attributes. */
  get settings() {
    return readSettings(attributesOf(this), this.#info, defaultModel());
  }

  /** Field mode: the last complete playback's frame rate (frames drawn per second) and median
   * milliseconds to draw a frame, or null before one. */
  get playback() {
    return this.#field?.fps ? { fps: this.#field.fps, drawMs: this.#field.drawMs } : null;
  }

  /** Field mode, once a network is learning: {step, training, comparedAt, sigma, denseError,
   * denseAbsError, sparseAbsError}: the step it reached and its last comparison with the exact
   * score (made after `comparedAt` steps, at noise level `sigma`), or null. */
  get learning() {
    const l = this.#field?.learning;
    if (!l) return null;
    const c = l.compare;
    return { step: l.step, training: this.#field.training, comparedAt: c?.step ?? null, sigma: c?.sigma ?? null, denseError: c?.denseError ?? null, denseAbsError: c?.denseAbsError ?? null, sparseAbsError: c?.sparseAbsError ?? null };
  }

  /** 'idle' | 'loading' | 'ready' | 'running' | 'done' | 'error' (also as the `state` attribute). */
  get state() {
    return this.getAttribute('state') ?? 'idle';
  }

  /** The last run's result ({data, shape, evals, seconds, …}; field mode {shares, positions,
   * count, …}), or null before one. Read-only: a `done` event carries the same object. */
  get result() {
    return this.#result;
  }

  connectedCallback() {
    if (!this.#ui) this.#build();
    if (!this.#visible) {
      // Load only when the widget comes near the viewport.
      this.#visible = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          this.#visible?.disconnect();
          this.#start();
        }
      }, { rootMargin: '200px' });
      this.#visible.observe(this);
    }
  }

  disconnectedCallback() {
    this.#visible?.disconnect();
    this.#visible = null;
    this.cancel();
    // A field view's training loop and playback stop with the element (a moved element starts
    // them again by hand).
    this.#field?.dispose();
  }

  attributeChangedCallback(name, old, value) {
    if (!this.#ui || old === value) return;
    if (name === 'model' || name === 'backend' || name === 'mode' || (this.#field && ['distribution', 'sde'].includes(name))) {
      // A different model or layout: rebuild, and load again if we had started.
      const started = this.#loading !== null;
      this.cancel();
      this.#field?.dispose();
      this.#model = null;
      this.#info = null;
      this.#field = null;
      this.#loading = null;
      this.#build();
      if (started) this.#start();
    } else {
      if (name === 'workers' && this.#model) this.#model.workers = this.settings.workers;
      this.#syncControls();
    }
  }

  #setState(state) {
    this.setAttribute('state', state);
  }

  #build() {
    const s = this.settings;
    const Mode = IMAGE_MODES[s.mode];
    const ui = {};
    ui.root = el('div', { class: 'root', part: 'root' });
    ui.root.style.width = `${s.width}px`;
    ui.views = el('div', { class: 'views' });
    // The field's arrows and particles are drawn at twice the CSS size, for sharp lines.
    const side = s.mode === 'field' ? 2 * CANVAS : CANVAS;
    ui.canvas = el('canvas', { class: 'output', part: 'canvas output', width: side, height: side, role: 'img', 'aria-label': 'samples' });
    ui.output = el('div', { class: 'view' }, ui.canvas);
    ui.views.append(ui.output);
    ui.root.append(ui.views);
    ui.progress = el('progress', { part: 'progress', max: 1, value: 0 });
    ui.status = el('div', { class: 'status', part: 'status', 'aria-live': 'polite', text: 'waiting to scroll into view' });
    ui.error = el('div', { class: 'error', part: 'error', role: 'alert' });
    ui.error.hidden = true;
    // What was wrong with the post's attributes (the widget runs with the defaults meanwhile).
    ui.notice = el('div', { class: 'notice', part: 'notice' });
    ui.notice.hidden = true;

    this.#controls = new Controls(ui, el, Mode?.label ?? 'Run', () => this.#setState(this.#info ? 'ready' : this.state));
    ui.controls.addEventListener('submit', (e) => {
      e.preventDefault();
      this.run();
    });
    ui.cancel.addEventListener('click', () => this.cancel());

    this.#ui = ui;
    // The mode adds its own views and controls (field mode once its code has loaded).
    this.#mode = Mode ? new Mode(this.#modeContext()) : null;
    this.#mode?.build(ui, el);
    ui.root.append(ui.controls, ui.progress, ui.status, ui.notice, ui.error);
    this.#shadow.replaceChildren(el('style', { text: STYLE }), ui.root);
    this.#syncControls(true);
    this.#setBusy(true);
  }

  /** What an image mode may use of its element (mode-*.js): the parts, the model, the controls'
   * options, and the task machinery with its progress, events and errors. */
  #modeContext() {
    const element = this;
    return {
      el,
      side: CANVAS,
      get ui() { return element.#ui; },
      get info() { return element.#info; },
      get model() { return element.#model; },
      get settings() { return element.settings; },
      options: () => this.#controls.options(),
      /** The element's run() and cancel(), and whether a run (or New image) is in progress. */
      run: () => this.run(),
      cancel: () => this.cancel(),
      get busy() { return element.#run !== null || element.#running; },
      task: (work, task) => this.#task(work, task),
      sample: (type, opts, canvas, onFrame, task) => this.#sample(type, opts, canvas, onFrame, task),
      draw: (type, opts, canvas, onFrame, report) => this.#draw(type, opts, canvas, onFrame, report),
      refuse: (message) => this.#refuse(message),
      setState: (state) => this.#setState(state),
      /** A painter on `canvas` for the model's images (painter.js). */
      painter: (canvas) => new Painter(canvas, this.#info.card.image),
    };
  }

  /** Copies the attributes into the controls (and shows only the listed controls), and names
   * what was wrong with them in the notice. */
  #syncControls(all = false) {
    const s = this.settings;
    const ui = this.#ui;
    ui.root.style.width = `${s.width}px`;
    if (s.mode === 'field') {
      if (this.#field && !this.#running) this.#field.sync(s.problems);
      return;
    }
    if (all || !this.#running) {
      const problems = [...s.problems];
      if (this.#info) {
        const choice = readChoice(attributesOf(this), this.#info);
        this.#controls.set(choice, s);
        problems.push(...choice.problems);
      }
      ui.notice.textContent = problems.join('\n');
      ui.notice.hidden = problems.length === 0;
      this.#warn(problems);
    }
    this.#controls.show(s, this.#mode.constructor);
    this.#mode.sync(s);
  }

  /** A console warning per problem with the attributes, once each. */
  #warn(problems) {
    for (const p of problems) {
      if (this.#warned.has(p)) continue;
      this.#warned.add(p);
      console.warn(`<score-field>: ${p}`);
    }
  }

  #setBusy(busy) {
    const ui = this.#ui;
    // The Run button and a mode's own buttons (New image, a reference image, …); Cancel shows.
    for (const b of ui.controls.querySelectorAll('button')) if (b !== ui.cancel) b.disabled = busy;
    ui.cancel.hidden = !busy || !this.#running;
  }

  /** Shows `message` in the widget's own box; with `retry`, a Retry button that calls it. */
  #showError(message, retry) {
    const box = this.#ui.error;
    box.textContent = message;
    box.hidden = !message;
    if (message && retry) {
      const button = el('button', { type: 'button', part: 'button retry' }, 'Retry');
      button.addEventListener('click', retry, { once: true });
      box.append(' ', button);
    }
  }

  /** After a GPU device loss: load the model on a new device (a fresh worker), run again. The
   * painted mask and the source image live in this element and are untouched. */
  async #retry() {
    this.#showError('');
    this.#setState('loading');
    this.#ui.status.textContent = 'starting a new device…';
    try {
      this.#info = await this.#model.load();
    } catch (error) {
      return this.#failed(error, `could not load the model again: ${error.message}`);
    }
    return this.run();
  }

  /** Field mode: loads the explainer's code and the library's description of it. */
  #startField() {
    const s = this.settings;
    const ui = this.#ui;
    this.#setState('loading');
    ui.status.textContent = 'loading…';
    const hooks = { setState: (state) => this.#setState(state), showError: (message) => this.#showError(message), attributes: () => attributesOf(this) };
    this.#loading = Promise.all([import('./field-view.js'), RemoteField.describe()]).then(
      async ([{ FieldView }, about]) => {
        this.#info = about;
        this.#field = new FieldView(this, el, ui, about, hooks);
        this.#setBusy(false);
        await this.#field.sync(s.problems);
      },
      (error) => this.#failed(error, `could not start the field: ${error.message}`),
    );
    if (s.autoplay) this.#loading.then(() => this.#field && this.run());
    return this.#loading;
  }

  /** Starts loading the model (once); then runs if `autoplay`. */
  #start() {
    if (this.#loading) return this.#loading;
    const s = this.settings;
    if (s.mode === 'field') return this.#startField();
    this.#setState('loading');
    this.#ui.status.textContent = 'loading the model…';
    this.#model = new RemoteModel(s.model, s.backend, s.workers);
    const ui = this.#ui;
    this.#loading = this.#model.load().then(
      async (info) => {
        this.#info = info;
        this.#controls.fill(info);
        // The modes' and the controls' words for the model's images (its card's `subject`).
        nameSubject(this.#shadow, info.card);
        this.#syncControls(true);
        const where = info.backend === 'webgpu' ? `WebGPU (${info.adapter})` : `CPU${info.fallbackReason ? ` (${info.fallbackReason})` : ''}`;
        ui.status.textContent = `${info.card.name} on ${where}`;
        this.#setBusy(false);
        const settled = await this.#mode.loaded();
        // (With autoplay the state goes straight from loading to running.)
        if (!settled && !s.autoplay) this.#setState('ready');
      },
      (error) => this.#failed(error, `could not load the model: ${error.message}`),
    );
    if (s.autoplay) this.#loading.then(() => this.#info && this.run());
    return this.#loading;
  }

  /** Runs the widget's mode once (what the button does). Resolves to the result, or null: a run
   * ends with one `done` event (the result) or one `error` event ({name, message}; a cancel's is
   * `CancelledError`). Null without an event while another run is in progress, or when the model
   * could not load (its `error` event has fired). */
  async run() {
    if (this.#run) return null;
    const run = { cancelled: false };
    this.#run = run;
    try {
      await this.#start();
      if (!this.#info || this.#running) return null;
      if (run.cancelled) {
        this.#ui.status.textContent = 'cancelled';
        this.#setState('ready');
        return this.#failed(namedError('CancelledError', 'cancelled before it started'));
      }
      return await this.#runMode();
    } finally {
      this.#run = null;
    }
  }

  /** Stops the run in progress (a run() or the button's); nothing without one. Its run() resolves
   * to null and an `error` event named `CancelledError` fires; the last result stays. */
  cancel() {
    if (this.#run) this.#run.cancelled = true;
    if (this.#field) this.#field.cancel();
    else if (this.#running) this.#model?.cancel();
  }

  async #runMode() {
    if (this.#field) return this.#fieldRun();
    if (this.#mode.constructor.samples) {
      // A reader who typed fewer steps than the sampler's floor is told why instead of getting noise.
      const problem = stepsProblem(this.#controls.sampler(), this.#ui.steps.value, this.#info.defaults.maxSteps);
      if (problem) return this.#refuse(problem);
    }
    return this.#mode.run();
  }

  /** Field mode: one particle run, computed in the worker and then played (FieldView.start). */
  async #fieldRun() {
    const problem = this.#field.problem();
    if (problem) return this.#refuse(problem);
    this.#running = true;
    try {
      this.#result = await this.#field.start();
    } catch (error) {
      return this.#failed(error);
    } finally {
      this.#running = false;
    }
    this.#emit('done', this.#result);
    return this.#result;
  }

  /** Fires `type` on the element, heard by the page (it bubbles and leaves the Shadow DOM). */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  /** A run the widget will not start (`message` says why, in the box): an `error` event named
   * InvalidOptionError, the state unchanged. Resolves to null. */
  #refuse(message) {
    this.#showError(message);
    this.#emit('error', { name: 'InvalidOptionError', message });
    return null;
  }

  /** A load or a task that failed with `error`: the box shows `message` (with Retry after a lost
   * device) and the state is `error`; a cancel only says so (its view has set the state). Fires
   * the `error` event; returns null. */
  #failed(error, message = error.message) {
    if (error.name !== 'CancelledError') {
      this.#ui.status.textContent = '';
      this.#showError(message, error.name === 'DeviceLostError' ? () => this.#retry() : null);
      this.#setState('error');
    }
    this.#emit('error', { name: error.name, message });
    return null;
  }

  /** One task in the worker: busy with the progress bar at zero while `work(report)` resolves to
   * {result, status}; `report(p, fraction)` moves the bar (and, for a run, fires `progress`).
   * Then the status shown and, for a run, `result` kept and a `done` event. Resolves to the
   * result, or null: a cancel is no error (the state goes back to ready), any other error lands
   * in the box. Inpaint's New image is a task but no run (`run: false`): it fires no events but
   * a failure's. */
  async #task(work, { run = true } = {}) {
    const ui = this.#ui;
    this.#running = true;
    this.#showError('');
    this.#setState('running');
    this.#setBusy(true);
    ui.progress.value = 0;
    ui.status.textContent = 'starting…';
    let last = null; // the last progress event's detail
    const report = (p, fraction = p.progress) => {
      ui.progress.value = fraction;
      if (!run) return;
      last = { fraction, step: p.step, total: p.total ?? null, t: p.t, sigma: p.sigma };
      this.#emit('progress', last);
    };
    try {
      const { result, status } = await work(report);
      ui.progress.value = 1;
      ui.status.textContent = status;
      this.#setState('done');
      if (!run) return result;
      // Whatever the last report said, the run is whole now: a page's bar ends at 1.
      if (last?.fraction < 1) this.#emit('progress', { ...last, fraction: 1 });
      this.#result = result;
      this.#emit('done', result);
      return result;
    } catch (error) {
      if (error.name === 'CancelledError') {
        ui.status.textContent = 'cancelled';
        this.#setState('ready');
        if (!run) return null;
      }
      return this.#failed(error);
    } finally {
      this.#running = false;
      this.#setBusy(false);
    }
  }

  /** One generate/inpaint task with progress and live previews; errors land in the box. */
  #sample(type, opts, canvas, onFrame, task = {}) {
    return this.#task((report) => this.#draw(type, opts, canvas, onFrame, report), task);
  }

  /** Runs generate or inpaint in the worker, drawing its previews and its result on `canvas`:
   * {result, status}. */
  async #draw(type, opts, canvas, onFrame, report) {
    const ui = this.#ui;
    const range = this.#info.card.image.range;
    const scale = (shape) => fitScale(shape, CANVAS);
    const result = await this.#model[type](opts, (p) => {
      report(p);
      ui.status.textContent = `step ${p.step}${p.total ? ` of ${p.total}` : ''} · t = ${p.t.toFixed(3)} · σ = ${p.sigma.toPrecision(3)}`;
      if (p.preview) {
        drawGrid(canvas, p.preview.data, p.preview.shape, { range, scale: scale(p.preview.shape) });
        onFrame?.(p);
      }
    });
    drawGrid(canvas, result.data, result.shape, { range, scale: scale(result.shape) });
    const where = result.workers > 1 ? `${this.#info.backend}, ${result.workers} workers` : this.#info.backend;
    const card = this.#info.card;
    return { result, status: `${card.name}: ${counted(result.shape[0], card)}, ${result.evals} score evaluations in ${result.seconds.toFixed(1)} s (${where})` };
  }
}

if (!customElements.get('score-field')) customElements.define('score-field', ScoreField);
