// The widget's palettes (www/widget-style.js), checked in Node without a browser: every text
// colour on its background meets WCAG AA, controls' outlines the 3:1 of non-text contrast, in the
// light and the dark palette; and the style sheet gives each palette where it belongs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTRAST_PAIRS, DARK, LIGHT, METRICS, STYLE } from '../../www/widget-style.js';

/** WCAG 2.1 relative luminance of a #rrggbb colour. */
function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2.1 contrast ratio, (L1 + 0.05) / (L2 + 0.05) with L1 the lighter. */
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('the contrast formula gives WCAG\'s figures: black on white 21:1, #777 on white 4.48:1', () => {
  assert.equal(contrast('#000000', '#ffffff'), 21);
  assert.equal(contrast('#777777', '#ffffff').toFixed(2), '4.48');
});

for (const [name, palette] of [['light', LIGHT], ['dark', DARK]]) {
  test(`the ${name} palette: text at least 4.5:1 on its background, controls' outlines at least 3:1`, () => {
    const short = [];
    for (const [fg, bg, needed] of CONTRAST_PAIRS) {
      const ratio = contrast(palette[fg], palette[bg]);
      if (!(ratio >= needed)) short.push(`${fg} ${palette[fg]} on ${bg} ${palette[bg]}: ${ratio.toFixed(2)}:1, needs ${needed}:1`);
    }
    assert.deepEqual(short, []);
  });
}

test('both palettes name the same properties, every one a #rrggbb colour', () => {
  assert.deepEqual(Object.keys(DARK), Object.keys(LIGHT));
  for (const value of [...Object.values(LIGHT), ...Object.values(DARK)]) assert.match(value, /^#[0-9a-f]{6}$/);
  // Every pair that is checked names colours of the palettes.
  for (const [fg, bg] of CONTRAST_PAIRS) assert.ok(fg in LIGHT && bg in LIGHT, `${fg} / ${bg}`);
});

test('the style sheet gives the light palette to the host, the dark one under prefers-color-scheme: dark (unless theme="light") and with theme="dark"', () => {
  const block = (selector) => {
    const at = STYLE.indexOf(`${selector} {`);
    assert.ok(at >= 0, `no rule for ${selector}`);
    return STYLE.slice(at, STYLE.indexOf('}', at));
  };
  const declares = (rule, palette) => Object.entries(palette).every(([k, v]) => rule.includes(`--_sf-${k}: ${v};`));
  assert.ok(declares(block(':host'), LIGHT) && declares(block(':host'), METRICS), block(':host'));
  const media = STYLE.slice(STYLE.indexOf('@media (prefers-color-scheme: dark)'));
  assert.ok(declares(media.slice(0, media.indexOf('}')), DARK), 'the dark palette under the media query');
  assert.ok(media.startsWith('@media (prefers-color-scheme: dark) {\n  :host(:not([theme=light]))'), media.slice(0, 80));
  assert.ok(declares(block(':host([theme=dark])'), DARK));
  // The sheet reads every property through var(--sf-NAME, default), so a page's value wins.
  for (const k of [...Object.keys(LIGHT), ...Object.keys(METRICS)]) assert.ok(STYLE.includes(`var(--sf-${k}, var(--_sf-${k}))`), `--sf-${k} is never used`);
});
