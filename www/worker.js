// The model lives in this module worker, so the page stays responsive while it samples (WebGPU
// works in workers). One worker can hold several models; every message carries an id, and every
// answer is {id, status: 'progress' | 'result' | 'error', ...}.
// pkg/ sits next to this module (tools/serve.py maps /pkg/ there; dist/ copies it there).
import init, { Field2D, ScoreModel } from './pkg/scorefield.js';

const ready = init({ module_or_path: new URL('./pkg/scorefield_bg.wasm', import.meta.url) });
const models = new Map(); // card URL + backend -> Promise<ScoreModel>
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

// The 2-D explainer's requests: {op: 'describe' | 'info' | 'grids' | 'slice' | 'particles' | 'learn' |
// 'train' | 'learned-grid' | 'forget', spec, ...}.
async function fieldRequest(id, data) {
  await ready;
  if (data.op === 'describe') return { result: Field2D.describe(), transfer: [] };
  const f = await field(data.spec);
  if (data.op === 'info') return { result: { weights: f.weights, means: f.means, modes: f.modes, direction: f.direction, backend: f.backend }, transfer: [] };
  if (data.op === 'slice') {
    const density = f.slice(data.nt, data.nx);
    return { result: { nt: data.nt, nx: data.nx, density }, transfer: [density.buffer] };
  }
  if (data.op === 'grids') {
    const grids = data.times.map((t) => ({ t, sigma: f.noiseLevel(t), ...f.grid(t, data.n) }));
    return { result: grids, transfer: grids.flatMap((g) => [g.density.buffer, g.score.buffer]) };
  }
  if (data.op === 'learn') {
    const out = await f.learn(data.seed);
    return { result: out, transfer: [out.points.buffer] };
  }
  if (data.op === 'train') {
    const losses = await f.train(data.steps);
    return { result: { losses, step: f.trainedSteps }, transfer: [losses.buffer] };
  }
  if (data.op === 'learned-grid') {
    const out = await f.learnedGrid(data.t, data.n);
    return { result: out, transfer: [out.score.buffer, out.error.buffer] };
  }
  if (data.op === 'forget') {
    f.forget();
    return { result: null, transfer: [] };
  }
  if (data.op === 'particles') {
    const out = await f.particles(data.options);
    out.sigmas = Array.from(out.times, (t) => f.noiseLevel(t));
    return { result: out, transfer: [out.frames.buffer] };
  }
  throw new Error(`unknown field request ${data.op}`);
}

// 'auto' takes WebGPU unless the browser only offers a software fallback adapter, on which the
// CPU build is faster (measured: see docs/PERFORMANCE.md).
async function chooseBackend(requested) {
  if (requested !== 'auto') return { backend: requested, reason: null };
  if (!('gpu' in navigator)) return { backend: 'cpu', reason: 'this browser has no WebGPU' };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { backend: 'cpu', reason: `WebGPU adapter request failed: ${e.message}` };
  }
  if (!adapter) return { backend: 'cpu', reason: 'no WebGPU adapter' };
  const fallback = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  if (fallback) return { backend: 'cpu', reason: 'the WebGPU adapter is a software fallback; the CPU is faster' };
  return { backend: 'webgpu', reason: null };
}

function describe(model, reason) {
  return { backend: model.backend, adapter: model.adapter, card: model.card, samplers: model.samplers, fallbackReason: reason ?? model.fallbackReason ?? null, warmupSeconds: model.warmupSeconds, maxBatch: model.maxBatch };
}

// Every error about a lost GPU device starts with this (src/web.rs DEVICE_LOST).
const DEVICE_LOST = 'GPU device lost';

async function load(url, requested) {
  const { backend, reason } = await chooseBackend(requested);
  const key = `${url} ${backend}`;
  if (!models.has(key)) {
    const loading = ready.then(() => ScoreModel.load(url, { backend }));
    models.set(key, loading);
    loading.catch(() => models.delete(key)); // a failed load may be retried
  }
  return { model: await models.get(key), reason };
}

self.onmessage = async (event) => {
  const { id, type } = event.data;
  try {
    if (type === 'cancel') {
      running.get(event.data.target)?.cancel(event.data.target);
      return;
    }
    if (type === 'stats') {
      await ready;
      // The GPU allocator's figures of the first model on WebGPU (one device per worker).
      let gpuMemory = null;
      for (const loading of models.values()) {
        const model = await loading.catch(() => null);
        if (model?.backend === 'webgpu') {
          gpuMemory = model.gpuMemory();
          break;
        }
      }
      self.postMessage({ id, status: 'result', result: { wasmMemoryBytes: ScoreModel.wasmMemoryBytes(), gpuMemory, models: models.size, running: running.size } });
      return;
    }
    if (type === 'unload') {
      // Frees every copy of the model (all backends) unless one is running.
      for (const [key, loading] of [...models]) {
        if (!key.startsWith(`${event.data.url} `)) continue;
        const model = await loading.catch(() => null);
        if (model && [...running.values()].includes(model)) throw new Error('the model is running; cancel it first');
        models.delete(key);
        model?.free();
      }
      self.postMessage({ id, status: 'result', result: null });
      return;
    }
    if (type === 'field') {
      const { result, transfer } = await fieldRequest(id, event.data);
      self.postMessage({ id, status: 'result', result }, transfer);
      return;
    }
    if (type === 'load') {
      const { model, reason } = await load(event.data.url, event.data.backend ?? 'auto');
      self.postMessage({ id, status: 'result', result: describe(model, reason) });
      return;
    }
    if (type === 'benchmark') {
      const { model } = await load(event.data.url, event.data.backend ?? 'auto');
      const { batch, repeats, warmup } = event.data;
      self.postMessage({ id, status: 'result', result: await model.benchmark(batch, repeats, warmup) });
      return;
    }
    if (type === 'destroy-device') {
      // For tests: what a driver reset does to the device under the model.
      const { model } = await load(event.data.url, event.data.backend ?? 'auto');
      model.destroyDevice();
      self.postMessage({ id, status: 'result', result: null });
      return;
    }
    if (type === 'network') {
      const { model } = await load(event.data.url, event.data.backend ?? 'auto');
      const out = await model.network(event.data.x, event.data.t);
      self.postMessage({ id, status: 'result', result: out }, [out.buffer]);
      return;
    }
    if (type === 'generate' || type === 'inpaint') {
      const { model } = await load(event.data.url, event.data.backend ?? 'auto');
      running.set(id, model);
      const onProgress = (p) => {
        const message = { id, status: 'progress', progress: p };
        self.postMessage(message, p.preview ? [p.preview.data.buffer] : []);
      };
      try {
        // The request id doubles as the run id, so a cancel stops this run only.
        const out = await model[type]({ ...event.data.options, runId: id }, onProgress);
        self.postMessage({ id, status: 'result', result: out }, [out.data.buffer]);
      } finally {
        running.delete(id);
      }
      return;
    }
    throw new Error(`unknown request type ${type}`);
  } catch (e) {
    const error = e?.message ?? String(e);
    // This wasm instance cannot start a second device: the client restarts the worker.
    self.postMessage({ id, status: 'error', error, deviceLost: error.startsWith(DEVICE_LOST) });
  }
};
