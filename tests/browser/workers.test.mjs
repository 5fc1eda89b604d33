// The CPU path's worker pool (www/client.js): a batch split across workers, each drawing its share
// with `firstSample` set, gives the same images as one worker; batch-coupled samplers run whole;
// cancel and errors reach every part. The CPU build (Chromium without WebGPU), few steps.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, openPage, quiet, serve } from './harness.mjs';

let server;
let cpu;
before(async () => {
  server = await serve();
  cpu = await launch({ webgpu: false });
});
after(async () => {
  await cpu?.close();
  server?.close();
});

async function loaded(workers) {
  const page = await openPage(cpu, `${server.url}?backend=cpu${workers ? `&workers=${workers}` : ''}`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 120_000 });
  return page;
}

// A run through the page's model, as {workers, data} (data as a plain array), or {error: name, message}.
function run(page, type, options) {
  return page.evaluate(async ([type, options]) => {
    try {
      if (type === 'inpaint') {
        const pixels = 28 * 28;
        options = { ...options, image: Array.from({ length: pixels }, (_, i) => ((i * 7) % 13) / 12), mask: Array.from({ length: pixels }, (_, i) => (i % 28 < 14 ? 1 : 0)) };
      }
      const out = await window.scorefield.model[type](options);
      return { workers: out.workers ?? 1, shape: out.shape, evals: out.evals, data: Array.from(out.data) };
    } catch (e) {
      return { error: e.name, message: e.message };
    }
  }, [type, options]);
}

test('a CPU batch split across 1 or 3 workers gives the same images and previews, bit for bit for generate and inpaint, to 1e-3 guided; pc and RK45 run whole', async () => {
  const one = await loaded(1);
  const three = await loaded(3);
  await quiet(one);
  await quiet(three);
  assert.match(await three.$eval('#badge', (b) => b.textContent), /3 workers/);
  // Guided runs agree to float rounding only: the classifier's gradient is computed for the
  // part's batch, whose matrix products round differently at another batch size.
  for (const [type, options, tolerance] of [
    ['generate', { sampler: 'dpmpp-2m', steps: 4, batch: 5, seed: 11 }, 0],
    ['generate', { sampler: 'edm-heun', steps: 3, churn: 40, batch: 4, seed: 2 }, 0],
    ['generate', { sampler: 'edm-heun', steps: 3, churn: 40, batch: 4, seed: 2, class: 'all', guidance: 2 }, 1e-3],
    ['inpaint', { sampler: 'em', steps: 5, batch: 3, seed: 4 }, 0],
  ]) {
    const whole = await run(one, type, options);
    const split = await run(three, type, options);
    const what = `${type} ${JSON.stringify(options)}`;
    assert.equal(whole.error, undefined, `${what}: ${whole.message}`);
    assert.equal(split.error, undefined, `${what}: ${split.message}`);
    assert.equal(whole.workers, 1, what);
    assert.equal(split.workers, 3, what);
    assert.deepEqual(split.shape, whole.shape, what);
    assert.equal(split.evals, whole.evals, what);
    const diff = Math.max(...whole.data.map((v, i) => Math.abs(v - split.data[i])));
    assert.ok(diff <= tolerance, `${what}: split across 3 workers, the images differ by ${diff}`);
  }
  assert.equal(await three.evaluate(() => window.scorefield.startedWorkers()), 3);
  // Previews of a split run: one per previewed step, of the whole batch, as one worker's.
  const previews = (page) => page.evaluate(async () => {
    const shots = [];
    const keep = (p) => p.preview && shots.push({ step: p.step, t: p.t, shape: p.preview.shape, data: Array.from(p.preview.data) });
    await window.scorefield.model.generate({ sampler: 'dpmpp-2m', steps: 4, batch: 5, seed: 11, previewEvery: 1, previewOf: 'x' }, keep);
    return shots;
  });
  const [shotsOne, shotsThree] = [await previews(one), await previews(three)];
  assert.ok(shotsOne.length >= 2, `${shotsOne.length} previews`);
  assert.deepEqual(shotsThree.map((p) => p.step), shotsOne.map((p) => p.step));
  assert.deepEqual(shotsThree, shotsOne);
  // A part of a run is that part of the whole: images 2 and 3 of seed 11.
  const whole = await run(one, 'generate', { sampler: 'dpmpp-2m', steps: 4, batch: 5, seed: 11 });
  const part = await run(one, 'generate', { sampler: 'dpmpp-2m', steps: 4, batch: 2, seed: 11, firstSample: 2 });
  assert.deepEqual(part.data, whole.data.slice(2 * 784, 4 * 784));
  // The batch-coupled samplers (the library's perSample: false) are not split.
  for (const options of [{ sampler: 'pc', steps: 3, batch: 4 }, { sampler: 'ode-rk45', rtol: 1e-2, atol: 1e-2, batch: 4 }]) {
    const out = await run(three, 'generate', options);
    assert.equal(out.error, undefined, out.message);
    assert.equal(out.workers, 1, options.sampler);
  }
  assert.deepEqual(one.errors, []);
  assert.deepEqual(three.errors, []);
  await one.close();
  await three.close();
});

test('the page says how many workers drew a batch; cancel stops every part; bad options and ?workers are named', async () => {
  const page = await loaded(2);
  await page.selectOption('#sampler', 'dpmpp-2m');
  await page.fill('#steps', '5');
  await page.fill('#batch', '4');
  const invalid = await page.$$eval('#controls input', (inputs) => inputs.filter((i) => !i.checkValidity()).map((i) => `${i.id}=${i.value}: ${i.validationMessage}`));
  assert.deepEqual(invalid, [], 'the controls are invalid');
  await page.click('#generate');
  await page.waitForFunction(() => /^done/.test(document.getElementById('status').textContent) || !document.getElementById('error').hidden, null, { timeout: 120_000 });
  assert.match(await page.$eval('#status', (s) => s.textContent), /on 2 workers/);
  // Cancel mid-run: a CancelledError, and neither worker is left running.
  const cancelled = await page.evaluate(async () => {
    const model = window.scorefield.model;
    const started = new Promise((resolve) => {
      model.generate({ sampler: 'em', steps: 1000, batch: 4, seed: 1 }, resolve).then(() => resolve('finished'), (e) => (window.cancelledWith = e.name));
    });
    await started;
    model.cancel();
    while (!window.cancelledWith) await new Promise((r) => setTimeout(r, 50));
    // Each part stops at its next step (a few tens of ms here): poll for up to 5 s.
    const cancelledAt = performance.now();
    let running;
    do {
      running = (await Promise.all([0, 1].map((i) => window.scorefield.workerStats(i)))).map((s) => s.running);
    } while (running.some(Boolean) && performance.now() - cancelledAt < 5000);
    return { name: window.cancelledWith, running };
  });
  assert.deepEqual(cancelled, { name: 'CancelledError', running: [0, 0] });
  // Options the library refuses are named as they would be unsplit.
  const bad = await run(page, 'generate', { sampler: 'dpmpp-2m', steps: 0, batch: 4 });
  assert.equal(bad.error, 'InvalidOptionError');
  assert.match(bad.message, /steps/);
  const badFirst = await run(page, 'generate', { sampler: 'dpmpp-2m', steps: 3, batch: 4, firstSample: -1 });
  assert.equal(badFirst.error, 'InvalidOptionError');
  assert.match(badFirst.message, /firstSample/);
  assert.deepEqual(page.errors, []);
  await page.close();

  const careless = await loaded('none');
  assert.match(await careless.$eval('#error', (e) => e.textContent), /\?workers: workers must be a whole number ≥ 1, got none; using one per core/);
  await careless.close();
});

test('after the load, before any click, every worker of the pool has loaded the model and run it once: the first Generate grows no worker\'s memory', async () => {
  const page = await loaded(2);
  // No click yet: the pool warms itself while the reader reads (client.js warm()), and the page
  // draws its opening batch; once that has ended the workers are idle.
  const warmed = await page.evaluate(() => window.scorefield.model.warmed);
  await page.evaluate(() => window.scorefield.idle());
  assert.match(await page.$eval('#status', (s) => s.textContent), /^done: .* on 2 workers/, 'the opening run drew its batch');
  assert.equal(warmed, 2, 'both workers ran the model once');
  const stats = () => page.evaluate(() => Promise.all([0, 1].map((i) => window.scorefield.workerStats(i))));
  const before = await stats();
  assert.equal(await page.evaluate(() => window.scorefield.startedWorkers()), 2);
  for (const [i, s] of before.entries()) {
    assert.ok(s.models >= 1, `worker ${i} holds the model`);
    assert.equal(s.running, 0, `worker ${i} is idle`);
  }
  await page.click('#generate');
  await page.waitForFunction(() => window.scorefield.lastResult || !document.getElementById('error').hidden, null, { timeout: 300_000 });
  assert.equal(await page.evaluate(() => window.scorefield.lastResult.workers), 2);
  const after = await stats();
  assert.deepEqual(after.map((s) => s.wasmMemoryBytes), before.map((s) => s.wasmMemoryBytes), 'the first click found every worker\'s memory grown to a run\'s size');
  assert.deepEqual(page.errors, []);
  await page.close();
});
