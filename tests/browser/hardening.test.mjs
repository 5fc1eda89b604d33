// Bad inputs in a real browser: broken model files supplied by URL, absurd options, a batch too
// large for the device, a cancel during the first step, weights that blow up mid-run, and a lost
// GPU device. Each must end in a message that names the problem, with the page still usable.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, openPage, quiet, serve } from './harness.mjs';

let site;
let files; // a second origin serving the broken model files (with CORS)
let dir;
let browser;

const card = JSON.parse(readFileSync(path.join(ROOT, 'www/models/mnist.json'), 'utf8'));
const weights = readFileSync(path.join(ROOT, 'www/models/mnist.safetensors'));

/** An IEEE half-precision value (the shipped weights are F16) as a number. */
function fromHalf(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The safetensors file in F32 (8-bit tensors kept as they are), with every value of tensor `name` multiplied by `factor` (F16
 * cannot hold the overflowing values). */
function scaled(bytes, name, factor) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__').sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const out = {};
  const chunks = [];
  let offset = 0;
  for (const [key, t] of tensors) {
    const [start, end] = t.data_offsets;
    if (t.dtype === 'I8') {
      // An 8-bit tensor stays as it is (its F32 `NAME_scale` is copied like any float tensor).
      const data = Buffer.from(bytes.subarray(8 + n + start, 8 + n + end));
      out[key] = { dtype: 'I8', shape: t.shape, data_offsets: [offset, offset + data.length] };
      offset += data.length;
      chunks.push(data);
      continue;
    }
    const wide = t.dtype === 'F32' ? 4 : 2;
    const count = (end - start) / wide;
    const data = Buffer.alloc(4 * count);
    for (let i = 0; i < count; i++) {
      const o = 8 + n + start + i * wide;
      const v = wide === 4 ? bytes.readFloatLE(o) : fromHalf(bytes.readUInt16LE(o));
      data.writeFloatLE(key === name ? v * factor : v, 4 * i);
    }
    out[key] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
    chunks.push(data);
  }
  let text = JSON.stringify(out);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([length, Buffer.from(text), ...chunks]);
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-bad-models-'));
  const write = (name, cardPatch, bytes) => {
    writeFileSync(path.join(dir, `${name}.json`), typeof cardPatch === 'string' ? cardPatch : JSON.stringify({ ...card, weights: `${name}.safetensors`, ...cardPatch }));
    if (bytes) writeFileSync(path.join(dir, `${name}.safetensors`), bytes);
  };
  write('truncated', {}, weights.subarray(0, weights.length >> 1));
  write('garbage-card', '{"format": "scorefield-model-card", "version": 1, "name": ');
  write('wrong-shape', { architecture: { ...card.architecture, widths: [16, 32, 64, 128] } }, weights);
  write('huge-header', {}, Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x7f]), Buffer.alloc(64)]));
  // A model whose guide model's weights are truncated: the model works alone.
  write('broken-guide', { guide: 'truncated-guide.json', classifier: undefined, likelihood_references: undefined }, weights);
  write('truncated-guide', { guide: undefined }, weights.subarray(0, weights.length >> 1));
  // Finite weights whose output layer is 1e38 times too large: its sums overflow to ±∞.
  write('explodes', {}, scaled(weights, card.architecture.type === 'unet' ? 'out_conv.weight' : 'out.weight', 1e38));
  files = await serve(['Access-Control-Allow-Origin: *'], dir);
  site = await serve();
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser?.close();
  site?.close();
  files?.close();
  rmSync(dir, { recursive: true, force: true });
});

// The tests below drive the page's model themselves: each first stops the run the page starts by
// itself once the model has loaded (harness.mjs quiet), so that the runs measured are their own.

async function loadError(model) {
  const page = await openPage(browser, `${site.url}?backend=cpu&model=${encodeURIComponent(`${files.url}${model}.json`)}`);
  await page.waitForFunction(() => !document.getElementById('error').hidden || document.getElementById('badge').dataset.backend, null, { timeout: 60_000 });
  const message = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  const generateDisabled = await page.$eval('#generate', (b) => b.disabled);
  // The kind of failure, as a caller of the module sees it (error.name, src/web/error.rs).
  const name = await page.evaluate(async (url) => {
    const { RemoteModel } = await import('/client.js');
    return new RemoteModel(url, 'cpu').load().then(() => 'loaded', (e) => e.name);
  }, `${files.url}${model}.json`);
  await page.close();
  return { message, generateDisabled, name };
}

test('broken model files supplied by URL are refused with a message naming the problem', async () => {
  const cases = [
    ['truncated', /do not cover the \d+ data bytes exactly \(file truncated or padded\?\)|lies outside the \d+ data bytes|header claims/, 'ModelFileError'],
    ['garbage-card', /model card .*garbage-card\.json/, 'ModelFileError'],
    ['wrong-shape', /shape/, 'ModelFileError'],
    ['huge-header', /header claims \d+ bytes/, 'ModelFileError'],
    ['missing', /could not fetch the model card at .*missing\.json: HTTP 404/, 'FetchError'],
  ];
  for (const [file, pattern, errorName] of cases) {
    const { message, generateDisabled, name } = await loadError(file);
    assert.match(message, pattern, `${file}: ${message}`);
    assert.equal(generateDisabled, true, `${file}: Generate stays disabled without a model`);
    assert.equal(name, errorName, `${file}: error.name`);
  }
});

test('a broken guide model leaves the model drawing alone, says why, and refuses explicit autoguidance by name', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu&model=${encodeURIComponent(`${files.url}broken-guide.json`)}`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 60_000 });
  await quiet(page);
  assert.equal(await page.$eval('#error', (e) => e.hidden), true, await page.$eval('#error', (e) => e.textContent));
  const shown = await page.evaluate(() => ({ hidden: document.getElementById('autoguidance-label').hidden, hint: document.getElementById('autoguidance-hint').textContent }));
  assert.equal(shown.hidden, true, 'no slider without a guide model');
  assert.match(shown.hint, /Autoguidance is unavailable: guide model `[^`]+`: .*(truncated|header claims)/);
  const out = await page.evaluate(async () => {
    const model = window.scorefield.model;
    const alone = await model.generate({ sampler: 'dpmpp-2m', steps: 2, batch: 1, seed: 1 });
    const asked = await model.generate({ sampler: 'dpmpp-2m', steps: 2, batch: 1, seed: 1, autoguidance: 2 }).then(() => null, (e) => ({ name: e.name, message: e.message }));
    return { evals: alone.evals, guideEvals: alone.guideEvals, asked };
  });
  assert.deepEqual([out.evals, out.guideEvals], [2, 0]);
  assert.equal(out.asked?.name, 'ModelFileError', JSON.stringify(out.asked));
  assert.match(out.asked.message, /guide model/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('absurd options are refused before any work, naming the field', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend, null, { timeout: 60_000 });
  await quiet(page);
  const errors = await page.evaluate(async () => {
    const model = window.scorefield.model;
    const tries = [
      { batch: 100000, steps: 2 },
      { batch: 4, steps: -5 },
      { batch: 4, steps: Number.NaN },
      { batch: 4, steps: 2, sampler: 'magic' },
      { batch: 4, steps: 2, snr: 1e9, sampler: 'pc' },
      { batch: 4, steps: 2, colour: 'red' },
      // Classifier guidance: a class the classifier lacks, a class by a wrong name, absurd scales.
      { batch: 2, steps: 2, class: 10 },
      { batch: 2, steps: 2, class: 'seven' },
      { batch: 2, steps: 2, class: 3, guidance: Number.NaN },
      { batch: 2, steps: 2, class: 3, guidance: 1e9 },
      { batch: 2, steps: 2, class: true },
      { batch: 2, steps: 2, guidance: 4 }, // a scale without a class would do nothing
      // Autoguidance: below 1 (1 is the model alone), not a number, absurd.
      { batch: 2, steps: 2, autoguidance: 0.5 },
      { batch: 2, steps: 2, autoguidance: Number.NaN },
      { batch: 2, steps: 2, autoguidance: 1e9 },
    ];
    const out = [];
    for (const t of tries) {
      const start = performance.now();
      try {
        await model.generate(t);
        out.push({ ok: true });
      } catch (e) {
        out.push({ message: e.message, name: e.name, ms: performance.now() - start });
      }
    }
    return out;
  });
  const fields = ['batch', 'steps', 'steps', 'sampler', 'snr', 'colour', 'class', 'class', 'guidance', 'guidance', 'class', 'guidance', 'autoguidance', 'autoguidance', 'autoguidance'];
  errors.forEach((e, i) => {
    assert.ok(e.message, `try ${i} was accepted`);
    // The field in backticks, as the library names it: "snr" alone would also match the advice
    // of a run that went non-finite.
    assert.ok(e.message.includes(`\`${fields[i]}\``), e.message);
    assert.equal(e.name, 'InvalidOptionError', e.message);
    assert.ok(e.ms < 2000, `try ${i} took ${e.ms} ms to be refused`);
  });
  await page.close();
});

test('the error names the page, the widget and the worker branch on are the ones the library gives', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu`);
  const names = await page.evaluate(async () => {
    const { default: init, errorNames } = await import('/pkg/scorefield.js');
    await init({ module_or_path: '/pkg/scorefield_bg.wasm' });
    return errorNames();
  });
  await page.close();
  const used = new Set();
  // Every module of www/: the page, the widget and its modes, the worker.
  for (const file of readdirSync(path.join(ROOT, 'www')).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(path.join(ROOT, 'www', file), 'utf8');
    for (const [, name] of source.matchAll(/'([A-Za-z]+Error)'/g)) used.add(name);
  }
  assert.ok(used.has('CancelledError') && used.has('DeviceLostError'), `names used: ${[...used]}`);
  for (const name of used) assert.ok(names.includes(name), `${name} is not one of the library's error names (${names})`);
});

test('cancel during the first step stops the run and the page samples again afterwards', async () => {
  // On the software WebGPU adapter one step of batch 16 takes seconds: the cancel lands inside it.
  const page = await openPage(browser, `${site.url}?backend=webgpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend, null, { timeout: 120_000 });
  await quiet(page);
  const outcome = await page.evaluate(async () => {
    const model = window.scorefield.model;
    const run = model.generate({ sampler: 'em', steps: 1000, batch: 16, seed: 1 }).then(() => 'finished', (e) => `${e.name}: ${e.message}`);
    model.cancel();
    const first = await run;
    const again = await model.generate({ sampler: 'em', steps: 2, batch: 1, seed: 1 });
    return { first, again: again.shape };
  });
  assert.match(outcome.first, /^CancelledError: cancelled at step 1\b/);
  assert.deepEqual(outcome.again, [1, 1, 28, 28]);
  await page.close();
});

test('weights that overflow mid-run stop it with the sampler and step, not a black image', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu&model=${encodeURIComponent(`${files.url}explodes.json`)}`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 60_000 });
  await quiet(page);
  const message = await page.evaluate(() =>
    window.scorefield.model.generate({ sampler: 'em', steps: 50, batch: 2, seed: 1, previewEvery: 1 }).then(() => 'no error', (e) => `${e.name}: ${e.message}`),
  );
  console.log(`overflowing weights: ${message}`);
  assert.match(message, /^NonFiniteError: em produced non-finite values by step \d+ \(t = [\d.]+\); try more steps$/, message);
  await page.close();
});

test('two tabs sample at once, each with its own worker and device', async () => {
  const pages = await Promise.all([0, 1].map(() => openPage(browser, `${site.url}?backend=webgpu`)));
  const shapes = await Promise.all(
    pages.map(async (page, i) => {
      await page.waitForFunction(() => document.getElementById('badge').dataset.backend, null, { timeout: 120_000 });
      await quiet(page);
      return page.evaluate((seed) => window.scorefield.model.generate({ sampler: 'em', steps: 3, batch: 2, seed }).then((r) => r.shape), i + 1);
    }),
  );
  assert.deepEqual(shapes, [[2, 1, 28, 28], [2, 1, 28, 28]]);
  for (const page of pages) {
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});

test('200 generate calls and 50 load/unload cycles keep wasm memory flat', async () => {
  const page = await openPage(browser, `${site.url}?backend=cpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend, null, { timeout: 60_000 });
  await quiet(page);
  const figures = await page.evaluate(async () => {
    const { model, workerStats } = window.scorefield;
    const run = () => model.generate({ sampler: 'em', steps: 1, batch: 2, seed: 1 });
    for (let i = 0; i < 10; i++) await run(); // warm-up: allocator pools fill
    const before = (await workerStats()).wasmMemoryBytes;
    let t0 = performance.now();
    for (let i = 0; i < 200; i++) await run();
    const runSeconds = (performance.now() - t0) / 1000;
    const afterRuns = (await workerStats()).wasmMemoryBytes;
    for (let i = 0; i < 3; i++) {
      await model.unload();
      await model.load();
    }
    const beforeCycles = (await workerStats()).wasmMemoryBytes;
    t0 = performance.now();
    for (let i = 0; i < 50; i++) {
      await model.unload();
      await model.load();
    }
    const cycleSeconds = (performance.now() - t0) / 1000;
    const stats = await workerStats();
    await run();
    return { before, afterRuns, beforeCycles, afterCycles: stats.wasmMemoryBytes, models: stats.models, runSeconds, cycleSeconds };
  });
  console.log(`wasm memory: ${JSON.stringify(figures)}`);
  const MiB = 1 << 20;
  assert.ok(figures.afterRuns - figures.before <= 2 * MiB, `200 runs grew wasm memory by ${(figures.afterRuns - figures.before) / MiB} MiB`);
  assert.ok(figures.afterCycles - figures.beforeCycles <= 8 * MiB, `50 load/unload cycles grew wasm memory by ${(figures.afterCycles - figures.beforeCycles) / MiB} MiB`);
  assert.equal(figures.models, 1);
  await page.close();
});

test('a batch too large for the device is refused up front with the limit it derived', async () => {
  for (const backend of ['cpu', 'webgpu']) {
    const page = await openPage(browser, `${site.url}?backend=${backend}`);
    await page.waitForFunction(() => document.getElementById('badge').dataset.backend, null, { timeout: 120_000 });
    await quiet(page);
    const outcome = await page.evaluate(async () => {
      const { model } = window.scorefield;
      const info = await model.load();
      const start = performance.now();
      const message = await model.generate({ sampler: 'em', steps: 2, batch: info.maxBatch + 1, seed: 1 }).then(() => 'accepted', (e) => e.message);
      const ms = performance.now() - start;
      const fits = await model.generate({ sampler: 'em', steps: 1, batch: 2, seed: 1 }).then((r) => r.shape[0]);
      return { maxBatch: info.maxBatch, message, ms, fits, inputMax: Number(document.getElementById('batch').max) };
    });
    console.log(`${backend}: ${JSON.stringify(outcome)}`);
    assert.ok(outcome.maxBatch >= 16 && outcome.maxBatch < 65536, `${backend}: maxBatch ${outcome.maxBatch}`);
    assert.match(outcome.message, new RegExp(`\`batch\` ${outcome.maxBatch + 1} is too large for this device: at most ${outcome.maxBatch} images fit`));
    assert.ok(outcome.ms < 2000, `${backend}: refused after ${outcome.ms} ms`);
    assert.equal(outcome.fits, 2);
    assert.ok(outcome.inputMax <= outcome.maxBatch, 'the page caps its batch field');
    await page.close();
  }
});

test('a lost GPU device (GPUDevice.destroy()) is reported, Retry starts a new one, the painted mask survives', async () => {
  const page = await openPage(browser, `${site.url}?backend=webgpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend === 'webgpu', null, { timeout: 120_000 });
  await quiet(page);
  // A source digit and a painted mask, then the device goes.
  const before = await page.evaluate(async () => {
    const { model, painter } = window.scorefield;
    const r = await model.generate({ sampler: 'em', steps: 2, batch: 1, seed: 3 });
    painter.setImage(Array.from(r.data, (v) => Math.min(1, Math.max(0, v))));
    painter.maskRegion('bottom');
    document.getElementById('steps').value = '5';
    document.getElementById('batch').value = '1';
    await model.destroyDevice();
    return { image: Array.from(painter.image), keep: Array.from(painter.keepMask()) };
  });
  await page.click('#inpaint');
  await page.waitForSelector('#error:not([hidden]) #retry', { timeout: 120_000 });
  const message = await page.$eval('#error', (e) => e.textContent);
  console.log(`device loss: ${message}`);
  assert.match(message, /GPU device was lost/);
  const kept = await page.evaluate(() => ({ image: Array.from(window.scorefield.painter.image), keep: Array.from(window.scorefield.painter.keepMask()) }));
  assert.deepEqual(kept, before, 'the source image and the mask are untouched');

  await page.click('#retry');
  await page.waitForFunction(() => window.scorefield.lastInpaint, null, { timeout: 180_000 });
  const after = await page.evaluate(() => {
    const { data, image, keep } = window.scorefield.lastInpaint;
    let keptExactly = true;
    for (let i = 0; i < keep.length; i++) if (keep[i] === 1 && data[i] !== image[i]) keptExactly = false;
    return { keptExactly, error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent, backend: document.getElementById('badge').dataset.backend };
  });
  assert.deepEqual(after, { keptExactly: true, error: '', backend: 'webgpu' });
  await page.close();
});

test('repeated generate calls on WebGPU keep the GPU allocator flat', async () => {
  // SwiftShader takes about a second per call even at batch 1: 30 calls here; the 200-call
  // figure in docs/RELIABILITY.md comes from SCOREFIELD_GPU_LEAK_CALLS=200.
  const calls = Number(process.env.SCOREFIELD_GPU_LEAK_CALLS ?? 30);
  const page = await openPage(browser, `${site.url}?backend=webgpu`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend === 'webgpu', null, { timeout: 120_000 });
  await quiet(page);
  const figures = await page.evaluate(async (n) => {
    const { model, workerStats } = window.scorefield;
    const run = () => model.generate({ sampler: 'em', steps: 1, batch: 2, seed: 1 });
    for (let i = 0; i < 5; i++) await run(); // warm-up: pools fill, autotune settles
    const before = await workerStats();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run();
    const seconds = (performance.now() - t0) / 1000;
    const after = await workerStats();
    return { calls: n, before, after, seconds };
  }, calls);
  console.log(`gpu memory: ${JSON.stringify(figures)}`);
  assert.ok(figures.before.gpuMemory, 'the WebGPU model reports its allocator');
  assert.ok(figures.before.gpuMemory.bytesReserved > 0);
  const MiB = 1 << 20;
  assert.ok(figures.after.gpuMemory.bytesReserved - figures.before.gpuMemory.bytesReserved <= 4 * MiB, `GPU pools grew by ${(figures.after.gpuMemory.bytesReserved - figures.before.gpuMemory.bytesReserved) / MiB} MiB`);
  assert.ok(figures.after.gpuMemory.bytesInUse - figures.before.gpuMemory.bytesInUse <= MiB, 'live GPU allocations grew');
  assert.ok(figures.after.wasmMemoryBytes - figures.before.wasmMemoryBytes <= 2 * MiB);
  await page.close();
});
