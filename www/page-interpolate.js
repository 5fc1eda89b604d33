// The page's interpolation section: two painters (A, B), Two new images (a generate run of two
// at the Generate section's settings), Interpolate with progress and Cancel; the decoded path as
// one row. Its runs have their own RemoteModel, so its Cancel stops its own run. Wired once;
// `setModel` makes it the chosen model's.
import { RemoteModel } from './client.js';
import { $, clearCanvas, formatSeconds, needsScore, showMessage } from './page-dom.js';
import { Painter } from './painter.js';
import { drawGrid } from './render.js';
import { subjectOf } from './subject.js';

export class InterpolationSection {
  /** `options()`: the Generate section's run options, which Two new images draws with. */
  constructor(options) {
    this.options = options;
    this.model = null;
    this.card = null;
    this.painters = ['interp-a', 'interp-b'].map((id) => {
      const p = new Painter($(id));
      p.tool = 'draw';
      p.radius = 1.5;
      return p;
    });
    $('interp-new').addEventListener('click', () => this.newPair());
    $('interp-run').addEventListener('click', () => this.interpolate());
    $('interp-cancel').addEventListener('click', () => this.model?.cancel());
    this.setBusy(false);
  }

  /** The loaded model `info` (RemoteModel.load) at `url` on `backend`: blank A and B of its shape. */
  setModel(info, url, backend) {
    this.model?.cancel();
    this.model = new RemoteModel(url, backend);
    this.card = info.card;
    for (const p of this.painters) p.reshape(info.card.image);
    const { channels, height, width } = info.card.image;
    $('interp-dims').textContent = (channels * height * width).toLocaleString('en');
    this.scoreless = needsScore(info.card, 'Interpolation through the prior');
    $('interp-status').textContent = this.scoreless;
    $('interp-caption').textContent = '';
    $('interp-bar').value = 0;
    clearCanvas($('interp-path'));
    this.error('');
    this.setBusy(this.busy);
  }

  setBusy(value) {
    this.busy = value;
    $('interp-new').disabled = value || !this.model;
    $('interp-run').disabled = value || !this.model || Boolean(this.scoreless);
    $('interp-cancel').disabled = !value;
  }

  error(message) {
    showMessage($('interp-error'), message);
  }

  /** Runs `call(model, onProgress)` with the section busy and its progress bar; errors land in
   * its box. Resolves to the result, or null (also when another model was picked meanwhile). */
  async task(call) {
    if (this.busy || !this.model) return null;
    const model = this.model;
    this.error('');
    this.setBusy(true);
    $('interp-bar').value = 0;
    $('interp-status').textContent = 'starting…';
    try {
      const out = await call(model, (p) => {
        if (model !== this.model) return;
        $('interp-bar').value = p.progress;
        $('interp-status').textContent = `${p.total != null ? 'sampling' : p.progress < 0.5 ? 'encoding' : 'decoding'} · step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
      });
      return model === this.model ? out : null;
    } catch (e) {
      if (model !== this.model) return null;
      $('interp-status').textContent = e.name === 'CancelledError' ? e.message : '';
      if (e.name !== 'CancelledError') this.error(e.message);
      return null;
    } finally {
      this.setBusy(false);
    }
  }

  /** Two samples at the Generate section's sampler and settings, batch 2, as A and B. */
  async newPair() {
    const out = await this.task(async (model, onProgress) => {
      const { class: _, guidance: __, ...opts } = this.options();
      return model.generate({ ...opts, batch: 2 }, onProgress);
    });
    if (!out) return;
    const n = out.data.length / 2;
    const [lo, hi] = this.card.image.range;
    this.painters.forEach((p, i) => p.setImage(out.data.slice(i * n, (i + 1) * n).map((v) => Math.min(hi, Math.max(lo, v)))));
    $('interp-status').textContent = this.scoreless ? `two ${subjectOf(this.card).many} from ${out.evals} evaluations. ${this.scoreless}` : `two ${subjectOf(this.card).many} from ${out.evals} evaluations; press Interpolate`;
  }

  async interpolate() {
    if (this.scoreless) return;
    const [a, b] = this.painters.map((p) => p.image);
    const out = await this.task((model, onProgress) => model.interpolate({ a, b }, onProgress));
    if (!out) return;
    $('interp-bar').value = 1;
    drawGrid($('interp-path'), out.data, out.shape, { range: this.card.image.range, scale: 3, columns: out.shape[0] });
    const [ra, rb] = out.reconstructionRms.map((r) => r.toFixed(4));
    $('interp-status').textContent = `${out.shape[0]} points decoded: ${out.evals} score evaluations in ${formatSeconds(out.seconds)}`;
    $('interp-caption').textContent = `A, the path through the prior, B. The ends are A and B encoded and decoded again: root-mean-square error ${ra} and ${rb} per pixel (of 1).`;
    window.scorefield.lastInterpolation = out;
  }
}
