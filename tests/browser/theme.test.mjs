// Theming <score-field> from a host page, in headless Chromium: the computed colours of the
// widget's box, its Run button, its status line and its error box follow the light palette, the
// dark one under an emulated `prefers-color-scheme: dark`, the `theme` attribute over the scheme,
// and a page's own custom properties and ::part() rules. The palettes are read from
// www/widget-style.js, so the test checks that the CSS applies them, not a copy of their values.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DARK, LIGHT } from '../../www/widget-style.js';
import { ARTIFACTS, launch, openPage, serve } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await serve();
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  server?.close();
});

/** `#rrggbb` as getComputedStyle writes it. */
const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

/** What a palette should give the pieces `look` reads. */
const expected = (p) => ({
  scheme: p === DARK ? 'dark' : 'light',
  rootBg: rgb(p.bg), rootFg: rgb(p.fg), runBg: rgb(p.accent), runFg: rgb(p['accent-fg']),
  status: rgb(p.muted), errorBg: rgb(p['error-bg']), errorFg: rgb(p['error-fg']), canvasBg: rgb(p['canvas-bg']),
});

/** The computed colours of a widget's pieces, found through their part names. */
function look(page, selector) {
  return page.$eval(selector, (w) => {
    const part = (name) => w.shadowRoot.querySelector(`[part~="${name}"]`);
    const css = (name) => getComputedStyle(part(name));
    return {
      scheme: getComputedStyle(w).colorScheme,
      rootBg: css('root').backgroundColor, rootFg: css('root').color, runBg: css('run').backgroundColor, runFg: css('run').color,
      status: css('status').color, errorBg: css('error').backgroundColor, errorFg: css('error').color, canvasBg: css('canvas').backgroundColor,
    };
  });
}

// Widgets whose model is missing: they fail to load at once and show their error box.
const MISSING = 'model="/models/missing.json"';
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="/score-field.js"></script>
<style>
  score-field.custom { --sf-accent: rgb(200, 0, 100); --sf-radius: 0px; }
  score-field.custom::part(run) { border-color: rgb(0, 128, 0); }
  .site { --sf-bg: rgb(10, 20, 30); --sf-font: monospace; }
</style></head><body>
<score-field id="auto" ${MISSING}></score-field>
<score-field id="dark" theme="dark" ${MISSING}></score-field>
<score-field id="light" theme="light" ${MISSING}></score-field>
<score-field id="blue" theme="blue" ${MISSING}></score-field>
<score-field id="custom" class="custom" ${MISSING}></score-field>
<div class="site"><score-field id="inherited" ${MISSING}></score-field></div>
</body></html>`;

async function themePage() {
  const page = await browser.newPage({ viewport: { width: 1000, height: 4000 } });
  await page.route(`${server.url}theme.html`, (route) => route.fulfill({ contentType: 'text/html', body: PAGE }));
  await page.goto(`${server.url}theme.html`);
  await page.waitForFunction(() => [...document.querySelectorAll('score-field')].every((w) => w.state === 'error'), null, { timeout: 60_000 });
  return page;
}

test('light scheme: the light palette by default and with theme="light", the dark one with theme="dark"; a bad theme is named', async () => {
  const page = await themePage();
  await page.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(await look(page, '#auto'), expected(LIGHT));
  assert.deepEqual(await look(page, '#light'), expected(LIGHT));
  assert.deepEqual(await look(page, '#dark'), expected(DARK));
  // The error box is shown (the model is missing), in the palette's colours above.
  assert.equal(await page.$eval('#auto', (w) => w.shadowRoot.querySelector('[part~=error]').hidden), false);
  // theme="blue" is named in the box, and the widget follows the scheme.
  assert.match(await page.$eval('#blue', (w) => w.shadowRoot.querySelector('[part~=notice]').textContent), /theme="blue" is not one of auto, light, dark; using auto/);
  assert.deepEqual(await look(page, '#blue'), expected(LIGHT));
  await page.close();
});

test('dark scheme: the dark palette by default and with theme="dark", the light one with theme="light"', async () => {
  const page = await themePage();
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.deepEqual(await look(page, '#auto'), expected(DARK));
  assert.deepEqual(await look(page, '#dark'), expected(DARK));
  assert.deepEqual(await look(page, '#light'), expected(LIGHT));
  assert.deepEqual(await look(page, '#blue'), expected(DARK));
  // A page switching the attribute sees the palette follow at once, with no rebuild.
  const switched = await page.$eval('#auto', (w) => {
    const root = w.shadowRoot.querySelector('[part~=root]');
    w.setAttribute('theme', 'light');
    return { bg: getComputedStyle(root).backgroundColor, same: root === w.shadowRoot.querySelector('[part~=root]') };
  });
  assert.deepEqual(switched, { bg: rgb(LIGHT.bg), same: true });
  await page.close();
});

test("a page's custom properties and ::part() rules restyle the widget in both schemes", async () => {
  const page = await themePage();
  for (const [scheme, palette] of [['light', LIGHT], ['dark', DARK]]) {
    await page.emulateMedia({ colorScheme: scheme });
    const custom = await page.$eval('#custom', (w) => {
      const css = (name) => getComputedStyle(w.shadowRoot.querySelector(`[part~="${name}"]`));
      return { runBg: css('run').backgroundColor, runBorder: css('run').borderTopColor, radius: css('root').borderTopLeftRadius, canvasRadius: css('canvas').borderTopLeftRadius, rootBg: css('root').backgroundColor };
    });
    // --sf-accent on the element, border-color through ::part(run), --sf-radius for the box and
    // (halved) its canvases; the rest stays the palette's.
    assert.deepEqual(custom, { runBg: 'rgb(200, 0, 100)', runBorder: 'rgb(0, 128, 0)', radius: '0px', canvasRadius: '0px', rootBg: rgb(palette.bg) }, scheme);
    // Properties set on an ancestor reach the widget too.
    const inherited = await page.$eval('#inherited', (w) => {
      const root = getComputedStyle(w.shadowRoot.querySelector('[part~=root]'));
      return { bg: root.backgroundColor, font: root.fontFamily, fg: root.color };
    });
    assert.deepEqual(inherited, { bg: 'rgb(10, 20, 30)', font: 'monospace', fg: rgb(palette.fg) }, scheme);
  }
  await page.close();
});

test('every documented part name reaches its element from the page', async () => {
  // A field widget and an inpaint widget between them have every part; each part's rule sets its
  // own custom property.
  const parts = ['root', 'canvas', 'output', 'source', 'controls', 'input', 'button', 'run', 'cancel', 'progress', 'status', 'notice', 'error', 'time', 'learned', 'learned-error', 'loss'];
  const rules = parts.map((name) => `score-field::part(${name}) { --probe-${name}: reached; }`).join('\n');
  const html = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/score-field.js"></script><style>${rules}</style>
    <score-field id="field" mode="field"></score-field><score-field id="inpaint" mode="inpaint" ${MISSING}></score-field>`;
  const page = await browser.newPage({ viewport: { width: 1000, height: 3000 } });
  await page.route(`${server.url}parts.html`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${server.url}parts.html`);
  await page.waitForFunction(() => document.getElementById('field').state === 'ready' && document.getElementById('inpaint').state === 'error', null, { timeout: 120_000 });
  // For each name: how many elements carry it, and how many of those its rule reached.
  const found = await page.evaluate((names) => Object.fromEntries(names.map((name) => {
    const els = [...document.querySelectorAll('score-field')].flatMap((w) => [...w.shadowRoot.querySelectorAll('[part]')]).filter((e) => e.part.contains(name));
    return [name, { carry: els.length, reached: els.filter((e) => getComputedStyle(e).getPropertyValue(`--probe-${name}`).trim() === 'reached').length }];
  })), parts);
  for (const name of parts) {
    assert.ok(found[name].carry > 0, `no element has part "${name}"`);
    assert.equal(found[name].reached, found[name].carry, `::part(${name}) reached ${found[name].reached} of ${found[name].carry} elements`);
  }
  // And a rule for a name the widget does not have reaches nothing (the probe can say no).
  const stranger = await page.$eval('#field', (w) => getComputedStyle(w.shadowRoot.querySelector('[part~=root]')).getPropertyValue('--probe-nothing'));
  assert.equal(stranger, '');
  await page.close();
});

test('the example post has a dark variant: under prefers-color-scheme: dark the page and its ten widgets are dark, with no author CSS for the widgets', async () => {
  const page = await openPage(browser, `${server.url}example-post.html`);
  await page.emulateMedia({ colorScheme: 'dark' });
  const colours = await page.evaluate(() => ({
    body: getComputedStyle(document.body).backgroundColor,
    text: getComputedStyle(document.body).color,
    widgets: [...document.querySelectorAll('score-field')].map((w) => getComputedStyle(w.shadowRoot.querySelector('[part~=root]')).backgroundColor),
  }));
  assert.equal(colours.widgets.length, 10);
  assert.deepEqual(colours.widgets, Array(10).fill(rgb(DARK.bg)));
  // The page itself is dark too, with light text (its own @media rule).
  const lightness = (c) => c.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
  assert.ok(lightness(colours.body) < 40 && lightness(colours.text) > 200, JSON.stringify(colours));
  // The first widget autoplays: the screenshot shows it run, in the dark.
  await page.waitForFunction(() => document.querySelector('score-field').state === 'done', null, { timeout: 120_000 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-example-post-dark.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});
