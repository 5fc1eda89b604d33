// The demo page in a real browser. Few steps and small batches: the software WebGPU adapter here
// is slow (seconds per score evaluation).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS, launch, openPage, quiet, serve, watchOpening } from './harness.mjs';

let server;
let gpu;
before(async () => {
  server = await serve();
  gpu = await launch({ webgpu: true });
});
after(async () => {
  await gpu?.close();
  server?.close();
});

async function waitLoaded(page) {
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 120_000 });
}

async function setControls(page, { sampler, steps, batch, seed, corrector }) {
  await page.selectOption('#sampler', sampler);
  await page.fill('#steps', String(steps));
  await page.fill('#batch', String(batch));
  await page.fill('#seed', String(seed));
  if (corrector) await page.fill('#corrector', String(corrector));
}

// One Generate that must finish: the result is this run's own (the last one is cleared first, so a
// cancelled or failed run cannot hand back the previous grid).
async function generate(page) {
  // A control out of range (a step count below the sampler's floor) would block the submit.
  const invalid = await page.$$eval('#controls input', (inputs) => inputs.filter((i) => !i.checkValidity()).map((i) => `${i.id}=${i.value}: ${i.validationMessage}`));
  assert.deepEqual(invalid, [], 'the controls are invalid');
  await page.evaluate(() => { window.scorefield.lastResult = null; });
  await page.click('#generate');
  await page.waitForFunction(() => /^done|cancelled/.test(document.getElementById('status').textContent) || !document.getElementById('error').hidden, null, { timeout: 300_000 });
  const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  assert.equal(error, '', `the page showed an error: ${error}`);
  const status = await page.$eval('#status', (s) => s.textContent);
  assert.match(status, /^done/, `the run did not finish: ${status}`);
  const result = await page.evaluate(() => window.scorefield.lastResult && { shape: window.scorefield.lastResult.shape, data: Array.from(window.scorefield.lastResult.data) });
  assert.ok(result, 'the run finished without a result');
  return result;
}

test('left alone, the page generates a batch by itself once the model has loaded: its samples form on the grid, then the batch of the card\'s shape is there', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    // From the first frame: when the grid first shows something (a preview of the run, as for a
    // click) and when the finished batch is there.
    await page.addInitScript(watchOpening);
    await page.goto(`${server.url}?backend=cpu`);
    // Nothing is clicked.
    await page.waitForFunction(() => window.opening.done || !document.getElementById('error').hidden, null, { timeout: 120_000, polling: 100 });
    const out = await page.evaluate(() => {
      const { lastResult: r, model } = window.scorefield;
      return { ...window.opening, shape: r?.shape, finite: r && Array.from(r.data).every(Number.isFinite), image: model.info.card.image, batch: model.info.defaults.batch.generate, batchControl: Number(document.getElementById('batch').value), status: document.getElementById('status').textContent, grid: [document.getElementById('grid').width, document.getElementById('grid').height], error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent };
    });
    console.log(`opening run: first preview ${out.preview?.toFixed(0)} ms, samples ${out.done?.toFixed(0)} ms after navigation`);
    assert.equal(out.error, '');
    assert.deepEqual(out.shape, [out.batch, out.image.channels, out.image.height, out.image.width], 'the default batch of the card\'s shape');
    assert.equal(out.batchControl, out.batch);
    assert.ok(out.finite, 'the samples contain NaN or ±∞');
    assert.ok(out.preview !== null && out.preview < out.done, 'the grid showed the samples forming before they were done');
    assert.match(out.status, new RegExp(`^done: ${out.batch} digits by `));
    assert.ok(out.grid[0] > out.image.width * 2, `grid canvas is ${out.grid}`);
    // The output sits beside the controls.
    const [grid, form] = await Promise.all(['#grid', '#controls'].map(async (s) => (await page.$(s)).boundingBox()));
    assert.ok(form.x >= grid.x + grid.width && form.y < grid.y + grid.height, `the controls (${JSON.stringify(form)}) are not beside the grid (${JSON.stringify(grid)})`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'page-opening.png') });
    assert.deepEqual(page.errors, []);
    // With reduced motion asked for, the grid shows only the finished samples.
    const still = await browser.newPage({ viewport: { width: 1100, height: 1400 }, reducedMotion: 'reduce' });
    await still.addInitScript(watchOpening);
    await still.goto(`${server.url}?backend=cpu`);
    await still.waitForFunction(() => window.opening.done || !document.getElementById('error').hidden, null, { timeout: 120_000, polling: 100 });
    const seen = await still.evaluate(() => ({ ...window.opening, shape: window.scorefield.lastResult?.shape }));
    assert.deepEqual([seen.preview, seen.shape], [null, out.shape], 'a preview was drawn under reduced motion');
  } finally {
    await browser.close();
  }
});

test('a click on Generate during the opening run supersedes it: only the clicked run draws and finishes, and picking another model cancels it', async () => {
  const page = await openPage(gpu, `${server.url}?backend=cpu`);
  await waitLoaded(page);
  await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('status').textContent), null, { timeout: 60_000, polling: 50 });
  await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 3, seed: 9 });
  const statuses = [];
  await page.exposeFunction('sawStatus', (s) => statuses.push(s));
  await page.evaluate(() => new MutationObserver(() => window.sawStatus(document.getElementById('status').textContent)).observe(document.getElementById('status'), { childList: true, characterData: true, subtree: true }));
  const clicked = await generate(page);
  assert.deepEqual(clicked.shape, [3, 1, 28, 28]);
  assert.ok(!statuses.some((s) => /cancelled/.test(s)), `the superseded run spoke: ${statuses.join(' | ')}`);
  assert.ok(statuses.filter((s) => /^done/.test(s)).length === 1, statuses.join(' | '));
  // The same settings again: the same samples (the opening run left nothing behind).
  const again = await generate(page);
  assert.deepEqual(again.data, clicked.data);
  // Another model picked during its opening run, then this one again: the emoji's run is
  // cancelled and nothing of it comes after; this model's opening run finishes.
  await page.selectOption('#model', 'models/emoji.json');
  await waitLoaded(page);
  await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('status').textContent), null, { timeout: 120_000, polling: 50 });
  statuses.length = 0;
  await page.selectOption('#model', 'models/mnist.json');
  await waitLoaded(page);
  await page.waitForFunction(() => window.scorefield.lastResult || !document.getElementById('error').hidden, null, { timeout: 300_000 });
  assert.deepEqual(await page.evaluate(() => window.scorefield.lastResult.shape), [16, 1, 28, 28]);
  assert.ok(!statuses.some((s) => /emoji/.test(s)), `the emoji run spoke after the pick: ${statuses.join(' | ')}`);
  assert.match(await page.$eval('#status', (s) => s.textContent), /^done: 16 digits/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the page loads on WebGPU and Generate gives a non-blank, NaN-free, reproducible grid', async () => {
  const page = await openPage(gpu, `${server.url}?backend=webgpu`);
  await waitLoaded(page);
  assert.equal(await page.$eval('#badge', (b) => b.dataset.backend), 'webgpu', await page.$eval('#badge', (b) => b.textContent));
  // The controls start at the library's default sampler, listed first, at its default steps.
  const start = await page.evaluate(() => ({ sampler: document.getElementById('sampler').value, first: document.querySelector('#sampler option').value, steps: document.getElementById('steps').value }));
  assert.equal(start.sampler, 'dpmpp-2m');
  assert.equal(start.first, 'dpmpp-2m');
  assert.ok(Number(start.steps) >= 5, JSON.stringify(start));
  await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 4, seed: 7 });
  const first = await generate(page);
  assert.deepEqual(first.shape, [4, 1, 28, 28]);
  assert.ok(first.data.every(Number.isFinite), 'the samples contain NaN or ±∞');
  const mean = first.data.reduce((a, b) => a + b, 0) / first.data.length;
  const std = Math.sqrt(first.data.reduce((a, b) => a + (b - mean) ** 2, 0) / first.data.length);
  assert.ok(std > 0.01, `the samples are blank (std ${std})`);
  const canvas = await page.$eval('#grid', (c) => [c.width, c.height]);
  assert.ok(canvas[0] > 28 * 2 && canvas[1] > 28 * 2, `grid canvas is ${canvas}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-after-generate.png'), fullPage: true });
  const second = await generate(page);
  const diff = Math.max(...first.data.map((v, i) => Math.abs(v - second.data[i])));
  assert.ok(diff <= 1e-6, `same seed, different samples (max diff ${diff})`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('painting a mask and inpainting changes only the masked pixels', async () => {
  const page = await openPage(gpu, `${server.url}?backend=webgpu`);
  await waitLoaded(page);
  await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 2, seed: 3 });
  await generate(page);
  // Pick the first sample, mask its right half with the brush tool and a stroke, and inpaint.
  const grid = await page.$('#grid');
  const box = await grid.boundingBox();
  await page.mouse.click(box.x + box.width * 0.2, box.y + box.height * 0.4);
  await page.click('button[data-region="right"]');
  const src = await (await page.$('#source')).boundingBox();
  await page.mouse.move(src.x + src.width * 0.1, src.y + src.height * 0.9);
  await page.mouse.down();
  await page.mouse.move(src.x + src.width * 0.3, src.y + src.height * 0.95, { steps: 5 });
  await page.mouse.up();
  await page.selectOption('#sampler', 'edm-heun');
  await page.fill('#steps', '5');
  await page.click('#inpaint');
  await page.waitForFunction(() => window.scorefield.lastInpaint || !document.getElementById('error').hidden, null, { timeout: 300_000 });
  const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  assert.equal(error, '', error);
  const out = await page.evaluate(() => {
    const r = window.scorefield.lastInpaint;
    return { shape: r.shape, data: Array.from(r.data), image: Array.from(r.image), keep: Array.from(r.keep) };
  });
  const n = out.image.length;
  assert.deepEqual(out.shape, [2, 1, 28, 28]);
  let changed = 0;
  for (let b = 0; b < 2; b++) {
    for (let i = 0; i < n; i++) {
      const v = out.data[b * n + i];
      assert.ok(Number.isFinite(v));
      if (out.keep[i] === 1) assert.ok(Math.abs(v - out.image[i]) <= 1 / 255, `kept pixel ${i} changed: ${out.image[i]} → ${v}`);
      else if (Math.abs(v - out.image[i]) > 1 / 255) changed++;
    }
  }
  assert.ok(out.keep.filter((k) => k === 0).length >= 28 * 14, 'the mask covers the right half');
  assert.ok(changed > 50, `only ${changed} masked pixels changed`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-after-inpaint.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the controls start at the library\'s values; the steps control has each sampler\'s floor and says why; fewer steps do not run', async () => {
  const page = await openPage(gpu, `${server.url}?backend=cpu`);
  await waitLoaded(page);
  // Batch, seed, churn and the limits are the library's (catalog.rs RUN_DEFAULTS, the sampler
  // table), as the worker describes the model; index.html holds none of them.
  const start = await page.evaluate(async () => {
    const { RemoteModel } = await import('/client.js');
    const info = await new RemoteModel(new URL('models/mnist.json', location.href).href, 'cpu').load();
    const v = (id) => document.getElementById(id);
    document.getElementById('sampler').value = 'edm-heun';
    document.getElementById('sampler').dispatchEvent(new Event('change'));
    return {
      info: { defaults: info.defaults, maxBatch: info.maxBatch, churn: info.samplers.find((x) => x.name === 'edm-heun').defaultChurn },
      batch: Number(v('batch').value), seed: Number(v('seed').value), maxBatch: Number(v('batch').max), maxSteps: Number(v('steps').max),
      maxCorrector: Number(v('corrector').max), maxSnr: Number(v('snr').max), maxChurn: Number(v('churn').max), churn: v('churn').value,
    };
  });
  const d = start.info.defaults;
  assert.equal(start.batch, d.batch.generate, JSON.stringify(start));
  assert.equal(start.seed, d.seed);
  assert.equal(start.maxBatch, Math.min(d.maxBatch, start.info.maxBatch));
  assert.deepEqual([start.maxSteps, start.maxCorrector, start.maxSnr, start.maxChurn], [d.maxSteps, d.maxCorrectorSteps, d.maxSnr, d.maxChurn]);
  assert.equal(start.churn, String(start.info.churn));
  // Each sampler shows the option fields it reads, and no others.
  const shown = async (sampler) => {
    await page.selectOption('#sampler', sampler);
    return page.$$eval('label[data-option]', (ls) => ls.filter((l) => l.checkVisibility()).map((l) => l.dataset.option));
  };
  assert.deepEqual(await shown('pc'), ['correctorSteps', 'snr']);
  assert.deepEqual(await shown('edm-heun'), ['churn']);
  assert.deepEqual(await shown('dpmpp-2m'), []);
  await page.selectOption('#sampler', 'em');
  const em = await page.evaluate(() => ({ min: Number(document.getElementById('steps').min), value: Number(document.getElementById('steps').value), hint: document.getElementById('steps-hint').textContent }));
  assert.ok(em.min > 3 && em.value >= em.min, JSON.stringify(em));
  assert.match(em.hint, new RegExp(`At least ${em.min} steps: .+`), em.hint);
  // Once the page's opening run has ended, a click with too few steps starts nothing.
  await page.evaluate(() => window.scorefield.idle());
  const idle = await page.$eval('#status', (s) => s.textContent);
  await page.evaluate(() => { window.scorefield.lastResult = null; });
  await page.fill('#steps', '3');
  await page.click('#generate');
  await page.waitForTimeout(500);
  assert.equal(await page.$eval('#steps', (i) => i.validity.rangeUnderflow), true);
  assert.equal(await page.$eval('#status', (s) => s.textContent), idle, 'a run started below the floor');
  assert.equal(await page.evaluate(() => window.scorefield.lastResult), null);
  // The adaptive solver chooses its own steps: no steps control.
  await page.selectOption('#sampler', 'ode-rk45');
  assert.equal(await page.$eval('#steps-label', (l) => l.hidden), true);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the Digit control guides generation to a class, on the CPU build and on WebGPU', async () => {
  for (const backend of ['cpu', 'webgpu']) {
    const page = await openPage(gpu, `${server.url}?backend=${backend}`);
    await waitLoaded(page);
    assert.equal(await page.$eval('#badge', (b) => b.dataset.backend), backend);
    // The model's card names a classifier: the control lists its ten classes, any, and each in turn.
    assert.equal(await page.$eval('#class-label', (l) => l.hidden), false);
    assert.equal(await page.$$eval('#class option', (o) => o.length), 12);
    assert.equal(await page.$eval('#guidance-label', (l) => l.hidden), true, 'the guidance slider shows only with a class chosen');
    await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 2, seed: 5 });
    const unguided = await generate(page);
    await page.selectOption('#class', backend === 'cpu' ? '3' : 'all');
    assert.equal(await page.$eval('#guidance-label', (l) => l.hidden), false);
    // A class chosen: the sampler switches to the library's setting for guided runs.
    const switched = await page.evaluate(async () => {
      const { RemoteModel } = await import('/client.js');
      const { defaults } = await new RemoteModel(new URL('models/mnist.json', location.href).href, 'cpu').load();
      return { guided: defaults.guided, sampler: document.getElementById('sampler').value, steps: Number(document.getElementById('steps').value), churn: Number(document.getElementById('churn').value), hint: document.getElementById('class-hint').textContent };
    });
    assert.deepEqual([switched.sampler, switched.steps, switched.churn], [switched.guided.sampler, switched.guided.steps, switched.guided.churn], JSON.stringify(switched));
    assert.match(switched.hint, /Bayes' rule for scores/);
    await page.fill('#steps', '5'); // few steps: SwiftShader is slow
    const guided = await generate(page);
    assert.deepEqual(guided.shape, [2, 1, 28, 28]);
    assert.ok(guided.data.every(Number.isFinite));
    const diff = Math.max(...guided.data.map((v, i) => Math.abs(v - unguided.data[i])));
    assert.ok(diff > 0.05, `guidance changed nothing (max difference ${diff})`);
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});

test('the Autoguidance slider starts at the library default, and each guided step evaluates both networks', async () => {
  const page = await openPage(gpu, `${server.url}?backend=cpu`);
  await waitLoaded(page);
  // The shipped card names a guide model: the slider shows, at the library's weight.
  const start = await page.evaluate(async () => {
    const { RemoteModel } = await import('/client.js');
    const info = await new RemoteModel(new URL('models/mnist.json', location.href).href, 'cpu').load();
    return { defaults: info.defaults, autoguided: info.autoguided, guideProblem: info.guideProblem, hidden: document.getElementById('autoguidance-label').hidden, value: Number(document.getElementById('autoguidance').value), max: Number(document.getElementById('autoguidance').max), hint: document.getElementById('autoguidance-hint').textContent };
  });
  assert.equal(start.autoguided, true, JSON.stringify(start));
  assert.equal(start.guideProblem, null);
  assert.equal(start.hidden, false);
  assert.equal(start.value, start.defaults.autoguidance);
  assert.equal(start.max, start.defaults.autoguidanceSliderMax);
  assert.ok(start.defaults.autoguidance > 1, 'autoguidance is on by default');
  assert.match(start.hint, /Karras et al\. 2024/);
  assert.ok(start.hint.includes(`σ > ${start.defaults.autoguidanceMinSigma}`), start.hint);
  // The guide described from the two cards: MNIST's has 247,073 of the model's 798,017
  // parameters (3.2 ×: "a third") and saw 160,000 of its 2,000,000 images (12.5 ×: "1/13").
  assert.ok(start.hint.includes('(here a network a third its size, trained on 1/13 of the images)'), start.hint);
  await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 2, seed: 5 });
  const guided = await generate(page);
  const evals = await page.evaluate(async () => {
    const { evals, guideEvals } = window.scorefield.lastResult;
    // Guided at every noise level: one evaluation of each network per step.
    const everywhere = await window.scorefield.model.generate({ sampler: 'dpmpp-2m', steps: 5, batch: 1, seed: 5, autoguidance: 2, autoguidanceMinSigma: 0 });
    return { evals, guideEvals, everywhere: [everywhere.evals, everywhere.guideEvals] };
  });
  // DPM-Solver++(2M), 5 steps: 5 evaluations of the model, and of its guide those at the noise
  // levels above the default interval's lower end (the Karras grid's 40, 9.2 and 1.4 of 40, 9.2,
  // 1.4, 0.11, 0.002 for the default σ_min of 1).
  assert.deepEqual([evals.evals, evals.guideEvals], [8, 3], JSON.stringify(evals));
  assert.deepEqual(evals.everywhere, [10, 5]);
  await page.fill('#autoguidance', '1');
  await page.dispatchEvent('#autoguidance', 'input');
  assert.match(await page.$eval('#autoguidance-hint', (h) => h.textContent), /off/);
  const alone = await generate(page);
  assert.equal(await page.evaluate(() => window.scorefield.lastResult.guideEvals), 0);
  const diff = Math.max(...guided.data.map((v, i) => Math.abs(v - alone.data[i])));
  assert.ok(diff > 0.05, `autoguidance changed nothing (max difference ${diff})`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Cancel stops a run within a step', async () => {
  const page = await openPage(gpu, `${server.url}?backend=webgpu`);
  await waitLoaded(page);
  await setControls(page, { sampler: 'em', steps: 500, batch: 1, seed: 1 });
  await page.click('#generate');
  await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
  const start = Date.now();
  await page.click('#cancel');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('status').textContent), null, { timeout: 60_000 });
  const status = await page.$eval('#status', (s) => s.textContent);
  const step = Number(/cancelled at step (\d+)/.exec(status)?.[1]);
  assert.ok(step > 0 && step < 500, status);
  assert.equal(await page.$eval('#generate', (b) => b.disabled), false, 'Generate is usable again');
  console.log(`cancelled at step ${step}, ${Date.now() - start} ms after the click`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the 2-D field section runs on the WebGPU device beside the model: controls from the library, particles on the moons, a network trained', async () => {
  const page = await openPage(gpu, `${server.url}?backend=webgpu`);
  await waitLoaded(page);
  // SwiftShader runs each small kernel slowly: 200 particles, 25 Heun steps.
  await page.$eval('#field', (w) => {
    for (const [k, v] of Object.entries({ distribution: 'moons', sampler: 'ode-heun', steps: 25, particles: 200 })) w.setAttribute(k, v);
  });
  await page.locator('#field').scrollIntoViewIfNeeded();
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('field').getAttribute('state')) && document.getElementById('field').shadowRoot.querySelector('.status').textContent.startsWith('Two moons'), null, { timeout: 120_000 });
  // The selects list what Field2D.describe() says; the attributes chose from them.
  const lists = await page.$eval('#field', (w) => ({
    distributions: [...w.shadowRoot.querySelectorAll('select[name=distribution] option')].map((o) => o.value),
    samplers: [...w.shadowRoot.querySelectorAll('select[name=sampler] option')].map((o) => o.value),
    sampler: w.shadowRoot.querySelector('select[name=sampler]').value,
    status: w.shadowRoot.querySelector('.status').textContent,
  }));
  assert.deepEqual(lists.distributions, ['two-modes', 'ring', 'moons', 'spiral', 'draw']);
  assert.deepEqual(lists.samplers, ['forward', 'langevin', 'ald', 'em', 'pc', 'rd', 'ode-heun', 'ode-euler']);
  assert.equal(lists.sampler, 'ode-heun');
  // On a ?backend=webgpu page the field computes on the WebGPU device too.
  assert.match(lists.status, /· WebGPU$/);
  const run = await page.$eval('#field', (w) => w.run());
  assert.equal(run.count, 200);
  assert.equal(run.updates, 25);
  // Nearly every particle ends within 1 of a moon's 256 points (the components' std is 0.25).
  const far = await page.evaluate(async (positions) => {
    const { RemoteField } = await import('./client.js');
    const { means } = await new RemoteField({ distribution: 'moons', sde: 've' }).info();
    let out = 0;
    for (let i = 0; i < positions.length; i += 2) {
      let best = Infinity;
      for (let k = 0; k < means.length; k += 2) best = Math.min(best, Math.hypot(positions[i] - means[k], positions[i + 1] - means[k + 1]));
      if (best > 1) out++;
    }
    return out;
  }, run.positions);
  assert.ok(far <= 10, `${far} of 200 particles are off the moons`);
  // A score network trains on the GPU device too: three steps, finite losses, a finite field.
  const trained = await page.evaluate(async () => {
    const { RemoteField } = await import('./client.js');
    const f = new RemoteField({ distribution: 'two-modes', sde: 've', backend: 'webgpu' });
    await f.learn(1);
    const { losses, step } = await f.train(3);
    const c = await f.learnedGrid(0.5, 8);
    return { losses: Array.from(losses), step, finite: Array.from(c.score).every(Number.isFinite) };
  });
  assert.equal(trained.step, 3);
  assert.ok(trained.losses.length === 3 && trained.losses.every((v) => Number.isFinite(v) && v > 0), JSON.stringify(trained));
  assert.ok(trained.finite);
  // The model beside it still generates on the same worker and device.
  await setControls(page, { sampler: 'dpmpp-2m', steps: 5, batch: 1, seed: 2 });
  assert.deepEqual((await generate(page)).shape, [1, 1, 28, 28]);
  await page.locator('#field').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-field.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('without WebGPU the page falls back to the CPU and still generates; asking for WebGPU is a NoWebGPUError', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openPage(browser, server.url);
    await waitLoaded(page);
    assert.equal(await page.$eval('#badge', (b) => b.dataset.backend), 'cpu');
    // `auto` says why it took the CPU (the rule is in Rust: src/web/mod.rs, ScoreModel.load).
    // (Chromium without WebGPU still has navigator.gpu; it finds no adapter.)
    assert.match(await page.$eval('#badge', (b) => b.textContent), /\((this browser has no WebGPU|no WebGPU adapter)\)/);
    const refused = await page.evaluate(async () => {
      const { RemoteModel } = await import('/client.js');
      return new RemoteModel(new URL('models/mnist.json', location.href).href, 'webgpu').load().then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
    });
    assert.match(refused, /^NoWebGPUError: (this browser has no WebGPU|no WebGPU adapter)$/, refused);
    // `auto` came to the CPU: a `cpu` load is the same copy of the model, not a second one.
    const copies = await page.evaluate(async () => {
      const { RemoteModel, workerStats } = await import('/client.js');
      await new RemoteModel(new URL('models/mnist.json', location.href).href, 'cpu').load();
      return (await workerStats()).models;
    });
    assert.equal(copies, 1, 'auto (on the CPU) and cpu hold two copies of the model');
    await setControls(page, { sampler: 'ode-heun', steps: 25, batch: 2, seed: 5 });
    const out = await generate(page);
    assert.deepEqual(out.shape, [2, 1, 28, 28]);
    assert.ok(out.data.every(Number.isFinite));
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('a broken model URL shows a readable error on the page', async () => {
  const page = await openPage(gpu, `${server.url}?model=models/missing.json&backend=cpu`);
  await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 60_000 });
  const message = await page.$eval('#error', (e) => e.textContent);
  assert.match(message, /could not fetch the model card at .*missing\.json: HTTP 404/);
  assert.equal(await page.$eval('#generate', (b) => b.disabled), true);
  await page.close();
});
