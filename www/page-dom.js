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
