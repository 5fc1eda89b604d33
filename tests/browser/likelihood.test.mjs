// "How likely is this digit?" in a real browser: the page's section on the CPU build (the CLI's
// reference values reproduced, progress, x(t) previews, cancel, bad input), and the API on WebGPU
// forced. The software WebGPU adapter here takes seconds per evaluation with its gradient, so the
// WebGPU run uses a tiny untrained model whose density is known in closed form.
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

/** The worker's likelihood through the page's client: {bitsPerDim, …} or {error, name}. */
function likelihood(page, url, backend, options) {
  return page.evaluate(async ([url, backend, options]) => {
    const { RemoteModel } = await import('/client.js');
    let previews = 0;
    try {
      const out = await new RemoteModel(url, backend).likelihood(options, (p) => (previews += p.preview ? 1 : 0));
      return { ...out, previews };
    } catch (e) {
      return { error: e.message, name: e.name };
    }
  }, [url, backend, options]);
}

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
