// The demo page: generate, watch the samples emerge, pick one, paint a mask, inpaint.
import { RemoteModel, likelihoodReferences, setWorkers, startedWorkers, workerStats } from './client.js';
import { drawFrames, drawGrid, fitScale, gridIndexAt } from './render.js';
import { LiveInpaint } from './live-inpaint.js';
import { Painter, fromPixels, imageFromFile, toPixels } from './painter.js';
import { version } from './pkg/version.js';

const $ = (id) => document.getElementById(id);
$('version').textContent = version;
const params = new URLSearchParams(location.search);
// ?backend=webgpu|cpu|auto and ?model=URL let tests and researchers pick.
const model = new RemoteModel(params.get('model') ?? 'models/mnist.json', params.get('backend') ?? 'auto');
// ?workers=N pins how many workers a CPU run splits its batch across (default: one per core).
let workersProblem = null;
try {
  setWorkers(params.get('workers'));
} catch (e) {
  workersProblem = `?workers: ${e.message}; using one per core`;
}
// The 2-D field section computes on the CPU unless the page is asked for WebGPU.
if (params.get('backend') === 'webgpu') document.getElementById('field')?.setAttribute('backend', 'webgpu');
let card = null;
let lastResult = null;
let painter = null;
let live = null; // live inpainting after each stroke (live-inpaint.js)
let busy = false;
// A handle for the console and the browser tests.
window.scorefield = { model, workerStats, startedWorkers, lastResult: null, lastInpaint: null, lastLikelihood: null, references: null, get painter() { return painter; }, get live() { return live; }, get likelihoodPainter() { return likelihood?.painter; }, get interpolationPainters() { return interpolation?.painters; } };

/** Shows `message` (or hides the box); with `retry`, a Retry button that calls it. */
function showError(message, retry) {
  const el = $('error');
  el.textContent = message;
  el.hidden = !message;
  if (message && retry) {
    const button = document.createElement('button');
    button.type = 'button';
    button.id = 'retry';
    button.textContent = 'Retry';
    button.addEventListener('click', retry, { once: true });
    el.append(' ', button);
  }
}

function showBackend(info) {
  const badge = $('badge');
  const workers = model.workerCount > 1 ? ` · ${model.workerCount} workers` : '';
  badge.textContent = `${info.backend === 'webgpu' ? 'WebGPU' : 'CPU'} · ${info.adapter}${info.fallbackReason ? ` (${info.fallbackReason})` : ''}${workers}`;
  badge.className = `badge ${info.backend}`;
  badge.dataset.backend = info.backend;
  // The page's largest batch, or fewer: what this device's buffers hold (src/nn/layers.rs max_batch_for).
  $('batch').max = String(Math.min(info.defaults.maxBatch, info.maxBatch));
}

/** The library's starting values and limits (src/frontend.rs RunDefaults, with the model card's sampling settings). */
function applyDefaults(defaults) {
  $('batch').value = String(defaults.batch.generate);
  $('seed').value = String(defaults.seed);
  $('steps').max = String(defaults.maxSteps);
  $('corrector').max = String(defaults.maxCorrectorSteps);
  $('snr').max = String(defaults.maxSnr);
  $('churn').max = String(defaults.maxChurn);
  $('guidance').max = String(defaults.guidanceSliderMax);
  $('guidance').value = String(defaults.guidance);
  $('guidance-value').textContent = $('guidance').value;
  $('autoguidance').max = String(defaults.autoguidanceSliderMax);
  $('autoguidance').value = String(defaults.autoguidance);
  $('autoguidance-value').textContent = $('autoguidance').value;
}

/** The autoguidance slider, when the model has a guide model (its card names one): the weight w
 * of s_bad + w·(s − s_bad), 1 for the model alone. */
function fillAutoguidance(info) {
  $('autoguidance-label').hidden = !info.autoguided;
  const sync = () => {
    const w = Number($('autoguidance').value);
    $('autoguidance-value').textContent = $('autoguidance').value;
    $('autoguidance-hint').textContent = !info.autoguided
      ? (info.guideProblem ? `Autoguidance is unavailable: ${info.guideProblem}; sampling from the model alone.` : '')
      : w === 1
        ? 'Autoguidance off: the model alone.'
        : `Autoguided (Karras et al. 2024): the model's score pushed away from a worse version of itself (for the shipped model, a network a quarter its size trained on a twelfth of the images), s_bad + ${w}·(s − s_bad), where σ > ${info.defaults.autoguidanceMinSigma}, while the digit's shape is chosen. Where the worse model is wrong the better one is usually wrong the same way, only less, so this sharpens the digits; those steps evaluate both networks.`;
  };
  $('autoguidance').addEventListener('input', sync);
  sync();
}

/** The digit control, when the model has a classifier: any digit (unguided), one class, or every
 * class in turn; the guidance slider beside it while a class is chosen. Choosing a class from
 * "any" switches to the library's sampler for guided runs (the card's sampling.guided). */
function fillClasses(classes, defaults, problem) {
  $('class-label').hidden = !classes;
  // A model whose card names a classifier that could not be read: say so (unguided runs work).
  if (!classes) {
    $('class-hint').textContent = problem ? `Generating a chosen digit is unavailable: ${problem}` : '';
    return;
  }
  const option = (value, text) => Object.assign(document.createElement('option'), { value, textContent: text });
  $('class').replaceChildren(option('any', 'any'), ...classes.map((name, i) => option(String(i), name)), option('all', 'each in turn'));
  let guided = false;
  const sync = () => {
    const now = $('class').value !== 'any';
    if (now && !guided && samplers.has(defaults.guided.sampler)) {
      $('sampler').value = defaults.guided.sampler;
      selectSampler();
      $('steps').value = String(defaults.guided.steps);
      $('churn').value = String(defaults.guided.churn);
    }
    guided = now;
    $('guidance-label').hidden = !now;
    $('guidance-value').textContent = $('guidance').value;
    $('class-hint').textContent = now
      ? `Guided by a noise-conditional classifier: the score plus w·∇ log p(digit | x), Bayes' rule for scores (Song et al. 2021, §5). It starts on ${samplers.get(defaults.guided.sampler)?.label ?? defaults.guided.sampler} with churn ${defaults.guided.churn}: its fresh noise lets guidance correct a shape chosen early.`
      : '';
  };
  $('class').addEventListener('change', sync);
  $('guidance').addEventListener('input', sync);
  sync();
}

function setBusy(value) {
  busy = value;
  $('generate').disabled = value || !card;
  $('inpaint').disabled = value || !card;
  $('cancel').disabled = !value;
}

function formatSeconds(s) {
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** The loaded model's samplers by name (src/sampling/catalog.rs with the card's step counts, via the worker). */
let samplers = new Map();

function options() {
  const sampler = $('sampler').value;
  const info = samplers.get(sampler);
  const opts = {
    sampler,
    steps: Number($('steps').value),
    batch: Number($('batch').value),
    seed: Number($('seed').value),
  };
  if (info.options.includes('correctorSteps')) opts.correctorSteps = Number($('corrector').value);
  if (info.options.includes('snr')) opts.snr = Number($('snr').value);
  if (info.options.includes('churn')) opts.churn = Number($('churn').value);
  const digit = $('class').value;
  if (!$('class-label').hidden && digit !== 'any') {
    opts.class = digit === 'all' ? 'all' : Number(digit);
    opts.guidance = Number($('guidance').value);
  }
  if (!$('autoguidance-label').hidden) opts.autoguidance = Number($('autoguidance').value);
  return opts;
}

/** Builds the sampler list from the model's description of its samplers. */
function fillSamplers(list) {
  samplers = new Map(list.map((s) => [s.name, s]));
  $('sampler').replaceChildren(...list.map((s) => {
    const option = document.createElement('option');
    option.value = s.name;
    option.textContent = s.label;
    option.title = s.paper;
    return option;
  }));
  $('sampler').value = list[0].name;
  selectSampler();
}

/** Shows the chosen sampler's fields at its own defaults, and why its step count has a floor. */
function selectSampler() {
  const info = samplers.get($('sampler').value);
  if (!info) return;
  for (const label of document.querySelectorAll('label[data-option]')) label.hidden = !info.options.includes(label.dataset.option);
  $('steps-label').hidden = !info.takesSteps;
  $('steps').min = String(info.minSteps);
  $('steps').value = String(info.defaultSteps);
  if (info.defaultCorrectorSteps) $('corrector').value = String(info.defaultCorrectorSteps);
  if (info.defaultSnr) $('snr').value = String(info.defaultSnr);
  if (info.defaultChurn != null) $('churn').value = String(info.defaultChurn);
  $('steps-hint').textContent = info.takesSteps
    ? `${info.paper}. One step is ${info.step}. At least ${info.minSteps} steps: ${info.minStepsWhy}.`
    : `${info.paper}. It ${info.step}.`;
}

/** What a finished run leaves behind, by type. */
const keep = {
  generate(result) {
    lastResult = result;
    window.scorefield.lastResult = result;
    $('download').disabled = false;
  },
  inpaint(result, opts) {
    window.scorefield.lastInpaint = { ...result, image: opts.image, keep: opts.mask };
  },
};

/** Runs generate or inpaint with a progress bar, live previews drawn on `canvas`. */
async function run(type, opts, canvas) {
  showError('');
  setBusy(true);
  const start = performance.now();
  $('bar').value = 0;
  $('status').textContent = 'starting…';
  try {
    const result = await model[type](opts, (p) => {
      const elapsed = (performance.now() - start) / 1000;
      $('bar').value = p.progress;
      const left = p.progress > 0.02 ? ` · ~${formatSeconds((elapsed * (1 - p.progress)) / p.progress)} left` : '';
      $('status').textContent = `step ${p.step}${p.total ? ` / ${p.total}` : ''} · ${formatSeconds(elapsed)}${left}`;
      if (p.preview) drawGrid(canvas, p.preview.data, p.preview.shape, { range: card.image.range, scale: scaleFor(p.preview.shape) });
    });
    $('bar').value = 1;
    const workers = result.workers > 1 ? ` on ${result.workers} workers` : '';
    $('status').textContent = `done: ${result.shape[0]} × ${opts.sampler}, ${result.evals} score evaluations in ${formatSeconds(result.seconds)}${workers}`;
    drawGrid(canvas, result.data, result.shape, { range: card.image.range, scale: scaleFor(result.shape) });
    keep[type](result, opts);
    return result;
  } catch (e) {
    $('status').textContent = '';
    if (e.name === 'DeviceLostError') {
      // The painted mask, the source image and the last samples stay as they are; Retry loads the
      // model on a new device (a fresh worker) and runs the same request again.
      showError(e.message, async () => {
        showError('');
        $('status').textContent = 'starting a new device…';
        try {
          showBackend(await model.load());
        } catch (err) {
          $('status').textContent = '';
          showError(`Could not load the model again: ${err.message}`);
          return;
        }
        await run(type, opts, canvas);
      });
    } else {
      showError(e.name === 'CancelledError' ? '' : e.message);
    }
    if (e.name === 'CancelledError') $('status').textContent = e.message;
    return null;
  } finally {
    setBusy(false);
  }
}

function scaleFor(shape) {
  return fitScale(shape, Math.min(640, document.querySelector('main').clientWidth - 48));
}

function pickSample(i) {
  if (!lastResult || i < 0) return;
  const [, c, h, w] = lastResult.shape;
  const n = c * h * w;
  // Samples can overshoot the data range a little; the source is what the grid shows, clamped.
  const [lo, hi] = card.image.range;
  painter.setImage(lastResult.data.slice(i * n, (i + 1) * n).map((v) => Math.min(hi, Math.max(lo, v))));
  $('mask-info').textContent = `sample ${i + 1} is the source; paint the part to regenerate`;
}

/** The likelihood section: its own painter, the model card's reference likelihoods (measured by
 * the CLI), Measure with progress and Cancel. Its runs have their own RemoteModel (the same
 * model in the worker), so each section's Cancel stops its own run. */
class LikelihoodSection {
  constructor(info) {
    this.model = new RemoteModel(model.url, model.backend);
    this.backend = info.backend;
    this.range = info.card.image.range;
    const [c, h, w] = [info.card.image.channels, info.card.image.height, info.card.image.width];
    this.painter = new Painter($('lik-source'), { channels: c, height: h, width: w, range: this.range });
    this.painter.tool = 'draw';
    this.painter.radius = Number($('lik-brush').value);
    this.painter.onchange = () => (this.origin = 'your drawing');
    this.origin = 'a blank image';
    this.references = [];
    this.measured = [];
    this.busy = false;
    for (const radio of document.querySelectorAll('input[name=lik-tool]')) radio.addEventListener('change', () => (this.painter.tool = radio.value));
    $('lik-brush').addEventListener('input', () => (this.painter.radius = Number($('lik-brush').value)));
    $('lik-undo').addEventListener('click', () => this.painter.undo());
    $('lik-clear').addEventListener('click', () => this.setImage(new Float32Array(this.painter.image.length).fill(this.range[0]), 'a blank image'));
    $('lik-source-copy').addEventListener('click', () => this.setImage(painter.image, 'the inpainting source'));
    $('lik-file').addEventListener('change', async () => {
      const file = $('lik-file').files[0];
      if (!file) return;
      try {
        this.setImage(await imageFromFile(file, this.painter.shape, this.range), file.name);
      } catch (e) {
        this.error(`Could not read ${file.name}: ${e.message}`);
      }
    });
    $('measure').addEventListener('click', () => this.measure());
    $('lik-cancel').addEventListener('click', () => this.model.cancel());
    this.setBusy(false);
  }

  setImage(values, origin) {
    this.painter.setImage(values);
    this.origin = origin;
  }

  error(message) {
    $('lik-error').textContent = message;
    $('lik-error').hidden = !message;
  }

  setBusy(value) {
    this.busy = value;
    $('measure').disabled = value;
    $('lik-cancel').disabled = !value;
  }

  /** The card's `likelihood_references` file (src/likelihood.rs References): a button per image
   * and a row per value. Without one the section works, with nothing to compare to. */
  async loadReferences(info) {
    let file = null;
    try {
      file = await likelihoodReferences(model.url, info.card);
    } catch (e) {
      this.error(`${e.message}; measuring works without them.`);
    }
    if (!file) return;
    this.references = file.images;
    window.scorefield.references = file;
    const o = file.options;
    $('lik-table').caption.textContent = `Bits per dimension of 8-bit pixels, uniformly dequantised; RK45 at rtol ${o.rtol}, atol ${o.atol}, ${o.probes} Hutchinson probe${o.probes > 1 ? 's' : ''}, seed ${o.seed} (what this page runs)`;
    $('lik-references').replaceChildren(...this.references.map((r) => {
      const button = Object.assign(document.createElement('button'), { type: 'button', textContent: r.label });
      button.dataset.reference = r.name;
      button.addEventListener('click', () => this.setImage(fromPixels(r.pixels, this.range), r.label));
      return button;
    }));
    this.table();
  }

  drawPath(frames) {
    drawFrames($('lik-path'), frames, this.painter.shape, { range: this.range, scale: 3, columns: PATH_FRAMES });
    $('lik-path-caption').textContent = `x(t) on its way to the prior, at σ = ${frames.map((f) => f.sigma.toPrecision(2)).join(', ')}`;
  }

  table() {
    const row = (label, bits, by) => {
      const tr = document.createElement('tr');
      for (const text of [label, bits.toFixed(3), by]) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
      return tr;
    };
    const rows = [
      ...this.measured.map((m) => row(m.label, m.bitsPerDim, `this page (${m.backend}), ${m.evals} evaluations`)),
      ...this.references.map((r) => row(r.label, r.bits_per_dim, `the CLI, ${r.evals} evaluations`)),
    ];
    $('lik-table').tBodies[0].replaceChildren(...rows);
    $('lik-table').hidden = rows.length === 0;
  }

  async measure() {
    if (this.busy) return;
    this.error('');
    this.setBusy(true);
    const pixels = toPixels(this.painter.image, this.range);
    const label = this.origin;
    const start = performance.now();
    $('lik-bar').value = 0;
    $('lik-status').textContent = 'starting…';
    try {
      // x(t) at evenly spaced progress (for the VE SDE, evenly spaced log σ): the image dissolving.
      const frames = [];
      const result = await this.model.likelihood({ pixels }, (p) => {
        $('lik-bar').value = p.progress;
        $('lik-status').textContent = `step ${p.step} · σ = ${p.sigma.toPrecision(3)} · ${formatSeconds((performance.now() - start) / 1000)}`;
        if (p.preview && p.progress >= frames.length / (PATH_FRAMES - 1)) {
          frames.push({ data: p.preview.data, sigma: p.sigma });
          this.drawPath(frames);
        }
      });
      $('lik-bar').value = 1;
      $('lik-status').textContent = `${label}: ${result.bitsPerDim.toFixed(3)} bits/dim (${result.evals} score evaluations, each with its gradient, in ${formatSeconds(result.seconds)})`;
      this.measured.unshift({ label, backend: this.backend === 'webgpu' ? 'WebGPU' : 'CPU', ...result });
      this.measured.length = Math.min(this.measured.length, 5);
      this.table();
      window.scorefield.lastLikelihood = { ...result, pixels, label };
    } catch (e) {
      $('lik-status').textContent = e.name === 'CancelledError' ? e.message : '';
      if (e.name !== 'CancelledError') this.error(e.name === 'DeviceLostError' ? `${e.message} (press Measure again)` : e.message);
    } finally {
      this.setBusy(false);
    }
  }
}
/** The interpolation section: two painters (A, B), Two new digits (a generate run of two at the
 * page's settings), Interpolate with progress and Cancel; the decoded path as one row. */
class InterpolationSection {
  constructor(info) {
    this.model = new RemoteModel(model.url, model.backend);
    this.range = info.card.image.range;
    const [c, h, w] = [info.card.image.channels, info.card.image.height, info.card.image.width];
    this.painters = ['interp-a', 'interp-b'].map((id) => {
      const p = new Painter($(id), { channels: c, height: h, width: w, range: this.range });
      p.tool = 'draw';
      p.radius = 1.5;
      return p;
    });
    $('interp-new').addEventListener('click', () => this.newPair());
    $('interp-run').addEventListener('click', () => this.interpolate());
    $('interp-cancel').addEventListener('click', () => this.model.cancel());
    this.setBusy(false);
  }

  setBusy(value) {
    this.busy = value;
    $('interp-new').disabled = value;
    $('interp-run').disabled = value;
    $('interp-cancel').disabled = !value;
  }

  error(message) {
    $('interp-error').textContent = message;
    $('interp-error').hidden = !message;
  }

  /** Runs `call` with the section busy and its progress bar; errors land in its box. */
  async task(call) {
    if (this.busy) return null;
    this.error('');
    this.setBusy(true);
    $('interp-bar').value = 0;
    $('interp-status').textContent = 'starting…';
    try {
      return await call((p) => {
        $('interp-bar').value = p.progress;
        $('interp-status').textContent = `${p.total != null ? 'sampling' : p.progress < 0.5 ? 'encoding' : 'decoding'} · step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
      });
    } catch (e) {
      $('interp-status').textContent = e.name === 'CancelledError' ? e.message : '';
      if (e.name !== 'CancelledError') this.error(e.message);
      return null;
    } finally {
      this.setBusy(false);
    }
  }

  /** Two samples at the Generate section's sampler and settings, batch 2, as A and B. */
  async newPair() {
    const out = await this.task(async (onProgress) => {
      const { class: _, guidance: __, ...opts } = options();
      return this.model.generate({ ...opts, batch: 2 }, onProgress);
    });
    if (!out) return;
    const n = out.data.length / 2;
    const [lo, hi] = this.range;
    this.painters.forEach((p, i) => p.setImage(out.data.slice(i * n, (i + 1) * n).map((v) => Math.min(hi, Math.max(lo, v)))));
    $('interp-status').textContent = `two digits from ${out.evals} evaluations; press Interpolate`;
  }

  async interpolate() {
    const [a, b] = this.painters.map((p) => p.image);
    const out = await this.task((onProgress) => this.model.interpolate({ a, b }, onProgress));
    if (!out) return;
    $('interp-bar').value = 1;
    drawGrid($('interp-path'), out.data, out.shape, { range: this.range, scale: 3, columns: out.shape[0] });
    const [ra, rb] = out.reconstructionRms.map((r) => r.toFixed(4));
    $('interp-status').textContent = `${out.shape[0]} points decoded: ${out.evals} score evaluations in ${formatSeconds(out.seconds)}`;
    $('interp-caption').textContent = `A, the path through the prior, B. The ends are A and B encoded and decoded again: root-mean-square error ${ra} and ${rb} per pixel (of 1).`;
    window.scorefield.lastInterpolation = out;
  }
}
let interpolation = null;
let likelihood = null;
const PATH_FRAMES = 7;

function updateMaskInfo() {
  const n = painter.paintedCount();
  $('mask-info').textContent = n ? `${n} pixels will be regenerated` : 'no mask painted yet';
}

async function main() {
  $('sampler').addEventListener('change', selectSampler);
  try {
    const info = await model.load();
    card = info.card;
    applyDefaults(info.defaults);
    fillSamplers(info.samplers);
    fillClasses(info.classes, info.defaults, info.classifierProblem);
    fillAutoguidance(info);
    showBackend(info);
    const [c, h, w] = [card.image.channels, card.image.height, card.image.width];
    painter = new Painter($('source'), { channels: c, height: h, width: w, range: card.image.range });
    painter.onchange = updateMaskInfo;
    updateMaskInfo();
    likelihood = new LikelihoodSection(info);
    likelihood.loadReferences(info);
    interpolation = new InterpolationSection(info);
    setBusy(false);
    if (workersProblem) showError(workersProblem);
  } catch (e) {
    $('badge').textContent = 'model not loaded';
    showError(`Could not load the model: ${e.message}`);
    return;
  }

  $('controls').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    await run('generate', options(), $('grid'));
  });
  $('cancel').addEventListener('click', () => model.cancel());
  $('download').addEventListener('click', () => {
    $('grid').toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `scorefield-${$('sampler').value}-seed${$('seed').value}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
  });
  $('grid').addEventListener('click', (e) => {
    if (!lastResult) return;
    const rect = e.currentTarget.getBoundingClientRect();
    pickSample(gridIndexAt(e.currentTarget, lastResult.shape, e.clientX - rect.left, e.clientY - rect.top));
  });
  for (const radio of document.querySelectorAll('input[name=tool]')) radio.addEventListener('change', () => (painter.tool = radio.value));
  $('brush').addEventListener('input', () => (painter.radius = Number($('brush').value)));
  for (const b of document.querySelectorAll('button[data-region]')) b.addEventListener('click', () => painter.maskRegion(b.dataset.region));
  $('undo').addEventListener('click', () => painter.undo());
  $('clear-mask').addEventListener('click', () => painter.clearMask());
  $('clear-image').addEventListener('click', () => painter.setImage(new Float32Array(painter.image.length).fill(card.image.range[0])));
  $('file').addEventListener('change', async () => {
    const file = $('file').files[0];
    if (!file) return;
    try {
      painter.setImage(await imageFromFile(file, painter.shape, card.image.range));
    } catch (e) {
      showError(`Could not read ${file.name}: ${e.message}`);
    }
  });
  $('inpaint').addEventListener('click', () => !busy && inpaint());
  live = new LiveInpaint(painter, { run: inpaint, cancel: () => model.cancel(), busy: () => busy });
  live.enabled = $('live').checked;
  $('live').addEventListener('change', () => (live.enabled = $('live').checked));
}

/** One inpaint of the source with the painted mask at the controls' settings (the Inpaint button,
 * and live after each stroke): the result, or null. */
async function inpaint() {
  // The Inpaint button is not the form's submit: check the controls (the steps floor) here.
  if (!$('controls').reportValidity()) return null;
  if (!painter.paintedCount()) {
    showError('Paint the part of the image to regenerate first.');
    return null;
  }
  const opts = { ...options(), image: painter.image, mask: painter.keepMask() };
  return run('inpaint', opts, $('inpainted'));
}

main();
