// A page's TypeScript that uses the package as its readers would, type-checked by `tsc --noEmit`
// against the installed tarball (package.test.mjs). Each `@ts-expect-error` marks a mistake the
// declarations must reject: were a type `any`, tsc would report the directive as unused.
import { setBasePath, version, type ScoreField, type ScoreFieldAttributes, type ScoreFieldResult } from 'score-field';
import { RemoteField, RemoteModel, likelihoodReferences, setWorkers, type ModelInfo } from 'score-field/client';
import init, { Field2D, ScoreModel, errorNames, initSync, type RunOptions } from 'score-field/wasm';

setBasePath('/score-field/');
const shown: string = version;

// The element, through HTMLElementTagNameMap.
const widget = document.querySelector('score-field');
if (widget) {
  const element: ScoreField = widget;
  widget.addEventListener('progress', (event) => {
    const fraction: number = event.detail.fraction;
    const total: number | null = event.detail.total;
    return [fraction, total, event.detail.step, event.detail.t, event.detail.sigma];
  });
  widget.addEventListener('done', (event) => {
    const result: ScoreFieldResult = event.detail;
    return result;
  });
  widget.addEventListener('error', (event) => {
    if (event.detail.name === 'CancelledError') return;
    const message: string = event.detail.message;
    return message;
  });
  // Other events keep their DOM types.
  widget.addEventListener('click', (event) => event.clientX);
  // @ts-expect-error: a progress event's detail has no `percent`
  widget.addEventListener('progress', (event) => event.detail.percent);
  // @ts-expect-error: an error event's detail is {name, message}, not an ErrorEvent
  widget.addEventListener('error', (event) => event.detail.lineno);
  const running: Promise<ScoreFieldResult | null> = widget.run();
  widget.cancel();
  const state: 'idle' | 'loading' | 'ready' | 'running' | 'done' | 'error' = widget.state;
  const batch: number | null = widget.settings.batch;
  const problems: string[] = widget.settings.problems;
  // @ts-expect-error: result is read-only
  widget.result = null;
  // @ts-expect-error: no such method
  widget.start();
  console.log(element, running, state, batch, problems, widget.playback?.fps, widget.learning?.step);
}
const created: ScoreField = document.createElement('score-field');
const attributes: ScoreFieldAttributes = { mode: 'trajectory', sampler: 'em', steps: '100', autoplay: '', theme: 'dark' };
// @ts-expect-error: not a mode
const wrongMode: ScoreFieldAttributes = { mode: 'paint' };
// @ts-expect-error: not an attribute
const wrongName: ScoreFieldAttributes = { colour: 'red' };
console.log(shown, created, attributes, wrongMode, wrongName);

// The client API: models in the workers.
export async function client(): Promise<void> {
  setWorkers(2);
  const model = new RemoteModel('models/mnist.json', 'cpu');
  const info: ModelInfo = await model.load();
  const first = info.samplers[0];
  const out = await model.generate({ sampler: first.name, steps: first.defaultSteps, batch: 2, seed: 1, class: 3 }, (p) => p.preview?.shape);
  const data: Float32Array = out.data;
  const workers: number | undefined = out.workers;
  // @ts-expect-error: a misspelt option
  await model.generate({ step: 5 });
  // @ts-expect-error: not a sampler
  await model.generate({ sampler: 'ddim' });
  // @ts-expect-error: inpaint needs the image and the mask
  await model.inpaint({ batch: 1 });
  const measured = await model.likelihood({ pixels: new Array<number>(784).fill(0), probes: 2 });
  const bitsPerDim: number = measured.bitsPerDim;
  const path = await model.interpolate({ a: data, b: data, frames: 5 });
  const rms: [number, number] = path.reconstructionRms;
  const references = await likelihoodReferences(model.url, info.card);
  const field = new RemoteField({ distribution: 'moons', sde: 'vp' });
  const particles = await field.particles({ sampler: 'ald', particles: 100 });
  const shares: Float64Array | null = particles.shares;
  console.log(workers, bitsPerDim, rms, references?.images[0].bits_per_dim, shares, (await RemoteField.describe()).maxParticles);
}

// The wasm module itself.
export async function wasm(bytes: Uint8Array): Promise<void> {
  initSync({ module: bytes });
  await init();
  const model = await ScoreModel.load('https://example.org/models/mnist.json', { backend: 'auto' });
  const defaults = model.runDefaults();
  const options: RunOptions = { batch: defaults.batch.generate, steps: defaults.guided.steps, previewOf: 'x' };
  const result = await model.generate(options, ({ step, total, progress }) => [step, total, progress]);
  const shape: number[] = result.shape;
  // @ts-expect-error: previewOf is 'mean' or 'x'
  await model.generate({ previewOf: 'noise' });
  // @ts-expect-error: a backend is auto, webgpu or cpu
  await ScoreModel.load('https://example.org/models/mnist.json', { backend: 'gpu' });
  const field = await Field2D.create({ distribution: 'ring', sde: 've' });
  const grid = field.grid(0.5, 32);
  const density: Float32Array = grid.density;
  const names: string[] = errorNames();
  console.log(shape, density, names, model.classes?.length, Field2D.describe().presets[0].name);
}
