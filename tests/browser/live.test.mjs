// Live inpainting (www/live-inpaint.js) on the page and in the widget, on the CPU build: two brush
// strokes in quick succession cancel the first stroke's run, and what is left on the canvas is the
// second's, pixel for pixel what a fresh inpaint of the same image with the final mask and the
// same seed draws (the same noise, so the same completion). Few steps, batch 2.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, openPage, serve } from './harness.mjs';

// Long enough a run (em at 60 steps) that the second stroke ends while the first's run goes on.
const RUN = { sampler: 'em', steps: 60, batch: 2, seed: 5 };

let server;
let dist;
let browser;
before(async () => {
  server = await serve();
  dist = await serve([], path.join(ROOT, 'dist'));
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  server?.close();
  dist?.close();
});

/** Two strokes on `canvas` (a locator), one after the other as fast as the mouse goes: a
 * vertical one at 20 % of its width, then one at 75 %, each over the top 40 %. */
async function twoStrokes(page, canvas) {
  const box = await canvas.boundingBox();
  for (const x of [0.2, 0.75]) {
    await page.mouse.move(box.x + box.width * x, box.y + box.height * 0.05);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * x, box.y + box.height * 0.4, { steps: 4 });
    await page.mouse.up();
  }
}

/** The RGBA pixels of a canvas (a locator), as a plain array. */
function pixels(canvas) {
  return canvas.evaluate((c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data));
}

function countDifferent(a, b) {
  assert.equal(a.length, b.length, 'the canvases differ in size');
  return a.reduce((n, v, i) => n + (v !== b[i]), 0);
}

test('the page: a second stroke cancels the first stroke\'s live run; the canvas ends as a fresh inpaint with the final mask and seed draws it', async () => {
  const page = await openPage(browser, `${server.url}?backend=cpu`);
  // Loaded (the badge names the backend): the load fills the controls and sizes the source canvas,
  // so settings made and strokes painted before it would be undone or miss the canvas.
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 120_000 });
  assert.equal(await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent)), '');
  assert.equal(await page.$eval('#live', (e) => e.checked), true, 'live is on by default');
  await page.selectOption('#sampler', RUN.sampler);
  for (const [id, value] of [['steps', RUN.steps], ['batch', RUN.batch], ['seed', RUN.seed]]) await page.fill(`#${id}`, String(value));
  // A source image (a pattern in the model's range) and no mask: the strokes make the mask.
  await page.evaluate(() => {
    const p = window.scorefield.painter;
    const [lo, hi] = p.range;
    p.setImage(p.image.map((_, i) => lo + ((hi - lo) * ((i * 7) % 13)) / 12));
    p.clearMask();
  });
  await twoStrokes(page, page.locator('#source'));
  await page.waitForFunction(() => window.scorefield.live.runs.length >= 2 && !window.scorefield.live.current, null, { timeout: 300_000 });
  const live = await page.evaluate(() => window.scorefield.live.runs);
  assert.deepEqual(live, [{ superseded: true, finished: false }, { superseded: false, finished: true }], 'the first run was cancelled, the second finished');
  const shown = await page.evaluate(() => {
    const r = window.scorefield.lastInpaint;
    return { data: Array.from(r.data), keep: Array.from(r.keep), mask: Array.from(window.scorefield.painter.keepMask()) };
  });
  assert.deepEqual(shown.keep, shown.mask, 'the result is of the final mask');
  // Both strokes are in the mask: columns near 20 % and 75 % of the width, rows near the top.
  for (const x of [5, 21]) assert.equal(shown.mask[5 * 28 + x], 0, `pixel (${x}, 5) is masked`);
  const before = await pixels(page.locator('#inpainted'));

  // A fresh inpaint of the same image, mask and seed, with the Inpaint button.
  await page.evaluate(() => (window.scorefield.lastInpaint = null));
  await page.click('#inpaint');
  await page.waitForFunction(() => window.scorefield.lastInpaint, null, { timeout: 300_000 });
  const fresh = await page.evaluate(() => Array.from(window.scorefield.lastInpaint.data));
  assert.deepEqual(shown.data, fresh, 'the live result is the fresh inpaint\'s, value for value');
  assert.equal(countDifferent(before, await pixels(page.locator('#inpainted'))), 0, 'the canvas showed what a fresh inpaint draws');
  assert.equal(await page.evaluate(() => window.scorefield.live.runs.length), 2, 'the button\'s run is no live run');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the widget (dist/): the same, with a CancelledError for the first stroke\'s run and a done for the second\'s; live="off" runs nothing', async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  const attrs = `mode="inpaint" backend="cpu" sampler="${RUN.sampler}" steps="${RUN.steps}" batch="${RUN.batch}" seed="${RUN.seed}" controls="run,seed"`;
  const html = `<!doctype html><script type="module" src="/score-field.js"></script><score-field id="on" ${attrs}></score-field><score-field id="off" live="off" ${attrs}></score-field>`;
  await page.route(`${dist.url}live.html`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${dist.url}live.html`);
  await page.waitForFunction(() => [...document.querySelectorAll('score-field')].every((w) => ['ready', 'error'].includes(w.state)), null, { timeout: 300_000 });
  await page.evaluate(() => {
    window.events = { on: [], off: [] };
    for (const w of document.querySelectorAll('score-field')) {
      for (const type of ['done', 'error']) w.addEventListener(type, (e) => window.events[w.id].push(type === 'done' ? 'done' : e.detail.name));
    }
  });
  assert.deepEqual(await page.$$eval('score-field', (ws) => ws.map((w) => [w.state, w.settings.live, w.shadowRoot.querySelector('input[name=live]').checked])), [['ready', true, true], ['ready', false, false]]);

  const on = page.locator('#on');
  await twoStrokes(page, on.locator('canvas.source'));
  await page.waitForFunction(() => window.events.on.includes('done') || window.events.on.some((e) => e !== 'CancelledError'), null, { timeout: 300_000 });
  assert.deepEqual(await page.evaluate(() => window.events.on), ['CancelledError', 'done'], 'the first stroke\'s run was cancelled, the second\'s finished');
  const live = await on.evaluate((w) => Array.from(w.result.data));
  const before = await pixels(on.locator('canvas.output'));
  const fresh = await on.evaluate(async (w) => Array.from((await w.run()).data));
  assert.deepEqual(live, fresh, 'the live result is a fresh run\'s, value for value');
  assert.equal(countDifferent(before, await pixels(on.locator('canvas.output'))), 0, 'the canvas showed what a fresh inpaint draws');

  // live="off": strokes paint the mask and run nothing.
  await twoStrokes(page, page.locator('#off canvas.source'));
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(await page.evaluate(() => window.events.off), []);
  assert.equal(await page.$eval('#off', (w) => w.state), 'ready');
  assert.deepEqual(page.errors, []);
  await page.close();
});
