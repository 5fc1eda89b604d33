// A consistency model in the browser (the CPU build): the shipped network under the consistency
// parameterisation, as `scorefield distill` starts its student, served by URL. The page offers its
// one sampler; a run costs one network evaluation per step; inpainting keeps the known pixels
// exactly; score samplers and the likelihood (which needs a score) are refused by name, and so is
// a card that names a guide model (guidance acts on scores).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, openPage, serve } from './harness.mjs';

let site;
let files;
let dir;
let browser;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-consistency-'));
  const card = JSON.parse(readFileSync(path.join(ROOT, 'www/models/mnist.json'), 'utf8'));
  const student = {
    ...card,
    name: 'student',
    weights: 'student.safetensors',
    parameterisation: { type: 'consistency', sigma_data: card.parameterisation.sigma_data, sigma_min: card.sde.sigma_min },
    sampling: { ...card.sampling, sampler: 'consistency' },
    guide: undefined,
    classifier: undefined,
    likelihood_references: undefined,
  };
  writeFileSync(path.join(dir, 'student.json'), JSON.stringify(student));
  // The same card naming the shipped guide model: refused, since guidance acts on scores.
  writeFileSync(path.join(dir, 'guided-student.json'), JSON.stringify({ ...student, guide: 'mnist-guide.json' }));
  writeFileSync(path.join(dir, 'student.safetensors'), readFileSync(path.join(ROOT, 'www/models/mnist.safetensors')));
  files = await serve(['Access-Control-Allow-Origin: *'], dir);
  site = await serve();
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  site?.close();
  files?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a consistency model samples with its own sampler in one evaluation a step, inpaints, and refuses the rest', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu&model=${encodeURIComponent(`${files.url}student.json`)}`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  assert.equal(await page.$eval('#error', (e) => e.hidden), true, await page.$eval('#error', (e) => e.textContent));
  const offered = await page.$$eval('#sampler option', (options) => options.map((o) => o.value));
  assert.deepEqual(offered, ['consistency']);
  const out = await page.evaluate(async () => {
    const model = window.scorefield.model;
    const spread = (data) => {
      const mean = data.reduce((a, b) => a + b, 0) / data.length;
      return Math.sqrt(data.reduce((a, b) => a + (b - mean) ** 2, 0) / data.length);
    };
    const one = await model.generate({ batch: 2, steps: 1, seed: 3 });
    const three = await model.generate({ batch: 2, steps: 3, seed: 3 });
    const per = one.data.length / 2;
    const image = Array.from(three.data.slice(0, per), (v) => Math.min(1, Math.max(0, v)));
    const mask = new Float32Array(per).fill(1).fill(0, 0, per >> 1); // keep the lower half
    const filled = await model.inpaint({ batch: 1, steps: 2, seed: 5, image, mask });
    const kept = image.every((v, i) => mask[i] === 0 || filled.data[i] === v);
    const refuse = (options) => model.generate(options).then(() => null, (e) => ({ name: e.name, message: e.message }));
    return {
      evals: [one.evals, three.evals, filled.evals],
      spread: [spread(one.data), spread(three.data)],
      kept,
      changed: filled.data.some((v, i) => mask[i] === 0 && v !== image[i]),
      score: await refuse({ sampler: 'dpmpp-2m', steps: 2, batch: 1 }),
      likelihood: await model.likelihood({ pixels: image.map((v) => Math.round(v * 255)), rtol: 1e-2, atol: 1e-2 }).then(() => null, (e) => ({ name: e.name, message: e.message })),
    };
  });
  assert.deepEqual(out.evals, [1, 3, 2]);
  assert.ok(out.spread.every((s) => s > 0.05), `samples are not blank: ${out.spread}`);
  assert.ok(out.kept, 'the known pixels come back exactly');
  assert.ok(out.changed, 'the masked pixels were generated');
  assert.equal(out.score?.name, 'InvalidOptionError', JSON.stringify(out.score));
  assert.match(out.score.message, /`dpmpp-2m`.*consistency model/);
  // The likelihood integrates the probability-flow ODE of a score, which a consistency model lacks.
  assert.equal(out.likelihood?.name, 'InvalidOptionError', JSON.stringify(out.likelihood));
  assert.match(out.likelihood.message, /consistency model.*the likelihood/);
  assert.deepEqual(page.errors, []);
  const guided = await page.evaluate(async (url) => {
    const { RemoteModel } = await import('/client.js');
    return new RemoteModel(url, 'cpu').load().then(() => null, (e) => ({ name: e.name, message: e.message }));
  }, `${files.url}guided-student.json`);
  assert.equal(guided?.name, 'ModelFileError', JSON.stringify(guided));
  assert.match(guided.message, /`guide`.*consistency model/);
  await page.close();
});

// A widget that named no sampler takes the model's default: for a consistency model its one
// sampler (a score sampler would be refused and the widget end in `error`).
test('the widget draws with a consistency model: its one sampler by default, one evaluation a step', async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1600 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  const url = `${files.url}student.json`;
  const html = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/score-field.js"></script>`
    + `<score-field id="w" backend="cpu" model="${url}" steps="2" batch="2" seed="4" workers="1" controls="run"></score-field>`;
  await page.route(`${site.url}host.html`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${site.url}host.html`);
  await page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.getElementById('w').state), null, { timeout: 120_000 });
  const out = await page.$eval('#w', async (w) => {
    const result = await w.run();
    return { state: w.state, evals: result?.evals, shape: result?.shape };
  });
  assert.equal(out.state, 'done', JSON.stringify(out));
  assert.equal(out.evals, 2);
  assert.deepEqual(out.shape, [2, 1, 28, 28]);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The shipped consistency model (www/models/mnist-cm.json, distilled from the digits model) is the
// page's instant setting: picked from the model list, it offers its one sampler at its card's
// default steps (at most four evaluations) and the page's own first batch of 16 is drawn with as
// many evaluations as steps.
test('the page offers the shipped consistency model: its one sampler at the card\'s few steps', async () => {
  const card = JSON.parse(readFileSync(path.join(ROOT, 'www/models/mnist-cm.json'), 'utf8'));
  const steps = card.sampling.steps.consistency.default;
  assert.ok(steps >= 1 && steps <= 4, `the card's default is ${steps} evaluations`);
  const page = await openPage(browser, `${site.url}?backend=cpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  const entry = await page.$eval('#model', (s) => [...s.options].find((o) => o.value === 'models/mnist-cm.json')?.textContent);
  assert.match(entry ?? '', /instant/);
  await page.selectOption('#model', 'models/mnist-cm.json');
  await page.waitForFunction(() => window.scorefield.lastResult || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  assert.equal(await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent)), '');
  const shown = await page.evaluate(() => ({
    samplers: [...document.getElementById('sampler').options].map((o) => o.value),
    steps: Number(document.getElementById('steps').value),
    evals: window.scorefield.lastResult.evals,
    shape: window.scorefield.lastResult.shape,
    name: window.scorefield.model.url,
  }));
  assert.deepEqual(shown.samplers, ['consistency']);
  // The sections that integrate a score's ODE say why they cannot run, before any click.
  const sections = await page.evaluate(() => ({
    measure: document.getElementById('measure').disabled,
    likelihood: document.getElementById('lik-status').textContent,
    interpolate: document.getElementById('interp-run').disabled,
    interpolation: document.getElementById('interp-status').textContent,
  }));
  assert.equal(sections.measure, true);
  assert.equal(sections.interpolate, true);
  assert.match(sections.likelihood, /needs a score model.*mnist-cm is a consistency model/);
  assert.match(sections.interpolation, /needs a score model.*consistency model/);
  assert.equal(shown.steps, steps);
  assert.equal(shown.evals, steps);
  assert.deepEqual(shown.shape, [16, 1, 28, 28]);
  // Back on the score model, both sections can run again.
  await page.selectOption('#model', 'models/mnist.json');
  await page.waitForFunction(() => !document.getElementById('measure').disabled && !document.getElementById('interp-run').disabled, null, { timeout: 90_000 });
  assert.equal(await page.$eval('#lik-status', (e) => e.textContent), '');
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The workers' warm-up takes a consistency model's second step too (it re-noises, which the first
// does not, and the first click paid for it): each worker's warm-up runs are two evaluations each,
// repeated while nobody asks for a run (the engine's optimised code comes in tiers, from what
// earlier runs taught it) and after it the first default Generate grows no worker's memory. A
// click soon after the load stops the repeats: the workers then ran one warm-up run or two.
test('the instant model\'s warm-up takes its re-noising step and repeats until a run is asked for', async () => {
  const url = `${site.url}?backend=cpu&workers=2&autorun=0&model=models/mnist-cm.json`;
  const page = await openPage(browser, url);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  assert.equal(await page.evaluate(() => window.scorefield.model.warmed), 2, 'both workers ran the model');
  const stats = (p) => p.evaluate(() => Promise.all([0, 1].map((i) => window.scorefield.workerStats(i))));
  const warm = await stats(page);
  for (const [i, s] of warm.entries()) {
    assert.ok(s.evaluations % 2 === 0 && s.evaluations >= 4 && s.evaluations <= 16, `worker ${i}'s warm-up: ${s.evaluations} evaluations, two a run, repeated (at most 8 runs)`);
  }
  await page.click('#generate');
  await page.waitForFunction(() => window.scorefield.lastResult || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  assert.equal(await page.evaluate(() => window.scorefield.lastResult.evals), 2);
  const after = await stats(page);
  assert.deepEqual(after.map((s) => s.wasmMemoryBytes), warm.map((s) => s.wasmMemoryBytes), 'the first click grew a worker\'s memory');
  assert.deepEqual(page.errors, []);
  await page.close();

  const eager = await openPage(browser, url);
  await eager.waitForFunction(() => !document.getElementById('generate').disabled, null, { timeout: 90_000 });
  await eager.click('#generate');
  await eager.waitForFunction(() => window.scorefield.lastResult || !document.getElementById('error').hidden, null, { timeout: 90_000 });
  await eager.evaluate(() => window.scorefield.model.warmed);
  for (const [i, s] of (await stats(eager)).entries()) {
    assert.ok(s.evaluations >= 4 && s.evaluations <= 6, `worker ${i}: ${s.evaluations} evaluations, the click's two and one or two warm-up runs'`);
  }
  assert.deepEqual(eager.errors, []);
  await eager.close();
});
