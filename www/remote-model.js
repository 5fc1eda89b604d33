// A model in the pool's workers (worker-pool.js), with promises: loading it, its runs (a CPU batch
// split across the workers and joined again), cancelling them, warming the workers up, and the
// reference likelihoods its card names.
import { REQUESTS } from './protocol.js';
import { checkedWorkers, otherStartedWorkers, poolWorker, readyPool, request, workerCount } from './worker-pool.js';

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
   * classifierProblem, autoguided, guideProblem, parameters, guide, fallbackReason, warmupSeconds,
   * maxBatch};
   * `samplers` describes the samplers it runs, the default first; `defaults` the runs' starting
   * batch, seed, guidance and autoguidance and the options' limits (src/frontend.rs RunDefaults, with the model card's sampling settings);
   * `classes` the class names a run can be guided to (option `class`: an index into them, or
   * 'all'), null without a classifier; `autoguided` whether runs are autoguided by the worse model
   * the card names (option `autoguidance`, the weight w; 1 turns it off), `guideProblem` why that
   * model could not be loaded, `guide` that model ({card, parameters}) when loaded, `parameters`
   * the network's own parameter count. On the CPU the other workers start loading their copies too, so
   * that the first split run need not wait. In WebKit, unless the count is pinned, the page's
   * first CPU load first measures how many of the workers its reported core count allows run at
   * once (probeCores) and keeps that many. */
  async load() {
    const info = await request({ type: REQUESTS.load, url: this.url, backend: this.backend }).promise;
    this.info = info;
    await readyPool(info, this.workers);
    if (info.backend === 'cpu') {
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
    const requests = parts ? this.#parts(type, options, progress, parts) : [{ worker: poolWorker(0), ...request({ type, url: this.url, backend: this.backend, options }, progress) }];
    this.current = requests;
    runsAsked += 1; // the warm-up stops repeating (warm())
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
    await Promise.all(otherStartedWorkers().map((w) => w.request({ type: REQUESTS.unload, url: this.url }).promise));
  }

  cancel() {
    for (const { worker, id } of this.current ?? []) worker.cancel(id);
  }
}

// The first runs in a worker paid for what later runs find done: the other workers' wasm
// instances and copies of the model (started by the load, and still loading when a click came
// soon after it), their memory grown to a run's size, and the engine's optimised code for the hot
// functions, which V8 compiles in tiers, the later ones from what earlier runs of each function
// taught it: the instant model's two evaluations at batch 8 took about 0.30 s on a worker's first
// two runs, 0.18–0.24 s on the next six and 0.175 s from about the tenth (docs/PERFORMANCE.md).
// So once a CPU model has loaded, when the page is idle after painting what the load brought,
// every worker of its pool runs it while the reader reads: the default sampler at its fewest steps
// (but two where the default takes two or more, so that a consistency model's re-noising step is
// warmed too), one image per worker for each worker's part of a default Generate; once, and again
// while no run has been asked for since the load, up to WARM_RUNS runs in all or WARM_MS after the
// first on that worker.
// Once per model and worker count per page (a page's widgets share it); a failure is left to the runs.
const WARM_RUNS = 8;
const WARM_MS = 1500;
let runsAsked = 0; // runs asked of any model on this page (RemoteModel.run)
const warmups = new Map(); // `${url} ${workers}` -> Promise<number of workers warmed>
const whenIdle = () => new Promise((resolve) => (typeof requestIdleCallback === 'function' ? requestIdleCallback(resolve, { timeout: 1000 }) : setTimeout(resolve, 0)));

function warm(model) {
  const k = model.workerCount;
  const key = `${model.url} ${k}`;
  if (!warmups.has(key)) {
    const info = model.info;
    const sampler = info.samplers[0];
    const options = { sampler: sampler.name, batch: Math.ceil(info.defaults.batch.generate / k), seed: 0 };
    if (sampler.takesSteps) options.steps = Math.max(sampler.minSteps, Math.min(2, sampler.defaultSteps));
    if (info.autoguided) options.autoguidance = info.defaults.autoguidance;
    const once = (i) => poolWorker(i).request({ type: REQUESTS.generate, url: model.url, backend: 'cpu', options }).promise.then(() => true, () => false);
    const asked = runsAsked;
    const worker = async (i) => {
      if (!(await once(i))) return 0;
      const start = performance.now();
      for (let r = 1; r < WARM_RUNS && runsAsked === asked && performance.now() - start < WARM_MS; r++) await once(i);
      return 1;
    };
    warmups.set(key, whenIdle().then(() => Promise.all(Array.from({ length: k }, (_, i) => worker(i)))).then((done) => done.reduce((a, b) => a + b, 0)));
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
