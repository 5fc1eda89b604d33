// The <score-field> widget from dist/ (as a blogger would copy it), in headless Chromium. Every
// response carries the Content-Security-Policy a strict blog would send, plus CORS for the
// cross-origin test. The software WebGPU adapter is a fallback, so `auto` runs on the CPU here.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS, ROOT, launch, openPage, serve } from './harness.mjs';

const CSP = "script-src 'self' 'wasm-unsafe-eval'";
let server;
let browser;
before(async () => {
  server = await serve([`Content-Security-Policy: ${CSP}`, 'Access-Control-Allow-Origin: *'], path.join(ROOT, 'dist'));
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser?.close();
  server?.close();
});

/** Records CSP violations from the very start of every document. */
async function watchCsp(page) {
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
}

/** A page at `url` (on any origin) whose HTML we supply, served with the CSP header. */
async function hostPage(html, url) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await watchCsp(page);
  await page.route(url, (route) => route.fulfill({ contentType: 'text/html', body: html, headers: { 'Content-Security-Policy': CSP } }));
  await page.goto(url);
  return page;
}

/** Waits until every selected widget's state is one of `states` (or one is 'error'). */
async function waitStates(page, selector, states, timeout = 240_000) {
  await page.waitForFunction(
    ([sel, ok]) => [...document.querySelectorAll(sel)].every((w) => ok.includes(w.getAttribute('state')) || w.getAttribute('state') === 'error'),
    [selector, states],
    { timeout },
  );
  return page.$$eval(selector, (ws) => ws.map((w) => ({ state: w.getAttribute('state'), error: w.shadowRoot.querySelector('.error').hidden ? '' : w.shadowRoot.querySelector('.error').textContent })));
}

/** Std of the pixels of a widget's output canvas (0 for a blank canvas). */
function canvasStd(page, selector) {
  return page.$eval(selector, (w) => {
    const c = w.shadowRoot.querySelector('canvas.output');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
    return Math.sqrt(s2 / n - (s / n) ** 2);
  });
}

const widgetPage = (body, head = '') => `<!doctype html><html><head><meta charset="utf-8">${head}<script type="module" src="/score-field.js"></script></head><body>${body}</body></html>`;

test('the example post renders its ten widgets under a strict CSP, with no violations', async () => {
  const page = await openPage(browser, `${server.url}example-post.html`);
  await watchCsp(page);
  await page.reload();
  // Scroll down so that the lazy widgets come into view.
  for (const w of await page.$$('score-field')) await w.scrollIntoViewIfNeeded();
  const states = await waitStates(page, 'score-field', ['done', 'ready']);
  assert.deepEqual(states.map((s) => s.error), Array(10).fill(''), JSON.stringify(states));
  // The autoplaying ones ran; the learned score, the moons, inpaint, likelihood and the emoji wait
  // for the reader.
  const modes = await page.$$eval('score-field', (ws) => ws.map((w) => `${w.getAttribute('mode')}:${w.getAttribute('sampler')}:${w.getAttribute('model')}`));
  assert.deepEqual(modes, ['field:langevin:null', 'field:null:null', 'field:ald:null', 'field:em:null', 'generate:null:null', 'trajectory:em:null', 'inpaint:pc:null', 'likelihood:null:null', 'generate:null:models/emoji.json', 'inpaint:null:models/emoji.json']);
  assert.deepEqual(states.map((s) => s.state), ['done', 'ready', 'done', 'ready', 'done', 'done', 'ready', 'ready', 'ready', 'ready']);
  // The emoji's inpaint widget has drawn its source in colour, and names it as the card does.
  const emoji = await page.$eval('score-field[mode=inpaint][model]', (w) => ({
    button: [...w.shadowRoot.querySelectorAll('button')].map((b) => b.textContent).find((t) => t.startsWith('New ')),
    shape: w.shadowRoot.querySelector('canvas.source').getAttribute('aria-label'),
  }));
  assert.deepEqual(emoji, { button: 'New emoji', shape: 'the emoji to complete; paint over the part to regenerate' });
  // The post credits the emoji's sources.
  assert.match(await page.$eval('article', (a) => a.textContent), /Twemoji \(CC-BY 4\.0[^)]*\) and\s+Noto Emoji \(Apache-2\.0/);
  // The learned-score widget shows only its Learn controls and the σ slider.
  const learnOnly = await page.$eval('score-field[controls="learn,sigma"]', (w) => ({ learn: !w.shadowRoot.querySelector('.learn').hidden, run: !w.shadowRoot.querySelector('button[type=submit]').hidden }));
  assert.deepEqual(learnOnly, { learn: true, run: false });
  for (const mode of ['generate', 'trajectory', 'inpaint', 'field']) {
    const std = await canvasStd(page, `score-field[mode=${mode}]`);
    assert.ok(std > 5, `${mode} widget shows a blank canvas (pixel std ${std})`);
  }
  // The post's story: Langevin at one σ misses the 1/5 : 4/5 split, annealed Langevin finds it.
  const [langevin, ald] = await page.$$eval('score-field[mode=field][state=done]', (ws) => ws.map((w) => w.result.shares[1]));
  assert.ok(Math.abs(langevin - 0.8) > 0.15 && Math.abs(ald - 0.8) < 0.05, `heavy-mode shares ${langevin}, ${ald}`);
  // Trajectory: the slider scrubs x(t) from noise (t near 1, σ near σ_max = 40) to the sample.
  const scrub = await page.$eval('score-field[mode=trajectory]', (w) => {
    const r = w.shadowRoot.querySelector('input[type=range]');
    const show = (i) => {
      r.value = i;
      r.dispatchEvent(new Event('input'));
      const c = w.shadowRoot.querySelector('canvas.output');
      return { label: w.shadowRoot.querySelector('output').textContent, pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, k) => k % 4 === 0)) };
    };
    return { frames: Number(r.max) + 1, first: show(0), last: show(Number(r.max)) };
  });
  assert.ok(scrub.frames >= 20, `${scrub.frames} frames`);
  assert.match(scrub.first.label, /σ\(t\) = 3\d\.\d/, scrub.first.label);
  assert.match(scrub.last.label, /x\(0\)/);
  const changed = scrub.first.pixels.filter((v, i) => v !== scrub.last.pixels[i]).length / scrub.first.pixels.length;
  assert.ok(changed > 0.2, `noise and sample frames look alike (${changed})`);
  // Inpaint: the source digit has its bottom half masked; Inpaint fills it in.
  await page.$eval('score-field[mode=inpaint]', (w) => w.run());
  const [inpaint] = await waitStates(page, 'score-field[mode=inpaint]:not([model])', ['done']);
  assert.equal(inpaint.error, '');
  const shape = await page.$eval('score-field[mode=inpaint]', (w) => w.result.shape);
  assert.deepEqual(shape, [4, 1, 28, 28]);
  // Likelihood: it starts from the card's held-out reference and measures what the CLI measured;
  // its buttons are the references; the path to the prior is drawn.
  const buttons = await page.$eval('score-field[mode=likelihood]', (w) => [...w.shadowRoot.querySelectorAll('button[data-reference]')].map((b) => b.dataset.reference));
  assert.deepEqual(buttons, ['held-out', 'scribble', 'noise']);
  const measured = await page.$eval('score-field[mode=likelihood]', (w) => w.run());
  const references = JSON.parse(readFileSync(path.join(ROOT, 'dist', 'models', 'mnist-likelihood.json'), 'utf8'));
  assert.equal(measured.label, references.images[0].label);
  assert.ok(Math.abs(measured.bitsPerDim - references.images[0].bits_per_dim) < 0.01, `widget ${measured.bitsPerDim}, CLI ${references.images[0].bits_per_dim}`);
  assert.match(await page.$eval('score-field[mode=likelihood]', (w) => w.shadowRoot.querySelector('.status').textContent), /bits\/dim \(the CLI measured .*scribble/);
  assert.ok((await canvasStd(page, 'score-field[mode=likelihood]')) > 5, 'no path to the prior was drawn');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(page.errors, []);
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-example-post.png'), fullPage: true });
  await page.close();
});

test('two widgets sample at once; cancelling one leaves the other running; a broken one keeps its error to itself', async () => {
  const page = await hostPage(
    widgetPage(`
      <score-field id="a" sampler="em" steps="300" batch="1" seed="1" controls="run"></score-field>
      <score-field id="b" sampler="em" steps="300" batch="1" seed="2" controls="run"></score-field>
      <score-field id="c" model="/models/missing.json"></score-field>`),
    `${server.url}two.html`,
  );
  await waitStates(page, 'score-field', ['ready']);
  const broken = await page.$eval('#c', (w) => ({ state: w.getAttribute('state'), error: w.shadowRoot.querySelector('.error').textContent }));
  assert.equal(broken.state, 'error');
  assert.match(broken.error, /missing\.json.*404/);
  // Start both, cancel a once it is running: b must still finish.
  await page.evaluate(() => {
    window.runs = [document.getElementById('a').run(), document.getElementById('b').run()];
  });
  await page.waitForFunction(() => document.getElementById('a').shadowRoot.querySelector('progress').value > 0.05, null, { timeout: 60_000 });
  await page.$eval('#a', (w) => w.shadowRoot.querySelector('button.secondary').click());
  const [a, b] = await page.evaluate(() => Promise.all(window.runs).then((r) => r.map((x) => (x ? x.shape : null))));
  assert.equal(a, null, 'a was not cancelled');
  assert.deepEqual(b, [1, 1, 28, 28], 'b did not finish');
  assert.equal(await page.$eval('#b', (w) => w.getAttribute('state')), 'done');
  // Both at once to the end, with different seeds.
  const both = await page.evaluate(async () => {
    const out = await Promise.all(['a', 'b'].map((id) => {
      const w = document.getElementById(id);
      w.setAttribute('steps', '60');
      return w.run();
    }));
    return out.map((r) => Array.from(r.data));
  });
  const diff = Math.max(...both[0].map((v, i) => Math.abs(v - both[1][i])));
  assert.ok(diff > 0.1, 'different seeds gave the same sample');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  // The only console error allowed is the 404 of the missing model.
  assert.deepEqual(page.errors.filter((e) => !/404|Failed to load resource/.test(e)), []);
  await page.close();
});

test('a careless post: each bad attribute of an image widget is named in its box once, and the widget runs with the defaults', async () => {
  const page = await hostPage(
    widgetPage('<score-field id="careless" mode="nonsense" batch="1000000000" seed="abc" width="10" backend="gpu" controls="run,fly" steps="-5" sampler="ode_heun" label="eleven" guidance="-1" autoguidance="0" workers="0"></score-field>'),
    `${server.url}careless.html`,
  );
  await waitStates(page, 'score-field', ['ready']);
  const notice = await page.$eval('#careless', (w) => w.shadowRoot.querySelector('.notice').textContent);
  const named = ['mode="nonsense"', 'batch="1000000000"', 'seed="abc"', 'width="10"', 'backend="gpu"', 'controls="run,fly"', 'steps="-5"', 'sampler="ode_heun"', 'label="eleven"', 'guidance="-1"', 'autoguidance="0"', 'workers="0"'];
  for (const part of named) assert.equal(notice.split(part).length - 1, 1, `the notice does not name ${part} once: ${notice}`);
  assert.equal(notice.split('\n').length, named.length, notice);
  // Generate mode, the model's default sampler and steps, the library's batch and seed
  // (catalog.rs RUN_DEFAULTS, as the worker describes the model), the Generate button only.
  const { defaults } = await page.evaluate(async () => new (await import('/client.js')).RemoteModel('/models/mnist.json').load());
  const seed = await page.$eval('#careless', (w) => Number(w.shadowRoot.querySelector('input[name=seed]').value));
  assert.equal(seed, defaults.seed);
  const result = await page.$eval('#careless', (w) => w.run());
  assert.deepEqual(result.shape, [defaults.batch.generate, 1, 28, 28]);
  // Autoguided at the library's weight (the shipped card names a guide): the guide model is
  // evaluated at the steps whose noise level is in the default interval, some but not all.
  assert.ok(result.guideEvals > 0 && result.guideEvals < result.evals - result.guideEvals, `evals ${result.evals}, of the guide ${result.guideEvals}`);
  const shown = await page.$eval('#careless', (w) => [...w.shadowRoot.querySelectorAll('.controls > label, .controls > button')].filter((n) => !n.hidden).map((n) => n.textContent.trim()));
  assert.deepEqual(shown, ['Generate'], JSON.stringify(shown));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a widget on the CPU with workers="2" splits its batch across two workers and says so; the images are those of one worker', async () => {
  const widget = (id, workers) => `<score-field id="${id}" backend="cpu" sampler="dpmpp-2m" steps="5" batch="4" seed="3" workers="${workers}"></score-field>`;
  const page = await hostPage(widgetPage(widget('two', 2) + widget('one', 1)), `${server.url}workers.html`);
  await waitStates(page, 'score-field', ['ready']);
  const two = await page.$eval('#two', (w) => w.run().then((r) => ({ workers: r.workers, data: Array.from(r.data) })));
  const one = await page.$eval('#one', (w) => w.run().then((r) => ({ workers: r.workers ?? 1, data: Array.from(r.data) })));
  assert.equal(two.workers, 2);
  assert.equal(one.workers, 1);
  assert.deepEqual(two.data, one.data);
  assert.match(await page.$eval('#two', (w) => w.shadowRoot.querySelector('.status').textContent), /cpu, 2 workers/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a post asking for too few steps, or a sampler the model lacks, is told so and runs at the defaults', async () => {
  const page = await hostPage(
    widgetPage(`
      <score-field id="few" sampler="em" steps="3" batch="1" controls="run,sampler,steps"></score-field>
      <score-field id="typo" sampler="ode_heun" batch="1"></score-field>
      <score-field id="plain" batch="1"></score-field>`),
    `${server.url}attributes.html`,
  );
  const warnings = [];
  page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
  await waitStates(page, 'score-field', ['ready']);
  const shown = await page.$$eval('score-field', (ws) => ws.map((w) => {
    const q = (s) => w.shadowRoot.querySelector(s);
    return { notice: q('.notice').hidden ? '' : q('.notice').textContent, sampler: q('select').value, steps: Number(q('input[name=steps]').value), min: Number(q('input[name=steps]').min), first: q('select option').value };
  }));
  const [few, typo, plain] = shown;
  // The floor and the defaults are the library's (src/sampling/catalog.rs), not the widget's.
  assert.match(few.notice, /steps="3" is below em's minimum of \d+ \(.+\); using \d+/, few.notice);
  assert.equal(few.sampler, 'em');
  assert.ok(few.steps >= few.min && few.min > 3, JSON.stringify(few));
  assert.match(typo.notice, /sampler="ode_heun" is not a sampler of this model \(.*ode-heun.*\); using /, typo.notice);
  assert.equal(plain.notice, '');
  assert.equal(plain.sampler, plain.first, 'no sampler attribute: the model\'s default sampler, listed first');
  assert.equal(typo.sampler, plain.sampler);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  // A reader typing fewer steps than the floor is told why instead of getting noise.
  const refused = await page.$eval('#few', async (w) => {
    w.shadowRoot.querySelector('input[name=steps]').value = '2';
    const result = await w.run();
    return { result, error: w.shadowRoot.querySelector('.error').textContent };
  });
  assert.equal(refused.result, null);
  assert.match(refused.error, /needs at least \d+ steps: /, refused.error);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a post asking for a digit gets guided samples; its digit control lists the model\'s classes', async () => {
  const page = await hostPage(
    widgetPage(`
      <score-field id="seven" label="7" guidance="3" batch="2" steps="5" seed="4" controls="run,label"></score-field>
      <score-field id="any" batch="2" steps="5" seed="4"></score-field>`),
    `${server.url}guided.html`,
  );
  await waitStates(page, 'score-field', ['ready']);
  const control = await page.$eval('#seven', (w) => {
    const select = w.shadowRoot.querySelector('select[name=label]');
    return { value: select.value, options: [...select.options].map((o) => o.textContent), hidden: select.closest('label').hidden, notice: w.shadowRoot.querySelector('.notice').textContent, sampler: w.shadowRoot.querySelector('select[name=sampler]').value };
  });
  const { defaults } = await page.evaluate(async () => new (await import('/client.js')).RemoteModel('/models/mnist.json').load());
  // No sampler attribute: a guided widget starts on the library's sampler for guided runs.
  assert.equal(control.sampler, defaults.guided.sampler);
  assert.equal(control.notice, '');
  assert.equal(control.hidden, false);
  assert.deepEqual(control.options, ['any', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'each in turn']);
  assert.equal(control.value, '7');
  const [guided, plain] = await Promise.all([page.$eval('#seven', (w) => w.run()), page.$eval('#any', (w) => w.run())]);
  assert.deepEqual(guided.shape, [2, 1, 28, 28]);
  assert.ok(Array.from(guided.data).every(Number.isFinite));
  // Same seed and steps; the guided one on its own sampler, with guidance.
  const diff = Math.max(...Array.from(guided.data, (v, i) => Math.abs(v - plain.data[i])));
  assert.ok(diff > 0.05, `label="7" changed nothing (max difference ${diff})`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('interpolate mode draws two digits and morphs one into the other through the prior; its batch control stays hidden', async () => {
  const page = await hostPage(widgetPage('<score-field id="morph" mode="interpolate" seed="6" controls="run,seed,batch"></score-field>'), `${server.url}morph.html`);
  await waitStates(page, 'score-field', ['ready']);
  assert.equal(await page.$eval('#morph', (w) => w.shadowRoot.querySelector('input[name=batch]').closest('label').hidden), true);
  const out = await page.$eval('#morph', async (w) => {
    const r = await w.run();
    return { shape: r.shape, rms: r.reconstructionRms, status: w.shadowRoot.querySelector('.status').textContent, state: w.state };
  });
  assert.deepEqual(out.shape, [9, 1, 28, 28]);
  assert.equal(out.state, 'done');
  assert.ok(out.rms.every((r) => r < 0.01), JSON.stringify(out));
  assert.match(out.status, /encoded and decoded \(RMS error 0\.0\d+, 0\.0\d+\)/);
  assert.ok((await canvasStd(page, '#morph')) > 5, 'the path is blank');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("the host page's CSS does not reach inside the widget", async () => {
  const hostile = '<style>* { box-sizing: content-box; font: 40px serif; } button { display: none; } canvas { width: 5px !important; } .root, .error { display: none; }</style>';
  const page = await hostPage(widgetPage('<p>Some text.</p><score-field width="300" sampler="dpmpp-2m" steps="5" batch="4"></score-field>', hostile), `${server.url}hostile.html`);
  await waitStates(page, 'score-field', ['ready']);
  const layout = await page.$eval('score-field', (w) => {
    const root = w.shadowRoot.querySelector('.root');
    const button = w.shadowRoot.querySelector('button[type=submit]');
    const canvas = w.shadowRoot.querySelector('canvas.output');
    return {
      rootWidth: root.getBoundingClientRect().width,
      rootDisplay: getComputedStyle(root).display,
      buttonFont: getComputedStyle(button).fontSize,
      buttonFamily: getComputedStyle(button).fontFamily,
      buttonVisible: button.getBoundingClientRect().width > 0,
      canvasWidth: canvas.getBoundingClientRect().width,
      pageFont: getComputedStyle(document.querySelector('p')).fontSize,
    };
  });
  assert.equal(layout.pageFont, '40px', 'the hostile CSS did not apply to the page itself');
  assert.equal(layout.rootWidth, 300);
  assert.equal(layout.rootDisplay, 'block');
  assert.equal(layout.buttonFont, '13px');
  assert.doesNotMatch(layout.buttonFamily, /^serif$/);
  assert.ok(layout.buttonVisible);
  assert.ok(layout.canvasWidth > 200, `canvas is ${layout.canvasWidth}px wide`);
  await page.$eval('score-field', (w) => w.shadowRoot.querySelector('button[type=submit]').click());
  const [state] = await waitStates(page, 'score-field', ['done']);
  assert.equal(state.error, '');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-hostile-css.png') });
  await page.close();
});

test('a widget loads only when scrolled into view', async () => {
  const page = await hostPage(widgetPage('<div style="height: 6000px"></div><score-field sampler="dpmpp-2m" steps="5" batch="1"></score-field>'), `${server.url}lazy.html`);
  await page.waitForTimeout(1500);
  assert.equal(await page.$eval('score-field', (w) => w.state), 'idle');
  await page.$eval('score-field', (w) => w.scrollIntoView());
  const [state] = await waitStates(page, 'score-field', ['ready']);
  assert.equal(state.state, 'ready');
  await page.close();
});

test('the widget works on a page of another origin (module, worker, wasm and model over CORS)', async () => {
  // A second server on another port is another origin: the post lives there, the widget here.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-host-'));
  const widgetUrl = `${server.url}score-field.js`;
  writeFileSync(path.join(dir, 'post.html'), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="${widgetUrl}"></script><score-field sampler="dpmpp-2m" steps="5" batch="2" autoplay></score-field>`);
  const host = await serve([], dir);
  try {
    const page = await openPage(browser, `${host.url}post.html`);
    const [state] = await waitStates(page, 'score-field', ['done']);
    assert.equal(state.error, '');
    assert.equal(state.state, 'done');
    assert.notEqual(new URL(page.url()).origin, new URL(widgetUrl).origin);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the widget fetches only its own folder and the model its attributes name, and shows card text as text', async () => {
  // A model from a third origin whose card carries markup in every text field.
  const models = mkdtempSync(path.join(os.tmpdir(), 'scorefield-hostile-'));
  const card = JSON.parse(readFileSync(path.join(ROOT, 'www/models/mnist.json'), 'utf8'));
  const markup = '<img src=x onerror="window.pwned = 1"><script>window.pwned = 2</script>';
  writeFileSync(path.join(models, 'hostile.json'), JSON.stringify({ ...card, name: markup, weights: 'hostile.safetensors', dataset: markup }));
  writeFileSync(path.join(models, 'hostile.safetensors'), readFileSync(path.join(ROOT, 'www/models/mnist.safetensors')));
  // The classifier the card names (fetched beside it: its card at load, its weights for a guided run).
  // And the guide model (fetched with the model: its card and weights).
  for (const f of ['mnist-classifier.json', 'mnist-classifier.safetensors', 'mnist-guide.json', 'mnist-guide.safetensors']) writeFileSync(path.join(models, f), readFileSync(path.join(ROOT, 'www/models', f)));
  const modelHost = await serve(['Access-Control-Allow-Origin: *'], models);
  const host = mkdtempSync(path.join(os.tmpdir(), 'scorefield-host-'));
  writeFileSync(
    path.join(host, 'post.html'),
    `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="${server.url}score-field.js"></script><score-field model="${modelHost.url}hostile.json" sampler="dpmpp-2m" steps="5" batch="1" autoplay></score-field>`,
  );
  const site = await serve([], host);
  try {
    const page = await browser.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    await page.goto(`${site.url}post.html`);
    const [state] = await waitStates(page, 'score-field', ['done']);
    assert.deepEqual(state, { state: 'done', error: '' });
    const shown = await page.$eval('score-field', (w) => ({
      status: w.shadowRoot.querySelector('.status')?.textContent ?? w.shadowRoot.textContent,
      elements: w.shadowRoot.querySelectorAll('img, script').length,
    }));
    assert.ok(shown.status.includes('<img src=x'), `the card name is shown as text: ${shown.status}`);
    assert.equal(shown.elements, 0, 'no element was made from card text');
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    const allowed = [`${site.url}post.html`, `${modelHost.url}hostile.json`, `${modelHost.url}hostile.safetensors`, `${modelHost.url}${card.classifier}`, `${modelHost.url}${card.guide}`, `${modelHost.url}mnist-guide.safetensors`];
    const strangers = requests.filter((u) => !allowed.includes(u) && !u.startsWith(server.url) && !u.startsWith('blob:') && !u.startsWith('data:'));
    assert.deepEqual(strangers, [], 'requests outside the page, the widget folder and the named model');
    assert.ok(requests.some((u) => u.startsWith(`${server.url}pkg/`)), `the wasm came from the widget's folder: ${requests.join(', ')}`);
    console.log(`requests: ${requests.length} (${[...new Set(requests.map((u) => new URL(u).origin))].join(', ')})`);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    site.close();
    modelHost.close();
    rmSync(host, { recursive: true, force: true });
    rmSync(models, { recursive: true, force: true });
  }
});

test('after a GPU device loss the widget offers Retry, which starts a new device and keeps the painted digit', async () => {
  // Inpaint mode on WebGPU: a source digit with its bottom half masked; then the device under the
  // (shared) worker is destroyed, as a driver reset would.
  const page = await hostPage(widgetPage('<score-field mode="inpaint" backend="webgpu" sampler="dpmpp-2m" steps="5" batch="1" seed="4"></score-field>'), `${server.url}lost.html`);
  await waitStates(page, 'score-field', ['ready']);
  const before = await page.evaluate(async () => {
    const { RemoteModel } = await import('/client.js');
    const w = document.querySelector('score-field');
    await new RemoteModel(new URL('/models/mnist.json', location.href).href, 'webgpu').destroyDevice();
    return { source: w.shadowRoot.querySelector('canvas.source').toDataURL() };
  });
  await page.$eval('score-field', (w) => w.run());
  const failed = await page.$eval('score-field', (w) => ({
    state: w.getAttribute('state'),
    error: w.shadowRoot.querySelector('.error').textContent,
    retry: Boolean(w.shadowRoot.querySelector('.error button')),
  }));
  assert.equal(failed.state, 'error');
  assert.match(failed.error, /GPU device was lost/);
  assert.ok(failed.retry, 'no Retry button');
  const kept = await page.$eval('score-field', (w) => w.shadowRoot.querySelector('canvas.source').toDataURL());
  assert.equal(kept, before.source, 'the source digit and its mask are untouched');
  await page.$eval('score-field', (w) => w.shadowRoot.querySelector('.error button').click());
  const [state] = await waitStates(page, 'score-field', ['done']);
  assert.deepEqual(state, { state: 'done', error: '' });
  assert.deepEqual(await page.$eval('score-field', (w) => w.result.shape), [1, 1, 28, 28]);
  await page.close();
});

test('field mode: annealed Langevin recovers the two modes\' weights, Langevin at one σ does not; a drawing becomes a distribution; bad attributes are named', async () => {
  const page = await hostPage(
    widgetPage(`
      <score-field id="ald" mode="field" sampler="ald" particles="2000" seed="3" width="360"></score-field>
      <score-field id="langevin" mode="field" sampler="langevin" particles="2000" seed="3"></score-field>
      <score-field id="bad" mode="field" distribution="nonsense" sampler="edm-heun" sde="xx" particles="99999999" sigma="-1" seed="x" width="10" backend="gpu" controls="run,fly"></score-field>
      <score-field id="draw" mode="field" distribution="draw" sampler="em" particles="300" seed="2"></score-field>`),
    `${server.url}field.html`,
  );
  for (const w of await page.$$('score-field')) await w.scrollIntoViewIfNeeded();
  const states = await waitStates(page, 'score-field', ['ready']);
  assert.deepEqual(states, Array(4).fill({ state: 'ready', error: '' }), JSON.stringify(states));

  // Song & Ermon 2019, figure 3: true weights 1/5 and 4/5. Annealed Langevin lands within 0.05
  // of them; Langevin at σ = 0.01 keeps the near half/half split of its uniform start.
  const ald = await page.$eval('#ald', (w) => w.run());
  const langevin = await page.$eval('#langevin', (w) => w.run());
  assert.deepEqual(ald.weights, [0.2, 0.8]);
  assert.ok(Math.abs(ald.shares[1] - 0.8) < 0.05, `annealed Langevin: ${ald.shares}`);
  assert.ok(Math.abs(langevin.shares[1] - 0.8) > 0.15, `Langevin at one σ: ${langevin.shares}`);
  assert.equal(ald.count, 2000);
  const readout = await page.$eval('#ald', (w) => w.shadowRoot.querySelector('.readout').textContent);
  assert.match(readout, /particles per mode: \d+% \(weight 20%\) · \d+% \(weight 80%\)/);
  // The figure is drawn: the heat map, arrows and particles vary across the canvas, and so does
  // the time picture under it.
  assert.ok((await canvasStd(page, '#ald')) > 20);
  const timeStd = await page.$eval('#ald', (w) => {
    const c = w.shadowRoot.querySelector('canvas.time-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { s += d[i + 1]; s2 += d[i + 1] ** 2; n++; }
    return Math.sqrt(s2 / n - (s / n) ** 2);
  });
  assert.ok(timeStd > 20, `the time picture is flat (std ${timeStd})`);
  // The forward SDE takes the same widget's data to the VE prior N(0, 50² I).
  const forward = await page.$eval('#langevin', (w) => {
    const select = w.shadowRoot.querySelector('select[name=sampler]');
    select.value = 'forward';
    return w.run();
  });
  assert.equal(forward.shares, null);
  const spread = Math.sqrt(forward.positions.reduce((a, v) => a + v * v, 0) / forward.positions.length);
  assert.ok(spread > 40 && spread < 60, `forward particles at t = 1 have rms ${spread}, not ≈ 50`);

  // Every bad attribute is named in the box, and the widget runs at the defaults.
  const notice = await page.$eval('#bad', (w) => w.shadowRoot.querySelector('.notice').textContent);
  for (const part of ['distribution="nonsense"', 'sampler="edm-heun"', 'sde="xx"', 'particles="99999999"', 'sigma="-1"', 'seed="x"', 'width="10"', 'backend="gpu"', 'controls="run,fly"']) {
    assert.ok(notice.includes(part), `the notice does not name ${part}: ${notice}`);
  }
  const fallback = await page.$eval('#bad', (w) => w.run());
  assert.equal(fallback.count, 1000);

  // An empty drawing is refused with a message; a stroke across the canvas at y = +4 becomes the
  // distribution, and the reverse SDE's particles end on it.
  assert.equal(await page.$eval('#draw', (w) => w.run()), null);
  assert.match(await page.$eval('#draw', (w) => w.shadowRoot.querySelector('.error').textContent), /drawing is empty/);
  await page.locator('#draw canvas.output').scrollIntoViewIfNeeded();
  const box = await page.locator('#draw canvas.output').boundingBox();
  const at = (x, y) => [box.x + ((x + 8) / 16) * box.width, box.y + ((8 - y) / 16) * box.height];
  await page.mouse.move(...at(-6, 4));
  await page.mouse.down();
  for (let x = -6; x <= 6; x += 0.5) await page.mouse.move(...at(x, 4));
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('#draw').shadowRoot.querySelector('.status').textContent.includes('your drawing'));
  const drawn = await page.$eval('#draw', async (w) => {
    const result = await w.run();
    return { result, error: w.shadowRoot.querySelector('.error').textContent };
  });
  assert.equal(drawn.error, '');
  assert.equal(drawn.result.count, 300);
  assert.equal(drawn.result.shares, null, 'a drawing has no modes to count');
  // The particles' last positions lie along the stroke: mean y ≈ 4, x spread over [−6, 6].
  const xs = drawn.result.positions.filter((_, i) => i % 2 === 0);
  const ys = drawn.result.positions.filter((_, i) => i % 2 === 1);
  const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  assert.ok(Math.abs(mean(ys) - 4) < 0.3, `mean y ${mean(ys)}`);
  assert.ok(Math.abs(mean(xs)) < 1 && Math.min(...xs) < -4 && Math.max(...xs) > 4, `x from ${Math.min(...xs)} to ${Math.max(...xs)}`);
  // The screenshot once the drawing's run has played to its end.
  await page.waitForFunction(() => document.querySelector('#draw').shadowRoot.querySelector('.row button').textContent === 'Play');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-field.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('field mode: a score network trained in the page is right near its samples and wrong far from them; pause, reset, and sampling with it', async () => {
  const page = await hostPage(widgetPage('<score-field id="learn" mode="field" sigma="0.5" seed="1"></score-field>'), `${server.url}learn.html`);
  await waitStates(page, 'score-field', ['ready']);
  const click = (label) => page.$eval('#learn', (w, text) => [...w.shadowRoot.querySelectorAll('.learn button')].find((b) => b.textContent === text).click(), label);
  await click('Learn the score');
  // The same bounds as tests/field.rs at σ = 0.5, 1,500 steps of denoising score matching on 256
  // samples: under 35 % error where p_σ ≥ 10 % of its peak, over 4 × that where p_σ < 0.1 %.
  await page.waitForFunction(() => (document.querySelector('#learn').learning?.comparedAt ?? 0) >= 1500, null, { timeout: 300_000 });
  await click('Pause');
  const learned = await page.$eval('#learn', (w) => w.learning);
  assert.ok(Math.abs(learned.sigma - 0.5) < 0.05, `compared at σ = ${learned.sigma}`);
  assert.ok(learned.denseError < 0.35, `error near the data ${learned.denseError}`);
  assert.ok(learned.sparseAbsError > 4 * learned.denseAbsError, `error far from the data ${learned.sparseAbsError} vs ${learned.denseAbsError}`);
  // Paused: no more steps.
  const paused = learned.step;
  await page.waitForTimeout(1000);
  const after = await page.$eval('#learn', (w) => w.learning);
  assert.ok(!after.training && after.step <= paused + 25, `${paused} → ${after.step}`);
  // Resume, Pause, Resume in quick succession: one loop goes on, with no error.
  await click('Resume');
  await click('Pause');
  await click('Resume');
  await page.waitForFunction((from) => document.querySelector('#learn').learning.step >= from + 100, after.step, { timeout: 120_000 });
  await click('Pause');
  assert.equal(await page.$eval('#learn', (w) => w.shadowRoot.querySelector('.error').textContent), '');
  // The learned field and its error map are drawn beside the true one, and so is the loss curve.
  const figures = await page.$eval('#learn', (w) => {
    const std = (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = 0, s2 = 0, n = 0;
      for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
      return Math.sqrt(s2 / n - (s / n) ** 2);
    };
    const r = w.shadowRoot;
    return {
      shown: !r.querySelector('.beside').hidden,
      learned: std(r.querySelector('canvas.learned-canvas')),
      error: std(r.querySelector('canvas.error-canvas')),
      loss: std(r.querySelector('canvas.loss-canvas')),
      caption: r.querySelector('.beside figcaption').textContent,
    };
  });
  assert.ok(figures.shown && figures.learned > 10 && figures.error > 10 && figures.loss > 5, JSON.stringify(figures));
  assert.match(figures.caption, /learned score after \d+ steps \(σ = 0\.5/);
  // Annealed Langevin with the learned score: a different run from the exact score's with the
  // same seed, whose particles still end in the modes, both populated, the heavy one heavier. (Its
  // split depends on how far training got, which depends on the clock: 256 samples put about 51
  // in the light mode, and the learned weights are only as good as that.)
  const exact = await page.$eval('#learn', (w) => w.run());
  const run = await page.$eval('#learn', (w) => {
    w.shadowRoot.querySelector('input[name=use-learned]').checked = true;
    return w.run();
  });
  assert.notDeepEqual(run.positions, exact.positions, 'the learned score was not used');
  let inModes = 0;
  for (let i = 0; i < run.positions.length; i += 2) {
    const [x, y] = [run.positions[i], run.positions[i + 1]];
    if (Math.min(Math.hypot(x - 5, y - 5), Math.hypot(x + 5, y + 5)) < 3) inModes++;
  }
  assert.ok(inModes >= 0.9 * run.count, `${inModes} of ${run.count} particles in the modes`);
  assert.ok(run.shares[0] > 0.05 && run.shares[1] > run.shares[0], `learned-score ALD shares ${run.shares}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-field-learned.png'), fullPage: true });
  await click('Reset');
  assert.equal(await page.$eval('#learn', (w) => w.learning), null);
  assert.equal(await page.$eval('#learn', (w) => w.shadowRoot.querySelector('.beside').hidden), true, 'Reset hides the learned figures');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('field mode respects prefers-reduced-motion (no playback, the last frame shown) and steps frames with the keyboard', async () => {
  const page = await hostPage(widgetPage('<score-field id="calm" mode="field" sampler="em" particles="100" seed="1"></score-field>'), `${server.url}calm.html`);
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await waitStates(page, 'score-field', ['ready']);
  const run = await page.$eval('#calm', (w) => w.run());
  const frame = () => page.$eval('#calm', (w) => ({ value: Number(w.shadowRoot.querySelector('.row input[type=range][aria-label="frame of the run"]').value), play: w.shadowRoot.querySelector('.row button').textContent }));
  // No animation started: the scrub sits on the last frame and the button offers Play.
  assert.deepEqual(await frame(), { value: run.frames - 1, play: 'Play' });
  await page.waitForTimeout(500);
  assert.equal(await page.$eval('#calm', (w) => w.playback), null, 'a run played under reduced motion');
  // ← and → step through the recorded frames from the focused figure.
  await page.locator('#calm canvas.output').focus();
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  assert.equal((await frame()).value, run.frames - 3);
  await page.keyboard.press('ArrowRight');
  assert.equal((await frame()).value, run.frames - 2);
  assert.deepEqual(page.errors, []);
  await page.close();
});
