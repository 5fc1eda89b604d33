// <score-field mode="likelihood">: bits/dim of an image the reader draws (or one of the model's
// reference images) through the probability-flow ODE, with x(t) on its way to the prior, beside
// the reference values the CLI measured (the card's likelihood_references). Without references
// (the card names none, or the file is broken) it measures drawings alone, and says so.
import { likelihoodReferences } from './client.js';
import { measureLikelihood, referenceButtons } from './likelihood-path.js';
import { Mode } from './mode.js';
import { fromPixels } from './painter.js';
import { drawFrames, fitScale } from './render.js';
import { subjectOf } from './subject.js';

// Frames shown of the path to the prior.
const PATH_FRAMES = 9;

export class Likelihood extends Mode {
  static label = 'Measure';
  // No sampler, steps, batch, seed or class to choose; buttons of its own: the reference images
  // and Blank.
  static samples = false;
  static ownControls = true;

  constructor(widget) {
    super(widget);
    this.painter = null;
    this.references = null; // client.js likelihoodReferences
    this.origin = ''; // what the drawing started from
  }

  build(ui, el) {
    const side = this.widget.side;
    ui.source = el('canvas', { class: 'source', part: 'canvas source', width: side, height: side, role: 'img', 'aria-label': 'the image to measure; draw on it' });
    ui.views.prepend(el('div', { class: 'view' }, ui.source, el('div', { class: 'caption', text: 'draw on it' })));
    ui.output.append(el('div', { class: 'caption', text: 'x(t) on its way to the prior' }));
    // A button per reference image once the model has loaded, and Blank.
    ui.references = el('span', { class: 'references' });
    ui.blank = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Blank' });
    ui.controls.append(ui.references, ui.blank);
    ui.blank.addEventListener('click', () => this.setSource(null, 'a blank image'));
  }

  /** A drawing canvas, the reference images as buttons, the first of them to start from. */
  async loaded() {
    const w = this.widget;
    const ui = w.ui;
    this.painter = w.painter(ui.source);
    ui.source.setAttribute('aria-label', `the ${subjectOf(w.info.card).one} to measure; draw on it`);
    this.painter.tool = 'draw';
    this.painter.radius = 1.5;
    this.painter.onchange = () => (this.origin = 'your drawing');
    try {
      // Against the card's URL as the model resolved it: the `model` attribute may be relative.
      this.references = await likelihoodReferences(w.model.url, w.info.card);
    } catch (error) {
      ui.notice.textContent = `${error.message}; measuring drawings works without them`;
      ui.notice.hidden = false;
    }
    const references = this.references?.images ?? [];
    const make = (r) => w.el('button', { type: 'button', class: 'secondary', part: 'button', text: r.label });
    ui.references.replaceChildren(...referenceButtons(this.references, this.painter, make, (r) => (this.origin = r.label)));
    if (references.length) this.setSource(references[0].pixels, references[0].label);
    else this.origin = 'a blank image';
    ui.status.textContent = references.length ? 'draw, or pick a reference image, then Measure' : 'draw on the image, then Measure';
    return false;
  }

  /** The drawing from 8-bit `pixels` (null: blank, the card's background), and what it is called. */
  setSource(pixels, origin) {
    if (!this.painter) return;
    this.painter.setImage(pixels ? fromPixels(pixels, this.widget.info.card.image.range) : this.painter.blankImage());
    this.origin = origin;
  }

  /** Bits/dim of the drawing, with x(t) frames and the references beside it. */
  run() {
    const w = this.widget;
    const ui = w.ui;
    const range = w.info.card.image.range;
    const origin = this.origin;
    const shape = this.painter.shape;
    return w.task(async (report) => {
      const { result } = await measureLikelihood(w.model, this.painter, PATH_FRAMES, {
        onProgress: (p) => {
          report(p);
          ui.status.textContent = `step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
        },
        onFrames: (frames) => drawFrames(ui.canvas, frames, shape, { range, scale: fitScale([PATH_FRAMES, ...shape.slice(1)], w.side), columns: 3 }),
      });
      const others = (this.references?.images ?? []).map((r) => `${r.label} ${r.bits_per_dim.toFixed(2)}`).join(', ');
      return { result: { ...result, label: origin }, status: `${origin}: ${result.bitsPerDim.toFixed(3)} bits/dim${others ? ` (the CLI measured ${others})` : ''}` };
    });
  }
}
