// <score-field>: the element, its attributes, properties, methods and events
// (docs/reference/widget.md). `import 'score-field'` registers it.
import type { BackendChoice, FieldDistribution, FieldSampler, InterpolateResult, LikelihoodResult, SamplerName } from './pkg/scorefield.js';
import type { ModelInfo, RemoteRunResult } from './client.js';

export { setBasePath } from './client.js';
export { version } from './pkg/version.js';
// The types of the client and wasm APIs, so that a page may import them from here.
export type {
  Backend, BackendChoice, LoadOptions, ResolvedBackend, SamplerName, SamplerInfo, RunDefaults,
  ModelCard, Images, Progress, ProgressCallback, RunOptions, InpaintOptions, RunResult,
  LikelihoodOptions, LikelihoodResult, InterpolateOptions, InterpolateResult, BenchmarkResult,
  GpuMemory, FieldDistribution, FieldSampler, FieldSpec, FieldDescription, ParticleOptions,
  ParticleRun, FieldGrid, LearnedGrid, ModelInfo, RemoteRunResult, BatchPart, WorkerStats,
  LikelihoodReferences, FieldSlice,
} from './client.js';

export type ScoreFieldMode = 'generate' | 'inpaint' | 'trajectory' | 'interpolate' | 'likelihood' | 'field';
export type ScoreFieldState = 'idle' | 'loading' | 'ready' | 'running' | 'done' | 'error';
export type ScoreFieldTheme = 'auto' | 'light' | 'dark';
/** Controls of the image modes (the `controls` attribute: comma-separated, or `none`). */
export type ScoreFieldControl = 'run' | 'sampler' | 'steps' | 'seed' | 'batch' | 'label';
/** Controls of field mode. */
export type ScoreFieldFieldControl = 'run' | 'distribution' | 'sampler' | 'sigma' | 'particles' | 'seed' | 'learn';

/** The element's attributes, as HTML (and setAttribute) gives them: strings, or present/absent.
 * Bad values are named in the widget's box and fall back to the default. */
export interface ScoreFieldAttributes {
  /** URL of a model card, relative to the page (default: the shipped MNIST model). */
  model?: string;
  mode?: ScoreFieldMode;
  /** An image mode's sampler, or field mode's dynamics. */
  sampler?: SamplerName | FieldSampler;
  /** A whole number: from the sampler's minimum up to 100,000 (field mode: ≥ 1). */
  steps?: `${number}` | string;
  batch?: `${number}` | string;
  seed?: `${number}` | string;
  /** Present: run as soon as the widget has loaded. */
  autoplay?: '' | boolean;
  /** Inpaint mode: `on` regenerates the painted part after each brush stroke (default), `off` only on Inpaint. */
  live?: 'on' | 'off';
  /** Comma-separated control names, or `none`. */
  controls?: string;
  /** A class of the model's classifier (`0`…`9`), `all` or `any`. */
  label?: string;
  /** The classifier guidance scale, 0–100. */
  guidance?: `${number}` | string;
  /** The autoguidance weight, 1–20. */
  autoguidance?: `${number}` | string;
  /** CSS pixels, 64–4096. */
  width?: `${number}` | string;
  backend?: BackendChoice;
  /** How many model workers its CPU runs may use. */
  workers?: `${number}` | string;
  theme?: ScoreFieldTheme;
  /** Field mode: a preset or `draw`. */
  distribution?: FieldDistribution | 'draw';
  /** Field mode: `ve` or `vp`. */
  sde?: 've' | 'vp';
  /** Field mode: the noise level shown. */
  sigma?: `${number}` | string;
  /** Field mode: 1 … 20,000. */
  particles?: `${number}` | string;
}

export type ScoreFieldAttributeName = keyof ScoreFieldAttributes;

/** The settings read from the attributes (`widget.settings`). */
export interface ScoreFieldSettings {
  mode: ScoreFieldMode;
  width: number;
  backend: BackendChoice;
  theme: ScoreFieldTheme;
  workers: number | null;
  /** The model card's URL. */
  model: string;
  autoplay: boolean;
  /** Inpaint mode: whether each brush stroke regenerates the painted part. */
  live: boolean;
  /** Null until the model has loaded (their defaults and limits come with it). */
  batch: number | null;
  seed: number | null;
  controls: ScoreFieldControl[];
  /** A sentence per bad attribute value. */
  problems: string[];
}

/** Field mode's result: the particle run, played. */
export interface FieldResult {
  /** The share of particles per mode and the mixture's weights (presets with a few modes), else null. */
  shares: number[] | null;
  weights: number[] | null;
  /** The last frame's particles, [x0, y0, x1, y1, …]. */
  positions: number[];
  count: number;
  updates: number;
  frames: number;
  seconds: number;
}

/** Likelihood mode's result. */
export interface LikelihoodModeResult extends LikelihoodResult {
  /** What was measured: a reference image's label, or the reader's drawing. */
  label: string;
}

/** What a run resolves to, `done` carries and `result` keeps: by mode. */
export type ScoreFieldResult = RemoteRunResult | InterpolateResult | LikelihoodModeResult | FieldResult;

/** `progress` events' detail. */
export interface ScoreFieldProgressDetail {
  /** The fraction of the whole run, 0 to 1, never falling; the last of a run is 1. */
  fraction: number;
  step: number;
  /** Null where the step count is not known ahead (an adaptive solver). */
  total: number | null;
  t: number;
  sigma: number;
}

/** `error` events' detail. */
export interface ScoreFieldErrorDetail {
  /** The library's error name: `CancelledError`, `InvalidOptionError`, `FetchError`, `ModelFileError`, `DeviceLostError`, `NonFiniteError`, … */
  name: string;
  /** As the widget's box shows it. */
  message: string;
}

/** The element's own events: CustomEvents that bubble and are composed. */
export interface ScoreFieldEventMap {
  progress: CustomEvent<ScoreFieldProgressDetail>;
  done: CustomEvent<ScoreFieldResult>;
  error: CustomEvent<ScoreFieldErrorDetail>;
}

/** Field mode's playback figures. */
export interface ScoreFieldPlayback {
  fps: number;
  drawMs: number;
}

/** Field mode, once a network is learning. */
export interface ScoreFieldLearning {
  step: number;
  training: boolean;
  comparedAt: number | null;
  sigma: number | null;
  denseError: number | null;
  denseAbsError: number | null;
  sparseAbsError: number | null;
}

type HostEvents = Omit<HTMLElementEventMap, keyof ScoreFieldEventMap> & ScoreFieldEventMap;

/** The `<score-field>` element. */
export class ScoreField extends HTMLElement {
  /** The attributes whose changes it follows. */
  static readonly observedAttributes: ScoreFieldAttributeName[];
  /** The current settings from the attributes, with `problems`. */
  readonly settings: ScoreFieldSettings;
  readonly state: ScoreFieldState;
  /** The last finished run's result, or null before one (read-only). */
  readonly result: ScoreFieldResult | null;
  /** Field mode: the last complete playback's figures, or null. */
  readonly playback: ScoreFieldPlayback | null;
  /** Field mode, once a network is learning; else null. */
  readonly learning: ScoreFieldLearning | null;
  /** Runs the widget's mode once (loading the model first): the result, or null when the run
   * failed, was refused or was cancelled, or another run is in progress. */
  run(): Promise<ScoreFieldResult | null>;
  /** Stops the run in progress: its run() resolves to null and an `error` named `CancelledError` fires. */
  cancel(): void;
  connectedCallback(): void;
  disconnectedCallback(): void;
  attributeChangedCallback(name: string, old: string | null, value: string | null): void;
  addEventListener<K extends keyof HostEvents>(type: K, listener: (this: ScoreField, event: HostEvents[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof HostEvents>(type: K, listener: (this: ScoreField, event: HostEvents[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'score-field': ScoreField;
  }
}
