// Talks to the model worker with promises. One worker per page, shared by everything on it; the
// messages are protocol.js's table.
import { FIELD_OPS, REQUESTS } from './protocol.js';

let worker = null;
let nextId = 1;
const pending = new Map();

// A worker script must have the page's origin. When this module comes from another origin (a
// widget embedded from a CDN), a same-origin blob worker imports the real one; that needs CORS on
// the widget's host and `blob:` in a page's worker-src/script-src CSP, if it has one.
function createWorker() {
  const url = new URL('./worker.js', import.meta.url);
  if (url.origin === location.origin) return new Worker(url, { type: 'module' });
  const source = `import ${JSON.stringify(url.href)};`;
  return new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), { type: 'module' });
}

/** An Error with the name the library gave it (src/web/error.rs): callers branch on `name` —
 * `CancelledError`, `DeviceLostError` (a retry gets a fresh worker), `InvalidOptionError`,
 * `ModelFileError`, `NonFiniteError`, … — never on the wording of the message. */
function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

// A lost GPU device cannot be replaced inside the same wasm instance (Burn registers one runtime
// per device for good), so the worker goes and the next request starts a fresh one, which loads
// its models again. Requests still pending in the old worker fail with a retryable error.
function restartWorker() {
  worker?.terminate();
  worker = null;
  for (const request of pending.values()) request.reject(namedError('DeviceLostError', 'the GPU device was lost and the model worker restarted; run again'));
  pending.clear();
}

function getWorker() {
  if (worker) return worker;
  worker = createWorker();
  worker.onmessage = (event) => {
    const { id, status } = event.data;
    const request = pending.get(id);
    if (!request) return;
    if (status === 'progress') {
      request.onProgress?.(event.data.progress);
    } else {
      pending.delete(id);
      if (status === 'result') {
        request.resolve(event.data.result);
      } else {
        const error = namedError(event.data.name, event.data.error);
        request.reject(error);
        // This wasm instance cannot start a second device: the next request gets a new worker.
        if (error.name === 'DeviceLostError') restartWorker();
      }
    }
  };
  worker.onerror = (event) => {
    const error = new Error(`the model worker failed: ${event.message || 'could not start (is pkg/ built?)'}`);
    for (const request of pending.values()) request.reject(error);
    pending.clear();
  };
  return worker;
}

function request(message, onProgress) {
  if (!Object.values(REQUESTS).includes(message.type)) throw new Error(`the worker has no request ${message.type}`);
  const id = nextId++;
  let fail = null;
  const promise = new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    fail = reject;
  });
  try {
    getWorker().postMessage({ ...message, id });
  } catch (e) {
    pending.delete(id);
    fail(new Error(`could not start the model worker: ${e.message}`));
  }
  return { id, promise };
}

/** The worker's wasm memory, GPU allocator figures and model count:
 * {wasmMemoryBytes, gpuMemory: {allocations, bytesInUse, bytesReserved} | null, models, running}. */
export function workerStats() {
  return request({ type: REQUESTS.stats }).promise;
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

/** A model in the worker. `url` is resolved against the page. */
export class RemoteModel {
  constructor(url, backend = 'auto') {
    this.url = new URL(url, document.baseURI).href;
    this.backend = backend;
    this.current = null;
  }

  /** Loads the model; resolves to {backend, adapter, card, samplers, defaults, classes,
   * classifierProblem, fallbackReason, warmupSeconds, maxBatch}; `samplers` describes the samplers
   * it runs, the default first; `defaults` the runs' starting batch, seed and guidance and the
   * options' limits (src/sampling/catalog.rs); `classes` the class names a run can be guided to
   * (option `class`: an index into them, or 'all'), null without a classifier. */
  load() {
    return request({ type: REQUESTS.load, url: this.url, backend: this.backend }).promise;
  }

  /** Runs generate, inpaint, likelihood or interpolate; onProgress gets {step, total, t, progress, preview?}. */
  run(type, options, onProgress) {
    const { id, promise } = request({ type, url: this.url, backend: this.backend, options }, onProgress);
    this.current = id;
    return promise.finally(() => {
      if (this.current === id) this.current = null;
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

  /** Frees the model in the worker (a later call loads it again). */
  unload() {
    return request({ type: REQUESTS.unload, url: this.url }).promise;
  }

  cancel() {
    if (this.current !== null) getWorker().postMessage({ type: REQUESTS.cancel, target: this.current, id: 0 });
  }
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
