// client.js: the models in a pool of module workers behind promises (docs/reference/wasm-api.md,
// "www/client.js"). The page and the <score-field> element use it; so may any page.
import type {
  BackendChoice, Backend, BenchmarkResult, FieldDescription, FieldGrid, FieldSpec, GpuMemory, InpaintOptions,
  InterpolateOptions, InterpolateResult, LearnedGrid, LikelihoodOptions, LikelihoodResult, ModelCard, GuideModel, ParticleOptions,
  ParticleRun, ProgressCallback, RunDefaults, RunOptions, RunResult, SamplerInfo,
} from './pkg/scorefield.js';

// The option and result types of the wasm API, for a page that uses this module alone.
export type {
  Backend, BackendChoice, LoadOptions, ResolvedBackend, SamplerName, SamplerInfo, RunDefaults,
  ModelCard, GuideModel, Images, Progress, ProgressCallback, RunOptions, InpaintOptions, RunResult,
  LikelihoodOptions, LikelihoodResult, InterpolateOptions, InterpolateResult, BenchmarkResult,
  GpuMemory, FieldDistribution, FieldSampler, FieldSpec, FieldDescription, ParticleOptions,
  ParticleRun, FieldGrid, LearnedGrid,
} from './pkg/scorefield.js';

/** What `RemoteModel.load` resolves to: the loaded model as the worker describes it. */
export interface ModelInfo {
  backend: Backend;
  adapter: string;
  card: ModelCard;
  /** The samplers it runs, the default first. */
  samplers: SamplerInfo[];
  /** The runs' starting values and limits. */
  defaults: RunDefaults;
  /** The class names a run can be guided to, or null without a classifier. */
  classes: string[] | null;
  classifierProblem: string | null;
  autoguided: boolean;
  guideProblem: string | null;
  /** The network's parameter count. */
  parameters: number;
  /** The worse model of autoguided runs when loaded: its card and parameter count. */
  guide: GuideModel | null;
  fallbackReason: string | null;
  warmupSeconds: number;
  maxBatch: number;
}

/** A generate or inpaint run's result; `workers` when the pool split its batch. */
export interface RemoteRunResult extends RunResult {
  workers?: number;
}

/** One part of a batch split across workers. */
export interface BatchPart {
  start: number;
  batch: number;
}

/** A worker's memory figures and work (`workerStats`). */
export interface WorkerStats {
  wasmMemoryBytes: number;
  gpuMemory: GpuMemory | null;
  models: number;
  running: number;
  /** The network evaluations of the runs it has finished (each run's `evals`). */
  evaluations: number;
}

/** The pool's measurement of how many workers run at once (`measuredCoreCount`, WebKit only):
 * the work worker 0 does alone in a fixed time against what all `workers` do together. */
export interface CoreMeasurement {
  /** navigator.hardwareConcurrency. */
  reported: number;
  /** How many workers were run together. */
  workers: number;
  /** Their work together over one worker's alone (the median of three rounds). */
  throughput: number;
  /** How many workers CPU runs use since. */
  cores: number;
}

/** A model card's reference likelihoods (`likelihoodReferences`). */
export interface LikelihoodReferences {
  format: 'scorefield-likelihood-references';
  version: 1;
  /** The model and its weights' SHA-256 that measured them. */
  model: string;
  weights_sha256: string;
  options: { rtol: number; atol: number; seed: number; probes: number };
  images: { name: string; label: string; pixels: number[]; bits_per_dim: number; evals: number }[];
  [key: string]: unknown;
}

/** A model in the workers; `url` (of its card) is resolved against the page. */
export class RemoteModel {
  constructor(url: string | URL, backend?: BackendChoice, workers?: number | string | null);
  /** The card's absolute URL. */
  readonly url: string;
  backend: BackendChoice;
  /** How many workers its CPU runs may use (null: the page's `setWorkers`, else one per core). */
  workers: number | null;
  /** The description `load` resolved to, or null before. */
  info: ModelInfo | null;
  load(): Promise<ModelInfo>;
  /** On the CPU, once loaded: resolves to how many of the pool's workers have run the model once
   * (while the reader reads, so that the first click costs what later ones do); 0 otherwise. */
  warmed: Promise<number>;
  /** 1 on WebGPU; else the pinned count or one per core, within the library's cap. */
  readonly workerCount: number;
  /** How a generate or inpaint run's batch splits across workers, or null to run whole in worker 0. */
  split(type: string, options: RunOptions | null | undefined): BatchPart[] | null;
  /** A run by its request type (`generate`, `inpaint`, `likelihood`, `interpolate`). */
  run(type: 'generate' | 'inpaint', options: RunOptions | InpaintOptions | null | undefined, onProgress?: ProgressCallback): Promise<RemoteRunResult>;
  run(type: 'likelihood', options: LikelihoodOptions, onProgress?: ProgressCallback): Promise<LikelihoodResult>;
  run(type: 'interpolate', options: InterpolateOptions, onProgress?: ProgressCallback): Promise<InterpolateResult>;
  generate(options?: RunOptions | null, onProgress?: ProgressCallback): Promise<RemoteRunResult>;
  inpaint(options: InpaintOptions, onProgress?: ProgressCallback): Promise<RemoteRunResult>;
  likelihood(options: LikelihoodOptions, onProgress?: ProgressCallback): Promise<LikelihoodResult>;
  interpolate(options: InterpolateOptions, onProgress?: ProgressCallback): Promise<InterpolateResult>;
  benchmark(batch: number, repeats: number, warmup: number): Promise<BenchmarkResult>;
  network(x: Float32Array | number[], t: Float32Array | number[]): Promise<Float32Array>;
  destroyDevice(): Promise<null>;
  /** Frees the model in every worker. */
  unload(): Promise<void>;
  /** Stops the run in progress: it rejects with a `CancelledError`. */
  cancel(): void;
}

/** A field's time picture (`RemoteField.slice`). */
export interface FieldSlice {
  nt: number;
  nx: number;
  /** [nx, nt]. */
  density: Float32Array;
}

/** The 2-D explainer's distribution in worker 0. */
export class RemoteField {
  constructor(spec: FieldSpec);
  spec: FieldSpec;
  static describe(): Promise<FieldDescription>;
  info(): Promise<{ weights: Float64Array; means: Float64Array; modes: boolean; direction: Float64Array; backend: Backend }>;
  slice(nt: number, nx: number): Promise<FieldSlice>;
  grids(times: number[], n: number): Promise<(FieldGrid & { t: number; sigma: number })[]>;
  learn(seed: number): Promise<{ points: Float32Array }>;
  train(steps: number): Promise<{ losses: Float32Array; step: number }>;
  learnedGrid(t: number, n: number): Promise<LearnedGrid>;
  forget(): Promise<null>;
  particles(options?: ParticleOptions): Promise<ParticleRun & { sigmas: number[] }>;
}

/** Where the package's files (worker.js, pkg/, models/) are served from, for a page that bundled
 * this module: the URL of their folder, relative to the page. Call it before the first model loads. */
export function setBasePath(url: string | URL): void;
/** The folder the workers start from (a URL ending in /). */
export function basePath(): string;
/** Pins how many workers CPU runs use on this page (null: one per core); a RangeError for anything but a whole number ≥ 1. */
export function setWorkers(n: number | string | null | undefined): void;
/** Worker i's memory figures. */
export function workerStats(i?: number): Promise<WorkerStats>;
/** How many workers the pool has started. */
export function startedWorkers(): number;
/** The pool's count of the cores where the browser reports a bucket (WebKit), measured at the page's first CPU load unless the count is pinned; null before or without one. */
export function measuredCoreCount(): CoreMeasurement | null;
/** The reference likelihoods a model card names, or null. */
export function likelihoodReferences(modelUrl: string | URL, card: ModelCard): Promise<LikelihoodReferences | null>;
/** An Error whose `name` is the library's error name. */
export function namedError(name: string, message: string): Error;
