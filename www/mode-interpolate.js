// <score-field mode="interpolate">: two samples at the widget's settings, then the path between
// them through the prior: both encoded with the probability-flow ODE, the spherical path between
// their codes decoded, shown as a grid read left to right, top to bottom.
import { Mode } from './mode.js';
import { drawGrid, fitScale } from './render.js';
import { subjectOf } from './subject.js';

// The share of a run's progress that drawing its two samples takes.
const PAIR_SHARE = 0.2;

export class Interpolate extends Mode {
  static label = 'Interpolate';
  // Its two samples are always two.
  static hidden = ['batch'];

  /** One run: the two samples are the first fifth of its progress. */
  run() {
    const w = this.widget;
    const ui = w.ui;
    return w.task(async (report) => {
      const { result: pair } = await w.draw('generate', { ...w.options(), batch: 2 }, ui.canvas, null, (p) => report(p, PAIR_SHARE * p.progress));
      const n = pair.data.length / 2;
      const [a, b] = [pair.data.slice(0, n), pair.data.slice(n)];
      const result = await w.model.interpolate({ a, b }, (p) => {
        report(p, PAIR_SHARE + (1 - PAIR_SHARE) * p.progress);
        ui.status.textContent = `${p.progress < 0.5 ? 'encoding' : 'decoding'} · step ${p.step} · σ = ${p.sigma.toPrecision(3)}`;
      });
      drawGrid(ui.canvas, result.data, result.shape, { range: w.info.card.image.range, scale: fitScale(result.shape, w.side) });
      const [ra, rb] = result.reconstructionRms.map((r) => r.toFixed(4));
      const { one, many } = subjectOf(w.info.card);
      return { result, status: `first ${one} → second through the prior; the ends are the ${many} encoded and decoded (RMS error ${ra}, ${rb}); ${result.evals} evaluations` };
    });
  }
}
