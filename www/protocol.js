// The messages between the page's modules and the model worker, in one table: client.js sends
// only these, and worker.js has a handler for each (it checks so when it starts). A request is
// {id, type, ...}; the answer is {id, status: 'progress' | 'result' | 'error', ...}, an error
// with its message and its `name` (src/web/error.rs); `cancel` has no answer.
export const REQUESTS = Object.freeze({
  init: 'init', // {module}: a compiled WebAssembly.Module of pkg/ to instantiate, or null to fetch and compile it (a worker's first message; no answer)
  module: 'module', // → the worker's compiled WebAssembly.Module, for the pool's other workers
  load: 'load', // {url, backend} → the model's description
  generate: 'generate', // {url, backend, options} → {data, shape, evals, seconds}, with progress
  inpaint: 'inpaint', // the same, with options.image and options.mask
  interpolate: 'interpolate', // {url, backend, options: {a, b, frames, …}} → {data, shape, reconstructionRms, evals, seconds}, with progress
  likelihood: 'likelihood', // {url, backend, options: {pixels, seed, …}} → {bitsPerDim, nats, evals, steps, seconds}, with progress
  cancel: 'cancel', // {target}: the request id of the run to stop
  benchmark: 'benchmark', // {url, backend, batch, repeats, warmup} → {batch, ms}
  network: 'network', // {url, backend, x, t} → the raw network output
  destroyDevice: 'destroy-device', // {url, backend}: what a driver reset does (for tests)
  unload: 'unload', // {url}: frees every copy of the model
  stats: 'stats', // → the worker's memory figures
  spin: 'spin', // {ms}: a CPU load for that long (client.js probeCores) → {iterations, ms}
  field: 'field', // {op, spec, ...}: the 2-D explainer (one of FIELD_OPS)
});

// The 2-D explainer's operations on a field {distribution | points, sde, backend}.
export const FIELD_OPS = Object.freeze({
  describe: 'describe', // presets, dynamics, defaults, limits (no spec)
  info: 'info',
  grids: 'grids',
  slice: 'slice',
  particles: 'particles',
  learn: 'learn',
  train: 'train',
  learnedGrid: 'learned-grid',
  forget: 'forget',
});
