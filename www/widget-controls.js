// The controls every <score-field> shares: sampler, steps, seed, batch and class (the `label`
// attribute; named by what the card calls one image, "digit"), Run and Cancel. Built empty,
// filled with the model's samplers and classes once it has loaded, set from the attributes
// (widget-attributes.js readChoice), and read into a run's options. Field mode reuses the form
// and relabels it (field-view.js).
import { runOptions } from './run-options.js';
import { CONTROLS } from './widget-attributes.js';

export class Controls {
  /** Adds the controls to `ui` (ui.controls, the inputs, ui.labels, ui.run, ui.cancel);
   * `runLabel` is the Run button's text; `onEdit` is called when the reader changes a control. */
  constructor(ui, el, runLabel, onEdit) {
    this.ui = ui;
    this.el = el;
    this.info = null; // the model's description, once filled
    this.samplers = new Map(); // name -> the model's description of it
    this.guidance = null; // the guidance scale of guided runs (attribute `guidance`, checked)
    this.autoguidance = null; // the autoguidance weight (attribute `autoguidance`, checked), or null without a guide model
    ui.controls = el('form', { class: 'controls', part: 'controls' });
    ui.sampler = el('select', { name: 'sampler', part: 'input' });
    ui.steps = el('input', { name: 'steps', part: 'input', type: 'number', min: 1 });
    ui.sampler.addEventListener('change', () => this.showSampler(this.sampler(), null));
    ui.seed = el('input', { name: 'seed', part: 'input', type: 'number', min: 0, step: 1 });
    ui.batch = el('input', { name: 'batch', part: 'input', type: 'number', min: 1 });
    // Filled with the model's classes once it has loaded (hidden without a classifier).
    ui.label = el('select', { name: 'label', part: 'input' });
    ui.labels = {
      sampler: el('label', {}, 'sampler', ui.sampler),
      steps: el('label', {}, 'steps', ui.steps),
      seed: el('label', {}, 'seed', ui.seed),
      batch: el('label', {}, 'batch', ui.batch),
      label: el('label', {}, el('span', { 'data-subject': 'one', text: 'class' }), ui.label),
    };
    ui.run = el('button', { type: 'submit', part: 'button run', text: runLabel });
    ui.cancel = el('button', { type: 'button', class: 'secondary', part: 'button cancel', text: 'Cancel' });
    ui.cancel.hidden = true;
    ui.controls.append(...Object.values(ui.labels), ui.run, ui.cancel);
    for (const input of [ui.sampler, ui.steps, ui.seed, ui.batch, ui.label]) input.addEventListener('change', onEdit);
  }

  /** The model's samplers and classes as the selects' options. */
  fill(info) {
    const { ui, el } = this;
    this.info = info;
    this.samplers = new Map(info.samplers.map((x) => [x.name, x]));
    ui.sampler.replaceChildren(...info.samplers.map((x) => el('option', { value: x.name, text: x.label })));
    const classes = info.classes ?? [];
    ui.label.replaceChildren(el('option', { value: 'any', text: 'any' }), ...classes.map((name, i) => el('option', { value: String(i), text: name })), el('option', { value: 'all', text: 'each in turn' }));
  }

  /** The selected sampler's description. */
  sampler() {
    return this.samplers.get(this.ui.sampler.value);
  }

  /** Sets the controls to what the attributes ask for: `choice` (readChoice) and the settings'
   * seed and batch, with the library's limits. */
  set(choice, settings) {
    const { ui, info } = this;
    ui.sampler.value = choice.sampler.name;
    this.showSampler(choice.sampler, choice.steps);
    ui.label.value = String(choice.label);
    this.guidance = choice.guidance;
    this.autoguidance = choice.autoguidance;
    ui.seed.value = settings.seed;
    ui.batch.value = settings.batch;
    ui.batch.max = Math.min(info.defaults.maxBatch, info.maxBatch);
    ui.steps.max = info.defaults.maxSteps;
  }

  /** Sets the steps control for `sampler`: its floor, and `steps` or its default. */
  showSampler(sampler, steps) {
    if (!sampler) return;
    const ui = this.ui;
    ui.steps.min = sampler.minSteps;
    ui.steps.value = steps ?? sampler.defaultSteps;
    ui.steps.title = sampler.takesSteps ? `one step: ${sampler.step}; at least ${sampler.minSteps}: ${sampler.minStepsWhy}` : sampler.step;
    ui.steps.disabled = !sampler.takesSteps;
    ui.sampler.title = sampler.paper;
  }

  /** Shows the controls `settings.controls` lists, but none the mode does without (mode.js: one
   * that draws no samples has no sampler, steps, seed, batch or class, and it may hide more); the
   * class needs a classifier. The form stays while the mode has buttons of its own. */
  show(settings, Mode) {
    const ui = this.ui;
    const hidden = Mode.samples ? Mode.hidden : CONTROLS;
    for (const [name, node] of Object.entries(ui.labels)) node.hidden = !settings.controls.includes(name) || (name === 'label' && !this.info?.classes) || hidden.includes(name);
    ui.run.hidden = !settings.controls.includes('run');
    ui.controls.hidden = settings.controls.length === 0 && !Mode.ownControls;
  }

  /** A run's sampler options from the controls. */
  options() {
    const { ui, info } = this;
    const sampler = this.sampler();
    const label = ui.label.value || 'any';
    // The widget has no churn control: a guided run on the guided sampler takes the library's churn.
    const guided = label !== 'any' && sampler.name === info.defaults.guided.sampler;
    return runOptions(info, sampler, {
      steps: Number(ui.steps.value),
      seed: Number(ui.seed.value),
      batch: Number(ui.batch.value),
      label,
      guidance: this.guidance,
      autoguidance: this.autoguidance,
      correctorSteps: sampler.defaultCorrectorSteps || undefined,
      churn: guided && info.classes ? info.defaults.guided.churn : undefined,
    });
  }
}
