// The probability-flow ODE in a real browser: "How likely is this digit?" (the CLI's reference
// values reproduced, progress, x(t) previews, cancel, bad input) and "From one digit to another"
// (encoding, spherical interpolation, decoding) on the CPU build, and both on WebGPU forced. The
// software WebGPU adapter here takes seconds per evaluation, so the WebGPU runs use a tiny
// untrained model whose density is known in closed form.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS, launch, openPage, serve } from './harness.mjs';

const SIGMA_DATA = 0.5;
const SIGMA_MIN = 0.002; // `scorefield init`'s default σ_min: the noise level at t = ε

/** Bits/dim of a blank 8-bit image under N(0, s² I), s² = σ_d² + σ(ε)²: each pixel dequantised to
 * u ∈ [0, 1/256) costs ½ log₂(2π s²) + u²/(2 s² ln 2) bits, the second term below 5·10⁻⁵. */
const BLANK_BITS = 0.5 * Math.log2(2 * Math.PI * (SIGMA_DATA ** 2 + SIGMA_MIN ** 2)) + 8;

let server;
let tinyServer;
let tinyDir;
let browser;
before(async () => {
  // `scorefield init` writes a U-Net whose output layer starts at zero (EDM's initialisation), so
  // its denoiser is D(x; σ) = c_skip(σ)·x = σ_d²/(σ² + σ_d²)·x: the exact denoiser of N(0, σ_d² I)
  // data, whose noised density p_σ = N(0, (σ_d² + σ²) I) the likelihood must reproduce.
  tinyDir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-tiny-'));
  const bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache', 'scorefield', 'target'), 'release', 'scorefield');
  const made = spawnSync(bin, ['init', '--out', path.join(tinyDir, 'tiny.json'), '--widths', '8,16', '--embed-dim', '16', '--sigma-data', String(SIGMA_DATA)], { encoding: 'utf8' });
  assert.equal(made.status, 0, `\`scorefield init\` failed (./build.sh test builds the CLI first): ${made.error ?? made.stderr}`);
  server = await serve();
  tinyServer = await serve(['Access-Control-Allow-Origin: *'], tinyDir);
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser?.close();
  server?.close();
  tinyServer?.close();
  if (tinyDir) rmSync(tinyDir, { recursive: true, force: true });
});

async function openLoaded(backend) {
  const page = await openPage(browser, `${server.url}?backend=${backend}`);
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 120_000 });
  assert.equal(await page.$eval('#badge', (b) => b.dataset.backend), backend, await page.$eval('#badge', (b) => b.textContent));
  return page;
}

/** A worker call (`likelihood` or `interpolate`) through the page's client: its result with
 * `data` as an array and the number of previews seen, or {error, name}. */
function call(page, type, url, backend, options) {
  return page.evaluate(async ([type, url, backend, options]) => {
    const { RemoteModel } = await import('/client.js');
    let previews = 0;
    try {
      const out = await new RemoteModel(url, backend)[type](options, (p) => (previews += p.preview ? 1 : 0));
      return { ...out, data: out.data ? Array.from(out.data) : undefined, previews };
    } catch (e) {
      return { error: e.message, name: e.name };
    }
  }, [type, url, backend, options]);
}
const likelihood = (page, url, backend, options) => call(page, 'likelihood', url, backend, options);

test('the likelihood section measures the held-out reference on the CPU build as the CLI did, to 0.01 bits/dim, with progress and x(t) on its way to the prior', async () => {
  const page = await openLoaded('cpu');
  // The card's references: a button per image, a row per value, measured by the CLI.
  await page.waitForFunction(() => document.querySelectorAll('#lik-references button').length === 3, null, { timeout: 30_000 });
  const references = await page.evaluate(() => window.scorefield.references);
  assert.deepEqual(references.images.map((r) => r.name), ['held-out', 'scribble', 'noise']);
  assert.equal(await page.$$eval('#lik-table tbody tr', (rows) => rows.length), 3);
  await page.click('button[data-reference=held-out]');
  const start = Date.now();
  await page.click('#measure');
  await page.waitForFunction(() => /bits\/dim/.test(document.getElementById('lik-status').textContent) || !document.getElementById('lik-error').hidden, null, { timeout: 300_000 });
  assert.equal(await page.$eval('#lik-error', (e) => (e.hidden ? '' : e.textContent)), '');
  const result = await page.evaluate(() => ({ ...window.scorefield.lastLikelihood, pixels: Array.from(window.scorefield.lastLikelihood.pixels) }));
  const held = references.images[0];
  assert.deepEqual(result.pixels, held.pixels, 'the reference button loads its pixels exactly');
  const gap = Math.abs(result.bitsPerDim - held.bits_per_dim);
  console.log(`held-out digit: page ${result.bitsPerDim.toFixed(4)}, CLI ${held.bits_per_dim.toFixed(4)} bits/dim (gap ${gap.toFixed(5)}); ${result.evals} evaluations, ${result.seconds.toFixed(1)} s in the worker, ${((Date.now() - start) / 1000).toFixed(1)} s after the click`);
  assert.ok(gap < 0.01, `the page and the CLI disagree by ${gap} bits/dim`);
  // The path to the prior was drawn, and the new value heads the table beside the references.
  assert.ok(await page.$eval('#lik-path', (c) => c.width > 28), 'no x(t) preview was drawn');
  assert.equal(await page.$$eval('#lik-table tbody tr', (rows) => rows.length), 4);
  assert.match(await page.$eval('#lik-table tbody tr', (r) => r.textContent), /held-out.*this page \(CPU\)/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-likelihood.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Cancel stops a likelihood solve and keeps the drawing; bad pixels and options are InvalidOptionErrors naming the field', async () => {
  const page = await openLoaded('cpu');
  await page.waitForFunction(() => document.querySelectorAll('#lik-references button').length === 3, null, { timeout: 30_000 });
  // A reader's own strokes over the scribble.
  await page.click('button[data-reference=scribble]');
  const box = await page.$eval('#lik-source', (c) => { const r = c.getBoundingClientRect(); return [r.x, r.y, r.width]; });
  await page.mouse.move(box[0] + box[2] * 0.3, box[1] + box[2] * 0.3);
  await page.mouse.down();
  await page.mouse.move(box[0] + box[2] * 0.7, box[1] + box[2] * 0.6, { steps: 8 });
  await page.mouse.up();
  const drawn = await page.evaluate(() => Array.from(window.scorefield.likelihoodPainter.image));
  const scribble = (await page.evaluate(() => window.scorefield.references.images[1].pixels)).map((k) => k / 255);
  assert.ok(drawn.some((v, i) => Math.abs(v - scribble[i]) > 0.5), 'the stroke changed nothing');
  await page.click('#measure');
  await page.waitForFunction(() => /^step [1-9]/.test(document.getElementById('lik-status').textContent), null, { timeout: 120_000 });
  await page.click('#lik-cancel');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('lik-status').textContent), null, { timeout: 60_000 });
  assert.match(await page.$eval('#lik-status', (s) => s.textContent), /cancelled at step \d+/);
  assert.equal(await page.$eval('#lik-error', (e) => e.hidden), true, 'a cancel is not an error');
  assert.deepEqual(await page.evaluate(() => Array.from(window.scorefield.likelihoodPainter.image)), drawn, 'the drawing changed');
  assert.equal(await page.$eval('#measure', (b) => b.disabled), false, 'Measure is usable again');

  const url = `${server.url}models/mnist.json`;
  const blank = new Array(784).fill(0);
  const cases = [
    [{}, /`pixels` is missing/],
    [{ pixels: [1, 2, 3] }, /`pixels` has 3 values; this model's images have 784/],
    [{ pixels: blank.map((v, i) => (i === 5 ? 300 : v)) }, /`pixels`\[5\] is 300; 8-bit pixels are whole numbers in 0..=255/],
    [{ pixels: blank.map((v, i) => (i === 9 ? 0.5 : v)) }, /`pixels`\[9\] is 0.5/],
    [{ pixels: blank, rtol: Number.NaN }, /`rtol` must be in/],
    [{ pixels: blank, probes: 0 }, /`probes` must be a whole number in 1..=64/],
    [{ pixels: blank, seed: -1 }, /`seed` must be a non-negative whole number/],
    [{ pixels: blank, tolerance: 1e-3 }, /unknown likelihood option field `tolerance`/],
  ];
  for (const [options, message] of cases) {
    const out = await likelihood(page, url, 'cpu', options);
    assert.equal(out.name, 'InvalidOptionError', JSON.stringify(out));
    assert.match(out.error, message);
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the likelihood runs on WebGPU forced, agreeing with the CPU build for the same seed; both give the closed-form density of a Gaussian model', async () => {
  const page = await openLoaded('webgpu');
  const url = `${tinyServer.url}tiny.json`;
  const blank = new Array(784).fill(0);
  // At the library's tolerance on the CPU build: the closed form.
  const exact = await likelihood(page, url, 'cpu', { pixels: blank });
  assert.ok(!exact.error, JSON.stringify(exact));
  console.log(`blank image under N(0, ${SIGMA_DATA}² I): ${exact.bitsPerDim.toFixed(4)} bits/dim (closed form ${BLANK_BITS.toFixed(4)}), ${exact.evals} evaluations`);
  assert.ok(Math.abs(exact.bitsPerDim - BLANK_BITS) < 0.01, `${exact.bitsPerDim} against ${BLANK_BITS}`);
  // A loose tolerance, for the software adapter: both backends solve the same ODE with the same
  // probe and dequantisation (drawn on the host from the seed).
  const loose = { pixels: blank.map((_, i) => (i % 29 === 0 ? 200 : 0)), rtol: 1e-2, atol: 1e-2, seed: 3 };
  const cpu = await likelihood(page, url, 'cpu', loose);
  const start = Date.now();
  const gpu = await likelihood(page, url, 'webgpu', loose);
  assert.ok(!gpu.error && !cpu.error, JSON.stringify({ gpu, cpu }));
  console.log(`WebGPU ${gpu.bitsPerDim.toFixed(4)}, CPU ${cpu.bitsPerDim.toFixed(4)} bits/dim; ${gpu.evals} evaluations on WebGPU in ${((Date.now() - start) / 1000).toFixed(0)} s`);
  assert.ok(Number.isFinite(gpu.bitsPerDim) && gpu.previews > 0, JSON.stringify(gpu));
  assert.ok(Math.abs(gpu.bitsPerDim - cpu.bitsPerDim) < 0.01, `WebGPU ${gpu.bitsPerDim} against the CPU's ${cpu.bitsPerDim}`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the interpolation section morphs two new digits into each other through the prior on the CPU build; its ends are the digits, encoded and decoded; bad images are named', async () => {
  const page = await openLoaded('cpu');
  await page.click('#interp-new');
  await page.waitForFunction(() => /press Interpolate/.test(document.getElementById('interp-status').textContent) || !document.getElementById('interp-error').hidden, null, { timeout: 120_000 });
  const [a, b] = await page.evaluate(() => window.scorefield.interpolationPainters.map((p) => Array.from(p.image)));
  await page.click('#interp-run');
  await page.waitForFunction(() => /points decoded/.test(document.getElementById('interp-status').textContent) || !document.getElementById('interp-error').hidden, null, { timeout: 300_000 });
  assert.equal(await page.$eval('#interp-error', (e) => (e.hidden ? '' : e.textContent)), '');
  const out = await page.evaluate(() => ({ ...window.scorefield.lastInterpolation, data: Array.from(window.scorefield.lastInterpolation.data) }));
  assert.deepEqual(out.shape, [9, 1, 28, 28]);
  const n = 784;
  const rms = (x, y) => Math.sqrt(x.reduce((acc, v, i) => acc + (v - y[i]) ** 2, 0) / x.length);
  const [first, middle, last] = [out.data.slice(0, n), out.data.slice(4 * n, 5 * n), out.data.slice(8 * n)];
  console.log(`reconstruction RMS ${out.reconstructionRms.map((r) => r.toFixed(5)).join(', ')}; ${out.evals} evaluations in ${out.seconds.toFixed(1)} s`);
  // Encoding then decoding gives the digits back; the path between them is neither.
  assert.ok(Math.abs(rms(first, a) - out.reconstructionRms[0]) < 1e-4 && Math.abs(rms(last, b) - out.reconstructionRms[1]) < 1e-4, JSON.stringify(out.reconstructionRms));
  assert.ok(out.reconstructionRms.every((r) => r < 0.01), `reconstruction RMS ${out.reconstructionRms}`);
  assert.ok(rms(middle, a) > 0.05 && rms(middle, b) > 0.05, 'the middle of the path is one of its ends');
  assert.match(await page.$eval('#interp-caption', (c) => c.textContent), /root-mean-square error 0\.0\d+ and 0\.0\d+/);

  const url = `${server.url}models/mnist.json`;
  const blank = new Array(784).fill(0);
  const cases = [
    [{ b: blank }, /`a` is missing: give two images, `a` and `b`/],
    [{ a: blank, b: [1, 2] }, /`b` has 2 values; this model's images have 784/],
    [{ a: blank.map((v, i) => (i === 3 ? Number.NaN : v)), b: blank }, /`a` holds NaN at index 3/],
    [{ a: blank, b: blank, frames: 1 }, /`frames` must be a whole number in 2..=64/],
    [{ a: blank, b: blank, atol: 0 }, /`atol` must be in/],
    [{ a: blank, b: blank, steps: 3 }, /unknown interpolate option field `steps`/],
  ];
  for (const [options, message] of cases) {
    const res = await call(page, 'interpolate', url, 'cpu', options);
    assert.equal(res.name, 'InvalidOptionError', JSON.stringify(res));
    assert.match(res.error, message);
  }
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-interpolation.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('interpolation runs on WebGPU forced and agrees with the CPU build', async () => {
  const page = await openLoaded('webgpu');
  const url = `${tinyServer.url}tiny.json`;
  const a = Array.from({ length: 784 }, (_, i) => (i % 28 > 10 && i % 28 < 16 ? 0.9 : 0));
  const b = Array.from({ length: 784 }, (_, i) => (i / 28 > 10 && i / 28 < 16 ? 0.9 : 0));
  // The loosest tolerance and two frames: few evaluations for the software adapter.
  const options = { a, b, frames: 2, rtol: 1, atol: 1 };
  const cpu = await call(page, 'interpolate', url, 'cpu', options);
  const start = Date.now();
  const gpu = await call(page, 'interpolate', url, 'webgpu', options);
  assert.ok(!gpu.error && !cpu.error, JSON.stringify({ gpu: gpu.error, cpu: cpu.error }));
  console.log(`WebGPU: ${gpu.evals} evaluations in ${((Date.now() - start) / 1000).toFixed(0)} s`);
  assert.deepEqual(gpu.shape, [2, 1, 28, 28]);
  assert.ok(gpu.previews > 0, 'no previews');
  const gap = Math.max(...gpu.data.map((v, i) => Math.abs(v - cpu.data[i])));
  assert.ok(gap < 1e-3, `WebGPU and the CPU build differ by ${gap}`);
  assert.equal(gpu.evals, cpu.evals);
  assert.deepEqual(page.errors, []);
  await page.close();
});
