// The page and the example post in three engines: Debian's Chromium (playwright-core), Firefox ESR
// (puppeteer-core over WebDriver BiDi) and WebKitGTK's MiniBrowser (WebKitWebDriver under Xvfb),
// all three on the CPU path (Firefox and WebKit have no WebGPU here; Chromium's is turned off).
// Few steps and small batches where the test chooses: WebKit and Firefox run the wasm as fast as
// Chromium at best. A missing browser fails its tests, saying how to install it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canvasColour, channelSpread, inpaintingChanges } from './colour.mjs';
import { ARTIFACTS, ENGINES, ROOT, launchEngine, serve } from './harness.mjs';

const CSP = "script-src 'self' 'wasm-unsafe-eval'";
const CARD = JSON.parse(readFileSync(path.join(ROOT, 'www', 'models', 'mnist.json'), 'utf8'));
const EMOJI_DPM_STEPS = JSON.parse(readFileSync(path.join(ROOT, 'www', 'models', 'emoji.json'), 'utf8')).sampling.steps['dpmpp-2m'].min;
const RUN_TIMEOUT = 300_000;
let site;
let post;
before(async () => {
  site = await serve();
  // The example post as a blogger would host dist/, under the strict CSP widget.test.mjs uses.
  post = await serve([`Content-Security-Policy: ${CSP}`], path.join(ROOT, 'dist'));
});
after(() => {
  site?.close();
  post?.close();
});

/** The page's shown error, or ''. */
const shownError = () => {
  const e = document.getElementById('error');
  return e.hidden ? '' : e.textContent;
};

/** Mean and standard deviation of an array of numbers. */
function stats(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, std: Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length) };
}

/** Sets the page's controls as a reader would (the sampler first: it resets the steps). */
function setControls(page, controls) {
  return page.evaluate((values) => {
    for (const [id, value] of Object.entries(values)) {
      const input = document.getElementById(id);
      input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }
  }, controls);
}

/** The viewport box of `selector` once scrolled into the middle of the view. */
function boxOf(page, selector) {
  return page.evaluate((sel) => {
    const el = document.querySelector(sel);
    el.scrollIntoView({ block: 'center' });
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height };
  }, selector);
}

/** Clicks `button`, then waits until the page has `done` (a key of window.scorefield) or shows an
 * error; fails on the error. */
async function runAndWait(page, button, done) {
  await page.evaluate((key) => { window.scorefield[key] = null; }, done);
  await page.click(button);
  // A boolean, not the result: WebKit's driver serialises a returned batch value by value, which
  // for 16 colour images took it longer than the run.
  await page.waitFor((key) => Boolean(window.scorefield[key]) || !document.getElementById('error').hidden, done, RUN_TIMEOUT);
  assert.equal(await page.evaluate(shownError), '', `the page showed an error after ${button}`);
}

/** Pixel std of a canvas (0 when blank); `selector` in the page, or in a widget's Shadow DOM. */
function canvasStd(page, host, selector) {
  return page.evaluate(([h, sel]) => {
    const root = h ? document.querySelector(h).shadowRoot : document;
    const c = root.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
    return Math.sqrt(s2 / n - (s / n) ** 2);
  }, [host, selector]);
}

for (const name of ENGINES) {
  describe(name, () => {
    let engine;
    before(async () => {
      engine = await launchEngine(name);
    });
    after(() => engine?.close());

    test(`${name}: the page generates non-blank digits on the CPU and inpaints only the masked pixels`, async () => {
      const page = await engine.newPage();
      await page.goto(`${site.url}?backend=cpu`);
      await page.waitFor(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, 120_000);
      assert.equal(await page.evaluate(shownError), '', `${engine.version}: the page did not load`);
      assert.equal(await page.evaluate(() => document.getElementById('badge').dataset.backend), 'cpu');
      await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 2, seed: 3 });
      await runAndWait(page, '#generate', 'lastResult');
      const samples = await page.evaluate(() => ({ shape: window.scorefield.lastResult.shape, data: Array.from(window.scorefield.lastResult.data) }));
      assert.deepEqual(samples.shape, [2, 1, 28, 28]);
      assert.ok(samples.data.every(Number.isFinite), 'the samples contain NaN or ±∞');
      const n = 28 * 28;
      for (let b = 0; b < 2; b++) {
        const { std } = stats(samples.data.slice(b * n, (b + 1) * n));
        assert.ok(std > 0.1, `sample ${b} is blank (pixel std ${std})`);
      }
      assert.ok((await canvasStd(page, null, '#grid')) > 5, 'the grid shows nothing');

      // The first sample becomes the source (a click on it), its right half is masked by the
      // region button and a brush stroke adds to the mask; then Inpaint.
      const grid = await boxOf(page, '#grid');
      await page.pointer([{ type: 'move', x: grid.x + grid.width * 0.2, y: grid.y + grid.height * 0.4 }, { type: 'down' }, { type: 'up' }]);
      await page.click('button[data-region="right"]');
      const src = await boxOf(page, '#source');
      await page.pointer([
        { type: 'move', x: src.x + src.width * 0.1, y: src.y + src.height * 0.9 },
        { type: 'down' },
        { type: 'move', x: src.x + src.width * 0.3, y: src.y + src.height * 0.95 },
        { type: 'up' },
      ]);
      // The source is the first sample as the grid shows it (clamped to the data range).
      const source = await page.evaluate(() => Array.from(window.scorefield.painter.image));
      const [lo, hi] = CARD.image.range;
      const off = Math.max(...source.map((v, i) => Math.abs(v - Math.min(hi, Math.max(lo, samples.data[i])))));
      assert.ok(off < 1e-6, `the clicked sample is not the source (max difference ${off})`);
      await setControls(page, { sampler: 'edm-heun', steps: 5 });
      await runAndWait(page, '#inpaint', 'lastInpaint');
      const out = await page.evaluate(() => {
        const r = window.scorefield.lastInpaint;
        return { shape: r.shape, data: Array.from(r.data), image: Array.from(r.image), keep: Array.from(r.keep) };
      });
      assert.deepEqual(out.shape, [2, 1, 28, 28]);
      assert.ok(out.keep.filter((k) => k === 0).length >= 28 * 14 + 5, 'the mask is the right half and the stroke');
      let changed = 0;
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < n; i++) {
          const v = out.data[b * n + i];
          assert.ok(Number.isFinite(v), `inpainted pixel ${i} is ${v}`);
          if (out.keep[i] === 1) assert.ok(Math.abs(v - out.image[i]) <= 1 / 255, `kept pixel ${i} changed: ${out.image[i]} → ${v}`);
          else if (Math.abs(v - out.image[i]) > 1 / 255) changed++;
        }
      }
      assert.ok(changed > 50, `only ${changed} masked pixels changed`);
      await page.screenshot(path.join(ARTIFACTS, `engines-${name}-page.png`));
      await page.close();
    });

    test(`${name}: the page picks the emoji model: 16 coloured 3×32×32 images, and an inpainting keeps every channel of the unmasked pixels exactly`, async () => {
      const page = await engine.newPage();
      const loaded = async () => {
        await page.waitFor(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, 120_000);
        assert.equal(await page.evaluate(shownError), '', `${engine.version}: the model did not load`);
      };
      await page.goto(`${site.url}?backend=cpu`);
      await loaded();
      // The picker, as a reader picks: the page loads the emoji in its workers.
      await setControls(page, { model: 'models/emoji.json' });
      await loaded();
      assert.equal(await page.evaluate(() => document.getElementById('likelihood-title').textContent), 'How likely is this emoji?');
      // The fewest steps the emoji card allows DPM-Solver++(2M).
      await setControls(page, { sampler: 'dpmpp-2m', steps: EMOJI_DPM_STEPS, batch: 16, seed: 3 });
      await runAndWait(page, '#generate', 'lastResult');
      const samples = await page.evaluate(() => ({ shape: window.scorefield.lastResult.shape, data: Array.from(window.scorefield.lastResult.data) }));
      assert.deepEqual(samples.shape, [16, 3, 32, 32]);
      assert.ok(samples.data.every(Number.isFinite), 'the samples contain NaN or ±∞');
      const spread = channelSpread(samples.data, samples.shape);
      assert.ok(spread.every((v) => v > 0.01), `grey images among the samples: channel spread ${spread.map((v) => v.toFixed(3))}`);
      assert.ok((await page.evaluate(canvasColour, [null, '#grid'])).coloured > 0.05, 'the grid is drawn in grey');
      // The first sample (top left of the 4 × 4 grid) is the source; its lower half is masked.
      const grid = await boxOf(page, '#grid');
      await page.pointer([{ type: 'move', x: grid.x + grid.width * 0.1, y: grid.y + grid.height * 0.1 }, { type: 'down' }, { type: 'up' }]);
      await page.click('button[data-region="bottom"]');
      await setControls(page, { batch: 2 });
      await runAndWait(page, '#inpaint', 'lastInpaint');
      const out = await page.evaluate(() => {
        const r = window.scorefield.lastInpaint;
        return { shape: r.shape, data: Array.from(r.data), image: Array.from(r.image), keep: Array.from(r.keep) };
      });
      assert.deepEqual(out.shape, [2, 3, 32, 32]);
      const off = Math.max(...out.image.map((v, i) => Math.abs(v - Math.min(1, Math.max(0, samples.data[i])))));
      assert.ok(off < 1e-6, `the clicked sample is not the source (max difference ${off})`);
      assert.equal(out.keep.filter((k) => k === 0).length, 3 * 32 * 16, 'the mask is the lower half in every channel');
      const { kept, regenerated } = inpaintingChanges(out);
      assert.equal(kept, 0, `${kept} kept values differ from the source`);
      assert.ok(Math.min(...regenerated) > 50, `masked values changed per channel: ${regenerated}`);
      await page.screenshot(path.join(ARTIFACTS, `engines-${name}-emoji.png`));
      await page.close();
    });

    test(`${name}: the example post's generate widget draws digits and its inpaint widget keeps the unmasked half`, async () => {
      const page = await engine.newPage();
      await page.goto(`${post.url}example-post.html`);
      // Waits for a widget to reach one of `states` (or 'error'), keeping it in view: it starts
      // only when scrolled to, and the widgets above it grow as they load.
      const widgetState = (sel, states = ['done']) => page.waitFor(([s, wanted]) => {
        const w = document.querySelector(s);
        const state = w.getAttribute('state');
        if (!state || state === 'idle') w.scrollIntoView({ block: 'center' });
        return [...wanted, 'error'].includes(state) && { state, error: w.shadowRoot.querySelector('.error').hidden ? '' : w.shadowRoot.querySelector('.error').textContent };
      }, [sel, states], RUN_TIMEOUT);
      // The generate widget autoplays once in view (the post's own settings: batch 9, the default sampler).
      const generated = await widgetState('score-field[mode=generate]');
      assert.deepEqual(generated, { state: 'done', error: '' }, `${engine.version}: the generate widget`);
      const result = await page.evaluate(() => {
        const r = document.querySelector('score-field[mode=generate]').result;
        return { shape: r.shape, finite: Array.from(r.data).every(Number.isFinite) };
      });
      assert.deepEqual(result, { shape: [9, 1, 28, 28], finite: true });
      assert.ok((await canvasStd(page, 'score-field[mode=generate]', 'canvas.output')) > 5, 'the generate widget shows a blank canvas');

      // The inpaint widget: its source digit (drawn when it comes into view) with the bottom half
      // masked; every completion keeps the top half and differs below.
      assert.deepEqual(await widgetState('score-field[mode=inpaint]', ['ready']), { state: 'ready', error: '' }, `${engine.version}: the inpaint widget's source digit`);
      await page.evaluate(() => { document.querySelector('score-field[mode=inpaint]').run(); });
      const inpainted = await widgetState('score-field[mode=inpaint]');
      assert.deepEqual(inpainted, { state: 'done', error: '' }, `${engine.version}: the inpaint widget`);
      const out = await page.evaluate(() => {
        const r = document.querySelector('score-field[mode=inpaint]').result;
        return { shape: r.shape, data: Array.from(r.data) };
      });
      const [batch, , h, w] = out.shape;
      assert.ok(batch >= 2, `${batch} completions`);
      const px = (b, y, x) => out.data[(b * h + y) * w + x];
      let keptDiff = 0;
      let maskedDiff = 0;
      for (let b = 1; b < batch; b++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const d = Math.abs(px(b, y, x) - px(0, y, x));
            if (y < h / 2) keptDiff = Math.max(keptDiff, d);
            else maskedDiff = Math.max(maskedDiff, d);
          }
        }
      }
      assert.ok(keptDiff <= 1 / 255, `the kept top half differs between completions by ${keptDiff}`);
      assert.ok(maskedDiff > 0.1, `the masked bottom half is the same in every completion (${maskedDiff})`);
      await page.screenshot(path.join(ARTIFACTS, `engines-${name}-post.png`));
      await page.close();
    });
  });
}
