// The demo page's small helpers, shared by its sections (app.js, page-*.js).

/** The page's element with `id`. */
export const $ = (id) => document.getElementById(id);

/** Shows `message` in the error box `box` (an element), or hides it when empty. */
export function showMessage(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

/** "4.2 s", "3 min 5 s". */
export function formatSeconds(s) {
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Empties a result canvas (a new model's images have another shape). */
export function clearCanvas(canvas) {
  canvas.width = 0;
  canvas.height = 0;
}

/** Why a section that integrates the score's probability-flow ODE (the likelihood, interpolation
 * through the prior) cannot run with `card`'s model, or '' when it can: a consistency model has
 * no score (the library refuses it by name; the page says so before a click). */
export function needsScore(card, what) {
  return card.parameterisation?.type === 'consistency'
    ? `${what} needs a score model, and ${card.name} is a consistency model, which has none: pick a score model above.`
    : '';
}
