// What a <score-field> image mode is (mode-generate.js, mode-trajectory.js, mode-interpolate.js,
// mode-likelihood.js extend it): the element builds the parts every mode shares, loads the model
// and runs tasks in the worker; a mode adds its own views and controls, prepares them once the
// model has loaded, and says what one run is. It reaches the element through `widget`, the
// element's context for modes (score-field.js #modeContext).
export class Mode {
  /** The Run button's text. */
  static label = 'Run';
  /** Whether it draws with a sampler: then the sampler, steps, seed, batch and class controls
   * apply, and a run with fewer steps than the sampler's floor is refused. */
  static samples = true;
  /** Controls it never shows. */
  static hidden = [];
  /** Whether it has buttons of its own that show even when `controls` lists none. */
  static ownControls = false;

  constructor(widget) {
    this.widget = widget;
  }

  /** Adds its views and controls to the widget's parts (`ui`); `el` makes elements. */
  build(ui, el) {}

  /** The attributes have changed (`settings`: the element's); the shared controls follow them. */
  sync(settings) {}

  /** After the model has loaded; true when the mode has set the widget's state itself. */
  async loaded() {
    return false;
  }

  /** One run: resolves to the result, or null (the element's task machinery reports it). */
  run() {
    throw new Error(`${this.constructor.name} has no run()`);
  }
}
