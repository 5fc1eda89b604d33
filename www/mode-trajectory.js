// <score-field mode="trajectory">: one sample's path x(t) from noise to data, kept every few
// steps, then scrubbed with a slider under the figure, with t and σ(t).
import { Mode } from './mode.js';
import { drawGrid, fitScale } from './render.js';

// Frames kept of a run.
const FRAMES = 60;

export class Trajectory extends Mode {
  static label = 'Sample';

  constructor(widget) {
    super(widget);
    this.frames = []; // [{t, sigma, data, shape, final?}]
  }

  build(ui, el) {
    ui.scrub = el('input', { type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'diffusion time t' });
    ui.scrub.disabled = true;
    ui.time = el('output', { text: 't = 1' });
    ui.root.append(el('div', { class: 'scrub' }, el('span', { class: 'caption', text: 'noise' }), ui.scrub, el('span', { class: 'caption', text: 'data' }), ui.time));
    ui.scrub.addEventListener('input', () => this.show(Number(ui.scrub.value)));
  }

  /** Keeps x(t) every few steps, then lets the reader scrub t. */
  async run() {
    const w = this.widget;
    const ui = w.ui;
    const opts = w.options();
    const every = Math.max(1, Math.round(opts.steps / FRAMES));
    this.frames = [];
    ui.scrub.disabled = true;
    const keep = (p) => {
      this.frames.push({ t: p.t, sigma: p.sigma, data: p.preview.data, shape: p.preview.shape });
      ui.time.textContent = `t = ${p.t.toFixed(3)}, σ(t) = ${p.sigma.toPrecision(3)}`;
    };
    const result = await w.sample('generate', { ...opts, previewEvery: every, previewOf: 'x' }, ui.canvas, keep);
    if (!result) return null;
    this.frames.push({ t: 0, sigma: null, data: result.data, shape: result.shape, final: true });
    ui.scrub.max = this.frames.length - 1;
    ui.scrub.value = this.frames.length - 1;
    ui.scrub.disabled = false;
    this.show(this.frames.length - 1);
    return result;
  }

  show(i) {
    const frame = this.frames[i];
    if (!frame) return;
    const w = this.widget;
    drawGrid(w.ui.canvas, frame.data, frame.shape, { range: w.info.card.image.range, scale: fitScale(frame.shape, w.side) });
    w.ui.time.textContent = frame.final ? 'x(0): the sample (after the final denoising step)' : `t = ${frame.t.toFixed(3)}, σ(t) = ${frame.sigma.toPrecision(3)}`;
  }
}
