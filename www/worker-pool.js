// The pool of model workers, shared by everything on a page: worker 0 (one wasm instance, one GPU
// device, one copy of each model) serves every request; on the CPU the others draw parts of a
// batch (remote-model.js). Where the package's files are served from, how many workers a run may
// use, and the errors' names. The messages are protocol.js's table.
import { REQUESTS } from './protocol.js';

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

/** Worker `i` of the pool (started when it is first asked for). */
export function poolWorker(i) {
  while (pool.length <= i) pool.push(new ModelWorker());
  return pool[i];
}

/** Sends `message` to worker 0, which serves every request: {id, promise}. */
export const request = (message, onProgress) => pool[0].request(message, onProgress);

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

/** `n` as a count of workers (null: none pinned); a RangeError naming any other value. */
export function checkedWorkers(n) {
  if (n === null || n === undefined) return null;
  const value = Number(n);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`workers must be a whole number ≥ 1, got ${n}`);
  return value;
}

/** How many workers a CPU run may use: `own` (a model's pinned count), else the page's, else one
 * per core, within the library's cap. */
export function workerCount(own) {
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

/** The started workers other than worker 0. */
export function otherStartedWorkers() {
  return pool.slice(1).filter((w) => w.worker);
}

/** Once a model has loaded in worker 0 (`info`, its description): the library's cap on workers
 * holds from now on; on the CPU, the other workers are to instantiate worker 0's compiled module,
 * and in WebKit, unless `own` (the model's pinned count) or the page pins the count, the page's
 * first CPU load measures how many of the workers its reported core count allows run at once
 * (probeCores) and keeps that many. Resolves when the pool is ready for the model's copies. */
export async function readyPool(info, own) {
  maxWorkers = info.defaults.maxWorkers;
  if (info.backend !== 'cpu') return;
  if (workerCount(own) > 1 && !sharedModule) sharedModule = await request({ type: REQUESTS.module }).promise.catch(() => null);
  if ((own ?? pageWorkers) === null && workerCount(own) > 1 && BUCKETED_CORE_COUNT) {
    coreProbe ??= probeCores(workerCount(own)).then((cores) => {
      measuredCores = cores;
      // The workers beyond the measured cores go (a pinned count starts them again).
      for (const w of pool.slice(cores)) w.stop();
    }, () => {});
    await coreProbe;
  }
}
