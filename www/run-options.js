// A run's options from the values of its controls, for the page's form (page-controls.js) and the
// widget's (widget-controls.js): one definition of what a chosen class, the guidance scale and the
// autoguidance weight send to the library (src/web/options.rs reads them).

/** `sampler`: the model's description of the chosen sampler; `info`: the model's (RemoteModel.load).
 * `values`: {steps, seed, batch} as numbers, `label` ('any', 'all' or a class index as text),
 * `guidance`, `autoguidance` (null: not autoguided), and the sampler's own options the controls
 * set (correctorSteps, snr, churn; those left undefined are the library's defaults). */
export function runOptions(info, sampler, { steps, seed, batch, label = 'any', guidance, autoguidance = null, ...own }) {
  const opts = { sampler: sampler.name, steps, seed, batch };
  for (const [name, value] of Object.entries(own)) if (value !== undefined) opts[name] = value;
  // A class is asked of the classifier the card names; without one, every run is unguided.
  if (info.classes && label !== 'any') {
    opts.class = label === 'all' ? 'all' : Number(label);
    opts.guidance = guidance;
  }
  if (autoguidance !== null) opts.autoguidance = autoguidance;
  return opts;
}
