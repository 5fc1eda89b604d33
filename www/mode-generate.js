// <score-field>'s generate and inpaint modes (mode.js says what a mode is).
import { LiveInpaint } from './live-inpaint.js';
import { Mode } from './mode.js';
import { subjectOf } from './subject.js';

/** mode="generate": a batch of samples at the controls' settings. */
export class Generate extends Mode {
  static label = 'Generate';

  run() {
    const w = this.widget;
    return w.sample('generate', w.options(), w.ui.canvas);
  }
}

/** mode="inpaint": a source image (one sample) with a painted mask; the masked pixels are
 * regenerated, with `live` after each stroke too (live-inpaint.js). Its button says what the card
 * calls one image ("New digit", "New emoji"). */
export class Inpaint extends Mode {
  static label = 'Inpaint';
  // Its New image and Clear mask buttons, and the live switch.
  static ownControls = true;

  constructor(widget) {
    super(widget);
    this.painter = null;
    this.live = null;
    this.drawn = 0; // source images drawn so far
  }

  sync(settings) {
    this.widget.ui.live.checked = settings.live;
    if (this.live) this.live.enabled = settings.live;
  }

  build(ui, el) {
    const side = this.widget.side;
    ui.source = el('canvas', { class: 'source', part: 'canvas source', width: side, height: side, role: 'img', 'aria-label': 'the image to complete; paint over the part to regenerate' });
    ui.views.prepend(el('div', { class: 'view' }, ui.source, el('div', { class: 'caption', text: 'paint what to regenerate' })));
    ui.output.append(el('div', { class: 'caption', text: 'completions' }));
    ui.newSource = el('button', { type: 'button', class: 'secondary', part: 'button' }, 'New ', el('span', { 'data-subject': 'one', text: 'image' }));
    ui.clearMask = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Clear mask' });
    ui.live = el('input', { type: 'checkbox', name: 'live', part: 'input' });
    const live = el('label', { title: 'regenerate the painted part after each stroke, with the same seed' }, 'live', ui.live);
    ui.controls.append(ui.newSource, ui.clearMask, live);
    ui.live.addEventListener('change', () => this.live && (this.live.enabled = ui.live.checked));
    ui.newSource.addEventListener('click', () => this.newSource());
    ui.clearMask.addEventListener('click', () => this.painter?.clearMask());
  }

  async loaded() {
    const w = this.widget;
    this.painter = w.painter(w.ui.source);
    w.ui.source.setAttribute('aria-label', `the ${subjectOf(w.info.card).one} to complete; paint over the part to regenerate`);
    this.live = new LiveInpaint(this.painter, { run: () => w.run(), cancel: () => w.cancel(), busy: () => w.busy });
    this.live.enabled = w.ui.live.checked;
    await this.newSource();
    return true;
  }

  /** A new source image (one sample), with the bottom half masked. */
  async newSource() {
    const w = this.widget;
    const ui = w.ui;
    // A different image on every click (seeds 1000 + seed, 1001 + seed, …): reproducible per page.
    this.drawn += 1;
    const opts = { ...w.options(), batch: 1, seed: Number(ui.seed.value) + 999 + this.drawn };
    const result = await w.sample('generate', opts, ui.canvas, null, { run: false });
    if (!result) return;
    const [lo, hi] = w.info.card.image.range;
    this.painter.setImage(Array.from(result.data, (v) => Math.min(hi, Math.max(lo, v))));
    if (!this.painter.paintedCount()) this.painter.maskRegion('bottom');
    ui.status.textContent = 'paint over what to regenerate, then Inpaint';
    w.setState('ready');
  }

  run() {
    const w = this.widget;
    const p = this.painter;
    if (!p.paintedCount()) return w.refuse(`paint over part of the ${subjectOf(w.info.card).one} first: the painted pixels are regenerated`);
    return w.sample('inpaint', { ...w.options(), image: p.image, mask: p.keepMask() }, w.ui.canvas);
  }
}
