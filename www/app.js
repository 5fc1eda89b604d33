// The demo page: pick a model, generate, watch the samples emerge, pick one, paint a mask,
// inpaint; measure an image's likelihood and interpolate between two (page-likelihood.js,
// page-interpolate.js). Each section is wired once; picking another model fills them again from
// its description, in its shape and colours and with its card's words (subject.js). Once a model
// has loaded the page generates by itself at its default settings (the opening run), so that a
// reader sees samples forming from noise; a click on Generate or Inpaint supersedes it.
import { RemoteModel, setWorkers, startedWorkers, workerStats } from './client.js';
import { LiveInpaint } from './live-inpaint.js';
import { fillControls, options, wireControls } from './page-controls.js';
import { $, clearCanvas, formatSeconds, showMessage } from './page-dom.js';
import { InterpolationSection } from './page-interpolate.js';
import { LikelihoodSection } from './page-likelihood.js';
import { Painter, imageFromFile } from './painter.js';
import { drawGrid, fitScale, gridIndexAt } from './render.js';
import { counted, nameSubject } from './subject.js';
import { version } from './pkg/version.js';

$('version').textContent = version;
const params = new URLSearchParams(location.search);
// ?backend=webgpu|cpu|auto and ?model=URL let tests and researchers pick.
const backend = params.get('backend') ?? 'auto';
// ?workers=N pins how many workers a CPU run splits its batch across (default: one per core).
let workersProblem = null;
try {
  setWorkers(params.get('workers'));
} catch (e) {
  workersProblem = `?workers: ${e.message}; using one per core`;
}
// ?autorun=0 opens the page idle: no run before the reader's first click.
const autorun = params.get('autorun') !== '0';
// Under prefers-reduced-motion the opening run shows its finished samples, not the steps to them.
const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');
// The 2-D field section computes on the CPU unless the page is asked for WebGPU.
if (backend === 'webgpu') document.getElementById('field')?.setAttribute('backend', 'webgpu');

let model = null; // the picked model's RemoteModel
let card = null; // its card, once loaded (null while loading)
let loads = 0; // how many models were picked: a load that is not the last one's is dropped
let lastResult = null;
let busy = false;
let opening = false; // the run in progress is the opening run, which the reader's runs supersede
let runs = 0; // how many runs were started: a run that is not the last one draws and says nothing
let active = null; // the run in progress: {model, settled}, until it has settled
// The Inpaint section's source and mask; a model's load gives it that model's shape.
const painter = new Painter($('source'));
const live = new LiveInpaint(painter, { run: inpaint, cancel: cancelRun, busy: readerBusy }); // after each stroke
const likelihood = new LikelihoodSection(() => painter.image);
const interpolation = new InterpolationSection(options);
// A handle for the console and the browser tests.
window.scorefield = { get model() { return model; }, idle, workerStats, startedWorkers, lastResult: null, lastInpaint: null, lastLikelihood: null, references: null, painter, live, likelihoodPainter: likelihood.painter, interpolationPainters: interpolation.painters };

/** Resolves once no run of the page is going (the opening run included): for tests that drive
 * the model themselves. */
async function idle() {
  while (active) await active.settled;
}

/** Shows `message` (or hides the box); with `retry`, a Retry button that calls it. */
function showError(message, retry) {
  const el = $('error');
  showMessage(el, message);
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

/** Cancels the page's run in progress (the Cancel button, a live inpaint's next stroke), also
 * one still waiting for the run before it to end. */
function cancelRun() {
  if (active) active.cancelled = true;
  model?.cancel();
}

/** Whether a run the reader started is going (the opening run gives way to theirs). */
function readerBusy() {
  return busy && !opening;
}

function setBusy(value) {
  busy = value;
  $('generate').disabled = readerBusy() || !card;
  $('inpaint').disabled = readerBusy() || !card;
  $('cancel').disabled = !value;
}

/** The model picker's option for `url` (resolved against the page): one of the page's models, or
 * a new option for a model the page does not list (?model=URL). */
function modelOption(url) {
  const href = new URL(url, location.href).href;
  const options = [...$('model').options];
  const known = options.find((o) => new URL(o.value, location.href).href === href);
  if (known) return known;
  const option = Object.assign(document.createElement('option'), { value: url, textContent: url.split('/').pop() });
  option.dataset.unlisted = ''; // named by its card once loaded
  $('model').append(option);
  return option;
}

/** Loads the model at `url` (a card's URL) in the workers and gives every section its shape,
 * controls and words; a run of the last model still going is cancelled. */
async function loadModel(url) {
  const load = ++loads;
  for (const m of [model, likelihood.model, interpolation.model]) m?.cancel();
  modelOption(url).selected = true;
  model = new RemoteModel(url, backend);
  card = null;
  lastResult = null;
  Object.assign(window.scorefield, { lastResult: null, lastInpaint: null, lastLikelihood: null, lastInterpolation: null });
  setBusy(busy);
  showError('');
  $('download').disabled = true;
  for (const id of ['grid', 'inpainted']) clearCanvas($(id));
  $('badge').textContent = 'loading the model…';
  $('badge').className = 'badge';
  delete $('badge').dataset.backend;
  let info;
  try {
    info = await model.load();
  } catch (e) {
    if (load !== loads) return;
    $('badge').textContent = 'model not loaded';
    showError(`Could not load the model: ${e.message}`);
    return;
  }
  if (load !== loads) return;
  card = info.card;
  fillControls(info);
  showBackend(info);
  nameSubject(document, card);
  const picked = $('model').selectedOptions[0];
  if ('unlisted' in picked.dataset) picked.textContent = card.name;
  $('credit').textContent = card.dataset ? `The ${card.name} model was trained on ${card.dataset}.` : '';
  painter.reshape(card.image);
  updateMaskInfo();
  likelihood.setModel(info, model.url, backend);
  interpolation.setModel(info, model.url, backend);
  setBusy(busy);
  if (autorun) run('generate', options(), $('grid'), { opening: true });
  // After the opening run has started (a run clears the error box when it starts).
  if (workersProblem) showError(workersProblem);
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

/** Runs generate or inpaint with a progress bar, live previews drawn on `canvas`; the `opening`
 * run (the page's own, once a model has loaded) gives way to the next run, which cancels it and
 * starts once it has ended. Resolves to the result, or null. */
async function run(type, opts, canvas, { opening: isOpening = false } = {}) {
  const id = ++runs;
  const runModel = model;
  // Another model picked or another run started meanwhile: nothing of this one is drawn after that.
  const current = () => runModel === model && id === runs;
  showError('');
  opening = isOpening;
  setBusy(true);
  // The result this run will leave; until then there is none (a test waits for it).
  if (type === 'generate') lastResult = null;
  window.scorefield[type === 'generate' ? 'lastResult' : 'lastInpaint'] = null;
  $('bar').value = 0;
  $('status').textContent = 'starting…';
  // One run at a time in the workers: the one going (the opening run, or the last model's) is
  // cancelled, and this one starts once it has ended (unless it was cancelled meanwhile).
  const previous = active;
  const mine = { model: runModel, cancelled: false };
  const settled = (async () => {
    if (previous) {
      previous.model.cancel();
      await previous.settled;
    }
    if (!current()) return null;
    if (mine.cancelled) {
      $('status').textContent = 'cancelled before it started';
      return null;
    }
    return runOnce(type, opts, canvas, { runModel, current, isOpening });
  })();
  mine.settled = settled.catch(() => null);
  active = mine;
  try {
    return await settled;
  } finally {
    if (id === runs) {
      active = null;
      opening = false;
      setBusy(false);
    }
  }
}

/** One run in the workers, once no other is going: its progress, previews and result on the page
 * while it is `current()`; a device loss offers Retry. */
async function runOnce(type, opts, canvas, { runModel, current, isOpening }) {
  const start = performance.now();
  const previews = !(isOpening && reducedMotion.matches);
  try {
    const result = await runModel[type](opts, (p) => {
      if (!current()) return;
      const elapsed = (performance.now() - start) / 1000;
      $('bar').value = p.progress;
      const left = p.progress > 0.02 ? ` · ~${formatSeconds((elapsed * (1 - p.progress)) / p.progress)} left` : '';
      $('status').textContent = `step ${p.step}${p.total ? ` / ${p.total}` : ''} · ${formatSeconds(elapsed)}${left}`;
      if (p.preview && previews) drawGrid(canvas, p.preview.data, p.preview.shape, { range: card.image.range, scale: scaleFor(p.preview.shape) });
    });
    if (!current()) return null;
    $('bar').value = 1;
    const workers = result.workers > 1 ? ` on ${result.workers} workers` : '';
    $('status').textContent = `done: ${counted(result.shape[0], card)} by ${opts.sampler}, ${result.evals} score evaluations in ${formatSeconds(result.seconds)}${workers}`;
    drawGrid(canvas, result.data, result.shape, { range: card.image.range, scale: scaleFor(result.shape) });
    keep[type](result, opts);
    return result;
  } catch (e) {
    if (!current()) return null;
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
  }
}

/** The grid's scale: as large as the output column holds, at most 640 pixels wide. */
function scaleFor(shape) {
  return fitScale(shape, Math.min(640, $('output').clientWidth));
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


function updateMaskInfo() {
  const n = painter.paintedCount();
  $('mask-info').textContent = n ? `${n} pixels will be regenerated` : 'no mask painted yet';
}

/** Wires the sections once, then loads the model that ?model= names, or the picker's first. */
function main() {
  wireControls();
  $('model').addEventListener('change', () => {
    const url = $('model').value;
    // The address names the pick, so that a reload or a shared link shows the same model.
    const address = new URL(location.href);
    address.searchParams.set('model', url);
    history.replaceState(null, '', address);
    loadModel(url);
  });
  $('controls').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (readerBusy() || !card) return;
    await run('generate', options(), $('grid'));
  });
  $('cancel').addEventListener('click', cancelRun);
  $('download').addEventListener('click', () => {
    $('grid').toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `scorefield-${card?.name ?? 'model'}-${$('sampler').value}-seed${$('seed').value}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
  });
  $('grid').addEventListener('click', (e) => {
    if (!lastResult) return;
    const rect = e.currentTarget.getBoundingClientRect();
    pickSample(gridIndexAt(e.currentTarget, lastResult.shape, e.clientX - rect.left, e.clientY - rect.top));
  });
  painter.onchange = updateMaskInfo;
  for (const radio of document.querySelectorAll('input[name=tool]')) radio.addEventListener('change', () => (painter.tool = radio.value));
  $('brush').addEventListener('input', () => (painter.radius = Number($('brush').value)));
  for (const b of document.querySelectorAll('button[data-region]')) b.addEventListener('click', () => painter.maskRegion(b.dataset.region));
  $('undo').addEventListener('click', () => painter.undo());
  $('clear-mask').addEventListener('click', () => painter.clearMask());
  $('clear-image').addEventListener('click', () => painter.setImage(painter.blankImage()));
  $('file').addEventListener('change', async () => {
    const file = $('file').files[0];
    if (!file) return;
    try {
      painter.setImage(await imageFromFile(file, painter.shape, painter.range, painter.blank));
    } catch (e) {
      showError(`Could not read ${file.name}: ${e.message}`);
    }
  });
  $('inpaint').addEventListener('click', () => !readerBusy() && card && inpaint());
  live.enabled = $('live').checked;
  $('live').addEventListener('change', () => (live.enabled = $('live').checked));
  loadModel(params.get('model') ?? $('model').value);
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
