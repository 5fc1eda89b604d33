// The npm package as its users get it: dist/ packed by `npm pack`, the tarball installed into a
// fresh project (offline: the package has no dependencies), then its manifest and files, its
// TypeScript declarations (tsc on a typed example), the element bundled by esbuild from
// node_modules, and the element loaded by a plain module script from a CDN-style versioned path on
// another origin; both generate digits in headless Chromium (CPU, 5 steps, batch 2).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { ROOT, launch, serve } from './harness.mjs';

const NAME = 'score-field';
const FIXTURES = path.join(ROOT, 'tests', 'browser', 'npm-project');
const BIN = path.join(ROOT, 'node_modules', '.bin');

let dir; // the temporary project
let installed; // its node_modules/score-field
let packed; // npm pack's report: {filename, files, …}
let browser;

/** Runs a command, returning its output; a failure throws with the command's own output. */
function run(command, args, cwd) {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    throw new Error(`${command} ${args.join(' ')} failed (${e.status}):\n${e.stdout}\n${e.stderr}`);
  }
}

/** Cargo.toml's [package] version: the one definition of the project's version. */
function cargoVersion() {
  const text = readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const section = text.split(/^\[/m).find((s) => s.startsWith('package]'));
  return section.match(/^version\s*=\s*"([^"]+)"/m)[1];
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-npm-'));
  [packed] = JSON.parse(run('npm', ['pack', path.join(ROOT, 'dist'), '--pack-destination', dir, '--json', '--loglevel=error'], ROOT));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'a-page', private: true, type: 'module' }));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', `./${packed.filename}`], dir);
  installed = path.join(dir, 'node_modules', NAME);
  browser = await launch({ webgpu: false });
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens `url`, waits for the widget #w to load, runs it and reads back its state, result and
 * picture, and which URLs the page requested. */
async function generate(url) {
  const page = await browser.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('w')?.state), null, { timeout: 180_000 });
  const out = await page.$eval('#w', async (w) => {
    const done = new Promise((resolve) => w.addEventListener('done', (e) => resolve(e.detail), { once: true }));
    const returned = await w.run();
    const canvas = w.shadowRoot.querySelector('canvas');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const greys = new Set();
    for (let i = 0; i < pixels.length; i += 4) greys.add(pixels[i]);
    return {
      state: w.state,
      error: w.shadowRoot.querySelector('.error').textContent,
      shape: returned?.shape ?? null,
      sameAsDone: returned !== null && returned === (await done),
      greys: greys.size,
      version: document.documentElement.dataset.version ?? null,
    };
  });
  await page.close();
  return { ...out, errors, requests };
}

test('the tarball holds the widget, the wasm module and the shipped models, at the version Cargo.toml gives', async () => {
  const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.name, NAME);
  assert.equal(manifest.version, cargoVersion(), 'the package version is the crate version');
  assert.equal(packed.filename, `${NAME}-${cargoVersion()}.tgz`);
  const { version } = await import(pathToFileURL(path.join(installed, 'pkg', 'version.js')).href);
  assert.equal(version, manifest.version, "the version the widget exports (and the page's footer shows)");
  // Every export target exists, each with its declarations.
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    const targets = typeof target === 'string' ? [target] : Object.values(target);
    for (const t of targets.filter((t) => !t.includes('*'))) assert.ok(existsSync(path.join(installed, t)), `exports["${subpath}"] → ${t} is in the package`);
    if (typeof target === 'object') assert.ok(target.types, `exports["${subpath}"] names its types`);
  }
  const files = new Set(packed.files.map((f) => f.path));
  for (const f of ['score-field.js', 'client.js', 'worker.js', 'protocol.js', 'pkg/scorefield.js', 'pkg/scorefield_bg.wasm', 'pkg/version.js', 'score-field.d.ts', 'client.d.ts', 'pkg/scorefield.d.ts', 'README.md']) {
    assert.ok(files.has(f), `${f} is packed`);
  }
  // The shipped model and every file its card names (weights, guide, classifier, reference likelihoods).
  const card = JSON.parse(readFileSync(path.join(installed, 'models', 'mnist.json'), 'utf8'));
  const named = [card.weights, card.guide, card.classifier, card.likelihood_references];
  for (const sub of [card.guide, card.classifier]) named.push(JSON.parse(readFileSync(path.join(installed, 'models', sub), 'utf8')).weights);
  for (const f of named) assert.ok(files.has(`models/${f}`), `models/${f} (named by the card) is packed`);
  // Every module the element imports is packed (a module the build forgot would 404 in use).
  for (const f of [...files].filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(path.join(installed, f), 'utf8');
    for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*'(\.\/[^']+)'/g)) {
      assert.ok(files.has(path.posix.join(path.posix.dirname(f), spec)), `${f} imports ${spec}, which is packed`);
    }
  }
});

test("the page's footer shows the version the package carries", async () => {
  const site = await serve();
  try {
    const page = await browser.newPage();
    await page.goto(`${site.url}index.html?backend=cpu`);
    await page.waitForFunction(() => document.getElementById('version')?.textContent !== '…', null, { timeout: 60_000 });
    assert.equal(await page.$eval('footer', (f) => f.textContent.match(/scorefield (\S+)/)?.[1]), cargoVersion());
    await page.close();
  } finally {
    site.close();
  }
});

test('tsc --noEmit type-checks a typed page against the installed declarations, rejecting its marked mistakes', () => {
  // In the temporary project, so that `score-field` resolves to the installed tarball.
  cpSync(path.join(FIXTURES, 'typed-example.ts'), path.join(dir, 'typed-example.ts'));
  const compilerOptions = { strict: true, noEmit: true, target: 'es2022', lib: ['es2022', 'dom', 'dom.iterable'], types: [] };
  // As a bundler resolves the package, and as Node does (the exports' `types` conditions).
  for (const [module, moduleResolution] of [['esnext', 'bundler'], ['node16', 'node16']]) {
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module, moduleResolution }, files: ['typed-example.ts'] }));
    run(path.join(BIN, 'tsc'), ['-p', path.join(dir, 'tsconfig.json')], dir);
  }
});

test('bundled by esbuild from node_modules, the element renders a widget that generates', async () => {
  const site = path.join(dir, 'bundled');
  mkdirSync(site);
  cpSync(path.join(FIXTURES, 'bundle-entry.js'), path.join(dir, 'bundle-entry.js'));
  run(path.join(BIN, 'esbuild'), ['bundle-entry.js', '--bundle', '--format=esm', `--outfile=${path.join(site, 'app.js')}`, '--log-level=warning'], dir);
  const bundle = readFileSync(path.join(site, 'app.js'), 'utf8');
  assert.match(bundle, /customElements\.define\("score-field"/, 'the element is in the bundle');
  // The run-time files (worker, wasm, models) from a copy of the package's folder.
  cpSync(installed, path.join(site, NAME), { recursive: true });
  writeFileSync(path.join(site, 'index.html'), '<!doctype html><html lang="en"><meta charset="utf-8"><link rel="icon" href="data:,"><title>bundled</title><script type="module" src="app.js"></script>'
    + '<score-field id="w" backend="cpu" sampler="dpmpp-2m" steps="5" batch="2" seed="1" workers="1" controls="run"></score-field>');
  const server = await serve([], site);
  try {
    const out = await generate(`${server.url}index.html`);
    assert.deepEqual({ state: out.state, error: out.error, shape: out.shape }, { state: 'done', error: '', shape: [2, 1, 28, 28] });
    assert.ok(out.sameAsDone, 'run() resolved to the done event\'s result');
    assert.ok(out.greys > 8, `the canvas shows digits (${out.greys} grey levels)`);
    assert.equal(out.version, cargoVersion());
    // The element came from the bundle: its module was never fetched, only the worker's files.
    const fetched = out.requests.filter((u) => u.startsWith(`${server.url}${NAME}/`)).map((u) => u.slice(server.url.length + NAME.length + 1));
    assert.ok(!fetched.includes('score-field.js') && !fetched.includes('client.js'), `the element's modules came from the bundle (fetched: ${fetched.join(', ')})`);
    assert.ok(fetched.includes('worker.js') && fetched.includes('pkg/scorefield_bg.wasm') && fetched.includes('models/mnist.json'), `the worker, wasm and model came from the base path (fetched: ${fetched.join(', ')})`);
    assert.deepEqual(out.errors, []);
  } finally {
    server.close();
  }
});

test('from a CDN-style path on another origin, one module script renders a widget that generates', async () => {
  // As unpkg or jsDelivr serve it: the installed folder at /score-field@VERSION/, with CORS.
  const cdnRoot = path.join(dir, 'cdn');
  mkdirSync(cdnRoot);
  const versioned = `${NAME}@${cargoVersion()}`;
  symlinkSync(installed, path.join(cdnRoot, versioned), 'dir');
  const cdn = await serve(['Access-Control-Allow-Origin: *'], cdnRoot);
  const postDir = path.join(dir, 'post');
  mkdirSync(postDir);
  writeFileSync(path.join(postDir, 'post.html'), `<!doctype html><html lang="en"><meta charset="utf-8"><link rel="icon" href="data:,"><title>post</title><script type="module" src="${cdn.url}${versioned}/score-field.js"></script>`
    + '<score-field id="w" backend="cpu" sampler="dpmpp-2m" steps="5" batch="2" seed="1" workers="1" controls="run"></score-field>');
  const post = await serve([], postDir);
  try {
    assert.notEqual(new URL(post.url).origin, new URL(cdn.url).origin);
    const out = await generate(`${post.url}post.html`);
    assert.deepEqual({ state: out.state, error: out.error, shape: out.shape }, { state: 'done', error: '', shape: [2, 1, 28, 28] });
    assert.ok(out.greys > 8, `the canvas shows digits (${out.greys} grey levels)`);
    // The default model is the package's own, beside the script.
    assert.ok(out.requests.includes(`${cdn.url}${versioned}/models/mnist.json`), 'the shipped model came from the package path');
    assert.deepEqual(out.errors, []);
  } finally {
    post.close();
    cdn.close();
  }
});
