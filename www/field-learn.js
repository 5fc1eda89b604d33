// <score-field mode="field">: a small score network learning the field's score in the page by
// denoising score matching, beside the exact score it should learn (field-view.js holds the rest
// of the view; field-draw.js draws it). Trains in chunks in the worker until paused; every few
// chunks compares the learned score with the exact one at the noise level shown.
import { drawLoss, drawPanel, heatMap } from './field-draw.js';

// Learning: steps per call to the worker, and a fresh comparison with the exact score every this
// many steps (on a grid this many cells a side).
const TRAIN_CHUNK = 25;
const COMPARE_EVERY = 100;
const COMPARE_GRID = 32;
// Pixels a side of the learned-score and error figures.
const SIDE = 280;

/** A share as a whole percentage. */
export function percent(v) {
  return `${(100 * v).toFixed(0)}%`;
}

export class Learner {
  /** `view` is the FieldView: its field, grids, controls and hooks. */
  constructor(view) {
    this.view = view;
    this.ui = view.ui;
    this.learning = null; // {points, losses, step, compare: learnedGrid result + step, t, sigma} once learn() ran
    this.training = false;
    this.trainRun = null; // the token of the training loop that may go on
    this.trainLoop = null; // its promise
  }

  /** The Learn section: its buttons, the learned field beside the true one, the loss; into `ui`. */
  build(ui, el) {
    ui.train = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Learn the score' });
    ui.resetLearning = el('button', { type: 'button', class: 'secondary', part: 'button', text: 'Reset' });
    ui.resetLearning.disabled = true;
    // The learned field beside the true one (the figure above), and its error, at the noise level
    // of the last comparison.
    ui.learnedCanvas = el('canvas', { class: 'side-canvas learned-canvas', part: 'canvas learned', width: SIDE, height: SIDE, role: 'img', 'aria-label': 'the learned score as arrows over the true density, with the samples it learned from' });
    ui.errorCanvas = el('canvas', { class: 'side-canvas error-canvas', part: 'canvas learned-error', width: SIDE, height: SIDE, role: 'img', 'aria-label': 'the error of the learned score, |learned − true|, with the samples it learned from' });
    ui.learnedCaption = el('figcaption', { text: '' });
    ui.errorCaption = el('figcaption', { text: '' });
    ui.beside = el('div', { class: 'beside' },
      el('figure', {}, ui.learnedCanvas, ui.learnedCaption),
      el('figure', {}, ui.errorCanvas, ui.errorCaption));
    ui.beside.hidden = true;
    ui.useLearned = el('input', { type: 'checkbox', name: 'use-learned' });
    ui.useLearned.disabled = true;
    ui.loss = el('canvas', { class: 'loss-canvas', part: 'canvas loss', width: 560, height: 96, role: 'img', 'aria-label': 'training loss' });
    ui.learnOut = el('div', { class: 'caption', 'aria-live': 'polite', text: this.hint() });
    ui.learn = el('div', { class: 'learn' },
      el('div', { class: 'row' }, ui.train, ui.resetLearning, el('label', { class: 'caption' }, ui.useLearned, ' sample with it')),
      ui.beside, ui.loss, ui.learnOut);
    ui.train.addEventListener('click', () => (this.training ? this.pause() : this.start()));
    ui.resetLearning.addEventListener('click', () => this.reset());
    return ui.learn;
  }

  hint() {
    return `a small network learns this score from ${this.view.about.trainingPoints} samples by denoising score matching`;
  }

  /** Trains in chunks until paused, drawing the loss and, every few chunks, the learned field. A
   * Resume waits for the paused loop's last chunk, so that one loop trains at a time. */
  async start() {
    const ui = this.ui;
    if (!this.view.field) {
      this.view.hooks.showError('the drawing is empty: draw at least one point on the canvas first');
      return;
    }
    const run = {};
    this.trainRun = run;
    this.training = true;
    ui.train.textContent = 'Pause';
    ui.resetLearning.disabled = false;
    const previous = this.trainLoop;
    this.trainLoop = (async () => {
      await previous?.catch(() => {});
      await this.#train(run, this.view.field);
    })();
    return this.trainLoop;
  }

  async #train(run, field) {
    const ui = this.ui;
    const current = () => run === this.trainRun && field === this.view.field;
    try {
      if (!this.learning) {
        const { points } = await field.learn(Number(ui.seed.value));
        if (!current()) return;
        this.learning = { points, losses: [], step: 0, compare: null };
        ui.useLearned.disabled = false;
      }
      while (current()) {
        const { losses, step } = await field.train(TRAIN_CHUNK);
        if (!current() || !this.learning) return;
        this.learning.losses.push(...losses);
        this.learning.step = step;
        if (step % COMPARE_EVERY < TRAIN_CHUNK) await this.compare();
        this.drawLoss();
      }
    } catch (error) {
      // A Reset or a new distribution while a request was in flight is not an error.
      if (!current()) return;
      this.view.hooks.showError(error.message);
      this.pause();
    }
  }

  pause() {
    this.training = false;
    this.trainRun = null;
    this.ui.train.textContent = this.learning ? 'Resume' : 'Learn the score';
  }

  /** Drops the network (a new distribution, or Reset). */
  drop() {
    this.training = false;
    this.trainRun = null;
    if (this.learning) this.view.field?.forget().catch(() => {}); // the field may be gone already
    this.learning = null;
    const ui = this.ui;
    ui.train.textContent = 'Learn the score';
    ui.resetLearning.disabled = true;
    ui.useLearned.checked = false;
    ui.useLearned.disabled = true;
    ui.beside.hidden = true;
    ui.learnOut.textContent = this.hint();
    ui.loss.getContext('2d').clearRect(0, 0, ui.loss.width, ui.loss.height);
  }

  reset() {
    this.drop();
    this.view.draw();
  }

  /** The learned score against the exact one at the noise level shown. */
  async compare() {
    const g = this.view.currentGrid();
    if (!g || !this.learning) return;
    const learning = this.learning;
    const step = learning.step;
    const c = await this.view.field.learnedGrid(g.t, COMPARE_GRID);
    if (learning !== this.learning) return;
    learning.compare = { ...c, step, t: g.t, sigma: g.sigma, image: heatMap(c.error, c.n, c.n, 1) };
    const far = c.sparseAbsError > 0 ? `${(c.sparseAbsError / c.denseAbsError).toFixed(1)}× larger where it is under 0.1 % of its peak` : 'the density is nowhere under 0.1 % of its peak at this σ';
    this.ui.learnOut.textContent = `step ${step} at ${this.view.sigmaName()} = ${g.sigma.toPrecision(2)}: error ${percent(c.denseError)} of the score where the density is high, ${far}`;
    this.drawBeside();
  }

  /** The learned score beside the true one: its arrows over the true density, and its error
   * |learned − true| on the heat map's log scale, both with the samples it learned from (the
   * error grows where they are few). Drawn when a comparison arrives, not every frame. */
  drawBeside() {
    const ui = this.ui;
    const c = this.learning?.compare;
    ui.beside.hidden = !c;
    if (!c) return;
    const g = this.view.grids.find((x) => x.t === c.t) ?? this.view.currentGrid();
    const [points, halfWidth] = [this.learning.points, this.view.about.viewHalfWidth];
    drawPanel(ui.learnedCanvas, { image: g.image, grid: c, points, halfWidth });
    drawPanel(ui.errorCanvas, { image: c.image, grid: null, points, halfWidth });
    const at = `${this.view.sigmaName()} = ${c.sigma.toPrecision(2)}`;
    ui.learnedCaption.textContent = `learned score after ${c.step} steps (${at}); the true one is above`;
    ui.errorCanvas.dataset.step = c.step;
    ui.errorCaption.textContent = `its error |learned − true| (${at}), 0.1 to 100 on a log scale`;
  }

  /** The loss curve, in the theme's colours: the accent (the canvas's own colour) and the
   * captions'. */
  drawLoss() {
    const c = this.ui.loss;
    const style = getComputedStyle(c);
    drawLoss(c, this.learning?.losses ?? [], { line: style.color, text: getComputedStyle(this.ui.learnOut).color, font: style.fontFamily });
  }
}
