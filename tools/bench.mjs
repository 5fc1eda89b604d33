// Runs www/bench.html in headless Debian Chromium, once per backend, and writes
// docs/performance/browser-<backend>.json plus the transfer sizes of what the page downloads.
// Usage: node tools/bench.mjs [cpu|webgpu|field|workers|steps|engines|first-click|emoji|instant|opening ...]   (default: cpu webgpu field engines)
// `instant` times the consistency model (www/models/mnist-cm.json) on the CPU build: on five fresh
// browsers, the default Generate (batch 16) the first time after the reader has read for 3 s
// since the load, then five more; and on the page, live inpainting at batch 1: the time from the
// end of a brush stroke (pointer up) to the completion drawn, for six strokes, the first 3 s after
// the load (the first apart); and, for comparison on the same machine, the digits model's default Generate the
// same way on one fresh browser; into docs/performance/browser-cpu-instant.json.
// `emoji` times the emoji model's default Generate (click → 16 emoji, median of five) on the CPU
// build and sizes its files, into docs/performance/browser-cpu-emoji.json.
// `steps` times an EM step against one evaluation at batch 1 and 16 on the CPU build, one worker,
// five times, into docs/performance/browser-cpu-steps.json.
// `workers` times the CPU build's worker pool: the same clicks (the page's default setting, batch
// 16) and whole EM-1000 / RK45 runs with one worker and with one per core, and each worker's wasm
// memory, into docs/performance/browser-cpu-workers.json.
// `engines` times the page's default Generate (batch 16, the default sampler and steps) in
// Chromium, Firefox ESR and WebKitGTK, all on the CPU build, interleaved round by round so that
// they share the machine's load (SCOREFIELD_BENCH_ROUNDS rounds, default 2): each engine with its
// own worker count, with one worker, and WebKit also with four workers (what its reported count
// gave before the pool measured the cores); into docs/performance/browser-engines.json.
// `first-click` times the default Generate on fresh Chromium pages (CPU build, one worker per
// core): the first after the reader has read for SCOREFIELD_BENCH_READ ms (default 3000) since the
// model loaded, then three more (SCOREFIELD_BENCH_ROUNDS rounds, default 4); with
// SCOREFIELD_BENCH_COMPARE=FOLDER (a site as tools/serve.py --dir serves it, e.g. another build's
// www/ with its pkg/ inside) the same pages from that folder too, taking turns round by round so
// that both share the machine's load; into docs/performance/browser-cpu-first-click.json.
// `opening` opens the page (index.html, CPU build) in five fresh browser contexts and leaves it
// alone: the time from navigation to the first preview of the batch it generates by itself and to
// the finished 16 samples, into docs/performance/browser-cpu-opening.json.
// `field` times the 2-D explainer's widget (1,000 particles: run time, playback frames per second,
// milliseconds per drawn frame) on the CPU build, into docs/performance/browser-field.json.
// On a software WebGPU adapter (SwiftShader, isFallbackAdapter) one evaluation at batch 64 takes
// tens of seconds: there the WebGPU run uses batches 1,16, 5 repeats and no whole runs. Each run
// also times ONNX Runtime Web on the same network (www/models/mnist.onnx; see www/bench.js).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { ENGINES, ROOT, launch, launchEngine, serve, watchOpening } from '../tests/browser/harness.mjs';

const OUT = path.join(ROOT, 'docs', 'performance');
mkdirSync(OUT, { recursive: true });
const backends = process.argv.slice(2).length ? process.argv.slice(2) : ['cpu', 'webgpu', 'field', 'engines'];

/** The page's own files: index.html, style.css, the wasm package, and every module app.js and
 * worker.js import, followed through their imports. */
function pageFiles() {
  const files = new Set(['www/index.html', 'www/style.css', 'pkg/scorefield_bg.wasm', 'pkg/scorefield.js']);
  const queue = ['www/app.js', 'www/worker.js'];
  while (queue.length) {
    const file = queue.pop();
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const [, spec] of text.matchAll(/(?:import|from)\s*\(?\s*['"](\.{1,2}\/[^'"]+\.js)['"]/g)) {
      // The server maps www/pkg/ to the built package in pkg/.
    const target = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), spec)).replace(/^www\/pkg\//, 'pkg/');
      if (target.startsWith('www/') || target.startsWith('pkg/')) queue.push(target);
    }
  }
  return [...files];
}

// What the page fetches of each model when it is shown: the card, the weights, what the card
// names that the page reads at load (the guide model of autoguidance, the classifier's card —
// its weights only for a guided run — and the likelihood references); not the ONNX files (for
// the ONNX Runtime comparison only) nor the first network (only when asked with ?model=).
const MODEL_FILES = {
  mnist: ['mnist.json', 'mnist.safetensors', 'mnist-guide.json', 'mnist-guide.safetensors', 'mnist-classifier.json', 'mnist-likelihood.json'],
  emoji: ['emoji.json', 'emoji.safetensors', 'emoji-guide.json', 'emoji-guide.safetensors', 'emoji-classifier.json', 'emoji-likelihood.json'],
  instant: ['mnist-cm.json', 'mnist-cm.safetensors'],
};

/** Raw and gzip sizes of `files` (paths from the repository root). */
function sizes(files) {
  return files.map((file) => {
    const bytes = readFileSync(path.join(ROOT, file));
    return { file, bytes: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
  });
}

/** Everything the page downloads with the MNIST model, which it opens on. */
function transferSizes() {
  return sizes([...pageFiles(), ...MODEL_FILES.mnist.map((f) => `www/models/${f}`)]);
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

/** The default Generate in each engine (see `engines` above). */
async function benchEngines(server) {
  const rounds = Number(process.env.SCOREFIELD_BENCH_ROUNDS ?? 2);
  const configs = ENGINES.flatMap((engine) => [{ engine }, { engine, workers: 1 }, ...(engine === 'webkit' ? [{ engine, workers: 4 }] : [])]);
  const runs = [];
  for (let round = 0; round < rounds; round++) {
    for (const config of configs) {
      const query = `backend=cpu${config.workers ? `&workers=${config.workers}` : ''}&clicks=3&batches=16&repeats=5&warmup=1&runs=0&ort=0&field=0`;
      const engine = await launchEngine(config.engine);
      try {
        const page = await engine.newPage();
        await page.goto(`${server.url}bench.html?${query}`);
        const results = await page.waitFor(() => document.body.dataset.done === '1' && window.benchResults, null, 900_000);
        if (results.error) throw new Error(`${config.engine} ${query}: ${results.error}`);
        runs.push({ round, ...config, version: engine.version, query, results });
        console.error(`round ${round + 1}/${rounds}: ${config.engine}${config.workers ? ` workers=${config.workers}` : ''}: first ${((results.firstSampleMs - results.loadedMs) / 1000).toFixed(2)} s, clicks ${results.clickToSamples.ms.map((m) => (m / 1000).toFixed(2)).join(', ')} s`);
      } finally {
        await engine.close();
      }
    }
  }
  writeFileSync(path.join(OUT, 'browser-engines.json'), JSON.stringify({ rounds, runs }, null, 2));
  console.log(`\nThe default Generate (batch 16) in each engine, CPU build, ${rounds} interleaved rounds (medians)\n| engine | cores reported | workers | cold page → loaded s | first Generate s | click → 16 samples s | one evaluation at batch 16, ms |\n|---|---:|---:|---:|---:|---:|---:|`);
  for (const config of configs) {
    const mine = runs.filter((r) => r.engine === config.engine && r.workers === config.workers).map((r) => r.results);
    const m = (f) => median(mine.map(f));
    console.log(`| ${runs.find((r) => r.engine === config.engine).version} | ${mine[0].hardwareConcurrency} | ${mine[0].workers}${config.workers ? ' (pinned)' : mine[0].cores ? ` (measured: ${mine.map((r) => r.cores.throughput.toFixed(2)).join(', ')} × one worker's throughput)` : ''} | ${(m((r) => r.loadedMs) / 1000).toFixed(2)} | ${(m((r) => r.firstSampleMs - r.loadedMs) / 1000).toFixed(2)} | ${(median(mine.flatMap((r) => r.clickToSamples.ms)) / 1000).toFixed(2)} | ${m((r) => r.evals[0].medianMs).toFixed(0)} |`);
  }
}

/** www/bench.html at `url` in a fresh browser (nothing compiled by an earlier page is reused), CPU
 * build: its results once it is done; its error, named by `label`, thrown. */
async function freshBenchPage(url, label) {
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 600_000 });
    const results = await page.evaluate(() => window.benchResults);
    if (results.error) throw new Error(`${label}: ${results.error}`);
    return results;
  } finally {
    await browser.close();
  }
}

/** The consistency model's clicks and live strokes (see `instant` above). */
async function benchInstant(server) {
  const model = 'models/mnist-cm.json';
  const read = 3000;
  const pages = [];
  for (let round = 0; round < 5; round++) {
    const r = await freshBenchPage(`${server.url}bench.html?backend=cpu&model=${model}&read=${read}&clicks=5&batches=1,16&repeats=10&warmup=2&runs=0&ort=0&field=0`, 'instant');
    pages.push({ run: r.firstSample, workers: r.workers, loadedMs: r.loadedMs, firstClickMs: r.firstClickMs, clicksMs: r.clickToSamples.ms, evals: r.evals });
    console.error(`page ${round + 1}/5 (${r.firstSample}, ${r.workers} workers): first ${(r.firstClickMs / 1000).toFixed(3)} s, then ${r.clickToSamples.ms.map((m) => (m / 1000).toFixed(3)).join(', ')} s`);
  }
  // The digits model's default click on the same machine, for comparison.
  const r = await freshBenchPage(`${server.url}bench.html?backend=cpu&read=${read}&clicks=5&batches=16&repeats=3&warmup=1&runs=0&ort=0&field=0`, 'instant (the digits model)');
  const teacher = { run: r.firstSample, workers: r.workers, firstClickMs: r.firstClickMs, clicksMs: r.clickToSamples.ms, medianMs: r.clickToSamples.medianMs };
  // Live inpainting on the page: batch 1 at the page's default steps, strokes down the image.
  const browser = await launch({ webgpu: false });
  let strokes;
  let settings;
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    await page.goto(`${server.url}?backend=cpu&autorun=0&model=${model}`);
    await page.waitForFunction(() => (window.scorefield.live && document.getElementById('badge').dataset.backend) || !document.getElementById('error').hidden, null, { timeout: 120_000 });
    const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
    if (error) throw new Error(`instant: ${error}`);
    // The reader reads before painting: the workers' warm-up has ended, and 3 s have passed.
    await page.evaluate(() => window.scorefield.model.warmed);
    await page.waitForTimeout(read);
    await page.fill('#batch', '1');
    settings = await page.evaluate(() => {
      // From pointer up (the stroke's end) to the page keeping the live run's result, which it
      // does once the completion is drawn.
      const ms = (window.strokeMs = []);
      let up = 0;
      window.addEventListener('pointerup', () => (up = performance.now()), true);
      let value = null;
      Object.defineProperty(window.scorefield, 'lastInpaint', { configurable: true, get: () => value, set: (v) => { value = v; if (v) ms.push(performance.now() - up); } });
      const p = window.scorefield.painter;
      const [lo, hi] = p.range;
      p.setImage(p.image.map((_, i) => lo + ((hi - lo) * ((i * 7) % 13)) / 12));
      p.clearMask();
      return { sampler: document.getElementById('sampler').value, steps: Number(document.getElementById('steps').value), batch: Number(document.getElementById('batch').value) };
    });
    const box = await page.locator('#source').boundingBox();
    for (let i = 0; i < 6; i++) {
      const x = box.x + box.width * (0.15 + 0.14 * i);
      await page.mouse.move(x, box.y + box.height * 0.1);
      await page.mouse.down();
      await page.mouse.move(x, box.y + box.height * 0.6, { steps: 4 });
      await page.mouse.up();
      await page.waitForFunction((n) => window.strokeMs.length >= n && !window.scorefield.live.current, i + 1, { timeout: 120_000 });
    }
    strokes = await page.evaluate(() => window.strokeMs);
    const runs = await page.evaluate(() => window.scorefield.live.runs);
    if (runs.length !== 6 || !runs.every((r) => r.finished)) throw new Error(`instant: six strokes gave live runs ${JSON.stringify(runs)}`);
  } finally {
    await browser.close();
  }
  const files = sizes(MODEL_FILES.instant.map((f) => `www/models/${f}`));
  const first = pages.map((p) => p.firstClickMs);
  const later = pages.flatMap((p) => p.clicksMs);
  const result = { read, pages, teacher, stroke: { ...settings, ms: strokes, firstMs: strokes[0], medianMs: median(strokes.slice(1)) }, modelFiles: files };
  writeFileSync(path.join(OUT, 'browser-cpu-instant.json'), JSON.stringify(result, null, 2));
  const s = (ms) => (ms / 1000).toFixed(3);
  console.log(`\nThe consistency model, CPU build, ${pages[0].workers} workers, ${pages[0].run} at batch 16: first click ${read} ms after the load, median of 5 pages ${s(median(first))} s (${s(Math.min(...first))}–${s(Math.max(...first))}); later clicks median of ${later.length} ${s(median(later))} s (${s(Math.min(...later))}–${s(Math.max(...later))}); one evaluation at batch 16 ${median(pages.map((p) => p.evals.find((e) => e.batch === 16).medianMs)).toFixed(1)} ms, at batch 1 ${median(pages.map((p) => p.evals.find((e) => e.batch === 1).medianMs)).toFixed(1)} ms`);
  console.log(`the digits model on the same machine (${teacher.run}, ${teacher.workers} workers): first click ${s(teacher.firstClickMs)} s, later clicks median ${s(teacher.medianMs)} s`);
  console.log(`live inpainting (${settings.sampler}:${settings.steps}, batch ${settings.batch}): stroke end → completion drawn, first ${s(strokes[0])} s, then median of ${strokes.length - 1} ${s(result.stroke.medianMs)} s (${strokes.slice(1).map(s).join(', ')})`);
  console.log(`its files ${files.reduce((sum, f) => sum + f.gzip, 0)} B gzip`);
}

/** The first click against the later ones (see `first-click` above). */
async function benchFirstClick(server) {
  const rounds = Number(process.env.SCOREFIELD_BENCH_ROUNDS ?? 4);
  const read = Number(process.env.SCOREFIELD_BENCH_READ ?? 3000);
  const compare = process.env.SCOREFIELD_BENCH_COMPARE;
  const other = compare ? await serve([], path.resolve(compare)) : null;
  const sites = [...(other ? [{ site: compare, url: other.url }] : []), { site: 'www/', url: server.url }];
  const query = `backend=cpu&read=${read}&clicks=3&batches=16&repeats=3&warmup=1&runs=0&ort=0&field=0`;
  const runs = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const { site, url } of sites) {
        const results = await freshBenchPage(`${url}bench.html?${query}`, site);
        runs.push({ round, site, workers: results.workers, loadedMs: results.loadedMs, firstClickMs: results.firstClickMs, clicksMs: results.clickToSamples.ms, evalMs: results.evals[0].medianMs });
        console.error(`round ${round + 1}/${rounds}, ${site}: first ${(results.firstClickMs / 1000).toFixed(2)} s, then ${results.clickToSamples.ms.map((m) => (m / 1000).toFixed(2)).join(', ')} s`);
      }
    }
  } finally {
    other?.close();
  }
  writeFileSync(path.join(OUT, 'browser-cpu-first-click.json'), JSON.stringify({ query, read, rounds, runs }, null, 2));
  const s = (ms) => (ms / 1000).toFixed(2);
  console.log(`\nThe default Generate (batch 16), CPU build, the first ${read} ms after the load and the three after it, ${rounds} interleaved rounds\n| site | workers | cold page → loaded s | first click s (median, range) | later clicks s (median, range) | first / later |\n|---|---:|---:|---:|---:|---:|`);
  for (const { site } of sites) {
    const mine = runs.filter((r) => r.site === site);
    const first = mine.map((r) => r.firstClickMs);
    const later = mine.flatMap((r) => r.clicksMs);
    console.log(`| ${site} | ${mine[0].workers} | ${s(median(mine.map((r) => r.loadedMs)))} | ${s(median(first))} (${s(Math.min(...first))}–${s(Math.max(...first))}) | ${s(median(later))} (${s(Math.min(...later))}–${s(Math.max(...later))}) | ${(median(first) / median(later)).toFixed(2)} |`);
  }
}

const server = await serve();
const browser = await launch({ webgpu: true });
try {
  for (const backend of backends) {
    if (backend === 'engines') {
      await benchEngines(server);
      continue;
    }
    if (backend === 'first-click') {
      await benchFirstClick(server);
      continue;
    }
    if (backend === 'instant') {
      await benchInstant(server);
      continue;
    }
    if (backend === 'field') {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      await page.goto(`${server.url}bench.html?backend=cpu&first=0&batches=1&repeats=1&warmup=0&runs=0&field=1`);
      await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 600_000 });
      const results = await page.evaluate(() => window.benchResults);
      await page.close();
      if (results.error) throw new Error(`field: ${results.error}`);
      writeFileSync(path.join(OUT, 'browser-field.json'), JSON.stringify({ userAgent: results.userAgent, field: results.field, transfer: transferSizes() }, null, 2));
      console.log('\n2-D field widget, CPU build\n| distribution | sampler | particles | updates | run s | playback fps | ms / frame drawn |\n|---|---|---:|---:|---:|---:|---:|');
      for (const f of results.field.runs) console.log(`| ${f.distribution} | ${f.sampler} | ${f.particles} | ${f.updates} | ${f.runSeconds.toFixed(2)} | ${f.fps.toFixed(1)} | ${f.drawMs.toFixed(2)} |`);
      const t = results.field.training;
      console.log(`learning the score: ${t.stepsPerSecond.toFixed(1)} steps/s (${t.steps} steps in ${t.seconds.toFixed(2)} s); a 32 × 32 comparison with the exact score ${t.compareMs.toFixed(0)} ms`);
      continue;
    }
    if (backend === 'opening') {
      const loads = [];
      for (let i = 0; i < 5; i++) {
        const context = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
        const page = await context.newPage();
        await page.addInitScript(watchOpening);
        await page.goto(`${server.url}?backend=cpu`);
        await page.waitForFunction(() => window.opening.done, null, { timeout: 300_000, polling: 50 });
        loads.push(await page.evaluate(() => ({ ...window.opening, status: document.getElementById('status').textContent })));
        await context.close();
        console.error(`load ${i + 1}/5: first preview ${(loads[i].preview / 1000).toFixed(2)} s, 16 samples ${(loads[i].done / 1000).toFixed(2)} s (${loads[i].status})`);
      }
      writeFileSync(path.join(OUT, 'browser-cpu-opening.json'), JSON.stringify({ loads }, null, 2));
      const m = (f) => (median(loads.map(f)) / 1000).toFixed(2);
      console.log(`\nThe page opened and left alone, CPU build, median of ${loads.length}: first preview ${m((l) => l.preview)} s, 16 samples ${m((l) => l.done)} s after navigation`);
      continue;
    }
    if (backend === 'emoji') {
      // The emoji model's default Generate on the CPU build: a first click, then five timed.
      const page = await browser.newPage();
      await page.goto(`${server.url}bench.html?backend=cpu&model=models/emoji.json&clicks=5&batches=16&repeats=5&warmup=1&runs=0&ort=0&field=0`);
      await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 600_000 });
      const results = await page.evaluate(() => window.benchResults);
      await page.close();
      if (results.error) throw new Error(`emoji: ${results.error}`);
      const files = sizes(MODEL_FILES.emoji.map((f) => `www/models/${f}`));
      writeFileSync(path.join(OUT, 'browser-cpu-emoji.json'), JSON.stringify({ ...results, modelFiles: files }, null, 2));
      const c = results.clickToSamples;
      const gzip = files.reduce((sum, f) => sum + f.gzip, 0);
      console.log(`\nThe emoji model, CPU build, ${c.workers} workers: click → 16 emoji at ${c.run}, median of ${c.ms.length}: ${(c.medianMs / 1000).toFixed(2)} s (${c.ms.map((m) => (m / 1000).toFixed(2)).join(', ')}); one evaluation at batch 16 ${results.evals.find((e) => e.batch === 16).medianMs.toFixed(1)} ms; its files ${gzip} B gzip`);
      continue;
    }
    if (backend === 'steps') {
      const rounds = [];
      for (let i = 0; i < 5; i++) {
        const page = await browser.newPage();
        await page.goto(`${server.url}bench.html?backend=cpu&workers=1&first=0&batches=1,16&repeats=15&warmup=3&runs=0&ort=0&field=0&steps=1`);
        await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 600_000 });
        const results = await page.evaluate(() => window.benchResults);
        await page.close();
        if (results.error) throw new Error(`steps: ${results.error}`);
        rounds.push(results.steps);
      }
      writeFileSync(path.join(OUT, 'browser-cpu-steps.json'), JSON.stringify({ rounds, transfer: transferSizes() }, null, 2));
      console.log('\nCPU build, one worker: an EM step against one evaluation (5 page loads)\n| batch | evaluation ms (median of 15) | EM ms per evaluation | step / evaluation | observer ms per step |\n|---:|---|---|---|---|');
      for (const [i, row] of rounds[0].entries()) {
        const col = (f) => rounds.map((r) => f(r[i])).join(', ');
        console.log(`| ${row.batch} | ${col((s) => s.evalMs.toFixed(1))} | ${col((s) => s.stepMs.toFixed(1))} | ${col((s) => s.ratio.toFixed(2))} | ${col((s) => s.observerMsPerStep.toFixed(2))} |`);
      }
      continue;
    }
    if (backend === 'workers') {
      // One worker first; then one per core, as many as that run's page reported.
      const runs = [];
      for (let workers = 1; ; ) {
        const query = `backend=cpu&workers=${workers}&clicks=5&batches=16&repeats=10&warmup=2&runs=1&ort=0&field=0`;
        const page = await browser.newPage();
        await page.goto(`${server.url}bench.html?${query}`);
        await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 3_600_000 });
        const results = await page.evaluate(() => window.benchResults);
        await page.close();
        if (results.error) throw new Error(`workers=${workers}: ${results.error}`);
        runs.push({ query, ...results });
        if (results.hardwareConcurrency <= workers) break;
        workers = results.hardwareConcurrency;
      }
      const cores = runs[0].hardwareConcurrency;
      writeFileSync(path.join(OUT, 'browser-cpu-workers.json'), JSON.stringify({ cores, runs }, null, 2));
      console.log(`\nCPU build, ${cores} cores reported\n| workers | click → 16 samples, median s | em:1000 batch 16 s | ode-rk45 batch 16 s | wasm memory per worker, MB |\n|---:|---:|---:|---:|---|`);
      for (const r of runs) {
        const whole = Object.fromEntries(r.runs.map((x) => [x.run, x.seconds]));
        console.log(`| ${r.workers} | ${(r.clickToSamples.medianMs / 1000).toFixed(2)} | ${whole['em:1000'].toFixed(2)} | ${whole['ode-rk45:1e-5'].toFixed(2)} | ${r.workerMemoryBytes.map((b) => (b / 2 ** 20).toFixed(1)).join(', ')} |`);
      }
      continue;
    }
    const software = backend === 'webgpu' && process.env.SCOREFIELD_BENCH_FULL !== '1';
    // On the CPU, also five timed clicks at the page's default setting (click → 16 samples back).
    const query = `${software ? 'batches=1,16&repeats=5&warmup=1&runs=0' : 'batches=1,16,64&repeats=20&warmup=3&runs=1&clicks=5'}&ort=1&field=0`;
    const page = await browser.newPage();
    await page.goto(`${server.url}bench.html?backend=${backend}&${query}`);
    await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 3_600_000 });
    const results = await page.evaluate(() => window.benchResults);
    await page.close();
    if (results.error) throw new Error(`${backend}: ${results.error}`);
    results.query = query;
    results.transfer = transferSizes();
    writeFileSync(path.join(OUT, `browser-${backend}.json`), JSON.stringify(results, null, 2));
    console.log(`\n${backend} on ${results.adapter}: loaded after ${(results.loadedMs / 1000).toFixed(2)} s, first sample (${results.firstSample}, batch 16) after ${(results.firstSampleMs / 1000).toFixed(2)} s`);
    if (results.clickToSamples) console.log(`click → 16 samples (${results.clickToSamples.run}): median ${(results.clickToSamples.medianMs / 1000).toFixed(2)} s of ${results.clickToSamples.ms.map((m) => (m / 1000).toFixed(2)).join(', ')}`);
    console.log('| batch | median ms / evaluation | min | max | repeats |\n|---:|---:|---:|---:|---:|');
    for (const e of results.evals) console.log(`| ${e.batch} | ${e.medianMs.toFixed(1)} | ${e.minMs.toFixed(1)} | ${e.maxMs.toFixed(1)} | ${e.repeats} |`);
    const ort = results.onnxRuntime;
    console.log(`\nONNX Runtime Web ${ort.version} (${ort.provider}, ${ort.threads} thread): same output to ${ort.check.maxAbsDiff.toExponential(2)} (max |output| ${ort.check.maxAbs.toFixed(2)})`);
    console.log('| batch | ORT median ms | ours ms | ours / ORT |\n|---:|---:|---:|---:|');
    for (const e of ort.evals) console.log(`| ${e.batch} | ${e.medianMs.toFixed(1)} | ${e.oursMs.toFixed(1)} | ${e.ratio.toFixed(2)} |`);
    for (const r of results.runs) console.log(`${r.run} at batch ${r.batch}: ${r.seconds.toFixed(2)} s, ${r.evals} evaluations`);
  }
  const total = transferSizes();
  console.log(`\ntransfer: ${total.reduce((a, t) => a + t.bytes, 0)} B raw, ${total.reduce((a, t) => a + t.gzip, 0)} B gzip`);
} finally {
  await browser.close();
  server.close();
}
