// The page's Generate controls: sampler, steps and the chosen sampler's options, batch, seed, the
// class and guidance (with a classifier) and autoguidance (with a guide model). Wired once; each
// model that loads fills them again from its description (RemoteModel.load), so that switching
// models leaves no listener or option of the last one behind.
import { $ } from './page-dom.js';
import { runOptions } from './run-options.js';
import { subjectOf } from './subject.js';

let info = null; // the loaded model's description
let samplers = new Map(); // its samplers by name (src/sampling/catalog.rs with the card's step counts)
let guided = false; // a class is chosen (then the sampler switched to the guided setting once)

/** Listens to the controls; call once. */
export function wireControls() {
  $('sampler').addEventListener('change', selectSampler);
  $('class').addEventListener('change', syncClass);
  $('guidance').addEventListener('input', syncClass);
  $('autoguidance').addEventListener('input', syncAutoguidance);
}

/** The controls for the model `described` (RemoteModel.load's description). */
export function fillControls(described) {
  info = described;
  applyDefaults(info.defaults);
  fillSamplers(info.samplers);
  fillClasses();
  $('autoguidance-label').hidden = !info.autoguided;
  syncAutoguidance();
}

/** The library's starting values and limits (src/frontend.rs RunDefaults, with the model card's sampling settings). */
function applyDefaults(defaults) {
  $('batch').value = String(defaults.batch.generate);
  $('seed').value = String(defaults.seed);
  $('steps').max = String(defaults.maxSteps);
  $('corrector').max = String(defaults.maxCorrectorSteps);
  $('snr').max = String(defaults.maxSnr);
  $('churn').max = String(defaults.maxChurn);
  $('guidance').max = String(defaults.guidanceSliderMax);
  $('guidance').value = String(defaults.guidance);
  $('guidance-value').textContent = $('guidance').value;
  $('autoguidance').max = String(defaults.autoguidanceSliderMax);
  $('autoguidance').value = String(defaults.autoguidance);
  $('autoguidance-value').textContent = $('autoguidance').value;
}

/** The autoguidance slider, when the model has a guide model (its card names one): the weight w
 * of s_bad + w·(s − s_bad), 1 for the model alone. */
function syncAutoguidance() {
  if (!info) return;
  const w = Number($('autoguidance').value);
  const { one, many } = subjectOf(info.card);
  $('autoguidance-value').textContent = $('autoguidance').value;
  $('autoguidance-hint').textContent = !info.autoguided
    ? (info.guideProblem ? `Autoguidance is unavailable: ${info.guideProblem}; sampling from the model alone.` : '')
    : w === 1
      ? 'Autoguidance off: the model alone.'
      : `Autoguided (Karras et al. 2024): the model's score pushed away from a worse version of itself${guideWords(info)}, s_bad + ${w}·(s − s_bad), where σ > ${info.defaults.autoguidanceMinSigma}, while the ${one}'s shape is chosen. Where the worse model is wrong the better one is usually wrong the same way, only less, so this sharpens the ${many}; those steps evaluate both networks.`;
}

/** What the worse model is, from its card: "(here a network a quarter its size, trained on a
 * twelfth of the images)", or nothing when the cards do not say. */
function guideWords({ guide, parameters, card }) {
  if (!guide) return '';
  const part = (small, big) => {
    if (!(small > 0 && big > 0)) return null;
    const n = Math.round(big / small);
    return n <= 1 ? null : ({ 2: 'half', 3: 'a third', 4: 'a quarter' }[n] ?? `1/${n}`);
  };
  const size = part(guide.parameters, parameters);
  const images = part(guide.card?.training?.images_seen, card?.training?.images_seen);
  const words = [size && `a network ${size} its size`, images && `trained on ${images} of the images`].filter(Boolean);
  return words.length ? ` (here ${words.join(', ')})` : '';
}

/** The class control, when the model has a classifier: any class (unguided), one class, or every
 * class in turn; the guidance slider beside it while a class is chosen. */
function fillClasses() {
  const { classes, classifierProblem } = info;
  $('class-label').hidden = !classes;
  guided = false;
  const option = (value, text) => Object.assign(document.createElement('option'), { value, textContent: text });
  $('class').replaceChildren(option('any', 'any'), ...(classes ?? []).map((name, i) => option(String(i), name)), option('all', 'each in turn'));
  // A model whose card names a classifier that could not be read: say so (unguided runs work).
  if (!classes) {
    $('guidance-label').hidden = true;
    $('class-hint').textContent = classifierProblem ? `Generating a chosen ${subjectOf(info.card).one} is unavailable: ${classifierProblem}` : '';
    return;
  }
  syncClass();
}

/** Choosing a class from "any" switches to the library's sampler for guided runs (the card's
 * sampling.guided). */
function syncClass() {
  if (!info?.classes) return;
  const { defaults } = info;
  const now = $('class').value !== 'any';
  if (now && !guided && samplers.has(defaults.guided.sampler)) {
    $('sampler').value = defaults.guided.sampler;
    selectSampler();
    $('steps').value = String(defaults.guided.steps);
    $('churn').value = String(defaults.guided.churn);
  }
  guided = now;
  $('guidance-label').hidden = !now;
  $('guidance-value').textContent = $('guidance').value;
  $('class-hint').textContent = now
    ? `Guided by a noise-conditional classifier: the score plus w·∇ log p(${subjectOf(info.card).one} | x), Bayes' rule for scores (Song et al. 2021, §5). It starts on ${samplers.get(defaults.guided.sampler)?.label ?? defaults.guided.sampler} with churn ${defaults.guided.churn}: its fresh noise lets guidance correct a shape chosen early.`
    : '';
}

/** A run's options from the controls. */
export function options() {
  const sampler = samplers.get($('sampler').value);
  // The option fields the sampler reads (the others are hidden).
  const own = (name, id) => (sampler.options.includes(name) ? Number($(id).value) : undefined);
  return runOptions(info, sampler, {
    steps: Number($('steps').value),
    batch: Number($('batch').value),
    seed: Number($('seed').value),
    label: $('class').value,
    guidance: Number($('guidance').value),
    autoguidance: info.autoguided ? Number($('autoguidance').value) : null,
    correctorSteps: own('correctorSteps', 'corrector'),
    snr: own('snr', 'snr'),
    churn: own('churn', 'churn'),
  });
}

/** Builds the sampler list from the model's description of its samplers. */
function fillSamplers(list) {
  samplers = new Map(list.map((s) => [s.name, s]));
  $('sampler').replaceChildren(...list.map((s) => {
    const option = document.createElement('option');
    option.value = s.name;
    option.textContent = s.label;
    option.title = s.paper;
    return option;
  }));
  $('sampler').value = list[0].name;
  selectSampler();
}

/** Shows the chosen sampler's fields at its own defaults, and why its step count has a floor. */
function selectSampler() {
  const described = samplers.get($('sampler').value);
  if (!described) return;
  for (const label of document.querySelectorAll('label[data-option]')) label.hidden = !described.options.includes(label.dataset.option);
  $('steps-label').hidden = !described.takesSteps;
  $('steps').min = String(described.minSteps);
  $('steps').value = String(described.defaultSteps);
  if (described.defaultCorrectorSteps) $('corrector').value = String(described.defaultCorrectorSteps);
  if (described.defaultSnr) $('snr').value = String(described.defaultSnr);
  if (described.defaultChurn != null) $('churn').value = String(described.defaultChurn);
  $('steps-hint').textContent = described.takesSteps
    ? `${described.paper}. One step is ${described.step}. At least ${described.minSteps} steps: ${described.minStepsWhy}.`
    : `${described.paper}. It ${described.step}.`;
}
