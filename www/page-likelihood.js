// The page's likelihood section: its own painter, the model card's reference likelihoods (measured
// by the CLI), Measure with progress and Cancel. Its runs have their own RemoteModel (the same
// model in the worker), so each section's Cancel stops its own run. Wired once; `setModel` makes
// it the chosen model's.
import { RemoteModel, likelihoodReferences } from './client.js';
import { measureLikelihood, referenceButtons } from './likelihood-path.js';
import { $, clearCanvas, formatSeconds, needsScore, showMessage } from './page-dom.js';
import { Painter, imageFromFile } from './painter.js';
import { drawFrames } from './render.js';

// Frames shown of the path to the prior.
const PATH_FRAMES = 7;

export class LikelihoodSection {
  /** `sourceImage()`: the inpainting section's source, which "The inpainting source" copies. */
  constructor(sourceImage) {
    this.model = null;
    this.painter = new Painter($('lik-source'));
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
    $('lik-clear').addEventListener('click', () => this.setImage(this.painter.blankImage(), 'a blank image'));
    $('lik-source-copy').addEventListener('click', () => this.setImage(sourceImage(), 'the inpainting source'));
    $('lik-file').addEventListener('change', async () => {
      const file = $('lik-file').files[0];
      if (!file) return;
      try {
        this.setImage(await imageFromFile(file, this.painter.shape, this.painter.range, this.painter.blank), file.name);
      } catch (e) {
        this.error(`Could not read ${file.name}: ${e.message}`);
      }
    });
    $('measure').addEventListener('click', () => this.measure());
    $('lik-cancel').addEventListener('click', () => this.model?.cancel());
    this.setBusy(false);
  }

  /** The loaded model `info` (RemoteModel.load) at `url` on `backend`: a blank drawing of its
   * shape, its references (loaded in the background), nothing measured yet. */
  setModel(info, url, backend) {
    this.model?.cancel();
    this.model = new RemoteModel(url, backend);
    this.backend = info.backend;
    this.painter.reshape(info.card.image);
    this.origin = 'a blank image';
    this.references = [];
    this.measured = [];
    window.scorefield.references = null;
    $('lik-references').replaceChildren();
    $('lik-references-said').hidden = true;
    $('lik-path-caption').textContent = 'Measure shows the image on its way to the prior, x(t) as the ODE moves it.';
    this.scoreless = needsScore(info.card, 'Measuring a likelihood');
    $('lik-status').textContent = this.scoreless;
    $('lik-bar').value = 0;
    clearCanvas($('lik-path'));
    this.error('');
    this.table();
    return this.loadReferences(info, url);
  }

  setImage(values, origin) {
    this.painter.setImage(values);
    this.origin = origin;
  }

  error(message) {
    showMessage($('lik-error'), message);
  }

  setBusy(value) {
    this.busy = value;
    $('measure').disabled = value || !this.model || Boolean(this.scoreless);
    $('lik-cancel').disabled = !value;
  }

  /** The card's `likelihood_references` file (src/likelihood.rs References): a button per image
   * and a row per value. Without one the section works, with nothing to compare to. */
  async loadReferences(info, url) {
    const model = this.model;
    this.setBusy(this.busy);
    let file = null;
    try {
      file = await likelihoodReferences(url, info.card);
    } catch (e) {
      this.error(`${e.message}; measuring works without them.`);
    }
    // Another model was picked meanwhile.
    if (!file || model !== this.model) return;
    this.references = file.images;
    window.scorefield.references = file;
    $('lik-references-said').hidden = false;
    const o = file.options;
    $('lik-table').caption.textContent = `Bits per dimension of 8-bit pixels, uniformly dequantised; RK45 at rtol ${o.rtol}, atol ${o.atol}, ${o.probes} Hutchinson probe${o.probes > 1 ? 's' : ''}, seed ${o.seed} (what this page runs)`;
    const make = (r) => Object.assign(document.createElement('button'), { type: 'button', textContent: r.label });
    $('lik-references').replaceChildren(...referenceButtons(file, this.painter, make, (r) => (this.origin = r.label)));
    this.table();
  }

  drawPath(frames) {
    drawFrames($('lik-path'), frames, this.painter.shape, { range: this.painter.range, scale: 3, columns: PATH_FRAMES });
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
    if (this.busy || !this.model || this.scoreless) return;
    const model = this.model;
    this.error('');
    this.setBusy(true);
    const label = this.origin;
    const start = performance.now();
    $('lik-bar').value = 0;
    $('lik-status').textContent = 'starting…';
    try {
      const { result, pixels } = await measureLikelihood(model, this.painter, PATH_FRAMES, {
        onProgress: (p) => {
          $('lik-bar').value = p.progress;
          $('lik-status').textContent = `step ${p.step} · σ = ${p.sigma.toPrecision(3)} · ${formatSeconds((performance.now() - start) / 1000)}`;
        },
        onFrames: (frames) => this.drawPath(frames),
        // Another model was picked: this run is being cancelled.
        current: () => model === this.model,
      });
      if (model !== this.model) return;
      $('lik-bar').value = 1;
      $('lik-status').textContent = `${label}: ${result.bitsPerDim.toFixed(3)} bits/dim (${result.evals} score evaluations, each with its gradient, in ${formatSeconds(result.seconds)})`;
      this.measured.unshift({ label, backend: this.backend === 'webgpu' ? 'WebGPU' : 'CPU', ...result });
      this.measured.length = Math.min(this.measured.length, 5);
      this.table();
      window.scorefield.lastLikelihood = { ...result, pixels, label };
    } catch (e) {
      if (model !== this.model) return;
      $('lik-status').textContent = e.name === 'CancelledError' ? e.message : '';
      if (e.name !== 'CancelledError') this.error(e.name === 'DeviceLostError' ? `${e.message} (press Measure again)` : e.message);
    } finally {
      this.setBusy(false);
    }
  }
}
