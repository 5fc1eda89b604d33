// The widget's attribute parsing (www/widget-attributes.js) in Node, without a browser or a DOM:
// what each attribute gives, and the sentence a bad value leaves. The model's description is a
// fixture shaped like the worker's (RemoteModel.load: samplers, defaults, classes, guide), with
// round numbers of its own so that a default can be told from a value read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, readChoice, readField, readSettings, reader, stepsProblem } from '../../www/widget-attributes.js';

const MODEL = 'https://example.org/models/mnist.json';
const SAMPLERS = [
  { name: 'dpmpp-2m', label: 'DPM-Solver++(2M)', takesSteps: true, minSteps: 7, defaultSteps: 17, minStepsWhy: 'fewer leave noise' },
  { name: 'em', label: 'Euler–Maruyama', takesSteps: true, minSteps: 40, defaultSteps: 100, minStepsWhy: 'each step adds noise' },
  { name: 'edm-heun', label: 'EDM Heun', takesSteps: true, minSteps: 8, defaultSteps: 20, minStepsWhy: 'coarser grids blur' },
  { name: 'ode-rk45', label: 'RK45', takesSteps: false, minSteps: 1, defaultSteps: 1, minStepsWhy: '' },
];
const DESCRIBED = {
  // What the card calls its images: the sentences below name them ("drawing any digit").
  card: { subject: { one: 'digit', many: 'digits' } },
  samplers: SAMPLERS,
  defaults: {
    batch: { generate: 16, inpaint: 4, trajectory: 1 },
    maxBatch: 256,
    seed: 1,
    maxSteps: 100_000,
    guidance: 2,
    maxGuidance: 100,
    autoguidance: 2.5,
    maxAutoguidance: 20,
    guided: { sampler: 'edm-heun', steps: 18, churn: 40 },
  },
  maxBatch: 64, // what this device holds
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  classifierProblem: null,
  autoguided: true,
  guideProblem: null,
};
const info = (patch = {}) => ({ ...DESCRIBED, ...patch });

test('no attributes: the widget\'s defaults, the library\'s batch and seed, and no problems', () => {
  const s = readSettings({}, info(), MODEL);
  assert.deepEqual(s, { mode: 'generate', width: 320, backend: 'auto', theme: 'auto', workers: null, model: MODEL, autoplay: false, live: true, batch: 16, seed: 1, controls: DEFAULTS.controls, problems: [] });
  // Before the model has loaded its defaults and limits are unknown: batch and seed wait.
  const early = readSettings({}, null, MODEL);
  assert.equal(early.batch, null);
  assert.equal(early.seed, null);
});

test('good values are read as given', () => {
  const s = readSettings({ mode: 'inpaint', width: '500', backend: 'cpu', theme: 'dark', workers: '3', model: 'my.json', autoplay: '', live: 'off', batch: '9', seed: '0', controls: 'run, seed ,label' }, info(), MODEL);
  assert.deepEqual(s, { mode: 'inpaint', width: 500, backend: 'cpu', theme: 'dark', workers: 3, model: 'my.json', autoplay: true, live: false, batch: 9, seed: 0, controls: ['run', 'seed', 'label'], problems: [] });
  assert.equal(readSettings({ mode: 'trajectory' }, info(), MODEL).batch, 1, 'the mode\'s own default batch');
  assert.equal(readSettings({ mode: 'likelihood' }, info(), MODEL).batch, null, 'likelihood reads no batch');
});

test('a careless post: each bad value is named once with what is allowed, and gives way to its default', () => {
  const s = readSettings({ mode: 'nonsense', width: '10', backend: 'gpu', theme: 'blue', workers: '0', live: 'yes', batch: '1000000000', seed: 'abc', controls: 'run,fly' }, info(), MODEL);
  assert.deepEqual(s.problems, [
    'mode="nonsense" is not one of generate, inpaint, trajectory, interpolate, likelihood, field; using generate',
    'width="10" is not a whole number in 64..4096; using 320',
    'backend="gpu" is not one of auto, webgpu, cpu; using auto',
    'theme="blue" is not one of auto, light, dark; using auto',
    'workers="0" is not a whole number ≥ 1; using one per core',
    'live="yes" is not one of on, off; using on',
    'batch="1000000000" is not a whole number in 1..64; using 16',
    'seed="abc" is not a whole number ≥ 0; using 1',
    'controls="run,fly" names fly, not among run, sampler, steps, seed, batch, label; leaving it out',
  ]);
  assert.deepEqual([s.mode, s.width, s.backend, s.theme, s.workers, s.live, s.batch, s.seed, s.controls], ['generate', 320, 'auto', 'auto', null, true, 16, 1, ['run']]);
});

test('whole numbers: blank, fractional and out-of-range text is refused; the batch limit is the smaller of the page\'s and the device\'s', () => {
  for (const bad of ['', ' ', '2.5', '1e400', '-1', '0x10']) {
    const { problems, width } = readSettings({ width: bad }, info(), MODEL);
    assert.equal(width, 320, `width="${bad}"`);
    assert.equal(problems.length, 1, `width="${bad}"`);
  }
  assert.equal(readSettings({ batch: '64' }, info(), MODEL).batch, 64);
  assert.match(readSettings({ batch: '65' }, info(), MODEL).problems[0], /in 1\.\.64/);
  // A device that holds fewer than the mode's default: the default shrinks to fit.
  assert.equal(readSettings({}, info({ maxBatch: 8 }), MODEL).batch, 8);
  // Several unknown names are "them".
  const r = reader({ controls: 'fly,run,swim' });
  assert.deepEqual(r.list('controls', ['run'], []), ['run']);
  assert.deepEqual(r.problems, ['controls="fly,run,swim" names fly, swim, not among run; leaving them out']);
});

test('field mode reads only the shared settings; controls and batch are its own', () => {
  const s = readSettings({ mode: 'field', batch: 'x', controls: 'fly' }, info(), MODEL);
  assert.deepEqual([s.batch, s.seed, s.controls, s.problems], [null, null, [], []]);
});

test('sampler and steps: the model\'s first sampler and its default steps; a sampler it lacks, or steps under its floor, are named with the floor and why', () => {
  const plain = readChoice({}, info());
  assert.deepEqual([plain.sampler.name, plain.steps, plain.label, plain.guidance, plain.autoguidance, plain.problems], ['dpmpp-2m', 17, 'any', 2, 2.5, []]);
  assert.deepEqual([readChoice({ sampler: 'em', steps: '300' }, info()).sampler.name, readChoice({ sampler: 'em', steps: '300' }, info()).steps], ['em', 300]);
  const typo = readChoice({ sampler: 'ode_heun' }, info());
  assert.equal(typo.sampler.name, 'dpmpp-2m');
  assert.deepEqual(typo.problems, ['sampler="ode_heun" is not a sampler of this model (dpmpp-2m, em, edm-heun, ode-rk45); using dpmpp-2m']);
  const few = readChoice({ sampler: 'em', steps: '3' }, info());
  assert.deepEqual([few.steps, few.problems], [100, ["steps=\"3\" is below em's minimum of 40 (each step adds noise); using 100"]]);
  const many = readChoice({ steps: '100001' }, info());
  assert.deepEqual([many.steps, many.problems], [17, ['steps="100001" is not a whole number up to 100000; using 17']]);
  // A sampler that takes no step count ignores the attribute.
  assert.deepEqual(readChoice({ sampler: 'ode-rk45', steps: 'many' }, info()).problems, []);
});

test('label and guidance: a class starts on the library\'s guided sampler and steps; bad labels, scales and weights are named', () => {
  const seven = readChoice({ label: '7' }, info());
  assert.deepEqual([seven.label, seven.sampler.name, seven.steps, seven.problems], [7, 'edm-heun', 18, []]);
  assert.equal(readChoice({ label: 'all' }, info()).label, 'all');
  // The post's own sampler wins over the guided default, at that sampler's default steps.
  assert.deepEqual([readChoice({ label: '7', sampler: 'em' }, info()).sampler.name, readChoice({ label: '7', sampler: 'em' }, info()).steps], ['em', 100]);
  const cases = [
    [{ label: 'eleven' }, info(), 'label="eleven" is not one of this model\'s classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), all or any; drawing any digit'],
    [{ label: '7' }, info({ classes: null }), 'label="7" needs a model with a classifier, and this one has none; drawing any digit'],
    [{ label: '7' }, info({ classes: null, classifierProblem: 'HTTP 404' }), 'label="7": this model\'s classifier could not be loaded (HTTP 404); drawing any digit'],
    // The sentence names what the card calls its images, and "image" for a card that names none.
    [{ label: '7' }, info({ classes: null, card: { subject: { one: 'emoji', many: 'emoji' } } }), 'label="7" needs a model with a classifier, and this one has none; drawing any emoji'],
    [{ label: '7' }, info({ classes: null, card: {} }), 'label="7" needs a model with a classifier, and this one has none; drawing any image'],
    [{ guidance: '-1' }, info(), 'guidance="-1" is not a number in 0..100; using 2'],
    [{ autoguidance: '0' }, info(), 'autoguidance="0" is not a number in 1..20; using 2.5'],
    [{ autoguidance: '3' }, info({ autoguided: false }), 'autoguidance="3" needs a model with a guide model, and this one has none; drawing from the model alone'],
    [{}, info({ autoguided: false, guideProblem: 'truncated weights' }), 'this model\'s guide model could not be loaded (truncated weights); drawing from the model alone'],
  ];
  for (const [attrs, described, sentence] of cases) assert.deepEqual(readChoice(attrs, described).problems, [sentence], JSON.stringify(attrs));
  assert.equal(readChoice({ label: 'eleven' }, info()).label, 'any');
  assert.equal(readChoice({ guidance: '3.5' }, info()).guidance, 3.5);
  assert.equal(readChoice({ autoguidance: '4' }, info()).autoguidance, 4);
  // Without a guide model: no weight, and asking for the model alone is no problem.
  assert.deepEqual([readChoice({ autoguidance: '1' }, info({ autoguided: false })).autoguidance, readChoice({ autoguidance: '1' }, info({ autoguided: false })).problems], [null, []]);
});

test('the steps control: a reader\'s count under the floor is refused with the reason, one over the limit or not whole too', () => {
  const em = SAMPLERS[1];
  assert.equal(stepsProblem(em, '40', 100_000), null);
  assert.equal(stepsProblem(em, '39', 100_000), 'Euler–Maruyama needs at least 40 steps: each step adds noise');
  assert.equal(stepsProblem(em, '2.5', 100_000), 'steps must be a whole number up to 100000, not 2.5');
  assert.equal(stepsProblem(em, '100001', 100_000), 'steps must be a whole number up to 100000, not 100001');
  assert.equal(stepsProblem(SAMPLERS[3], 'anything', 100_000), null, 'a sampler without a step count');
});

const ABOUT = {
  presets: [{ name: 'two-modes' }, { name: 'ring' }, { name: 'moons' }],
  dynamics: [{ name: 'ald' }, { name: 'langevin' }, { name: 'em' }],
  sdes: ['ve', 'vp'],
  defaultDistribution: 'two-modes',
  defaultSampler: 'ald',
  defaultSde: 've',
  defaultParticles: 1000,
  maxParticles: 20_000,
  maxSeed: 4_294_967_295,
  maxSteps: 100_000,
};

test('field mode: the library\'s defaults, values read as given, and each bad value named', () => {
  assert.deepEqual(readField({}, ABOUT), {
    values: { distribution: 'two-modes', sampler: 'ald', sde: 've', particles: 1000, seed: 1, steps: null, sigma: null, controls: ['run', 'distribution', 'sampler', 'sigma', 'seed', 'learn'] },
    problems: [],
  });
  assert.deepEqual(readField({ distribution: 'draw', sampler: 'em', sde: 'vp', particles: '300', seed: '0', steps: '50', sigma: '0.5', controls: 'learn,sigma' }, ABOUT).values, { distribution: 'draw', sampler: 'em', sde: 'vp', particles: 300, seed: 0, steps: 50, sigma: 0.5, controls: ['learn', 'sigma'] });
  const bad = readField({ distribution: 'nonsense', sampler: 'edm-heun', sde: 'xx', particles: '99999999', sigma: '-1', seed: 'x', steps: '0', controls: 'run,fly' }, ABOUT);
  assert.deepEqual(bad.problems, [
    'distribution="nonsense" is not one of two-modes, ring, moons, draw; using two-modes',
    'sampler="edm-heun" is not one of ald, langevin, em; using ald',
    'sde="xx" is not one of ve, vp; using ve',
    'particles="99999999" is not a whole number in 1..20000; using 1000',
    'seed="x" is not a whole number in 0..4294967295; using 1',
    'steps="0" is not a whole number in 1..100000; using the sampler\'s own',
    'controls="run,fly" names fly, not among run, distribution, sampler, sigma, particles, seed, learn; leaving it out',
    'sigma="-1" is not a positive number; using the smallest noise level',
  ]);
  assert.deepEqual(bad.values, { distribution: 'two-modes', sampler: 'ald', sde: 've', particles: 1000, seed: 1, steps: null, sigma: null, controls: ['run'] });
});
