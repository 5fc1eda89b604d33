// <score-field>: the demo as an embeddable custom element. One script tag and one element:
//
//   <script type="module" src="https://example.org/scorefield/score-field.js"></script>
//   <score-field mode="trajectory" sampler="pc" steps="200"></score-field>
//
// Attributes: model (card URL, relative to the page; default the shipped MNIST model next to this
// module), mode (generate | inpaint | trajectory | interpolate | likelihood | field), sampler and steps (default: the model's fastest
// good setting; a sampler's step count has a floor, below which it shows noise), batch, seed, autoplay,
// controls (comma-separated: run, sampler, steps, seed, batch, label; or "none"), width (CSS pixels),
// backend (auto | webgpu | cpu), workers (how many model workers its CPU runs may split a batch
// across; default one per core, up to the library's cap), and for a model with a classifier label (a class name such as
// "7", "all" for each class in turn, "any" for unguided: classifier guidance; HTML's `class` is
// taken by CSS) and guidance (the scale w); for a model with a guide model autoguidance (the weight
// w of autoguidance, default the library's; 1: the model alone); theme (auto | light | dark: the
// palette; auto follows prefers-color-scheme; CSS custom properties and parts in widget-style.js).
//
// mode="interpolate" draws two digits (sampler, steps, seed, label as for generate) and morphs one
// into the other through the prior: both encoded with the probability-flow ODE, the spherical path
// between their codes decoded.
//
// mode="likelihood" measures a digit the reader draws (or one of the model's reference images)
// in bits/dim through the probability-flow ODE, with x(t) on its way to the prior, beside the
// reference values (the card's likelihood_references); its controls are run only.
//
// mode="field" is the 2-D explainer (field-view.js, loaded only then): distribution (two-modes |
// ring | moons | spiral | draw), sampler (forward, langevin, ald, em, pc, rd, ode-heun, ode-euler), sde (ve |
// vp), sigma (the noise level shown, and Langevin's), particles, steps, seed, autoplay, controls
// (run, distribution, sampler, sigma, particles, seed). The lists come from the library
// (Field2D.describe()).
//
// Everything lives in a Shadow DOM; nothing is added to the page's globals or styles. All widgets
// on a page share one pool of workers (client.js + worker.js): worker 0, hence one wasm instance,
// one GPU device and one copy of each model, serves every request; on the CPU the others draw
// parts of a batch. A widget loads only when it scrolls into view, and its errors stay in
// its own box.
//
// For the page: run(), cancel(), a read-only `result`, and `progress`, `done` and `error`
// CustomEvents that bubble out of the element (docs/reference/widget.md).
import { RemoteField, RemoteModel, likelihoodReferences, namedError } from './client.js';
import { drawFrames, drawGrid, fitScale } from './render.js';
import { Painter, fromPixels, toPixels } from './painter.js';
import { STYLE } from './widget-style.js';

const DEFAULT_MODEL = new URL('./models/mnist.json', import.meta.url).href;
const MODES = ['generate', 'inpaint', 'trajectory', 'interpolate', 'likelihood', 'field'];
const CONTROLS = ['run', 'sampler', 'steps', 'seed', 'batch', 'label'];
const BACKENDS = ['auto', 'webgpu', 'cpu'];
const THEMES = ['auto', 'light', 'dark'];
// The sampler and its step count, the batch per mode, the seed and their limits default to what
// the library says (src/sampling/catalog.rs: the sampler table and RUN_DEFAULTS, sent by the worker
// when the model loads); these are the widget's own.
const DEFAULTS = { mode: 'generate', controls: ['run', 'sampler', 'steps', 'seed'], width: 320, backend: 'auto', theme: 'auto' };
// Native pixel size of the widget's canvases (CSS scales them to the widget's width).
const CANVAS = 280;
// Frames kept by the trajectory view, and shown of the likelihood's path to the prior.
const FRAMES = 60;
const PATH_FRAMES = 9;
// Interpolate: the share of a run's progress that drawing its two digits takes.
const DIGITS_SHARE = 0.2;


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


/** Reads an element's attributes against what is allowed: a bad value gives way to its default
 * and leaves a sentence naming it in `problems` (shown in the widget's box). Field mode reads its
 * own attributes with it too (field-view.js). */
function attributes(host) {
  const problems = [];
  return {
    problems,
    pick(name, allowed, fallback) {
      const v = host.getAttribute(name);
      if (v === null) return fallback;
      if (allowed.includes(v)) return v;
      problems.push(`${name}="${v}" is not one of ${allowed.join(', ')}; using ${fallback}`);
      return fallback;
    },
    whole(name, lo, hi, fallback, fallbackText = fallback) {
      const v = host.getAttribute(name);
      if (v === null) return fallback;
      const n = Number(v);
      if (v.trim() !== '' && Number.isInteger(n) && n >= lo && n <= hi) return n;
      const range = hi === Number.MAX_SAFE_INTEGER ? `≥ ${lo}` : `in ${lo}..${hi}`;
      problems.push(`${name}="${v}" is not a whole number ${range}; using ${fallbackText}`);
      return fallback;
    },
    /** A comma-separated list of names from `allowed`; unknown ones are left out. */
    list(name, allowed, fallback) {
      const v = host.getAttribute(name);
      if (v === null) return fallback;
      const names = v.split(',').map((c) => c.trim()).filter(Boolean);
      const unknown = names.filter((c) => !allowed.includes(c));
      if (unknown.length) problems.push(`${name}="${v}" names ${unknown.join(', ')}, not among ${allowed.join(', ')}; leaving ${unknown.length > 1 ? 'them' : 'it'} out`);
      return names.filter((c) => allowed.includes(c));
    },
  };
}

export class ScoreField extends HTMLElement {
  static observedAttributes = ['model', 'mode', 'sampler', 'steps', 'batch', 'seed', 'controls', 'width', 'backend', 'workers', 'distribution', 'sde', 'sigma', 'particles', 'label', 'guidance', 'autoguidance'];

  #shadow;
  #ui = null;
  #model = null;
  #info = null; // {backend, adapter, card, samplers}
  #samplers = new Map(); // name -> the model's description of it
  #loading = null;
  #running = false; // a task (a run, or inpaint's New digit) is in the worker
  #run = null; // {cancelled}: the run() in progress, from its call to its end
  #result = null;
  #visible = null; // IntersectionObserver
  #frames = []; // trajectory: [{t, sigma, data, shape}]; likelihood: [{sigma, data}]
  #references = null; // likelihood: the card's reference likelihoods (client.js likelihoodReferences)
  #origin = ''; // likelihood: what the drawing started from
  #painter = null;
  #digits = 0; // source digits drawn so far (inpaint mode)
  #field = null; // the 2-D explainer (field mode): a FieldView
  #warned = new Set(); // problems with the attributes already warned about
  #guidance = null; // the guidance scale of guided runs (attribute `guidance`, checked)
  #autoguidance = null; // the autoguidance weight (attribute `autoguidance`, checked), or null without a guide model

  constructor() {
    super();
    this.#shadow = this.attachShadow({ mode: 'open' });
  }

  /** The current settings, from the attributes, with `problems`: a sentence for each bad value,
   * which falls back to its default. `batch` and `seed` are null until the model has loaded (their
   * defaults and limits come with it), and `sampler` and `steps` are checked against its samplers
   * then (`#choice`); field mode checks its own attributes (FieldView). */
  get settings() {
    const { problems, pick, whole, list } = attributes(this);
    const mode = pick('mode', MODES, DEFAULTS.mode);
    const settings = {
      mode,
      width: whole('width', 64, 4096, DEFAULTS.width),
      backend: pick('backend', BACKENDS, DEFAULTS.backend),
      // The palette follows `theme` in CSS alone (widget-style.js), so a page may switch it without
      // a rebuild; it is read here to name a bad value.
      theme: pick('theme', THEMES, DEFAULTS.theme),
      workers: whole('workers', 1, Number.MAX_SAFE_INTEGER, null, 'one per core'),
      model: this.getAttribute('model') || DEFAULT_MODEL,
      autoplay: this.hasAttribute('autoplay'),
      batch: null,
      seed: null,
      controls: [],
      problems,
    };
    if (mode === 'field') return settings;
    const defaults = this.#info?.defaults;
    if (defaults) {
      // The page's largest batch, or fewer where this device holds fewer (src/model.rs).
      const maxBatch = Math.min(defaults.maxBatch, this.#info.maxBatch);
      if (mode in defaults.batch) settings.batch = whole('batch', 1, maxBatch, Math.min(defaults.batch[mode], maxBatch));
      settings.seed = whole('seed', 0, Number.MAX_SAFE_INTEGER, defaults.seed);
    }
    settings.controls = list('controls', CONTROLS, DEFAULTS.controls);
    return settings;
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
    const ui = {};
    ui.root = el('div', { class: 'root', part: 'root' });
    ui.root.style.width = `${s.width}px`;
    ui.views = el('div', { class: 'views' });
    // The field's arrows and particles are drawn at twice the CSS size, for sharp lines.
    const side = s.mode === 'field' ? 2 * CANVAS : CANVAS;
    ui.canvas = el('canvas', { class: 'output', part: 'canvas output', width: side, height: side, role: 'img', 'aria-label': 'samples' });
    const output = el('div', { class: 'view' }, ui.canvas);
    if (s.mode === 'inpaint') {
      ui.source = el('canvas', { class: 'source', part: 'canvas source', width: CANVAS, height: CANVAS, role: 'img', 'aria-label': 'the digit to complete; paint over the part to regenerate' });
      ui.views.append(el('div', { class: 'view' }, ui.source, el('div', { class: 'caption', text: 'paint what to regenerate' })), output);
      output.append(el('div', { class: 'caption', text: 'completions' }));
    } else if (s.mode === 'likelihood') {
      ui.source = el('canvas', { class: 'source', part: 'canvas source', width: CANVAS, height: CANVAS, role: 'img', 'aria-label': 'the digit to measure; draw on it' });
      ui.views.append(el('div', { class: 'view' }, ui.source, el('div', { class: 'caption', text: 'draw a digit' })), output);
      output.append(el('div', { class: 'caption', text: 'x(t) on its way to the prior' }));
    } else {
      ui.views.append(output);
    }
    ui.root.append(ui.views);
    if (s.mode === 'trajectory') {
      ui.scrub = el('input', { type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'diffusion time t' });
      ui.scrub.disabled = true;
      ui.time = el('output', { text: 't = 1' });
      ui.root.append(el('div', { class: 'scrub' }, el('span', { class: 'caption', text: 'noise' }), ui.scrub, el('span', { class: 'caption', text: 'data' }), ui.time));
      ui.scrub.addEventListener('input', () => this.#showFrame(Number(ui.scrub.value)));
    }
    ui.progress = el('progress', { part: 'progress', max: 1, value: 0 });
    ui.status = el('div', { class: 'status', part: 'status', 'aria-live': 'polite', text: 'waiting to scroll into view' });
    ui.error = el('div', { class: 'error', part: 'error', role: 'alert' });
    ui.error.hidden = true;
    // What was wrong with the post's attributes (the widget runs with the defaults meanwhile).
    ui.notice = el('div', { class: 'notice', part: 'notice' });
    ui.notice.hidden = true;

    // Controls.
    ui.controls = el('form', { class: 'controls', part: 'controls' });
    ui.sampler = el('select', { name: 'sampler', part: 'input' });
    ui.steps = el('input', { name: 'steps', part: 'input', type: 'number', min: 1 });
    ui.sampler.addEventListener('change', () => this.#showSampler(this.#samplers.get(ui.sampler.value), null));
    ui.seed = el('input', { name: 'seed', part: 'input', type: 'number', min: 0, step: 1 });
    ui.batch = el('input', { name: 'batch', part: 'input', type: 'number', min: 1 });
    // Filled with the model's classes once it has loaded (hidden without a classifier).
    ui.label = el('select', { name: 'label', part: 'input' });
    ui.labels = {
      sampler: el('label', {}, 'sampler', ui.sampler),
      steps: el('label', {}, 'steps', ui.steps),
      seed: el('label', {}, 'seed', ui.seed),
      batch: el('label', {}, 'batch', ui.batch),
      label: el('label', {}, 'digit', ui.label),
    };
    const label = { generate: 'Generate', inpaint: 'Inpaint', trajectory: 'Sample', interpolate: 'Interpolate', likelihood: 'Measure' }[s.mode];
    ui.run = el('button', { type: 'submit', part: 'button run', text: label });
    ui.cancel = el('button', { type: 'button', class: 'secondary', part: 'button cancel', text: 'Cancel' });
    ui.cancel.hidden = true;
    ui.controls.append(...Object.values(ui.labels), ui.run, ui.cancel);
    if (s.mode === 'inpaint') {
      ui.newDigit = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'New digit' });
      ui.clearMask = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Clear mask' });
      ui.controls.append(ui.newDigit, ui.clearMask);
      ui.newDigit.addEventListener('click', () => this.#newDigit());
      ui.clearMask.addEventListener('click', () => this.#painter?.clearMask());
    }
    if (s.mode === 'likelihood') {
      // A button per reference image once the model has loaded, and Blank.
      ui.references = el('span', { class: 'references' });
      ui.blank = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Blank' });
      ui.controls.append(ui.references, ui.blank);
      ui.blank.addEventListener('click', () => this.#setSource(null, 'a blank image'));
    }
    ui.controls.addEventListener('submit', (e) => {
      e.preventDefault();
      this.run();
    });
    ui.cancel.addEventListener('click', () => this.cancel());
    for (const input of [ui.sampler, ui.steps, ui.seed, ui.batch, ui.label]) input.addEventListener('change', () => this.#setState(this.#info ? 'ready' : this.state));
    ui.root.append(ui.controls, ui.progress, ui.status, ui.notice, ui.error);

    this.#ui = ui;
    this.#painter = null;
    this.#frames = [];
    this.#shadow.replaceChildren(el('style', { text: STYLE }), ui.root);
    this.#syncControls(true);
    this.#setBusy(true);
  }

  /** The sampler and step count the attributes ask for, checked against the model's samplers:
   * {sampler, steps, problems}; a bad value gives its default and a sentence in `problems`. */
  #choice() {
    const list = this.#info.samplers;
    const problems = [];
    const guide = this.#guidanceChoice(problems);
    // A guided run without a sampler attribute starts on the library's guided setting.
    const guided = guide.label !== 'any' ? this.#info.defaults.guided : null;
    const asked = this.getAttribute('sampler');
    let sampler = this.#samplers.get(asked ?? guided?.sampler ?? list[0].name);
    if (!sampler) {
      sampler = list[0];
      problems.push(`sampler="${asked}" is not a sampler of this model (${list.map((x) => x.name).join(', ')}); using ${sampler.name}`);
    }
    let steps = guided && sampler.name === guided.sampler ? guided.steps : sampler.defaultSteps;
    const raw = this.getAttribute('steps');
    if (raw !== null && sampler.takesSteps) {
      const n = Number(raw);
      const max = this.#info.defaults.maxSteps;
      if (raw.trim() === '' || !Number.isInteger(n) || n > max) problems.push(`steps="${raw}" is not a whole number up to ${max}; using ${steps}`);
      else if (n < sampler.minSteps) problems.push(`steps="${raw}" is below ${sampler.name}'s minimum of ${sampler.minSteps} (${sampler.minStepsWhy}); using ${steps}`);
      else steps = n;
    }
    return { sampler, steps, problems, ...guide };
  }

  /** The class and guidance scale the `label` and `guidance` attributes ask for, checked against
   * the model's classes and the library's limits: {label: 'any' | 'all' | index, guidance}. */
  #guidanceChoice(problems) {
    const { classes, defaults } = this.#info;
    let label = 'any';
    const asked = this.getAttribute('label');
    if (asked !== null && asked !== 'any') {
      const broken = this.#info.classifierProblem;
      if (broken) problems.push(`label="${asked}": this model's classifier could not be loaded (${broken}); drawing any digit`);
      else if (!classes) problems.push(`label="${asked}" needs a model with a classifier, and this one has none; drawing any digit`);
      else if (asked === 'all') label = 'all';
      else if (classes.includes(asked)) label = classes.indexOf(asked);
      else problems.push(`label="${asked}" is not one of this model's classes (${classes.join(', ')}), all or any; drawing any digit`);
    }
    let guidance = defaults.guidance;
    const raw = this.getAttribute('guidance');
    if (raw !== null) {
      const w = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(w) || w < 0 || w > defaults.maxGuidance) problems.push(`guidance="${raw}" is not a number in 0..${defaults.maxGuidance}; using ${guidance}`);
      else guidance = w;
    }
    return { label, guidance, autoguidance: this.#autoguidanceChoice(problems) };
  }

  /** The autoguidance weight the `autoguidance` attribute asks for, checked against the library's
   * limits, or null when the model has no guide model (then the attribute is named in `problems`
   * unless it asks for the model alone). */
  #autoguidanceChoice(problems) {
    const { autoguided, guideProblem, defaults } = this.#info;
    const raw = this.getAttribute('autoguidance');
    const w = Number(raw);
    if (raw !== null && (raw.trim() === '' || !Number.isFinite(w) || w < 1 || w > defaults.maxAutoguidance)) {
      problems.push(`autoguidance="${raw}" is not a number in 1..${defaults.maxAutoguidance}; using ${autoguided ? defaults.autoguidance : 1}`);
      return autoguided ? defaults.autoguidance : null;
    }
    if (!autoguided) {
      if (guideProblem) problems.push(`this model's guide model could not be loaded (${guideProblem}); drawing from the model alone`);
      else if (raw !== null && w !== 1) problems.push(`autoguidance="${raw}" needs a model with a guide model, and this one has none; drawing from the model alone`);
      return null;
    }
    return raw === null ? defaults.autoguidance : w;
  }

  /** Sets the steps control for `sampler`: its floor, and `steps` or its default. */
  #showSampler(sampler, steps) {
    if (!sampler) return;
    const ui = this.#ui;
    ui.steps.min = sampler.minSteps;
    ui.steps.value = steps ?? sampler.defaultSteps;
    ui.steps.title = sampler.takesSteps ? `one step: ${sampler.step}; at least ${sampler.minSteps}: ${sampler.minStepsWhy}` : sampler.step;
    ui.steps.disabled = !sampler.takesSteps;
    ui.sampler.title = sampler.paper;
  }

  /** Copies the attributes into the controls (and shows only the listed controls). */
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
        const choice = this.#choice();
        ui.sampler.value = choice.sampler.name;
        this.#showSampler(choice.sampler, choice.steps);
        ui.label.value = String(choice.label);
        this.#guidance = choice.guidance;
        this.#autoguidance = choice.autoguidance;
        problems.push(...choice.problems);
      }
      ui.notice.textContent = problems.join('\n');
      ui.notice.hidden = problems.length === 0;
      this.#warn(problems);
    }
    if ((all || !this.#running) && this.#info) {
      ui.seed.value = s.seed;
      ui.batch.value = s.batch;
      ui.batch.max = Math.min(this.#info.defaults.maxBatch, this.#info.maxBatch);
      ui.steps.max = this.#info.defaults.maxSteps;
    }
    // A likelihood has no sampler, steps, batch or class to choose.
    // An interpolation's two digits are always two.
    for (const [name, node] of Object.entries(ui.labels)) node.hidden = !s.controls.includes(name) || (name === 'label' && !this.#info?.classes) || s.mode === 'likelihood' || (s.mode === 'interpolate' && name === 'batch');
    ui.run.hidden = !s.controls.includes('run');
    ui.controls.hidden = s.controls.length === 0 && !['inpaint', 'likelihood'].includes(s.mode);
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
    for (const b of [ui.run, ui.newDigit, ui.clearMask, ui.blank, ...(ui.references?.children ?? [])]) if (b) b.disabled = busy;
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
   * painted mask and the source digit live in this element and are untouched. */
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
    const hooks = { setState: (state) => this.#setState(state), showError: (message) => this.#showError(message), attributes: () => attributes(this) };
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
        this.#samplers = new Map(info.samplers.map((x) => [x.name, x]));
        ui.sampler.replaceChildren(...info.samplers.map((x) => el('option', { value: x.name, text: x.label })));
        const classes = info.classes ?? [];
        ui.label.replaceChildren(el('option', { value: 'any', text: 'any' }), ...classes.map((name, i) => el('option', { value: String(i), text: name })), el('option', { value: 'all', text: 'each in turn' }));
        this.#syncControls(true);
        const where = info.backend === 'webgpu' ? `WebGPU (${info.adapter})` : `CPU${info.fallbackReason ? ` (${info.fallbackReason})` : ''}`;
        ui.status.textContent = `${info.card.name} on ${where}`;
        this.#setBusy(false);
        if (s.mode === 'likelihood') await this.#startLikelihood();
        if (s.mode === 'inpaint') {
          const [c, h, w] = [info.card.image.channels, info.card.image.height, info.card.image.width];
          this.#painter = new Painter(ui.source, { channels: c, height: h, width: w, range: info.card.image.range });
          await this.#newDigit();
        } else if (!s.autoplay) {
          // (With autoplay the state goes straight from loading to running.)
          this.#setState('ready');
        }
      },
      (error) => this.#failed(error, `could not load the model: ${error.message}`),
    );
    if (s.autoplay) this.#loading.then(() => this.#info && this.run());
    return this.#loading;
  }

  /** The sampler options from the controls. */
  #options() {
    const ui = this.#ui;
    const info = this.#samplers.get(ui.sampler.value);
    const opts = { sampler: info.name, steps: Number(ui.steps.value), seed: Number(ui.seed.value), batch: Number(ui.batch.value) };
    if (info.defaultCorrectorSteps) opts.correctorSteps = info.defaultCorrectorSteps;
    const label = ui.label.value;
    if (this.#info.classes && label && label !== 'any') {
      opts.class = label === 'all' ? 'all' : Number(label);
      opts.guidance = this.#guidance;
      const guided = this.#info.defaults.guided;
      if (info.name === guided.sampler) opts.churn = guided.churn;
    }
    if (this.#autoguidance !== null) opts.autoguidance = this.#autoguidance;
    return opts;
  }

  /** Why the steps control cannot run as it is, or null. */
  #stepsProblem() {
    const info = this.#samplers.get(this.#ui.sampler.value);
    const steps = Number(this.#ui.steps.value);
    if (!info.takesSteps) return null;
    const max = this.#info.defaults.maxSteps;
    if (!Number.isInteger(steps) || steps > max) return `steps must be a whole number up to ${max}, not ${this.#ui.steps.value}`;
    if (steps < info.minSteps) return `${info.label} needs at least ${info.minSteps} steps: ${info.minStepsWhy}`;
    return null;
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
    const mode = this.settings.mode;
    if (mode === 'likelihood') return this.#measure();
    const problem = this.#stepsProblem();
    if (problem) return this.#refuse(problem);
    if (mode === 'inpaint') return this.#inpaint();
    if (mode === 'trajectory') return this.#trajectory();
    if (mode === 'interpolate') return this.#interpolate();
    return this.#sample('generate', this.#options(), this.#ui.canvas);
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
   * in the box. Inpaint's New digit is a task but no run (`run: false`): it fires no events but
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
    return { result, status: `${this.#info.card.name}: ${result.evals} score evaluations in ${result.seconds.toFixed(1)} s (${where})` };
  }

  /** Trajectory: keeps x(t) every few steps, then lets the reader scrub t. */
  async #trajectory() {
    const ui = this.#ui;
    const opts = this.#options();
    const every = Math.max(1, Math.round(opts.steps / FRAMES));
    this.#frames = [];
    ui.scrub.disabled = true;
    const keep = (p) => {
      this.#frames.push({ t: p.t, sigma: p.sigma, data: p.preview.data, shape: p.preview.shape });
      ui.time.textContent = `t = ${p.t.toFixed(3)}, σ(t) = ${p.sigma.toPrecision(3)}`;
    };
    const result = await this.#sample('generate', { ...opts, previewEvery: every, previewOf: 'x' }, ui.canvas, keep);
    if (!result) return null;
    this.#frames.push({ t: 0, sigma: null, data: result.data, shape: result.shape, final: true });
    ui.scrub.max = this.#frames.length - 1;
    ui.scrub.value = this.#frames.length - 1;
    ui.scrub.disabled = false;
    this.#showFrame(this.#frames.length - 1);
    return result;
  }

  #showFrame(i) {
    const frame = this.#frames[i];
    if (!frame) return;
    drawGrid(this.#ui.canvas, frame.data, frame.shape, { range: this.#info.card.image.range, scale: fitScale(frame.shape, CANVAS) });
    this.#ui.time.textContent = frame.final ? 'x(0): the sample (after the final denoising step)' : `t = ${frame.t.toFixed(3)}, σ(t) = ${frame.sigma.toPrecision(3)}`;
  }

  /** Likelihood mode: a drawing canvas, the reference images as buttons, the held-out digit to
   * start from. Without references (the card names none, or the file is broken) it measures
   * drawings alone, and says so. */
  async #startLikelihood() {
    const ui = this.#ui;
    const image = this.#info.card.image;
    this.#painter = new Painter(ui.source, { channels: image.channels, height: image.height, width: image.width, range: image.range });
    this.#painter.tool = 'draw';
    this.#painter.radius = 1.5;
    this.#painter.onchange = () => (this.#origin = 'your drawing');
    try {
      this.#references = await likelihoodReferences(this.settings.model, this.#info.card);
    } catch (error) {
      ui.notice.textContent = `${error.message}; measuring drawings works without them`;
      ui.notice.hidden = false;
    }
    const references = this.#references?.images ?? [];
    ui.references.replaceChildren(...references.map((r) => {
      const button = el('button', { type: 'button', class: 'secondary', part: 'button', text: r.label, 'data-reference': r.name });
      button.addEventListener('click', () => this.#setSource(r.pixels, r.label));
      return button;
    }));
    if (references.length) this.#setSource(references[0].pixels, references[0].label);
    ui.status.textContent = 'draw a digit or pick one, then Measure';
  }

  /** Likelihood mode: the drawing from 8-bit `pixels` (null: blank), and what it is called. */
  #setSource(pixels, origin) {
    if (!this.#painter) return;
    const n = this.#painter.image.length;
    this.#painter.setImage(fromPixels(pixels ?? new Uint8Array(n), this.#info.card.image.range));
    this.#origin = origin;
  }

  /** Likelihood mode: bits/dim of the drawing, with x(t) frames and the references beside it. */
  async #measure() {
    const ui = this.#ui;
    const range = this.#info.card.image.range;
    const origin = this.#origin;
    this.#frames = [];
    return this.#task(async (report) => {
      const result = await this.#model.likelihood({ pixels: toPixels(this.#painter.image, range) }, (p) => {
        report(p);
        ui.status.textContent = `step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
        if (p.preview && p.progress >= this.#frames.length / (PATH_FRAMES - 1)) {
          this.#frames.push({ sigma: p.sigma, data: p.preview.data });
          drawFrames(ui.canvas, this.#frames, this.#painter.shape, { range, scale: fitScale([PATH_FRAMES, ...this.#painter.shape.slice(1)], CANVAS), columns: 3 });
        }
      });
      const others = (this.#references?.images ?? []).map((r) => `${r.label} ${r.bits_per_dim.toFixed(2)}`).join(', ');
      return { result: { ...result, label: origin }, status: `${origin}: ${result.bitsPerDim.toFixed(3)} bits/dim${others ? ` (the CLI measured ${others})` : ''}` };
    });
  }

  /** Interpolate mode: two digits at the widget's settings, then the path between them through
   * the prior, as a grid read left to right, top to bottom. One run: the digits are the first
   * fifth of its progress. */
  async #interpolate() {
    const ui = this.#ui;
    return this.#task(async (report) => {
      const { result: pair } = await this.#draw('generate', { ...this.#options(), batch: 2 }, ui.canvas, null, (p) => report(p, DIGITS_SHARE * p.progress));
      const n = pair.data.length / 2;
      const [a, b] = [pair.data.slice(0, n), pair.data.slice(n)];
      const result = await this.#model.interpolate({ a, b }, (p) => {
        report(p, DIGITS_SHARE + (1 - DIGITS_SHARE) * p.progress);
        ui.status.textContent = `${p.progress < 0.5 ? 'encoding' : 'decoding'} · step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
      });
      drawGrid(ui.canvas, result.data, result.shape, { range: this.#info.card.image.range, scale: fitScale(result.shape, CANVAS) });
      const [ra, rb] = result.reconstructionRms.map((r) => r.toFixed(4));
      return { result, status: `first digit → second through the prior; the ends are the digits encoded and decoded (RMS error ${ra}, ${rb}); ${result.evals} evaluations` };
    });
  }

  /** Inpaint mode: a new source digit (one sample), with the bottom half masked. */
  async #newDigit() {
    const ui = this.#ui;
    // A different digit on every click (seeds 1000 + seed, 1001 + seed, …): reproducible per page.
    this.#digits += 1;
    const opts = { ...this.#options(), batch: 1, seed: Number(ui.seed.value) + 999 + this.#digits };
    const result = await this.#sample('generate', opts, ui.canvas, null, { run: false });
    if (!result) return;
    const [lo, hi] = this.#info.card.image.range;
    this.#painter.setImage(Array.from(result.data, (v) => Math.min(hi, Math.max(lo, v))));
    if (!this.#painter.paintedCount()) this.#painter.maskRegion('bottom');
    ui.status.textContent = 'paint over what to regenerate, then Inpaint';
    this.#setState('ready');
  }

  async #inpaint() {
    const p = this.#painter;
    if (!p.paintedCount()) return this.#refuse('paint over part of the digit first: the painted pixels are regenerated');
    return this.#sample('inpaint', { ...this.#options(), image: p.image, mask: p.keepMask() }, this.#ui.canvas);
  }
}

if (!customElements.get('score-field')) customElements.define('score-field', ScoreField);
