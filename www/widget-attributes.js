// What a <score-field>'s attributes ask for, checked against what is allowed: pure functions of
// the attribute strings (an object of the attributes present, name → value) and of what the
// library says (the model's description from RemoteModel.load, or Field2D.describe for field
// mode). A bad value gives way to its default and leaves a sentence naming it in `problems`, which
// the widget shows in its box. No DOM: tests/browser/attributes.test.mjs runs these in Node.
import { subjectOf } from './subject.js';

export const MODES = ['generate', 'inpaint', 'trajectory', 'interpolate', 'likelihood', 'field'];
export const CONTROLS = ['run', 'sampler', 'steps', 'seed', 'batch', 'label'];
export const BACKENDS = ['auto', 'webgpu', 'cpu'];
export const THEMES = ['auto', 'light', 'dark'];
export const SWITCH = ['on', 'off'];
// The controls a field widget can show, and those it shows by default.
export const FIELD_CONTROLS = ['run', 'distribution', 'sampler', 'sigma', 'particles', 'seed', 'learn'];
export const FIELD_DEFAULT_CONTROLS = ['run', 'distribution', 'sampler', 'sigma', 'seed', 'learn'];
// Field mode's distribution that the reader draws.
export const DRAW = 'draw';
// The sampler and its step count, the batch per mode, the seed and their limits default to what
// the library says when the model loads (the sampler table of src/sampling/catalog.rs with the step
// counts of the model card's `sampling`, and model.runDefaults(), src/frontend.rs RunDefaults);
// these are the widget's own.
export const DEFAULTS = Object.freeze({ mode: 'generate', controls: ['run', 'sampler', 'steps', 'seed'], width: 320, backend: 'auto', theme: 'auto' });

/** A reader of `attrs` that records what it had to refuse in `problems`. */
export function reader(attrs) {
  const problems = [];
  const get = (name) => (Object.hasOwn(attrs, name) ? attrs[name] : null);
  return {
    problems,
    get,
    has: (name) => get(name) !== null,
    /** One of `allowed`. */
    pick(name, allowed, fallback) {
      const v = get(name);
      if (v === null) return fallback;
      if (allowed.includes(v)) return v;
      problems.push(`${name}="${v}" is not one of ${allowed.join(', ')}; using ${fallback}`);
      return fallback;
    },
    /** A whole number in lo..hi (`fallbackText` names the fallback where it is not a number). */
    whole(name, lo, hi, fallback, fallbackText = fallback) {
      const v = get(name);
      if (v === null) return fallback;
      const n = Number(v);
      if (v.trim() !== '' && Number.isInteger(n) && n >= lo && n <= hi) return n;
      const range = hi === Number.MAX_SAFE_INTEGER ? `≥ ${lo}` : `in ${lo}..${hi}`;
      problems.push(`${name}="${v}" is not a whole number ${range}; using ${fallbackText}`);
      return fallback;
    },
    /** A comma-separated list of names from `allowed`; unknown ones are left out. */
    list(name, allowed, fallback) {
      const v = get(name);
      if (v === null) return fallback;
      const names = v.split(',').map((c) => c.trim()).filter(Boolean);
      const unknown = names.filter((c) => !allowed.includes(c));
      if (unknown.length) problems.push(`${name}="${v}" names ${unknown.join(', ')}, not among ${allowed.join(', ')}; leaving ${unknown.length > 1 ? 'them' : 'it'} out`);
      return names.filter((c) => allowed.includes(c));
    },
  };
}

/** The settings every mode reads: {mode, width, backend, theme, workers, model, autoplay, live,
 * batch, seed, controls, problems}. `info` is the model's description once it has loaded (null before:
 * then `batch` and `seed` are null, their defaults and limits come with it); `defaultModel` the
 * card's URL when the attribute is absent. Field mode reads the rest with readField. */
export function readSettings(attrs, info, defaultModel) {
  const { problems, pick, whole, list, get, has } = reader(attrs);
  const mode = pick('mode', MODES, DEFAULTS.mode);
  const settings = {
    mode,
    width: whole('width', 64, 4096, DEFAULTS.width),
    backend: pick('backend', BACKENDS, DEFAULTS.backend),
    // The palette follows `theme` in CSS alone (widget-style.js), so that a page may switch it
    // without a rebuild; it is read here to name a bad value.
    theme: pick('theme', THEMES, DEFAULTS.theme),
    workers: whole('workers', 1, Number.MAX_SAFE_INTEGER, null, 'one per core'),
    model: get('model') || defaultModel,
    autoplay: has('autoplay'),
    // Inpaint mode: regenerate after each stroke (live-inpaint.js).
    live: pick('live', SWITCH, 'on') === 'on',
    batch: null,
    seed: null,
    controls: [],
    problems,
  };
  if (mode === 'field') return settings;
  const defaults = info?.defaults;
  if (defaults) {
    // The page's largest batch, or fewer where this device holds fewer (src/model.rs).
    const maxBatch = Math.min(defaults.maxBatch, info.maxBatch);
    if (mode in defaults.batch) settings.batch = whole('batch', 1, maxBatch, Math.min(defaults.batch[mode], maxBatch));
    settings.seed = whole('seed', 0, Number.MAX_SAFE_INTEGER, defaults.seed);
  }
  settings.controls = list('controls', CONTROLS, DEFAULTS.controls);
  return settings;
}

/** The sampler and step count, class and guidance the attributes ask for, checked against the
 * model's samplers, classes and the library's limits: {sampler (the model's description of it),
 * steps, label: 'any' | 'all' | class index, guidance, autoguidance (null without a guide
 * model), problems}. */
export function readChoice(attrs, info) {
  const { problems, get } = reader(attrs);
  const list = info.samplers;
  const guide = readGuidance(get, info, problems);
  // A guided run without a sampler attribute starts on the library's guided setting.
  const guided = guide.label !== 'any' ? info.defaults.guided : null;
  const asked = get('sampler');
  let sampler = list.find((x) => x.name === (asked ?? guided?.sampler ?? list[0].name));
  if (!sampler) {
    sampler = list[0];
    problems.push(`sampler="${asked}" is not a sampler of this model (${list.map((x) => x.name).join(', ')}); using ${sampler.name}`);
  }
  let steps = guided && sampler.name === guided.sampler ? guided.steps : sampler.defaultSteps;
  const raw = get('steps');
  if (raw !== null && sampler.takesSteps) {
    const n = Number(raw);
    const max = info.defaults.maxSteps;
    if (raw.trim() === '' || !Number.isInteger(n) || n > max) problems.push(`steps="${raw}" is not a whole number up to ${max}; using ${steps}`);
    else if (n < sampler.minSteps) problems.push(`steps="${raw}" is below ${sampler.name}'s minimum of ${sampler.minSteps} (${sampler.minStepsWhy}); using ${steps}`);
    else steps = n;
  }
  return { sampler, steps, ...guide, problems };
}

/** The class and guidance scale (`label`, `guidance`) and the autoguidance weight. */
function readGuidance(get, info, problems) {
  const { classes, defaults } = info;
  let label = 'any';
  const asked = get('label');
  if (asked !== null && asked !== 'any') {
    const broken = info.classifierProblem;
    const any = `drawing any ${subjectOf(info.card).one}`;
    if (broken) problems.push(`label="${asked}": this model's classifier could not be loaded (${broken}); ${any}`);
    else if (!classes) problems.push(`label="${asked}" needs a model with a classifier, and this one has none; ${any}`);
    else if (asked === 'all') label = 'all';
    else if (classes.includes(asked)) label = classes.indexOf(asked);
    else problems.push(`label="${asked}" is not one of this model's classes (${classes.join(', ')}), all or any; ${any}`);
  }
  let guidance = defaults.guidance;
  const raw = get('guidance');
  if (raw !== null) {
    const w = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(w) || w < 0 || w > defaults.maxGuidance) problems.push(`guidance="${raw}" is not a number in 0..${defaults.maxGuidance}; using ${guidance}`);
    else guidance = w;
  }
  return { label, guidance, autoguidance: readAutoguidance(get, info, problems) };
}

/** The autoguidance weight, or null when the model has no guide model (then the attribute is
 * named in `problems` unless it asks for the model alone). */
function readAutoguidance(get, info, problems) {
  const { autoguided, guideProblem, defaults } = info;
  const raw = get('autoguidance');
  const w = Number(raw);
  if (raw !== null && (raw.trim() === '' || !Number.isFinite(w) || w < 1 || w > defaults.maxAutoguidance)) {
    problems.push(`autoguidance="${raw}" is not a number in 1..${defaults.maxAutoguidance}; using ${autoguided ? defaults.autoguidance : 1}`);
    return autoguided ? defaults.autoguidance : null;
  }
  if (!autoguided) {
    if (guideProblem) problems.push(`this model's guide model could not be loaded (${guideProblem}); drawing from the model alone`);
    else if (raw !== null && w !== 1) problems.push(`autoguidance="${raw}" needs a model with a guide model, and this one has none; drawing from the model alone`);
    return null;
  }
  return raw === null ? defaults.autoguidance : w;
}

/** Why the reader's step count `value` (the control's text) cannot run with `sampler`, or null:
 * over the library's `maxSteps`, not whole, or under the sampler's minimum (with its reason). */
export function stepsProblem(sampler, value, maxSteps) {
  if (!sampler.takesSteps) return null;
  const steps = Number(value);
  if (!Number.isInteger(steps) || steps > maxSteps) return `steps must be a whole number up to ${maxSteps}, not ${value}`;
  if (steps < sampler.minSteps) return `${sampler.label} needs at least ${sampler.minSteps} steps: ${sampler.minStepsWhy}`;
  return null;
}

/** Field mode's attributes, checked against the library's description of the explainer
 * (`about`, Field2D.describe()): {values: {distribution, sampler, sde, particles, seed, steps
 * (null: the sampler's own), sigma (null: the smallest level), controls}, problems}. */
export function readField(attrs, about) {
  const { problems, pick, whole, list, get, has } = reader(attrs);
  const values = {
    distribution: pick('distribution', [...about.presets.map((p) => p.name), DRAW], about.defaultDistribution),
    sampler: pick('sampler', about.dynamics.map((d) => d.name), about.defaultSampler),
    sde: pick('sde', about.sdes, about.defaultSde),
    particles: whole('particles', 1, about.maxParticles, about.defaultParticles),
    seed: whole('seed', 0, about.maxSeed, 1),
    steps: has('steps') ? whole('steps', 1, about.maxSteps, null, "the sampler's own") : null,
    sigma: null,
    controls: list('controls', FIELD_CONTROLS, FIELD_DEFAULT_CONTROLS),
  };
  const sigma = get('sigma');
  if (sigma !== null) {
    const s = Number(sigma);
    if (sigma.trim() !== '' && Number.isFinite(s) && s > 0) values.sigma = s;
    else problems.push(`sigma="${sigma}" is not a positive number; using the smallest noise level`);
  }
  return { values, problems };
}
