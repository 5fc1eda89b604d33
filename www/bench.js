// The browser benchmark (www/bench.html): a cold page loads the model, draws its first sample
// (batch 16, at the page's default sampler and steps unless `first` says otherwise), then times score evaluations at each batch size (median of `repeats`
// after `warmup`) and, with runs=1, whole EM-1000 and RK45 runs at batch 16. Results go to the
// page and to window.benchResults (tools/bench.mjs reads them).
//
// With ort=1 the same network with the same weights (models/mnist.onnx, written by `scorefield
// export-onnx`) also runs in ONNX Runtime Web (served from node_modules at /vendor/): its WebGPU
// provider when our backend is WebGPU, its wasm provider when ours is the CPU. Both must give the
// same output (max abs diff < 1e-3) on a fixed batch before either is timed.
import { RemoteModel, measuredCoreCount, setWorkers, workerStats } from './client.js';

const params = new URLSearchParams(location.search);
// ?workers=N: how many workers CPU runs split a batch across (default: one per core).
setWorkers(params.get('workers'));
const backend = params.get('backend') ?? 'auto';
const batches = (params.get('batches') ?? '1,16,64').split(',').map(Number);
const repeats = Number(params.get('repeats') ?? 20);
const warmup = Number(params.get('warmup') ?? 3);
const runs = params.get('runs') !== '0';
const ortCompare = params.get('ort') === '1';
const firstSample = params.get('first') !== '0';
// The 2-D explainer (field=0 skips it): run time and playback frame rate of the field widget.
const fieldBench = params.get('field') !== '0';
// The first sample's run as SAMPLER:STEPS (default: the model's first sampler at its default
// steps, what the page starts with), and how many more such runs to time from the call to the
// samples being back on the page (`clicks`, median reported).
const firstSpec = params.get('first') && params.get('first') !== '0' ? params.get('first') : null;
const clicks = Number(params.get('clicks') ?? 0);
// read=MS: the reader reads for that long after the model has loaded before the first sample
// (tools/bench.mjs first-click); `firstClickMs` times that first sample from its call.
const read = Number(params.get('read') ?? 0);
// steps=1: an EM step against one evaluation at each batch size, in the same worker (a
// sampler step should cost its evaluation and little more; `observerSeconds` is the part spent on
// progress calls and yields).
const stepBench = params.get('steps') === '1';
// The model card and its ONNX export (relative to the page).
const modelUrl = params.get('model') ?? 'models/mnist.json';
const onnxUrl = params.get('onnx') ?? 'models/mnist.onnx';
const MAX_ABS_DIFF = 1e-3;
const $ = (id) => document.getElementById(id);

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

async function main() {
  const out = { backend, userAgent: navigator.userAgent, repeats, warmup };
  const model = new RemoteModel(new URL(modelUrl, location.href).href, backend);
  const info = await model.load();
  out.loadedMs = performance.now();
  out.adapter = info.adapter;
  out.backend = info.backend;
  out.workers = model.workerCount;
  out.hardwareConcurrency = navigator.hardwareConcurrency;
  out.cores = measuredCoreCount(); // the pool's own count, when it measured one
  const flops = info.card.architecture; // (tools/bench.mjs adds transfer sizes from the files)
  $('status').textContent = `loaded on ${info.backend} (${info.adapter}); first sample…`;
  if (firstSample) {
    const [firstSampler, firstSteps] = firstSpec ? firstSpec.split(':') : [info.samplers[0].name, info.samplers[0].defaultSteps];
    const run = { sampler: firstSampler, steps: Number(firstSteps), batch: 16, seed: 1 };
    if (read > 0) await new Promise((resolve) => setTimeout(resolve, read));
    const firstStart = performance.now();
    const first = await model.generate(run);
    out.firstSampleMs = performance.now();
    out.read = read;
    out.firstClickMs = out.firstSampleMs - firstStart;
    out.firstSampleRunSeconds = first.seconds;
    out.firstSample = `${firstSampler}:${firstSteps}`;
    const ms = [];
    for (let i = 0; i < clicks; i++) {
      $('status').textContent = `click ${i + 1} of ${clicks}…`;
      const start = performance.now();
      await model.generate({ ...run, seed: 2 + i });
      ms.push(performance.now() - start);
    }
    if (clicks > 0) out.clickToSamples = { run: out.firstSample, batch: 16, workers: first.workers ?? 1, ms, medianMs: median(ms) };
    // What each worker holds after those runs (its wasm memory: the module, the model, buffers).
    out.workerMemoryBytes = await Promise.all(Array.from({ length: out.workers }, (_, i) => workerStats(i).then((s) => s.wasmMemoryBytes)));
  }
  out.evals = [];
  for (const batch of batches) {
    $('status').textContent = `timing batch ${batch}…`;
    const { ms } = await model.benchmark(batch, repeats, warmup);
    out.evals.push({ batch, repeats: ms.length, medianMs: median(ms), minMs: Math.min(...ms), maxMs: Math.max(...ms) });
  }
  if (stepBench) {
    out.steps = [];
    for (const e of out.evals) {
      $('status').textContent = `EM steps at batch ${e.batch}…`;
      const steps = e.batch <= 1 ? 200 : 40;
      const r = await model.generate({ sampler: 'em', steps, batch: e.batch, seed: 3, previewEvery: 100000 });
      // EM makes one evaluation per step (and one for the final denoising): time per evaluation.
      const stepMs = (1000 * r.seconds) / r.evals;
      out.steps.push({ batch: e.batch, steps, evals: r.evals, workers: r.workers ?? 1, stepMs, observerMsPerStep: (1000 * r.observerSeconds) / r.evals, evalMs: e.medianMs, ratio: stepMs / e.medianMs });
    }
  }
  if (ortCompare) out.onnxRuntime = await compareWithOrt(model, info, out.evals);
  out.runs = [];
  if (runs) {
    for (const [name, opts] of [['em:1000', { sampler: 'em', steps: 1000 }], ['ode-rk45:1e-5', { sampler: 'ode-rk45', rtol: 1e-5, atol: 1e-5 }]]) {
      $('status').textContent = `${name}…`;
      const r = await model.generate({ ...opts, batch: 16, seed: 2, previewEvery: 100000 });
      out.runs.push({ run: name, batch: 16, seconds: r.seconds, evals: r.evals, workers: r.workers ?? 1 });
    }
  }
  out.architecture = flops;
  if (fieldBench) out.field = await benchField();
  window.benchResults = out;
  $('results').textContent = JSON.stringify(out, null, 2);
  $('status').textContent = 'done';
  document.body.dataset.done = '1';
}

// The field widget as a post embeds it (1,000 particles): the run (computed in the worker), then
// the recorded frames played with the heat map, arrows, trails and particles drawn every frame.
async function benchField() {
  await import('./score-field.js');
  const out = [];
  for (const [distribution, sampler] of [['two-modes', 'ald'], ['moons', 'em'], ['spiral', 'ode-heun']]) {
    $('status').textContent = `field: ${distribution}, ${sampler}…`;
    const w = document.createElement('score-field');
    for (const [k, v] of Object.entries({ mode: 'field', distribution, sampler, particles: 1000, seed: 1 })) w.setAttribute(k, v);
    document.body.append(w);
    w.scrollIntoView();
    await w.run();
    // The run plays for a few seconds; wait for its frame rate.
    while (!w.playback) await new Promise((resolve) => setTimeout(resolve, 200));
    out.push({ distribution, sampler, particles: w.result.count, updates: w.result.updates, frames: w.result.frames, runSeconds: w.result.seconds, fps: w.playback.fps, drawMs: w.playback.drawMs });
    w.remove();
  }
  // Learning the score (src/field/learned.rs): 200 steps on the two modes, in chunks of 25 as
  // the widget trains, after 25 untimed.
  $('status').textContent = 'field: training…';
  const { RemoteField } = await import('./client.js');
  const field = new RemoteField({ distribution: 'two-modes', sde: 've' });
  await field.learn(1);
  await field.train(25);
  const start = performance.now();
  for (let i = 0; i < 8; i++) await field.train(25);
  const seconds = (performance.now() - start) / 1000;
  const compareStart = performance.now();
  await field.learnedGrid(0.46, 32);
  await field.forget();
  return { runs: out, training: { steps: 200, seconds, stepsPerSecond: 200 / seconds, compareMs: performance.now() - compareStart } };
}

// Seeded standard normals (mulberry32 + Box–Muller), the same on every run.
function normals(n, seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let z = Math.imul(a ^ (a >>> 15), a | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (((z ^ (z >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

async function compareWithOrt(model, info, ours) {
  const ort = await import('./vendor/onnxruntime-web/ort.all.min.mjs');
  ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', location.href).href;
  // One thread, like our wasm build (more would also need a cross-origin-isolated page).
  ort.env.wasm.numThreads = 1;
  const provider = info.backend === 'webgpu' ? 'webgpu' : 'wasm';
  $('status').textContent = `ONNX Runtime Web (${provider}): loading…`;
  const session = await ort.InferenceSession.create(new URL(onnxUrl, location.href).href, { executionProviders: [provider], graphOptimizationLevel: 'all' });
  const { channels: c, height: h, width: w } = info.card.architecture;
  // Inputs: the image and the noise label (`t` for the first network, `c_noise` for the U-Net).
  const [imageInput, labelInput] = session.inputNames;
  const outputName = session.outputNames[0];
  const feeds = (x, t) => ({ [imageInput]: new ort.Tensor('float32', x, [t.length, c, h, w]), [labelInput]: new ort.Tensor('float32', t, [t.length]) });

  // Same output first: 4 images at labels spread over [0.01, 1].
  const check = 4;
  const x = normals(check * c * h * w, 7);
  const t = Float32Array.from({ length: check }, (_, i) => 0.01 + (0.99 * i) / (check - 1));
  const mine = await model.network(x, t);
  const theirs = (await session.run(feeds(x, t)))[outputName].data;
  let maxAbsDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < mine.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(mine[i] - theirs[i]));
    maxAbs = Math.max(maxAbs, Math.abs(mine[i]));
  }
  if (!(maxAbsDiff < MAX_ABS_DIFF)) throw new Error(`ONNX Runtime Web (${provider}) and scorefield disagree: max |diff| = ${maxAbsDiff} (limit ${MAX_ABS_DIFF})`);

  // Then the same timing as ours: random x, t = 0.5, `warmup` untimed, median of `repeats`. ORT
  // hands back the whole output on the CPU (50 KB at batch 16, which counts against it on a GPU);
  // ours sums it on the device and reads back that one number.
  const evals = [];
  for (const { batch, medianMs: oursMs } of ours) {
    $('status').textContent = `ONNX Runtime Web (${provider}): batch ${batch}…`;
    const input = feeds(normals(batch * c * h * w, batch), new Float32Array(batch).fill(0.5));
    for (let i = 0; i < warmup; i++) await session.run(input);
    const ms = [];
    for (let i = 0; i < repeats; i++) {
      const start = performance.now();
      await session.run(input);
      ms.push(performance.now() - start);
    }
    const medianMs = median(ms);
    evals.push({ batch, repeats, medianMs, minMs: Math.min(...ms), maxMs: Math.max(...ms), oursMs, ratio: oursMs / medianMs });
  }
  await session.release();
  return { version: ort.env.versions?.web ?? null, provider, threads: ort.env.wasm.numThreads, check: { batch: check, maxAbsDiff, maxAbs }, evals };
}

main().catch((e) => {
  window.benchResults = { error: e.message };
  $('status').textContent = `error: ${e.message}`;
  document.body.dataset.done = '1';
});
