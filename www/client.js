// Talks to the model worker with promises. One worker per page, shared by everything on it; the
// messages are protocol.js's table.
import { FIELD_OPS, REQUESTS } from './protocol.js';

// The folder of the package's files (worker.js, pkg/, models/): this module's own, unless the page
// says otherwise with setBasePath (a bundle holds this module but not the worker, the wasm or the
// models). Read through a variable so that bundlers leave the URL alone; an IIFE bundle has no
// import.meta.url, and then setBasePath is required.
const here = import.meta.url;
let base = here ? new URL('./', here).href : null;
let baseUsed = false; // a worker has started from `base`

/** Where the package's files (worker.js, pkg/, models/) are served from, for a page that bundled
 * the widget or this module: a URL (relative to the page) of the folder holding them, e.g. a copy
 * of node_modules/score-field. Call it before the first widget or model loads; later, with
 * another folder, it throws (the workers have started from the first). */
export function setBasePath(url) {
  const folder = new URL(url, document.baseURI).href;
  const next = folder.endsWith('/') ? folder : `${folder}/`;
  if (baseUsed && next !== base) throw new Error(`setBasePath(${JSON.stringify(String(url))}): the model workers have already started from ${base}; call it before the first widget or model loads`);
  base = next;
}

/** The folder setBasePath named, or this module's (a URL ending in /). */
export function basePath() {
  if (!base) throw new Error('no base path: this bundle has no import.meta.url, so call setBasePath(folder) with the folder of the package\'s files first');
  return base;
}

// A worker script must have the page's origin. When this module comes from another origin (a
// widget embedded from a CDN), a same-origin blob worker imports the real one; that needs CORS on
// the widget's host and `blob:` in a page's worker-src/script-src CSP, if it has one.
function createWorker() {
  const url = new URL('worker.js', basePath());
  baseUsed = true;
  if (url.origin === location.origin) return new Worker(url, { type: 'module' });
  const source = `import ${JSON.stringify(url.href)};`;
  return new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), { type: 'module' });
}

/** An Error with the name the library gave it (src/web/error.rs): callers branch on `name` —
 * `CancelledError`, `DeviceLostError` (a retry gets a fresh worker), `InvalidOptionError`,
 * `ModelFileError`, `NonFiniteError`, … — never on the wording of the message. */
export function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

let nextId = 1;

/** One model worker (its own wasm instance) and the requests waiting on it. Worker 0 of the pool
 * serves every request; the others only take parts of CPU batches. */
class ModelWorker {
  constructor() {
    this.worker = null;
    this.pending = new Map();
  }

  // A lost GPU device cannot be replaced inside the same wasm instance (Burn registers one runtime
  // per device for good), so the worker goes and the next request starts a fresh one, which loads
  // its models again. Requests still pending in the old worker fail with a retryable error.
  restart() {
    this.worker?.terminate();
    this.worker = null;
    for (const request of this.pending.values()) request.reject(namedError('DeviceLostError', 'the GPU device was lost and the model worker restarted; run again'));
    this.pending.clear();
  }

  get() {
    if (this.worker) return this.worker;
    const worker = createWorker();
    this.worker = worker;
    // Its first message: the module worker 0 compiled, once known, else compile pkg/ there.
    try {
      worker.postMessage({ type: REQUESTS.init, id: 0, module: sharedModule });
    } catch {
      worker.postMessage({ type: REQUESTS.init, id: 0, module: null }); // an engine that cannot send a module
    }
    worker.onmessage = (event) => {
      const { id, status } = event.data;
      const request = this.pending.get(id);
      if (!request) return;
      if (status === 'progress') {
        request.onProgress?.(event.data.progress);
      } else {
        this.pending.delete(id);
        if (status === 'result') {
          request.resolve(event.data.result);
        } else {
          const error = namedError(event.data.name, event.data.error);
          request.reject(error);
          // This wasm instance cannot start a second device: the next request gets a new worker.
          if (error.name === 'DeviceLostError') this.restart();
        }
      }
    };
    worker.onerror = (event) => {
      const error = new Error(`the model worker failed: ${event.message || 'could not start (is pkg/ built?)'}`);
      for (const request of this.pending.values()) request.reject(error);
      this.pending.clear();
    };
    return worker;
  }

  request(message, onProgress) {
    if (!Object.values(REQUESTS).includes(message.type)) throw new Error(`the worker has no request ${message.type}`);
    const id = nextId++;
    let fail = null;
    const promise = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      fail = reject;
    });
    try {
      this.get().postMessage({ ...message, id });
    } catch (e) {
      this.pending.delete(id);
      fail(new Error(`could not start the model worker: ${e.message}`));
    }
    return { id, promise };
  }

  cancel(target) {
    this.worker?.postMessage({ type: REQUESTS.cancel, target, id: 0 });
  }

  /** Ends an idle worker (the next request starts a fresh one). */
  stop() {
    if (this.pending.size) return;
    this.worker?.terminate();
    this.worker = null;
  }
}

// The pool, shared by everything on the page: started lazily, worker 0 first. The others
// instantiate worker 0's compiled wasm module (`sharedModule`, asked for when a CPU model loads),
// so that the engine compiles it once: WebKit compiled, and tiered up, every worker's copy anew,
// and four workers each compiling the 15.9 MB module made its first Generate 2.2 × as slow
// (docs/PERFORMANCE.md, three engines).
const pool = [new ModelWorker()];
let sharedModule = null;
function poolWorker(i) {
  while (pool.length <= i) pool.push(new ModelWorker());
  return pool[i];
}
const request = (message, onProgress) => pool[0].request(message, onProgress);

// How many workers a CPU run may use unless its model says otherwise: `setWorkers` (the page's
// ?workers=N), else one per core, up to the library's cap (runDefaults().maxWorkers,
// src/frontend.rs, known once a model has loaded). The cores are those the browser reports, or
// fewer when the pool has measured fewer (`measuredCores`, see probeCores).
let pageWorkers = null;
let maxWorkers = null;
let measuredCores = null;
let coreProbe = null; // Promise of the one measurement per page

/** Pins how many workers CPU runs use on this page (a whole number ≥ 1; the library's cap
 * applies); null: one per core. Throws a RangeError naming the value otherwise. */
export function setWorkers(n) {
  pageWorkers = checkedWorkers(n);
}

function checkedWorkers(n) {
  if (n === null || n === undefined) return null;
  const value = Number(n);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`workers must be a whole number ≥ 1, got ${n}`);
  return value;
}

function workerCount(own) {
  const wanted = own ?? pageWorkers ?? measuredCores ?? (navigator.hardwareConcurrency || 1);
  return Math.max(1, Math.min(wanted, maxWorkers ?? 1));
}

// WebKit (Safari, WebKitGTK, WPE, and every browser on iOS) reports 4 cores for any machine with
// fewer than 8 and 8 above (WebCore NavigatorBase::hardwareConcurrency): there the pool measures
// instead. Chromium and Firefox report the machine's count, which the pool takes as it is.
const BUCKETED_CORE_COUNT = typeof navigator !== 'undefined' && /AppleWebKit\//.test(navigator.userAgent) && !/(Chrome|Chromium)\//.test(navigator.userAgent);

// Each of PROBE_ROUNDS rounds runs worker 0 alone for PROBE_MS, then every worker at once.
const PROBE_MS = 60;
const PROBE_ROUNDS = 3;
let coreMeasurement = null;

/** How many of `k` workers run at once: the work worker 0 gets done alone in PROBE_MS against
 * what all k get done together in as long; on c < k cores the k together do c times the work of
 * one. For WebKit's count (see BUCKETED_CORE_COUNT): on two cores it gave four workers, whose
 * Generate took longer than two workers' (docs/PERFORMANCE.md). The median of the rounds counts,
 * rounded, within 1 and k. */
async function probeCores(k) {
  const workers = Array.from({ length: k }, (_, i) => poolWorker(i));
  const spin = (w, ms) => w.request({ type: REQUESTS.spin, ms }).promise;
  // Every worker's module instantiated and its JIT warmed up first, all at once: neither may
  // overlap the counting.
  await Promise.all(workers.map((w) => spin(w, 0)));
  const ratios = [];
  for (let round = 0; round < PROBE_ROUNDS; round++) {
    const alone = await spin(workers[0], PROBE_MS);
    const together = await Promise.all(workers.map((w) => spin(w, PROBE_MS)));
    ratios.push(together.reduce((sum, t) => sum + t.iterations / t.ms, 0) / (alone.iterations / alone.ms));
  }
  const ratio = ratios.sort((a, b) => a - b)[PROBE_ROUNDS >> 1];
  const cores = Math.max(1, Math.min(k, Math.round(ratio)));
  coreMeasurement = { reported: navigator.hardwareConcurrency, workers: k, throughput: ratio, cores };
  return cores;
}

/** The pool's measurement of the cores (probeCores): {reported, workers, throughput (the k
 * workers' work together over one worker's alone, the median round), cores}, or null when none
 * was made (not WebKit, a pinned count, one worker, WebGPU, or not loaded yet). */
export function measuredCoreCount() {
  return coreMeasurement;
}

/** Worker `i`'s wasm memory, GPU allocator figures and model count (worker 0 serves every
 * request; the others take parts of CPU batches):
 * {wasmMemoryBytes, gpuMemory: {allocations, bytesInUse, bytesReserved} | null, models, running}. */
export function workerStats(i = 0) {
  return poolWorker(i).request({ type: REQUESTS.stats }).promise;
}

/** How many workers the pool has started. */
export function startedWorkers() {
  return pool.filter((w) => w.worker).length;
}

/** The reference likelihoods a model card names (`likelihood_references`, src/likelihood.rs
 * References: measured by `scorefield likelihood --references`), resolved against the card's URL:
 * {options: {rtol, atol, seed, probes}, images: [{name, label, pixels, bits_per_dim, evals}]}, or
 * null when the card names none. Throws a readable error for a file that is missing or not one. */
export async function likelihoodReferences(modelUrl, card) {
  if (!card.likelihood_references) return null;
  const url = new URL(card.likelihood_references, modelUrl);
  const response = await fetch(url).catch((e) => {
    throw new Error(`the reference likelihoods (${url.pathname}) could not be fetched: ${e.message}`);
  });
  if (!response.ok) throw new Error(`the reference likelihoods (${url.pathname}) could not be fetched: HTTP ${response.status}`);
  const file = await response.json().catch(() => null);
  if (file?.format !== 'scorefield-likelihood-references' || file.version !== 1 || !Array.isArray(file.images)) {
    throw new Error(`${url.pathname} is not a version-1 reference likelihoods file`);
  }
  return file;
}

/** A model in the workers. `url` is resolved against the page; `workers` pins how many workers
 * its CPU runs may use (default: the page's `setWorkers`, else one per core, within the library's
 * cap).
 *
 * On the CPU, a `generate` or `inpaint` batch is split across the pool's workers, each drawing
 * its share of the images with `firstSample` set to where the share starts: image i of a seed is
 * the same however many workers drew it (per-sample noise, src/sampling/mod.rs `Noise`). The
 * samplers whose steps read the whole batch (the catalog's `perSample: false`: `pc`'s corrector,
 * `ode-rk45`'s shared step size) run whole in worker 0, as do batches beyond the page's largest
 * or the device's (`maxBatch`, which worker 0 then refuses) and WebGPU runs (one device serves the batch at once). */
export class RemoteModel {
  constructor(url, backend = 'auto', workers = null) {
    this.url = new URL(url, document.baseURI).href;
    this.backend = backend;
    this.workers = checkedWorkers(workers);
    this.info = null;
    this.current = null; // [{worker, id}] of the run in progress
    /** On the CPU, once loaded: resolves to how many of the pool's workers have run this model
     * (warm(): the first click then costs what the later ones do). */
    this.warmed = Promise.resolve(0);
  }

  /** Loads the model; resolves to {backend, adapter, card, samplers, defaults, classes,
   * classifierProblem, autoguided, guideProblem, fallbackReason, warmupSeconds, maxBatch};
   * `samplers` describes the samplers it runs, the default first; `defaults` the runs' starting
   * batch, seed, guidance and autoguidance and the options' limits (src/frontend.rs RunDefaults, with the model card's sampling settings);
   * `classes` the class names a run can be guided to (option `class`: an index into them, or
   * 'all'), null without a classifier; `autoguided` whether runs are autoguided by the worse model
   * the card names (option `autoguidance`, the weight w; 1 turns it off), `guideProblem` why that
   * model could not be loaded. On the CPU the other workers start loading their copies too, so
   * that the first split run need not wait. In WebKit, unless the count is pinned, the page's
   * first CPU load first measures how many of the workers its reported core count allows run at
   * once (probeCores) and keeps that many. */
  async load() {
    const info = await request({ type: REQUESTS.load, url: this.url, backend: this.backend }).promise;
    this.info = info;
    maxWorkers = info.defaults.maxWorkers;
    if (info.backend === 'cpu') {
      if (this.workerCount > 1 && !sharedModule) sharedModule = await request({ type: REQUESTS.module }).promise.catch(() => null);
      if ((this.workers ?? pageWorkers) === null && this.workerCount > 1 && BUCKETED_CORE_COUNT) {
        coreProbe ??= probeCores(this.workerCount).then((cores) => {
          measuredCores = cores;
          // The workers beyond the measured cores go (a pinned count starts them again).
          for (const w of pool.slice(cores)) w.stop();
        }, () => {});
        await coreProbe;
      }
      for (let i = 1; i < this.workerCount; i++) poolWorker(i).request({ type: REQUESTS.load, url: this.url, backend: 'cpu' }).promise.catch(() => {});
      this.warmed = warm(this);
    }
    return info;
  }

  /** How many workers this model's runs may use: 1 on WebGPU, else the pinned count or one per
   * core, within the library's cap. */
  get workerCount() {
    return this.info?.backend === 'cpu' ? workerCount(this.workers) : 1;
  }

  /** How `options` of a generate or inpaint run split across workers: [{start, batch}], or null
   * to run whole in worker 0 (see the class comment; a run whose options the library would refuse
   * is not split either, so that worker 0 names the problem). */
  split(type, options) {
    const info = this.info;
    if (info?.backend !== 'cpu' || (type !== REQUESTS.generate && type !== REQUESTS.inpaint)) return null;
    if (options === null || typeof options !== 'object') return null;
    const count = this.workerCount;
    const batch = options.batch ?? info.defaults.batch[type];
    const first = options.firstSample ?? 0;
    const sampler = info.samplers.find((x) => x.name === (options.sampler ?? info.samplers[0].name));
    if (count < 2 || !sampler?.perSample || !Number.isInteger(first) || first < 0) return null;
    // Beyond the page's largest batch, or what this device holds, worker 0 runs it (or refuses it).
    if (!Number.isInteger(batch) || batch < 2 || batch > Math.min(info.defaults.maxBatch, info.maxBatch)) return null;
    const k = Math.min(count, batch);
    const parts = [];
    for (let i = 0, start = 0; i < k; i++) {
      const n = Math.floor(batch / k) + (i < batch % k ? 1 : 0);
      parts.push({ start, batch: n });
      start += n;
    }
    return parts;
  }

  /** Runs generate, inpaint, likelihood or interpolate; onProgress gets {step, total, t, progress,
   * preview?}. A split run resolves like a whole one, with `workers` (how many drew it) added. */
  run(type, options, onProgress) {
    // Nothing of a run reaches its caller after it has settled: a part still sending previews
    // after another part was cancelled would draw over the next run's (live-inpaint.js).
    let open = true;
    const progress = onProgress && ((p) => open && onProgress(p));
    const parts = this.split(type, options);
    const requests = parts ? this.#parts(type, options, progress, parts) : [{ worker: pool[0], ...request({ type, url: this.url, backend: this.backend, options }, progress) }];
    this.current = requests;
    let promise = requests[0].promise;
    if (parts) {
      const started = performance.now();
      const all = Promise.all(requests.map((r) => r.promise));
      // One part failed (or was cancelled): stop the others.
      all.catch(() => requests.forEach((r) => r.worker.cancel(r.id)));
      promise = all.then((outs) => joinParts(outs, parts, (performance.now() - started) / 1000));
    }
    return promise.finally(() => {
      open = false;
      if (this.current === requests) this.current = null;
    });
  }

  // Sends each part to its worker. Progress reports the slowest part; a step's preview of the
  // whole batch goes out once, when the last part has sent its preview of that step (every part
  // previews the same steps, in order, so the steps go out in order), with that step's t and σ.
  #parts(type, options, onProgress, parts) {
    const first = options.firstSample ?? 0;
    const latest = parts.map(() => null);
    const shots = new Map(); // step -> each part's preview of it, until all have come
    const report = (i, p) => {
      latest[i] = p;
      if (!onProgress) return;
      const progress = Math.min(...latest.map((l) => l?.progress ?? 0));
      if (p.preview) {
        const step = shots.get(p.step) ?? parts.map(() => null);
        step[i] = p.preview;
        shots.set(p.step, step);
        if (step.every(Boolean)) {
          shots.delete(p.step);
          onProgress({ ...p, progress, preview: joinParts(step, parts) });
          return;
        }
      }
      const slowest = latest.reduce((a, b) => (b && (!a || b.progress < a.progress) ? b : a), null);
      const out = { ...slowest, progress };
      delete out.preview;
      onProgress(out);
    };
    return parts.map(({ start, batch }, i) => {
      const worker = poolWorker(i);
      const part = { ...options, batch, firstSample: first + start };
      return { worker, ...worker.request({ type, url: this.url, backend: i === 0 ? this.backend : 'cpu', options: part }, (p) => report(i, p)) };
    });
  }

  generate(options, onProgress) {
    return this.run(REQUESTS.generate, options, onProgress);
  }

  inpaint(options, onProgress) {
    return this.run(REQUESTS.inpaint, options, onProgress);
  }

  /** Bits/dim of one 8-bit image (options.pixels: C·H·W whole numbers in 0..255) through the
   * probability-flow ODE; onProgress gets {step, t, sigma, progress, preview?} per accepted step,
   * the preview being x(t) on its way to the prior. Resolves to {bitsPerDim, nats, evals, steps,
   * seconds}. */
  likelihood(options, onProgress) {
    return this.run(REQUESTS.likelihood, options, onProgress);
  }

  /** From image `options.a` to `options.b` (C·H·W values each) through the prior: both encoded
   * with the probability-flow ODE, `options.frames` points of the spherical path between their
   * codes decoded. onProgress gets the encoding as progress 0–½, the decoding as ½–1. Resolves to
   * {data, shape, reconstructionRms: [a, b], evals, seconds}. */
  interpolate(options, onProgress) {
    return this.run(REQUESTS.interpolate, options, onProgress);
  }

  /** Times score evaluations: resolves to {batch, ms: [...]} (see www/bench.html). */
  benchmark(batch, repeats, warmup) {
    return request({ type: REQUESTS.benchmark, url: this.url, backend: this.backend, batch, repeats, warmup }).promise;
  }

  /** The raw network output net(x, t) as a Float32Array (x: B·C·H·W values, t: B times). */
  network(x, t) {
    return request({ type: REQUESTS.network, url: this.url, backend: this.backend, x, t }).promise;
  }

  /** Destroys the GPU device under this model, as a driver reset would (for tests). */
  destroyDevice() {
    return request({ type: REQUESTS.destroyDevice, url: this.url, backend: this.backend }).promise;
  }

  /** Frees the model in every worker (a later call loads it again). */
  async unload() {
    await request({ type: REQUESTS.unload, url: this.url }).promise;
    await Promise.all(pool.slice(1).filter((w) => w.worker).map((w) => w.request({ type: REQUESTS.unload, url: this.url }).promise));
  }

  cancel() {
    for (const { worker, id } of this.current ?? []) worker.cancel(id);
  }
}

// The first run in a worker paid for what later runs find done: the other workers' wasm
// instances and copies of the model (started by the load, and still loading when a click came
// soon after it), their memory grown to a run's size, the engine's optimised code for the hot
// functions. So once a CPU model has loaded, when the page is idle after painting what the load
// brought, every worker of its pool runs it once: the default sampler at its fewest steps, one
// image per worker for each worker's part of a default Generate, while the reader reads. Once per
// model and worker count per page (a page's widgets share it); a failure is left to the runs.
const warmups = new Map(); // `${url} ${workers}` -> Promise<number of workers warmed>
const whenIdle = () => new Promise((resolve) => (typeof requestIdleCallback === 'function' ? requestIdleCallback(resolve, { timeout: 1000 }) : setTimeout(resolve, 0)));

function warm(model) {
  const k = model.workerCount;
  const key = `${model.url} ${k}`;
  if (!warmups.has(key)) {
    const info = model.info;
    const sampler = info.samplers[0];
    const options = { sampler: sampler.name, batch: Math.ceil(info.defaults.batch.generate / k), seed: 0 };
    if (sampler.takesSteps) options.steps = sampler.minSteps;
    if (info.autoguided) options.autoguidance = info.defaults.autoguidance;
    const run = (i) => poolWorker(i).request({ type: REQUESTS.generate, url: model.url, backend: 'cpu', options }).promise.then(() => 1, () => 0);
    warmups.set(key, whenIdle().then(() => Promise.all(Array.from({ length: k }, (_, i) => run(i)))).then((done) => done.reduce((a, b) => a + b, 0)));
  }
  return warmups.get(key);
}

/** The parts' {data, shape} in order as one batch; with `seconds`, the parts' results as one:
 * the first part's evaluation count (every part took the same steps), the slowest part's
 * observer time, and how many workers drew it. */
function joinParts(outs, parts, seconds) {
  const [, ...rest] = outs[0].shape;
  const per = rest.reduce((a, b) => a * b, 1);
  const total = parts.reduce((n, p) => n + p.batch, 0);
  const data = new Float32Array(total * per);
  outs.forEach((out, i) => data.set(out.data, parts[i].start * per));
  const joined = { data, shape: [total, ...rest] };
  if (seconds === undefined) return joined;
  return { ...outs[0], ...joined, seconds, observerSeconds: Math.max(...outs.map((o) => o.observerSeconds ?? 0)), workers: parts.length };
}

/** The 2-D explainer's distribution in the worker (src/web/field.rs): `spec` is
 * {distribution, sde} or {points: [x0, y0, …], sde}. */
export class RemoteField {
  constructor(spec) {
    this.spec = spec;
  }

  /** Presets, dynamics, defaults and limits, as the library describes them. */
  static describe() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.describe }).promise;
  }

  /** {weights, means, modes, direction}: `direction` is the time picture's axis u. */
  info() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.info, spec: this.spec }).promise;
  }

  /** The time picture: {nt, nx, density [nx, nt]} of u·x(t), t from 0 to 1 left to right. */
  slice(nt, nx) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.slice, spec: this.spec, nt, nx }).promise;
  }

  /** p_t and its score on an n × n grid for each t: [{t, sigma, n, density, score}]. */
  grids(times, n) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.grids, spec: this.spec, times, n }).promise;
  }

  /** A fresh score network and its training set: {points}. */
  learn(seed) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.learn, spec: this.spec, seed }).promise;
  }

  /** `steps` steps of denoising score matching: {losses, step}. */
  train(steps) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.train, spec: this.spec, steps }).promise;
  }

  /** The learned score on an n × n grid at t against the exact one (src/web/field.rs). */
  learnedGrid(t, n) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.learnedGrid, spec: this.spec, t, n }).promise;
  }

  forget() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.forget, spec: this.spec }).promise;
  }

  /** A particle run: {count, frames, times, sigmas, updates, shares}. */
  particles(options) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.particles, spec: this.spec, options }).promise;
  }
}
