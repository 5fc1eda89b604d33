// The look of <score-field>: its two palettes and its style sheet. A page themes the widget with
// the CSS custom properties below, set on the element (`score-field { --sf-accent: … }`) or on
// anything above it (`:root { … }`), and styles its parts with `score-field::part(run) { … }`.
// Without them the widget follows the reader's `prefers-color-scheme`; its `theme` attribute
// (`light` or `dark`) forces one palette. docs/reference/widget.md lists the properties and parts.
//
// Each palette entry becomes `--sf-NAME`. Text pairs meet WCAG AA (4.5:1) and borders of controls
// 3:1 in both palettes (tests/browser/palette.test.mjs computes them).

/** Colours on a light page (the default). */
export const LIGHT = Object.freeze({
  bg: '#f6f7f9', // the widget's box
  fg: '#1d2330', // text
  muted: '#566072', // captions, labels, the status line
  border: '#858e9e', // the box and the controls' outlines
  surface: '#ffffff', // inputs, secondary buttons, the loss curve's panel
  accent: '#3d5afe', // the Run button; secondary buttons' text; progress and sliders
  'accent-fg': '#ffffff', // text on the accent
  'canvas-bg': '#3a3f47', // behind the images
  'error-bg': '#fdecea',
  'error-fg': '#8a1c12',
  'notice-bg': '#fff7e0',
  'notice-fg': '#6b4e00',
});

/** Colours under `prefers-color-scheme: dark`, or with theme="dark". */
export const DARK = Object.freeze({
  bg: '#1b1f27',
  fg: '#e6e9ef',
  muted: '#a3acbb',
  border: '#737c8f',
  surface: '#252b36',
  accent: '#8c9eff',
  'accent-fg': '#10131a',
  'canvas-bg': '#11141a',
  'error-bg': '#3d1d1b',
  'error-fg': '#ffb4a9',
  'notice-bg': '#372e12',
  'notice-fg': '#f2d37a',
});

/** Type and shape, the same in both palettes. `radius` is the box's corners (controls and
 * canvases take half of it); `gap` the spacing between the widget's pieces. */
export const METRICS = Object.freeze({
  font: "system-ui, -apple-system, 'Segoe UI', sans-serif",
  radius: '8px',
  gap: '8px',
});

/** The pairs that carry text (foreground, background), and the outlines that mark controls,
 * with the contrast each needs (WCAG 2.1: 1.4.3 text, 1.4.11 user-interface components). */
export const CONTRAST_PAIRS = Object.freeze([
  ['fg', 'bg', 4.5], ['muted', 'bg', 4.5], ['fg', 'surface', 4.5], ['muted', 'surface', 4.5],
  ['accent-fg', 'accent', 4.5], ['accent', 'surface', 4.5], ['error-fg', 'error-bg', 4.5],
  ['notice-fg', 'notice-bg', 4.5], ['border', 'bg', 3], ['border', 'surface', 3],
]);

/** `var(--sf-NAME)` with the widget's default for it: the page's value wins wherever it is set. */
export const prop = (name) => `var(--sf-${name}, var(--_sf-${name}))`;

const declare = (values) => Object.entries(values).map(([name, v]) => `--_sf-${name}: ${v};`).join(' ');

const half = `calc(${prop('radius')} / 2)`;
const gap = (k) => `calc(${prop('gap')} * ${k})`;

export const STYLE = `
:host { display: block; margin: 1.5em 0; color-scheme: light; ${declare(LIGHT)} ${declare(METRICS)} }
@media (prefers-color-scheme: dark) {
  :host(:not([theme=light])) { color-scheme: dark; ${declare(DARK)} }
}
:host([theme=dark]) { color-scheme: dark; ${declare(DARK)} }
:host([hidden]) { display: none; }
.root { box-sizing: border-box; font: 14px/1.4 ${prop('font')}; color: ${prop('fg')}; accent-color: ${prop('accent')};
  background: ${prop('bg')}; border: 1px solid ${prop('border')}; border-radius: ${prop('radius')}; padding: ${gap(1.25)}; max-width: 100%; }
:where(.root *, .root *::before, .root *::after) { box-sizing: border-box; font: inherit; color: inherit; margin: 0; }
.views { display: flex; gap: ${prop('gap')}; flex-wrap: wrap; align-items: flex-start; }
canvas { display: block; width: 100%; height: auto; image-rendering: pixelated; background: ${prop('canvas-bg')}; border-radius: ${half}; touch-action: none; }
.view { flex: 1 1 0; min-width: 0; }
.caption { font-size: 12px; color: ${prop('muted')}; margin-top: 2px; }
.controls { display: flex; flex-wrap: wrap; gap: ${gap(0.75)} ${gap(1.25)}; align-items: end; margin-top: ${prop('gap')}; }
.controls label { display: flex; flex-direction: column; font-size: 12px; color: ${prop('muted')}; }
.controls input, .controls select { font-size: 13px; padding: 2px 4px; border: 1px solid ${prop('border')}; border-radius: ${half}; background: ${prop('surface')}; color: ${prop('fg')}; }
.controls input[type=number] { width: 5.5em; }
.controls label, .controls select { max-width: 100%; }
button { font-size: 13px; padding: 4px 12px; border-radius: ${half}; border: 1px solid ${prop('accent')}; background: ${prop('accent')}; color: ${prop('accent-fg')}; cursor: pointer; }
button.secondary { background: ${prop('surface')}; color: ${prop('accent')}; }
button:disabled { opacity: .5; cursor: default; }
/* The slider shrinks, and in a narrow widget its readout takes the next line, inside the box. */
.scrub { display: flex; flex-wrap: wrap; gap: ${prop('gap')}; align-items: center; margin-top: ${gap(0.75)}; }
.scrub input { flex: 1 1 8em; min-width: 0; }
.scrub output { font-variant-numeric: tabular-nums; font-size: 12px; min-width: 12em; }
progress { width: 100%; height: 4px; margin-top: ${gap(0.75)}; display: block; }
.status { font-size: 12px; color: ${prop('muted')}; margin-top: 4px; min-height: 1.4em; }
.notice { margin-top: ${gap(0.75)}; padding: 6px 8px; border-radius: ${half}; background: ${prop('notice-bg')}; color: ${prop('notice-fg')}; font-size: 12px; white-space: pre-wrap; }
.error { margin-top: ${gap(0.75)}; padding: 6px 8px; border-radius: ${half}; background: ${prop('error-bg')}; color: ${prop('error-fg')}; font-size: 13px; white-space: pre-wrap; }
[hidden] { display: none !important; }
`;
