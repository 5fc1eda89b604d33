// The model lives in this module worker, so the page stays responsive while it samples (WebGPU
// works in workers). One worker can hold several models; its messages are the table in
// protocol.js, shared with client.js.
// pkg/ sits next to this module (tools/serve.py maps /pkg/ there; dist/ copies it there).
import init, { Field2D, ScoreModel } from './pkg/scorefield.js';
import { FIELD_OPS, REQUESTS } from './protocol.js';

const WASM_URL = new URL('./pkg/scorefield_bg.wasm', import.meta.url);
// The compiled module and its instance, started by the worker's first message (REQUESTS.init):
// the pool's first worker compiles pkg/, the others instantiate that worker's module, so an engine
// compiles it (and tiers its hot functions up) once per page, not once per worker.
let compiled = null;
let ready = null;
function start(module = null) {
  if (!ready) {
    compiled = module ? Promise.resolve(module) : compileWasm();
    ready = compiled.then((m) => init({ module_or_path: m }));
  }
  return ready;
}

async function compileWasm() {
  const response = await fetch(WASM_URL);
  if (!response.ok) throw new Error(`the wasm module ${WASM_URL.pathname} could not be fetched: HTTP ${response.status}`);
  // Streaming compilation needs the wasm MIME type; a host that sends another gets the slower way.
  if (response.headers.get('Content-Type')?.split(';')[0].trim() === 'application/wasm') return WebAssembly.compileStreaming(response);
  return WebAssembly.compile(await response.arrayBuffer());
}
const models = new Map(); // card URL + device (webgpu | cpu) -> Promise<ScoreModel>
const running = new Map(); // request id -> ScoreModel
const fields = new Map(); // JSON of a field's spec -> Promise<Field2D> (the 2-D explainer; src/web/field.rs)

// A field per spec (distribution or points, SDE, backend). The 32 most recently used are kept (a
// drawing makes a new spec per stroke); a field with a network in training is used every chunk.
function field(spec) {
  const key = JSON.stringify(spec ?? {});
  let f = fields.get(key);
  if (f) {
    fields.delete(key); // most recently used last
  } else {
    f = Field2D.create(spec ?? {});
    f.catch(() => fields.delete(key)); // a failed one may be retried
  }
  fields.set(key, f);
  if (fields.size > 32) {
    const [oldest, old] = fields.entries().next().value;
    fields.delete(oldest);
    old.then((x) => x.free(), () => {});
  }
  return f;
}

// The 2-D explainer's operations (protocol.js FIELD_OPS): each returns {result, transfer}.
const fieldOps = {
  [FIELD_OPS.describe]: () => ({ result: Field2D.describe(), transfer: [] }),
  [FIELD_OPS.info]: (f) => ({ result: { weights: f.weights, means: f.means, modes: f.modes, direction: f.direction, backend: f.backend }, transfer: [] }),
  [FIELD_OPS.slice]: (f, data) => {
    const density = f.slice(data.nt, data.nx);
    return { result: { nt: data.nt, nx: data.nx, density }, transfer: [density.buffer] };
  },
  [FIELD_OPS.grids]: (f, data) => {
    const grids = data.times.map((t) => ({ t, sigma: f.noiseLevel(t), ...f.grid(t, data.n) }));
    return { result: grids, transfer: grids.flatMap((g) => [g.density.buffer, g.score.buffer]) };
  },
  [FIELD_OPS.learn]: async (f, data) => {
    const out = await f.learn(data.seed);
    return { result: out, transfer: [out.points.buffer] };
  },
  [FIELD_OPS.train]: async (f, data) => {
    const losses = await f.train(data.steps);
    return { result: { losses, step: f.trainedSteps }, transfer: [losses.buffer] };
  },
  [FIELD_OPS.learnedGrid]: async (f, data) => {
    const out = await f.learnedGrid(data.t, data.n);
    return { result: out, transfer: [out.score.buffer, out.error.buffer] };
  },
  [FIELD_OPS.forget]: (f) => {
    f.forget();
    return { result: null, transfer: [] };
  },
  [FIELD_OPS.particles]: async (f, data) => {
    const out = await f.particles(data.options);
    out.sigmas = Array.from(out.times, (t) => f.noiseLevel(t));
    return { result: out, transfer: [out.frames.buffer] };
  },
};

// What the page and the widget are told of a loaded model, with the library's run defaults.
async function describe(url, backend) {
  const { model, fallbackReason } = await load(url, backend);
  return {
    backend: model.backend, adapter: model.adapter, card: model.card, samplers: model.samplers, defaults: model.runDefaults(),
    classes: model.classes ?? null, classifierProblem: model.classifierProblem ?? null,
    autoguided: model.autoguided, guideProblem: model.guideProblem ?? null, parameters: model.parameters, guide: model.guide ?? null,
    fallbackReason, warmupSeconds: model.warmupSeconds, maxBatch: model.maxBatch,
  };
}

// What a backend choice comes to, asked of Rust once per choice (src/web/device.rs, the one
// definition of `auto`): widgets loading at the same moment share the answer, and so one start of
// the WebGPU device. A refusal is forgotten, so that it may be asked again.
const resolved = new Map(); // 'auto' | 'webgpu' | 'cpu' -> Promise<{backend, fallbackReason}>
function resolveBackend(choice) {
  if (!resolved.has(choice)) {
    const answer = start().then(() => ScoreModel.resolveBackend({ backend: choice }));
    resolved.set(choice, answer);
    answer.catch(() => resolved.delete(choice));
  }
  return resolved.get(choice);
}

// A model per card URL and device: the backend asked for (`auto`, `webgpu`, `cpu`) is first
// resolved, so `auto` that took the CPU and `cpu` share one copy. Resolves to {model, fallbackReason}.
async function load(url, backend = 'auto') {
  const { backend: device, fallbackReason } = await resolveBackend(backend);
  const key = `${url} ${device}`;
  if (!models.has(key)) {
    const loading = ScoreModel.load(url, { backend: device });
    models.set(key, loading);
    loading.catch(() => models.delete(key)); // a failed load may be retried
  }
  return { model: await models.get(key), fallbackReason };
}

// One handler per request type (protocol.js REQUESTS): each returns {result, transfer}, or
// nothing for a request without an answer.
const handlers = {
  [REQUESTS.cancel]: (data) => {
    running.get(data.target)?.cancel(data.target);
  },
  [REQUESTS.init]: (data) => {
    start(data.module).catch(() => {}); // a failure reaches the requests that await it
  },
  [REQUESTS.module]: async () => {
    await start();
    return { result: await compiled, transfer: [] };
  },
  [REQUESTS.spin]: async (data) => {
    await start(); // instantiating the module is not part of the load
    return { result: spin(data), transfer: [] };
  },
  [REQUESTS.stats]: async () => {
    await start();
    // The GPU allocator's figures of the first model on WebGPU (one device per worker).
    let gpuMemory = null;
    for (const loading of models.values()) {
      const model = await loading.catch(() => null);
      if (model?.backend === 'webgpu') {
        gpuMemory = model.gpuMemory();
        break;
      }
    }
    return { result: { wasmMemoryBytes: ScoreModel.wasmMemoryBytes(), gpuMemory, models: models.size, running: running.size, evaluations }, transfer: [] };
  },
  [REQUESTS.unload]: async (data) => {
    // Frees every copy of the model (all backends) unless one is running.
    for (const [key, loading] of [...models]) {
      if (!key.startsWith(`${data.url} `)) continue;
      const model = await loading.catch(() => null);
      if (model && [...running.values()].includes(model)) throw new Error('the model is running; cancel it first');
      models.delete(key);
      model?.free();
    }
    return { result: null, transfer: [] };
  },
  [REQUESTS.field]: async (data) => {
    const op = fieldOps[data.op];
    if (!op) throw new Error(`unknown field request ${data.op}`);
    await start();
    const f = data.op === FIELD_OPS.describe ? null : await field(data.spec);
    return op(f, data);
  },
  [REQUESTS.load]: async (data) => ({ result: await describe(data.url, data.backend), transfer: [] }),
  [REQUESTS.benchmark]: async (data) => {
    const { model } = await load(data.url, data.backend);
    return { result: await model.benchmark(data.batch, data.repeats, data.warmup), transfer: [] };
  },
  [REQUESTS.destroyDevice]: async (data) => {
    (await load(data.url, data.backend)).model.destroyDevice();
    return { result: null, transfer: [] };
  },
  [REQUESTS.network]: async (data) => {
    const out = await (await load(data.url, data.backend)).model.network(data.x, data.t);
    return { result: out, transfer: [out.buffer] };
  },
  [REQUESTS.generate]: (data, id) => sample('generate', data, id),
  [REQUESTS.inpaint]: (data, id) => sample('inpaint', data, id),
  [REQUESTS.likelihood]: (data, id) => sample('likelihood', data, id),
  [REQUESTS.interpolate]: (data, id) => sample('interpolate', data, id),
};
for (const type of Object.values(REQUESTS)) {
  if (!handlers[type]) throw new Error(`worker.js has no handler for the request ${type}`);
}
for (const op of Object.values(FIELD_OPS)) {
  if (!fieldOps[op]) throw new Error(`worker.js has no handler for the field request ${op}`);
}

// A CPU load for the pool's count of cores (client.js probeCores): a dependent floating-point
// loop run for `ms` milliseconds (0: only the warm-up), counting the iterations done. A worker's
// first spin first runs the loop for SPIN_WARMUP_MS, so that the JIT's last tier is the one
// counted (WebKit's ran the loop 20 × faster than its first). Resolves to {iterations, ms}.
const SPIN_WARMUP_MS = 150;
const SPIN_CHUNK = 1 << 14;
let spinWarm = false;
let spinSink = 0; // the loops' results, kept so that they cannot be left out

function spinLoop(n) {
  let x = 0.5;
  for (let i = 0; i < n; i++) x = Math.sqrt(x + i) * 0.999;
  return x;
}

function spinFor(ms) {
  const start = performance.now();
  let iterations = 0;
  while (performance.now() - start < ms) {
    spinSink += spinLoop(SPIN_CHUNK);
    iterations += SPIN_CHUNK;
  }
  return { iterations, ms: performance.now() - start };
}

function spin({ ms }) {
  if (!spinWarm) {
    spinFor(SPIN_WARMUP_MS);
    spinWarm = true;
  }
  return spinFor(ms);
}

// The network evaluations of the runs this worker has finished (a run's `evals`), for workerStats.
let evaluations = 0;

// generate, inpaint, likelihood or interpolate, with progress (and its previews' buffers transferred).
async function sample(type, data, id) {
  const { model } = await load(data.url, data.backend);
  running.set(id, model);
  const onProgress = (p) => self.postMessage({ id, status: 'progress', progress: p }, p.preview ? [p.preview.data.buffer] : []);
  try {
    // The request id doubles as the run id, so a cancel stops this run only.
    const out = await model[type]({ ...data.options, runId: id }, onProgress);
    evaluations += out.evals ?? 0;
    return { result: out, transfer: out.data ? [out.data.buffer] : [] };
  } finally {
    running.delete(id);
  }
}

self.onmessage = async (event) => {
  const { id, type } = event.data;
  try {
    const handler = handlers[type];
    if (!handler) throw new Error(`unknown request type ${type}`);
    const answer = await handler(event.data, id);
    if (answer) self.postMessage({ id, status: 'result', result: answer.result }, answer.transfer);
  } catch (e) {
    // The error's name (src/web/error.rs: CancelledError, DeviceLostError, …) goes beside its
    // message: structured cloning would keep only JavaScript's own error names.
    self.postMessage({ id, status: 'error', error: e?.message ?? String(e), name: e?.name ?? 'Error' });
  }
};
