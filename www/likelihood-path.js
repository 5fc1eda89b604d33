// What the page's likelihood section (page-likelihood.js) and the widget's likelihood mode
// (mode-likelihood.js) share: an image's bits/dim through the probability-flow ODE with x(t) kept
// along its way to the prior, and a button per reference image its card names.
import { fromPixels, toPixels } from './painter.js';

/** Measures the image of `painter` (as 8-bit pixels, which is what the likelihood is of) with
 * `model`, keeping x(t) at `count` evenly spaced points of progress (for the VE SDE, evenly
 * spaced log σ): the image dissolving into noise. `onProgress(p)` hears every step and
 * `onFrames(frames)` every frame kept ({sigma, data}), both until `current()` turns false (another
 * model was picked). Resolves to {result, pixels}. */
export async function measureLikelihood(model, painter, count, { onProgress, onFrames, current = () => true }) {
  const pixels = toPixels(painter.image, painter.range);
  const frames = [];
  const result = await model.likelihood({ pixels }, (p) => {
    if (!current()) return;
    onProgress(p);
    if (p.preview && p.progress >= frames.length / (count - 1)) {
      frames.push({ sigma: p.sigma, data: p.preview.data });
      onFrames(frames);
    }
  });
  return { result, pixels };
}

/** A button per reference image of `file` (client.js likelihoodReferences; none for null), made by
 * `make(reference)`: a click draws the reference on `painter`, then calls `picked(reference)`. */
export function referenceButtons(file, painter, make, picked) {
  return (file?.images ?? []).map((r) => {
    const button = make(r);
    button.dataset.reference = r.name;
    button.addEventListener('click', () => {
      painter.setImage(fromPixels(r.pixels, painter.range));
      picked(r);
    });
    return button;
  });
}
