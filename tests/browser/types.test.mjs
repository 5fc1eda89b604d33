// The TypeScript declarations the npm package ships (dist/*.d.ts, dist/pkg/*.d.ts) against what
// the code really has: every export, class member and method of the wasm module, client.js and
// the <score-field> element; the keys of every options object as the library's own "unknown
// field …; expected one of …" errors list them; the keys of every result, progress report and
// event detail as real runs return them; and the attributes as the widget reference documents
// them. Each comparison is a pair of type assertions (nothing missing, nothing extra) compiled by
// tsc, so a declaration that drifts from the code fails here with the name it lacks or invents.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { ROOT, launch, serve } from './harness.mjs';

const DIST = path.join(ROOT, 'dist');
/** A type of a shipped module, by its path in dist/ (the generated checks import it from there). */
const shipped = (file) => `typeof import(${JSON.stringify(path.join(DIST, file))})`;
const MODELS = path.join(ROOT, 'www', 'models');

/** Pairs of (a type expression naming a set of keys in the declarations, the names the code has),
 * each with a label for the failure message. */
const checks = [];
function same(label, declared, actual) {
  checks.push({ label, declared, actual: [...new Set(actual)].sort() });
}

/** The names an object has, own and enumerable. */
const keys = (o) => Object.keys(o);
/** The union of the keys of several objects (results whose optional fields come and go). */
const union = (objects) => objects.flatMap((o) => Object.keys(o));
/** A class's own methods and accessors (not the wasm-bindgen internals). */
const members = (proto) => Object.getOwnPropertyNames(proto).filter((n) => !['constructor', '__destroy_into_raw'].includes(n));
const statics = (cls) => Object.getOwnPropertyNames(cls).filter((n) => !['length', 'name', 'prototype', '__wrap'].includes(n));

/** The accepted keys of one call, from the library's refusal of an unknown one. */
async function accepted(call) {
  try {
    await call({ notAnOption: 1 });
  } catch (e) {
    const m = e.message.match(/unknown .* field `notAnOption`; expected one of (.*)$/);
    assert.ok(m, `an unknown key is refused with the list of known ones: ${e.message}`);
    return m[1].split(', ');
  }
  assert.fail('an unknown option key was accepted');
}

let browser;
let server;
before(async () => {
  browser = await launch({ webgpu: false });
  server = await serve([], DIST);
});
after(async () => {
  await browser?.close();
  server?.close();
});

test('the wasm module: exports, members, option keys and result keys (Node, CPU)', async (t) => {
  // The library yields to the event loop through MessageChannels, whose ports would keep this
  // process alive after the runs: they are closed when the test ends.
  const Channel = globalThis.MessageChannel;
  const channels = [];
  globalThis.MessageChannel = class extends Channel {
    constructor() {
      super();
      channels.push(this);
    }
  };
  t.after(() => {
    globalThis.MessageChannel = Channel;
    for (const c of channels) {
      c.port1.close();
      c.port2.close();
    }
  });
  const wasm = await import(pathToFileURL(path.join(DIST, 'pkg', 'scorefield.js')).href);
  wasm.initSync({ module: readFileSync(path.join(DIST, 'pkg', 'scorefield_bg.wasm')) });
  const { ScoreModel, Field2D } = wasm;
  const W = shipped('pkg/scorefield.js');
  same('exports of pkg/scorefield.js', `keyof ${W}`, keys(wasm));
  same('ScoreModel methods and properties', 'keyof W.ScoreModel', members(ScoreModel.prototype));
  same('ScoreModel static methods', `Exclude<keyof ${W}["ScoreModel"], "prototype">`, statics(ScoreModel));
  same('Field2D methods and properties', 'keyof W.Field2D', members(Field2D.prototype));
  same('Field2D static methods', `Exclude<keyof ${W}["Field2D"], "prototype">`, statics(Field2D));

  const file = (name) => readFileSync(path.join(MODELS, name));
  const model = await ScoreModel.fromBytes(file('mnist.json').toString(), file('mnist.safetensors'), { backend: 'cpu' });
  model.setGuide(file('mnist-guide.json').toString(), file('mnist-guide.safetensors'));
  model.setClassifier(file('mnist-classifier.json').toString(), file('mnist-classifier.safetensors'));

  same('LoadOptions', 'keyof W.LoadOptions', await accepted((o) => ScoreModel.fromBytes(file('mnist.json').toString(), file('mnist.safetensors'), o)));
  same('LoadOptions (resolveBackend)', 'keyof W.LoadOptions', await accepted((o) => ScoreModel.resolveBackend(o)));
  same('RunOptions', 'keyof W.RunOptions', await accepted((o) => model.generate(o)));
  // inpaint takes `image` and `mask` out before it checks the rest; likelihood `pixels`; interpolate `a` and `b`.
  same('InpaintOptions', 'keyof W.InpaintOptions', [...(await accepted((o) => model.inpaint(o))), 'image', 'mask']);
  same('LikelihoodOptions', 'keyof W.LikelihoodOptions', [...(await accepted((o) => model.likelihood(o))), 'pixels']);
  same('InterpolateOptions', 'keyof W.InterpolateOptions', [...(await accepted((o) => model.interpolate(o))), 'a', 'b']);
  same('FieldSpec', 'keyof W.FieldSpec', await accepted((o) => Field2D.create(o)));
  const field = await Field2D.create({ distribution: 'two-modes', backend: 'cpu' });
  same('ParticleOptions', 'keyof W.ParticleOptions', await accepted((o) => field.particles(o)));

  same('ResolvedBackend', 'keyof W.ResolvedBackend', keys(await ScoreModel.resolveBackend({ backend: 'cpu' })));
  const defaults = model.runDefaults();
  same('RunDefaults', 'keyof W.RunDefaults', keys(defaults));
  same('RunDefaults.guided', 'keyof W.RunDefaults["guided"]', keys(defaults.guided));
  same('SamplerInfo', 'keyof W.SamplerInfo', union(model.samplers));
  // Every name the library takes, from its unknown-sampler error (consistency models' sampler too,
  // which a score model does not list); the model's own samplers are among them.
  const refusal = await model.generate({ sampler: 'no-such-sampler', batch: 1 }).then(() => '', (e) => e.message);
  const names = (refusal.match(/expected one of ([a-z0-9, -]+)/) || [])[1]?.split(', ') ?? [];
  assert.ok(model.samplers.every((s) => names.includes(s.name)), refusal);
  same('SamplerName', 'W.SamplerName', names);
  const card = model.card;
  same('ModelCard.image', 'keyof W.ModelCard["image"]', keys(card.image));
  const reports = [];
  const run = await model.generate({ batch: 1, steps: 5, previewEvery: 2 }, (p) => reports.push(p));
  same('RunResult', 'keyof W.RunResult', keys(run));
  same('Progress', 'keyof W.Progress', union(reports));
  const image = run.data.map((v) => Math.min(1, Math.max(0, v)));
  const mask = new Float32Array(image.length).fill(1).fill(0, 0, 200);
  same('RunResult (inpaint)', 'keyof W.RunResult', keys(await model.inpaint({ batch: 1, steps: 5, image, mask })));
  const pixels = Array.from(image, (v) => Math.round(v * 255));
  same('LikelihoodResult', 'keyof W.LikelihoodResult', keys(await model.likelihood({ pixels, rtol: 1e-2, atol: 1e-2 })));
  same('InterpolateResult', 'keyof W.InterpolateResult', keys(await model.interpolate({ a: image, b: image, frames: 2, rtol: 1e-2, atol: 1e-2 })));
  same('BenchmarkResult', 'keyof W.BenchmarkResult', keys(await model.benchmark(1, 1, 0)));

  const about = Field2D.describe();
  same('FieldDescription', 'keyof W.FieldDescription', keys(about));
  same('FieldDescription.presets', 'keyof W.FieldDescription["presets"][number]', union(about.presets));
  same('FieldDistribution', 'W.FieldDistribution', about.presets.map((p) => p.name));
  same('FieldDescription.dynamics', 'keyof W.FieldDescription["dynamics"][number]', union(about.dynamics));
  same('FieldSampler', 'W.FieldSampler', about.dynamics.map((d) => d.name));
  same('FieldGrid', 'keyof W.FieldGrid', keys(field.grid(0.5, 4)));
  same('ParticleRun', 'keyof W.ParticleRun', keys(await field.particles({ sampler: 'ald', particles: 10, steps: 10, frames: 2 })));
  same('learn()', 'keyof Awaited<ReturnType<W.Field2D["learn"]>>', keys(await field.learn(1)));
  await field.train(2);
  same('LearnedGrid', 'keyof W.LearnedGrid', keys(await field.learnedGrid(0.5, 4)));
});

test('client.js: exports and the members of RemoteModel and RemoteField (Node)', async () => {
  const client = await import(pathToFileURL(path.join(DIST, 'client.js')).href);
  const C = shipped('client.js');
  // The package's declared value exports of client.js (its `export type *` adds types only).
  same('exports of client.js', `keyof ${C}`, keys(client));
  // A model's own fields besides its prototype; `current` (the run in progress) is internal.
  globalThis.document ??= { baseURI: 'http://127.0.0.1/' };
  const model = new client.RemoteModel('models/mnist.json');
  same('RemoteModel members', 'keyof C.RemoteModel', [...members(client.RemoteModel.prototype), ...keys(model).filter((k) => k !== 'current')]);
  same('RemoteField members', 'keyof C.RemoteField', [...members(client.RemoteField.prototype), ...keys(new client.RemoteField({}))]);
  same('RemoteField static methods', `Exclude<keyof ${C}["RemoteField"], "prototype">`, statics(client.RemoteField));
});

test('the element: members, observed and documented attributes, settings, event details and results (Chromium, CPU)', async () => {
  const page = await browser.newPage();
  const html = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/score-field.js"></script>'
    + '<score-field id="gen" backend="cpu" sampler="dpmpp-2m" steps="5" batch="2" workers="1"></score-field>'
    + '<score-field id="field" mode="field" particles="50" steps="20" controls="run"></score-field>';
  await page.route(`${server.url}types.html`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${server.url}types.html`);
  await page.waitForFunction(() => ['gen', 'field'].every((id) => ['ready', 'error'].includes(document.getElementById(id)?.state)), null, { timeout: 180_000 });
  const seen = await page.evaluate(async () => {
    const ScoreField = customElements.get('score-field');
    const gen = document.getElementById('gen');
    const details = { progress: [], done: [], error: [] };
    for (const type of Object.keys(details)) document.addEventListener(type, (e) => details[type].push(e.detail));
    await gen.run();
    // A reader's step count below the sampler's minimum: refused with an error event.
    gen.shadowRoot.querySelector('input[name=steps]').value = '1';
    await gen.run();
    const fieldResult = await document.getElementById('field').run();
    const { RemoteModel } = await import('/client.js');
    const info = await new RemoteModel('/models/mnist.json', 'cpu', 1).load();
    const module = await import('/score-field.js');
    return {
      members: Object.getOwnPropertyNames(ScoreField.prototype).filter((n) => n !== 'constructor'),
      statics: Object.getOwnPropertyNames(ScoreField).filter((n) => !['length', 'name', 'prototype'].includes(n)),
      observed: ScoreField.observedAttributes,
      exports: Object.keys(module),
      settings: Object.keys(gen.settings),
      progress: details.progress.flatMap((d) => Object.keys(d)),
      done: Object.keys(details.done[0]),
      error: details.error.flatMap((d) => Object.keys(d)),
      errorNames: details.error.map((d) => d.name),
      field: Object.keys(fieldResult),
      info: Object.keys(info),
    };
  });
  await page.close();
  assert.deepEqual(seen.errorNames, ['InvalidOptionError'], 'the refused run fired one error event');
  const E = shipped('score-field.js');
  same('exports of score-field.js', `keyof ${E}`, seen.exports);
  same('ScoreField members', 'Exclude<keyof E.ScoreField, keyof HTMLElement>', seen.members);
  same('ScoreField statics', `Exclude<keyof ${E}["ScoreField"], "prototype">`, seen.statics);
  same('ScoreField.observedAttributes (within ScoreFieldAttributes)', `Extract<E.ScoreFieldAttributeName, ${seen.observed.map((a) => JSON.stringify(a)).join(' | ')}>`, seen.observed);
  same('ScoreFieldSettings', 'keyof E.ScoreFieldSettings', seen.settings);
  same('progress detail', 'keyof E.ScoreFieldEventMap["progress"]["detail"]', seen.progress);
  same('error detail', 'keyof E.ScoreFieldEventMap["error"]["detail"]', seen.error);
  same('done detail (generate)', 'keyof E.RemoteRunResult', seen.done.concat(['workers']));
  same('done detail (field mode)', 'keyof E.FieldResult', seen.field);
  same('ModelInfo (RemoteModel.load)', 'keyof E.ModelInfo', seen.info);
  // The attributes docs/reference/widget.md documents, in its tables of attributes.
  const doc = readFileSync(path.join(ROOT, 'docs', 'reference', 'widget.md'), 'utf8');
  const documented = [];
  for (const table of doc.split(/\n(?=\| attribute \|)/).slice(1)) {
    for (const row of table.split('\n').slice(2)) {
      const m = row.match(/^\| `([a-z-]+)` \|/);
      if (!m) break;
      documented.push(m[1]);
    }
  }
  assert.ok(documented.length > 20, `the reference's attribute tables were read (${documented.join(', ')})`);
  same('ScoreFieldAttributes (the documented attributes)', 'keyof E.ScoreFieldAttributes', documented);
});

test('tsc: each declared set of names equals the code\'s', () => {
  assert.ok(checks.length > 40, `the checks above ran (${checks.length})`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-types-'));
  try {
    const source = path.join(dir, 'coverage.ts');
    const literal = (names) => (names.length ? names.map((n) => JSON.stringify(n)).join(' | ') : 'never');
    const lines = [
      `import type * as W from ${JSON.stringify(path.join(DIST, 'pkg', 'scorefield.js'))};`,
      `import type * as C from ${JSON.stringify(path.join(DIST, 'client.js'))};`,
      `import type * as E from ${JSON.stringify(path.join(DIST, 'score-field.js'))};`,
      'type Nothing<T extends never> = T;',
    ];
    for (const { label, declared, actual } of checks) {
      lines.push(`// ${label}`);
      lines.push(`type _${lines.length} = Nothing<Exclude<${literal(actual)}, ${declared}>>; // the code has, the declarations lack`);
      lines.push(`type _${lines.length} = Nothing<Exclude<${declared}, ${literal(actual)}>>; // the declarations have, the code lacks`);
    }
    writeFileSync(source, `${lines.join('\n')}\n`);
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'], types: [] },
      files: [source],
    }));
    let output = '';
    try {
      execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      output = e.stdout + e.stderr;
    }
    // An error in a check names its line: show the check and the side that differs.
    const failures = [...output.matchAll(/coverage\.ts\((\d+),\d+\): error TS\d+: (.*)/g)].map(([, line, message]) => {
      const at = Number(line) - 1;
      const label = lines.slice(0, at + 1).reverse().find((l) => l.startsWith('// ')).slice(3);
      return `${label}: ${lines[at].split('// ')[1]}: ${message}`;
    });
    assert.deepEqual(failures, []);
    assert.equal(output, '', 'tsc found no error in the declarations themselves');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
