// The browser benchmark (www/bench.html): a cold page loads the model, draws its first sample
// (EM, 50 steps, batch 16), then times score evaluations at each batch size (median of `repeats`
// after `warmup`) and, with runs=1, whole EM-1000 and RK45 runs at batch 16. Results go to the
// page and to window.benchResults (tools/bench.mjs reads them).
import { RemoteModel } from './client.js';

const params = new URLSearchParams(location.search);
const backend = params.get('backend') ?? 'auto';
const batches = (params.get('batches') ?? '1,16,64').split(',').map(Number);
const repeats = Number(params.get('repeats') ?? 20);
const warmup = Number(params.get('warmup') ?? 3);
const runs = params.get('runs') !== '0';
const $ = (id) => document.getElementById(id);

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

async function main() {
  const out = { backend, userAgent: navigator.userAgent, repeats, warmup };
  const model = new RemoteModel(new URL('models/mnist.json', location.href).href, backend);
  const info = await model.load();
  out.loadedMs = performance.now();
  out.adapter = info.adapter;
  out.backend = info.backend;
  const flops = info.card.architecture; // (tools/bench.mjs adds transfer sizes from the files)
  $('status').textContent = `loaded on ${info.backend} (${info.adapter}); first sample…`;
  const first = await model.generate({ sampler: 'em', steps: 50, batch: 16, seed: 1 });
  out.firstSampleMs = performance.now();
  out.firstSampleRunSeconds = first.seconds;
  out.evals = [];
  for (const batch of batches) {
    $('status').textContent = `timing batch ${batch}…`;
    const { ms } = await model.benchmark(batch, repeats, warmup);
    out.evals.push({ batch, repeats: ms.length, medianMs: median(ms), minMs: Math.min(...ms), maxMs: Math.max(...ms) });
  }
  out.runs = [];
  if (runs) {
    for (const [name, opts] of [['em:1000', { sampler: 'em', steps: 1000 }], ['ode-rk45:1e-5', { sampler: 'ode-rk45', rtol: 1e-5, atol: 1e-5 }]]) {
      $('status').textContent = `${name}…`;
      const r = await model.generate({ ...opts, batch: 16, seed: 2, previewEvery: 100000 });
      out.runs.push({ run: name, batch: 16, seconds: r.seconds, evals: r.evals });
    }
  }
  out.architecture = flops;
  window.benchResults = out;
  $('results').textContent = JSON.stringify(out, null, 2);
  $('status').textContent = 'done';
  document.body.dataset.done = '1';
}

main().catch((e) => {
  window.benchResults = { error: e.message };
  $('status').textContent = `error: ${e.message}`;
  document.body.dataset.done = '1';
});
