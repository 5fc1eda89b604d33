// The WebAssembly API (pkg/scorefield.js, wasm-bindgen's bindings of src/web/), with its option
// and result objects as types. Every call is described in docs/reference/wasm-api.md.

/** A backend a model runs on. */
export type Backend = 'webgpu' | 'cpu';
/** A backend to ask for: `auto` takes WebGPU unless the browser offers no adapter or only a
 * software fallback, else the CPU. */
export type BackendChoice = 'auto' | Backend;

/** Options of `ScoreModel.load`, `fromBytes` and `resolveBackend`. */
export interface LoadOptions {
  backend?: BackendChoice;
}

/** What a backend choice comes to in this wasm instance. */
export interface ResolvedBackend {
  backend: Backend;
  /** Why `auto` took the CPU, or null. */
  fallbackReason: string | null;
}

/** A sampler's name (docs/reference/samplers.md): a score model's, or `consistency`, the one
 * sampler of consistency models. */
export type SamplerName = 'dpmpp-2m' | 'edm-heun' | 'em' | 'rd' | 'pc' | 'ald' | 'ode-euler' | 'ode-heun' | 'ode-rk45' | 'consistency';

/** A sampler as the library describes it (`model.samplers`, the model's default first). */
export interface SamplerInfo {
  name: SamplerName;
  /** Its name for people, with the paper. */
  label: string;
  /** The paper and the equation or algorithm it implements. */
  paper: string;
  /** What one step costs. */
  step: string;
  /** The run options it reads besides steps (`rho`, `correctorSteps`, `snr`, `churn`, `rtol`, …). */
  options: string[];
  /** False for an adaptive solver, which picks its own steps. */
  takesSteps: boolean;
  /** Its step count on this model (its card's `sampling`). */
  defaultSteps: number;
  /** The fewest steps that do not give noise on this model, and why. */
  minSteps: number;
  minStepsWhy: string;
  defaultCorrectorSteps?: number;
  defaultSnr?: number;
  defaultChurn?: number;
  /** Whether image i of a run is the same whatever the batch (then the worker pool splits batches). */
  perSample: boolean;
}

/** The runs' starting values and limits (`model.runDefaults()`, src/frontend.rs `RunDefaults`). */
export interface RunDefaults {
  batch: { generate: number; inpaint: number; trajectory: number };
  seed: number;
  /** The page's largest batch (a device may hold fewer: `model.maxBatch`). */
  maxBatch: number;
  maxSteps: number;
  maxCorrectorSteps: number;
  maxSnr: number;
  maxChurn: number;
  /** This model's classifier guidance scale (its card's `sampling.guided.scale`). */
  guidance: number;
  guidanceSliderMax: number;
  maxGuidance: number;
  /** This model's autoguidance weight and the noise level it acts above (its card's `sampling.autoguidance`). */
  autoguidance: number;
  autoguidanceSliderMax: number;
  autoguidanceMinSigma: number;
  maxAutoguidance: number;
  /** How many workers the worker pool uses at most. */
  maxWorkers: number;
  /** The sampler, steps and churn of a guided run on this model. */
  guided: { sampler: SamplerName; steps: number; churn: number };
}

/** A model card as a plain object (docs/reference/model-card.md). */
export interface ModelCard {
  format: 'scorefield-model-card';
  version: number;
  name: string;
  /** The safetensors file, relative to the card. */
  weights: string;
  image: { channels: number; height: number; width: number; range: [number, number] };
  architecture: { type: string; [key: string]: unknown };
  sde: { type: string; [key: string]: unknown };
  parameterisation?: { type: string; [key: string]: unknown };
  classifier?: string;
  guide?: string;
  likelihood_references?: string;
  sampling?: Record<string, unknown>;
  dataset?: string;
  training?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** The scorefield that wrote the card, e.g. `scorefield 0.1.0` (the package's `version`). */
  written_by?: string;
  [key: string]: unknown;
}

/** A batch of images, [B, C, H, W] (or [frames, C, H, W]), row-major in the card's range. */
/** The worse model of autoguided runs, as a front end describes it. */
export interface GuideModel {
  card: ModelCard;
  parameters: number;
}

export interface Images {
  data: Float32Array;
  shape: number[];
}

/** What a run's `onProgress` gets after each step. */
export interface Progress {
  step: number;
  /** Null or absent for the adaptive solver (it picks its steps). */
  total?: number | null;
  t: number;
  /** The SDE's marginal std at t. */
  sigma: number;
  /** The fraction of the run done, 0 to 1. */
  progress: number;
  /** Every `previewEvery` steps: the step's noise-free mean, or x(t) (`previewOf: 'x'`). */
  preview?: Images;
}

export type ProgressCallback = (progress: Progress) => void;

/** Options of `generate` and `inpaint`; every one is optional (docs/reference/wasm-api.md). */
export interface RunOptions {
  sampler?: SamplerName;
  /** Time steps (noise levels for `ald`); default the sampler's on this model. */
  steps?: number;
  batch?: number;
  seed?: number;
  /** The index of the run's first image in the seed's sequence. */
  firstSample?: number;
  snr?: number;
  correctorSteps?: number;
  aldEps?: number;
  rtol?: number;
  atol?: number;
  rho?: number;
  /** `consistency`: the noise levels its later steps re-noise to, high to low (at least `steps` − 1); default the model's measured ones (its card's `sampling.consistency_levels`), else the Karras grid of `rho`. */
  levels?: number[];
  churn?: number;
  /** The final Tweedie step (default true). */
  denoise?: boolean;
  /** A preview every this many steps (0: about 25 per run). */
  previewEvery?: number;
  previewOf?: 'mean' | 'x';
  /** The id `cancel(runId)` stops. */
  runId?: number;
  /** Guide to this class (an index into `model.classes`), or `'all'` (image i to class i mod their number). */
  class?: number | 'all';
  guidance?: number;
  guidanceMinSigma?: number;
  guidanceMaxSigma?: number;
  /** The autoguidance weight (1: the model alone). */
  autoguidance?: number;
  autoguidanceMinSigma?: number;
  autoguidanceMaxSigma?: number;
}

/** Options of `inpaint`: a run's options with the image and what to keep. */
export interface InpaintOptions extends RunOptions {
  /** C·H·W values in the card's range: one image, repeated `batch` times. */
  image: Float32Array | number[];
  /** C·H·W values: 1 keeps the pixel, 0 generates it. */
  mask: Float32Array | number[];
}

/** What `generate` and `inpaint` resolve to. */
export interface RunResult extends Images {
  /** Network evaluations, the guide's among them. */
  evals: number;
  guideEvals: number;
  seconds: number;
  /** The part of `seconds` spent on previews, progress calls and yields. */
  observerSeconds: number;
}

/** Options of `likelihood`. */
export interface LikelihoodOptions {
  /** C·H·W whole numbers in 0–255. */
  pixels: Float32Array | number[];
  seed?: number;
  rtol?: number;
  atol?: number;
  /** Hutchinson probes, 1–64. */
  probes?: number;
  previewEvery?: number;
  runId?: number;
}

export interface LikelihoodResult {
  bitsPerDim: number;
  /** log p of the dequantised image. */
  nats: number;
  evals: number;
  steps: number;
  seconds: number;
}

/** Options of `interpolate`. */
export interface InterpolateOptions {
  /** The two images, C·H·W values each in the card's range. */
  a: Float32Array | number[];
  b: Float32Array | number[];
  /** Decoded points, the ends included (2–64; default 9). */
  frames?: number;
  rtol?: number;
  atol?: number;
  previewEvery?: number;
  runId?: number;
}

export interface InterpolateResult extends Images {
  /** The root-mean-square error of the two ends' reconstructions. */
  reconstructionRms: [number, number];
  evals: number;
  seconds: number;
}

export interface BenchmarkResult {
  batch: number;
  /** Milliseconds of each timed evaluation. */
  ms: number[];
}

export interface GpuMemory {
  allocations: number;
  bytesInUse: number;
  bytesReserved: number;
}

/** A score model loaded in this wasm instance. */
export class ScoreModel {
  private constructor();
  /** Frees its wasm memory (it also has `[Symbol.dispose]`, for `using`). */
  free(): void;
  /** Fetches the card at `cardUrl` (an absolute URL) and what it names, starts the backend, loads the weights. */
  static load(cardUrl: string, options?: LoadOptions): Promise<ScoreModel>;
  /** The same from a card's text and the safetensors bytes. */
  static fromBytes(cardJson: string, weights: Uint8Array | number[], options?: LoadOptions): Promise<ScoreModel>;
  /** What a backend choice comes to in this instance. */
  static resolveBackend(options?: LoadOptions): Promise<ResolvedBackend>;
  /** Bytes of this instance's linear memory. */
  static wasmMemoryBytes(): number;
  /** The guide model of autoguided runs, for a model loaded with `fromBytes`. */
  setGuide(cardJson: string, weights: Uint8Array | number[]): void;
  /** The classifier of guided runs, for a model loaded with `fromBytes`. */
  setClassifier(cardJson: string, weights: Uint8Array | number[]): void;
  runDefaults(): RunDefaults;
  generate(options?: RunOptions | null, onProgress?: ProgressCallback | null): Promise<RunResult>;
  inpaint(options: InpaintOptions, onProgress?: ProgressCallback | null): Promise<RunResult>;
  likelihood(options: LikelihoodOptions, onProgress?: ProgressCallback | null): Promise<LikelihoodResult>;
  interpolate(options: InterpolateOptions, onProgress?: ProgressCallback | null): Promise<InterpolateResult>;
  /** Stops the run started with `runId` (every run of this model without one); it rejects with a `CancelledError`. */
  cancel(runId?: number | null): void;
  benchmark(batch: number, repeats: number, warmup: number): Promise<BenchmarkResult>;
  /** The raw network output for `x` (B·C·H·W values) and B noise labels. */
  network(x: Float32Array | number[], t: Float32Array | number[]): Promise<Float32Array>;
  /** The GPU allocator's figures, or null on the CPU. */
  gpuMemory(): GpuMemory | null;
  /** Destroys the GPU device, as a driver reset would (tests). */
  destroyDevice(): void;
  readonly backend: Backend;
  readonly adapter: string;
  readonly fallbackReason: string | undefined;
  readonly card: ModelCard;
  readonly samplers: SamplerInfo[];
  /** The largest batch this device holds. */
  readonly maxBatch: number;
  /** The class names `class` indexes, or null without a classifier. */
  readonly classes: string[] | null;
  readonly classifierProblem: string | undefined;
  readonly autoguided: boolean;
  readonly guideProblem: string | undefined;
  /** The network's parameter count. */
  readonly parameters: number;
  /** The worse model of autoguided runs when loaded: its card and parameter count, else null. */
  readonly guide: GuideModel | null;
  readonly warmupSeconds: number;
  readonly deviceLost: string | undefined;
}

/** A 2-D distribution of the explainer. */
export type FieldDistribution = 'two-modes' | 'ring' | 'moons' | 'spiral';
/** The explainer's dynamics. */
export type FieldSampler = 'forward' | 'langevin' | 'ald' | 'em' | 'pc' | 'rd' | 'ode-heun' | 'ode-euler';

/** `Field2D.create`'s spec: a preset distribution or a drawing's points. */
export interface FieldSpec {
  distribution?: FieldDistribution;
  /** [x0, y0, x1, y1, …]: each point becomes a Gaussian of std 0.35. */
  points?: number[] | Float32Array | Float64Array;
  sde?: 've' | 'vp';
  backend?: Backend;
}

/** `Field2D.describe()`: presets, dynamics, defaults and limits. */
export interface FieldDescription {
  presets: { name: FieldDistribution; label: string; modes: boolean }[];
  dynamics: { name: FieldSampler; label: string; paper: string; defaultSteps: number; defaultCorrectorSteps?: number; start: string; fixedSigma: boolean }[];
  sdes: ('ve' | 'vp')[];
  defaultDistribution: FieldDistribution;
  defaultSampler: FieldSampler;
  defaultSde: 've' | 'vp';
  defaultParticles: number;
  defaultFrames: number;
  maxParticles: number;
  maxFrames: number;
  maxPointUpdates: number;
  maxRecordedPoints: number;
  maxSteps: number;
  maxSeed: number;
  sdeEps: { ve: number; vp: number };
  trainingPoints: number;
  maxTrainStepsPerCall: number;
  viewHalfWidth: number;
}

/** Options of `field.particles`. */
export interface ParticleOptions {
  sampler?: FieldSampler;
  /** The exact score, or the network's once `learn` has started. */
  score?: 'exact' | 'learned';
  particles?: number;
  steps?: number;
  correctorSteps?: number;
  sigma?: number;
  stepSize?: number;
  seed?: number;
  /** Recorded frames, 2–1,000. */
  frames?: number;
}

export interface ParticleRun {
  count: number;
  /** [F, N, 2]. */
  frames: Float32Array;
  times: Float64Array;
  updates: number;
  /** The share of particles per component, for presets with a few modes. */
  shares: Float64Array | null;
}

export interface FieldGrid {
  n: number;
  /** [n²], rows from the top. */
  density: Float32Array;
  /** [n², 2]. */
  score: Float32Array;
}

export interface LearnedGrid {
  n: number;
  score: Float32Array;
  error: Float32Array;
  denseError: number;
  sparseError: number;
  denseAbsError: number;
  sparseAbsError: number;
}

/** The 2-D explainer's distribution, its exact score and a network learning it. */
export class Field2D {
  private constructor();
  /** Frees its wasm memory (it also has `[Symbol.dispose]`, for `using`). */
  free(): void;
  static create(spec: FieldSpec): Promise<Field2D>;
  static describe(): FieldDescription;
  noiseLevel(t: number): number;
  timeOfNoiseLevel(sigma: number): number;
  grid(t: number, n: number): FieldGrid;
  /** The density of u·x(t): `nt` times by `nx` positions, [nx, nt]. */
  slice(nt: number, nx: number): Float32Array;
  particles(options?: ParticleOptions | null): Promise<ParticleRun>;
  /** A fresh score network and its training samples [N, 2]. */
  learn(seed: number): Promise<{ points: Float32Array }>;
  /** `steps` Adam steps of denoising score matching (at most 10,000 a call): their losses. */
  train(steps: number): Promise<Float32Array>;
  learnedGrid(t: number, n: number): Promise<LearnedGrid>;
  forget(): void;
  readonly backend: Backend;
  readonly weights: Float64Array;
  /** [K, 2] flattened. */
  readonly means: Float64Array;
  readonly modes: boolean;
  readonly direction: Float64Array;
  readonly trainedSteps: number;
}

/** Every error name the library gives (`error.name`; docs/reference/errors.md). */
export function errorNames(): string[];

/** Runs the module's start-up once (`init` calls it). */
export function start(): void;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;
export type SyncInitInput = BufferSource | WebAssembly.Module;

/** The instantiated module's exports. */
export interface InitOutput {
  readonly memory: WebAssembly.Memory;
  readonly [name: string]: unknown;
}

/** Instantiates the module from bytes or a compiled `WebAssembly.Module`. */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/** Fetches and instantiates the module: `scorefield_bg.wasm` beside this file unless `module_or_path` says where. */
export default function init(module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
