// The second model, 32×32 colour emoji (www/models/emoji.json), on the page and in the widget, in
// Chromium on the CPU and on WebGPU (SwiftShader here: seconds per evaluation, so batches of two
// and five steps there). What is checked is the plumbing of a 3-channel model, not its samples'
// quality: the batch has its shape and colour (its channels differ), the canvases show colour,
// an inpainting keeps every channel of the unmasked pixels exactly, the words come from the card,
// and the MNIST page never fetches an emoji file.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { canvasColour, channelSpread, inpaintingChanges } from './colour.mjs';
import { ARTIFACTS, ROOT, launch, serve } from './harness.mjs';

const RUN_TIMEOUT = 300_000;
// What the emoji card names besides its weights: a classifier's classes and reference
// likelihoods, each of which the page and the widget show when the card names it and do without.
const MODELS = path.join(ROOT, 'www', 'models');
const readJson = (file) => JSON.parse(readFileSync(path.join(MODELS, file), 'utf8'));
const EMOJI = readJson('emoji.json');
const CLASSES = EMOJI.classifier ? readJson(EMOJI.classifier).architecture.classes : null;
// The fewest DPM-Solver++(2M) steps the card lets the page and the widget run (the quickest run
// the tests can ask of them).
const DPM_STEPS = EMOJI.sampling.steps['dpmpp-2m'].min;
const REFERENCES = EMOJI.likelihood_references && existsSync(path.join(MODELS, EMOJI.likelihood_references)) ? readJson(EMOJI.likelihood_references) : null;
let server;
let cpu;
let gpu;
before(async () => {
  server = await serve();
  cpu = await launch({ webgpu: false });
});
after(async () => {
  await cpu?.close();
  await gpu?.close();
  server?.close();
});

/** A page in a context of its own whose every request (the workers' too) is logged in `requests`. */
async function open(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
  const page = await context.newPage();
  page.requests = [];
  page.errors = [];
  context.on('request', (r) => page.requests.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await page.goto(url);
  page.done = () => context.close();
  return page;
}

/** Waits until the page's model has loaded (the badge names its device) or the page shows an error. */
async function loaded(page) {
  await page.waitForFunction(() => document.getElementById('badge').dataset.backend || !document.getElementById('error').hidden, null, { timeout: 120_000 });
  assert.equal(await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent)), '', 'the page shows an error');
}

/** Sets the page's controls as a reader would (the sampler first: it resets the steps). */
async function setControls(page, controls) {
  for (const [id, value] of Object.entries(controls)) {
    if (id === 'sampler') await page.selectOption('#sampler', value);
    else await page.fill(`#${id}`, String(value));
  }
}

/** Clicks `button` and waits for the page's `key` (window.scorefield) or its error. */
async function runAndWait(page, button, key) {
  await page.evaluate((k) => { window.scorefield[k] = null; }, key);
  await page.click(button);
  await page.waitForFunction((k) => window.scorefield[k] || !document.getElementById('error').hidden, key, { timeout: RUN_TIMEOUT });
  assert.equal(await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent)), '', `the page showed an error after ${button}`);
}

/** Generate on the emoji model at `batch`, then the first sample's lower half inpainted at
 * `inpaintBatch`: checks shape, colour, the canvases and the kept pixels. */
async function generateAndInpaint(page, { batch, inpaintBatch, name }) {
  await setControls(page, { sampler: 'dpmpp-2m', steps: DPM_STEPS, batch, seed: 4 });
  await runAndWait(page, '#generate', 'lastResult');
  const samples = await page.evaluate(() => ({ shape: window.scorefield.lastResult.shape, data: Array.from(window.scorefield.lastResult.data) }));
  assert.deepEqual(samples.shape, [batch, 3, 32, 32]);
  assert.ok(samples.data.every(Number.isFinite), 'the samples contain NaN or ±∞');
  // Coloured images: on average a pixel's channels differ by a few per cent of the range (a grey
  // image's by 0); every image has some colour.
  const spread = channelSpread(samples.data, samples.shape);
  assert.ok(spread.every((s) => s > 0.01), `grey images among the samples: channel spread ${spread.map((s) => s.toFixed(3))}`);
  assert.match(await page.$eval('#status', (s) => s.textContent), new RegExp(`^done: ${batch} emoji by dpmpp-2m`));
  const grid = await page.evaluate(canvasColour, [null, '#grid']);
  assert.ok(grid.coloured > 0.05, `the grid is drawn in grey (${(100 * grid.coloured).toFixed(1)} % coloured pixels)`);

  // The first sample is the source (a click on it), the lower half is masked; then Inpaint.
  const box = await page.$eval('#grid', (c) => { c.scrollIntoView({ block: 'center' }); const r = c.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  const cols = Math.ceil(Math.sqrt(batch));
  await page.mouse.click(box.x + (box.w / cols) * 0.5, box.y + (box.h / Math.ceil(batch / cols)) * 0.5);
  await page.click('button[data-region="bottom"]');
  const source = await page.evaluate(canvasColour, [null, '#source']);
  assert.ok(source.coloured > 0.05, `the painter shows the source in grey (${(100 * source.coloured).toFixed(1)} %)`);
  await setControls(page, { batch: inpaintBatch });
  await runAndWait(page, '#inpaint', 'lastInpaint');
  const out = await page.evaluate(() => {
    const r = window.scorefield.lastInpaint;
    return { shape: r.shape, data: Array.from(r.data), image: Array.from(r.image), keep: Array.from(r.keep) };
  });
  assert.deepEqual(out.shape, [inpaintBatch, 3, 32, 32]);
  // The source is the clicked sample as the grid shows it (clamped to [0, 1]).
  const off = Math.max(...out.image.map((v, i) => Math.abs(v - Math.min(1, Math.max(0, samples.data[i])))));
  assert.ok(off < 1e-6, `the clicked sample is not the source (max difference ${off})`);
  // The mask covers every channel of the lower half and nothing else.
  const n = 32 * 32;
  for (let c = 0; c < 3; c++) {
    const plane = out.keep.slice(c * n, (c + 1) * n);
    assert.equal(plane.filter((k, p) => k !== (p < n / 2 ? 1 : 0)).length, 0, `channel ${c}'s mask is not the lower half`);
  }
  const { kept, regenerated } = inpaintingChanges(out);
  assert.equal(kept, 0, `${kept} kept values differ from the source`);
  assert.ok(Math.min(...regenerated) > 50, `masked values changed per channel: ${regenerated}`);
  const inpainted = await page.evaluate(canvasColour, [null, '#inpainted']);
  assert.ok(inpainted.coloured > 0.05, 'the completions are drawn in grey');
  await page.screenshot({ path: path.join(ARTIFACTS, `emoji-page-${name}.png`), fullPage: true });
}

test('the MNIST page fetches no emoji file; picking emoji loads it: 16 coloured 3×32×32 images, an inpainting that keeps the unmasked pixels exactly, the card\'s words and credit', async () => {
  const page = await open(cpu, `${server.url}?backend=cpu`);
  await loaded(page);
  assert.equal(await page.$eval('#model', (s) => s.value), 'models/mnist.json');
  assert.equal(await page.$eval('#likelihood-title', (h) => h.textContent), 'How likely is this digit?');
  // The page at rest: its model, its likelihood references and the field's explainer loaded.
  await page.waitForFunction(() => window.scorefield.references, null, { timeout: 60_000 });
  await page.waitForTimeout(1000);
  const mnistFiles = page.requests.filter((p) => p.startsWith('/models/'));
  assert.ok(mnistFiles.includes('/models/mnist.safetensors'), `the page fetched its model: ${mnistFiles}`);
  assert.deepEqual(page.requests.filter((p) => /emoji/.test(p)), [], 'the MNIST page fetched emoji files');

  await page.selectOption('#model', 'models/emoji.json');
  await loaded(page);
  assert.ok(page.requests.includes('/models/emoji.safetensors'), 'picking emoji fetched its weights');
  const words = await page.evaluate(() => {
    const main = document.querySelector('main').cloneNode(true);
    // The sampler's step hint quotes the library's reasons for its step floors (src/sampling/defaults.rs).
    main.querySelector('#steps-hint').remove();
    return {
      address: new URL(location.href).searchParams.get('model'),
      likelihood: document.getElementById('likelihood-title').textContent,
      interpolate: document.getElementById('interpolate-title').textContent,
      pair: document.getElementById('interp-new').textContent,
      credit: document.getElementById('credit').textContent,
      classes: document.getElementById('class-label').hidden ? null : [...document.querySelectorAll('#class option')].map((o) => o.textContent),
      classLabel: document.getElementById('class-label').firstElementChild.textContent,
      digit: main.textContent.match(/[^.]*digit[^.]*/i)?.[0] ?? null,
    };
  });
  assert.deepEqual(words, {
    address: 'models/emoji.json',
    likelihood: 'How likely is this emoji?',
    interpolate: 'From one emoji to another',
    pair: 'Two new emoji',
    credit: words.credit,
    classes: CLASSES && ['any', ...CLASSES, 'each in turn'],
    classLabel: 'Emoji',
    digit: null,
  });
  assert.match(words.credit, /Twemoji \(CC-BY 4\.0.*Noto Emoji \(Apache-2\.0/);
  assert.deepEqual(await page.evaluate(() => window.scorefield.painter.shape), [1, 3, 32, 32]);
  await generateAndInpaint(page, { batch: 16, inpaintBatch: 4, name: 'cpu' });
  // The likelihood section offers the card's reference images, when it names them.
  await page.waitForFunction((n) => document.querySelectorAll('#lik-references button').length === n, REFERENCES?.images.length ?? 0, { timeout: 60_000 });
  if (CLASSES) {
    // Guided by the emoji classifier: a class chosen switches to the guided sampler (5 steps here).
    await page.selectOption('#class', '0');
    assert.match(await page.$eval('#class-hint', (h) => h.textContent), /w·∇ log p\(emoji \| x\)/);
    await setControls(page, { steps: EMOJI.sampling.steps[EMOJI.sampling.guided.sampler].min, batch: 2 });
    await runAndWait(page, '#generate', 'lastResult');
    const guided = await page.evaluate(() => ({ shape: window.scorefield.lastResult.shape, finite: Array.from(window.scorefield.lastResult.data).every(Number.isFinite) }));
    assert.deepEqual(guided, { shape: [2, 3, 32, 32], finite: true });
  }

  // And back: the digits again, in their own shape.
  await page.selectOption('#model', 'models/mnist.json');
  await loaded(page);
  assert.equal(await page.$eval('#likelihood-title', (h) => h.textContent), 'How likely is this digit?');
  assert.deepEqual(await page.evaluate(() => window.scorefield.painter.shape), [1, 1, 28, 28]);
  assert.deepEqual(page.errors, []);
  await page.done();
});

test('?model=models/emoji.json picks emoji in the picker; on WebGPU it generates and inpaints in colour', async () => {
  gpu = await launch({ webgpu: true });
  const page = await open(gpu, `${server.url}?backend=webgpu&model=models/emoji.json`);
  await loaded(page);
  assert.equal(await page.$eval('#badge', (b) => b.dataset.backend), 'webgpu');
  // The page's own emoji entry is picked (no second entry made for the address's URL).
  const picker = await page.$eval('#model', (s) => ({ value: s.value, picked: s.selectedIndex, entries: [...s.options].map((o) => o.textContent) }));
  assert.deepEqual(picker, { value: 'models/emoji.json', picked: 2, entries: ['MNIST digits', 'MNIST digits, instant (consistency)', 'emoji'] });
  assert.ok(!page.requests.some((p) => p.startsWith('/models/mnist')), 'the emoji page fetched the MNIST model');
  await generateAndInpaint(page, { batch: 2, inpaintBatch: 2, name: 'webgpu' });
  assert.deepEqual(page.errors, []);
  await page.done();
});

/** A page at `name` on the test server with `body` under the widget's module script. */
async function widgetPage(body, name) {
  const context = await cpu.newContext({ viewport: { width: 1000, height: 1400 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  const url = `${server.url}${name}`;
  await page.route(url, (route) => route.fulfill({ contentType: 'text/html', body: `<!doctype html><html><head><meta charset="utf-8"><script type="module" src="/score-field.js"></script></head><body>${body}</body></html>` }));
  await page.goto(url);
  page.done = () => context.close();
  return page;
}

/** Waits until every widget is in one of `states` (or in error, which fails). */
async function widgetsIn(page, states) {
  await page.waitForFunction((ok) => [...document.querySelectorAll('score-field')].every((w) => {
    if (w.state === 'idle') w.scrollIntoView();
    return ok.includes(w.state) || w.state === 'error';
  }), states, { timeout: RUN_TIMEOUT, polling: 250 });
  const errors = await page.$$eval('score-field', (ws) => ws.map((w) => w.shadowRoot.querySelector('.error').textContent).filter(Boolean));
  assert.deepEqual(errors, [], 'a widget shows an error');
}

test('<score-field model="models/emoji.json"> generates coloured emoji and inpaints them, keeping the unmasked pixels of its source exactly; its words are the card\'s', async () => {
  const page = await widgetPage(`
    <score-field id="gen" model="models/emoji.json" backend="cpu" mode="generate" sampler="dpmpp-2m" steps="${DPM_STEPS}" batch="4" seed="1"></score-field>
    <score-field id="fill" model="models/emoji.json" backend="cpu" mode="inpaint" sampler="dpmpp-2m" steps="${DPM_STEPS}" batch="2" seed="2"></score-field>`, 'emoji-widgets.html');
  await widgetsIn(page, ['ready']);
  const generated = await page.$eval('#gen', async (w) => {
    const r = await w.run();
    return { shape: r.shape, data: Array.from(r.data), status: w.shadowRoot.querySelector('.status').textContent };
  });
  assert.deepEqual(generated.shape, [4, 3, 32, 32]);
  const spread = channelSpread(generated.data, generated.shape);
  assert.ok(spread.every((s) => s > 0.01), `grey samples: ${spread}`);
  // The card's words, and its cost: DPM_STEPS evaluations of the model, and with the card's guide
  // also some of the guide's (those above the autoguidance interval's end).
  const evals = Number(generated.status.match(/^emoji: 4 emoji, (\d+) score evaluations/)?.[1]);
  assert.ok(EMOJI.guide ? evals > DPM_STEPS && evals < 2 * DPM_STEPS : evals === DPM_STEPS, generated.status);
  assert.ok((await page.evaluate(canvasColour, ['#gen', 'canvas.output'])).coloured > 0.05, 'the generate widget draws in grey');

  // The inpaint widget's source is its New emoji (one sample at seed + 1000) with the lower half masked.
  const words = await page.$eval('#fill', (w) => ({
    button: [...w.shadowRoot.querySelectorAll('button')].map((b) => b.textContent).find((t) => t.startsWith('New ')),
    source: w.shadowRoot.querySelector('canvas.source').getAttribute('aria-label'),
  }));
  assert.deepEqual(words, { button: 'New emoji', source: 'the emoji to complete; paint over the part to regenerate' });
  assert.ok((await page.evaluate(canvasColour, ['#fill', 'canvas.source'])).coloured > 0.05, 'the painter draws the source in grey');
  const filled = await page.$eval('#fill', async (w, steps) => {
    const { RemoteModel } = await import('/client.js');
    const source = await new RemoteModel(new URL('models/emoji.json', location.href).href, 'cpu').generate({ sampler: 'dpmpp-2m', steps, batch: 1, seed: 2 + 1000 });
    const r = await w.run();
    return { shape: r.shape, data: Array.from(r.data), source: Array.from(source.data, (v) => Math.min(1, Math.max(0, v))) };
  }, DPM_STEPS);
  assert.deepEqual(filled.shape, [2, 3, 32, 32]);
  const n = 3 * 32 * 32;
  const keep = Array.from({ length: n }, (_, i) => (i % (32 * 32) < 16 * 32 ? 1 : 0));
  const { kept, regenerated } = inpaintingChanges({ shape: filled.shape, data: filled.data, image: filled.source, keep });
  assert.equal(kept, 0, `${kept} values of the kept upper half differ from the source`);
  assert.ok(Math.min(...regenerated) > 50, `masked values changed per channel: ${regenerated}`);
  assert.ok((await page.evaluate(canvasColour, ['#fill', 'canvas.output'])).coloured > 0.05, 'the completions are drawn in grey');
  await page.screenshot({ path: path.join(ARTIFACTS, 'emoji-widgets.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.done();
});

test('the trajectory, likelihood and interpolate modes run the emoji model in colour, with the card\'s words', async () => {
  const page = await widgetPage(`
    <score-field id="path" model="models/emoji.json" backend="cpu" mode="trajectory" sampler="dpmpp-2m" steps="${DPM_STEPS}" seed="3"></score-field>
    <score-field id="lik" model="models/emoji.json" backend="cpu" mode="likelihood"></score-field>
    <score-field id="morph" model="models/emoji.json" backend="cpu" mode="interpolate" sampler="dpmpp-2m" steps="${DPM_STEPS}" seed="6"></score-field>`, 'emoji-modes.html');
  await widgetsIn(page, ['ready']);
  const path_ = await page.$eval('#path', async (w) => {
    const r = await w.run();
    return { shape: r.shape, data: Array.from(r.data), frames: Number(w.shadowRoot.querySelector('input[type=range]').max) + 1 };
  });
  assert.deepEqual(path_.shape, [1, 3, 32, 32]);
  assert.ok(path_.frames >= 5, `${path_.frames} frames of x(t)`);
  assert.ok(channelSpread(path_.data, path_.shape)[0] > 0.01, 'the trajectory\'s sample is grey');
  // The likelihood starts from the card's first reference image, or from a blank image without any.
  const lik = await page.$eval('#lik', async (w) => {
    const r = await w.run();
    return { bits: r.bitsPerDim, references: w.shadowRoot.querySelectorAll('button[data-reference]').length, label: w.shadowRoot.querySelector('canvas.source').getAttribute('aria-label'), status: w.shadowRoot.querySelector('.status').textContent };
  });
  assert.ok(Number.isFinite(lik.bits) && lik.bits > 0, JSON.stringify(lik));
  assert.equal(lik.references, REFERENCES?.images.length ?? 0);
  assert.equal(lik.label, 'the emoji to measure; draw on it');
  const start = REFERENCES ? REFERENCES.images[0].label : 'a blank image';
  assert.ok(lik.status.startsWith(`${start}: `) && /: \d+\.\d{3} bits\/dim/.test(lik.status), lik.status);
  assert.ok((await page.evaluate(canvasColour, ['#lik', 'canvas.output'])).pixels > 0, 'no path to the prior was drawn');
  const morph = await page.$eval('#morph', async (w) => {
    const r = await w.run();
    return { shape: r.shape, data: Array.from(r.data), status: w.shadowRoot.querySelector('.status').textContent };
  });
  assert.equal(morph.shape.slice(1).join('×'), '3×32×32');
  assert.ok(channelSpread(morph.data, morph.shape).every((s) => s > 0.01), 'grey points on the path');
  assert.match(morph.status, /^first emoji → second through the prior; the ends are the emoji encoded and decoded/);
  assert.ok((await page.evaluate(canvasColour, ['#morph', 'canvas.output'])).coloured > 0.05, 'the path is drawn in grey');
  await page.screenshot({ path: path.join(ARTIFACTS, 'emoji-modes.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.done();
});

/** A stroke across the middle of the canvas `selector` (in the widget `host`'s Shadow DOM, or the page). */
async function strokeAcross(page, host, selector) {
  const box = await page.evaluate(([h, sel]) => {
    const c = (h ? document.querySelector(h).shadowRoot : document).querySelector(sel);
    c.scrollIntoView({ block: 'center' });
    const r = c.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  }, [host, selector]);
  await page.mouse.move(box.x + box.w * 0.25, box.y + box.h * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.w * 0.75, box.y + box.h * 0.5, { steps: 8 });
  await page.mouse.up();
}

/** The grey levels (0–255, the mean of R, G, B) of a canvas's pixels, as a plain array. */
function canvasGreys(page, host, selector) {
  return page.evaluate(([h, sel]) => {
    const c = (h ? document.querySelector(h).shadowRoot : document).querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return Array.from({ length: d.length / 4 }, (_, p) => (d[p * 4] + d[p * 4 + 1] + d[p * 4 + 2]) / 3);
  }, [host, selector]);
}

// The card's `image.background` is a blank canvas's value and ink the range's other end: the
// emoji's white background takes dark ink; MNIST's card names none, so black, with white ink.
for (const [name, blank, ink] of [['emoji', 1, 0], ['mnist', 0, 1]]) {
  test(`the ${name} painters: blank is ${blank ? 'white' : 'black'} (the card's background), ink is ${ink ? 'white' : 'dark'}, on the page and in the widget`, async () => {
    const page = await open(cpu, `${server.url}?backend=cpu&model=models/${name}.json`);
    await loaded(page);
    assert.equal(await page.evaluate(() => window.scorefield.model.info.card.image.background), name === 'emoji' ? 1 : undefined, 'the card passes its background through');
    const painters = () => page.evaluate(() => {
      const { painter, likelihoodPainter, interpolationPainters } = window.scorefield;
      return [painter, likelihoodPainter, ...interpolationPainters].map((p) => Array.from(p.image));
    });
    for (const image of await painters()) assert.ok(image.every((v) => v === blank), 'a new painter is blank');
    // A stroke on the likelihood section's drawing: its pixels go towards the ink, fully in its core.
    await strokeAcross(page, null, '#lik-source');
    const drawn = await page.evaluate(() => Array.from(window.scorefield.likelihoodPainter.image));
    const inked = drawn.filter((v) => v !== blank);
    assert.ok(inked.length > 20, `${inked.length} values inked`);
    assert.ok(inked.every((v) => (v - blank) * (ink - blank) > 0 && Math.abs(v - blank) <= 1), 'every inked value lies between the background and the ink');
    assert.ok(inked.some((v) => v === ink), 'the stroke\'s core is the ink');
    const greys = await canvasGreys(page, null, '#lik-source');
    const [dark, light] = [greys.filter((g) => g < 64).length, greys.filter((g) => g > 191).length];
    assert.ok(ink ? light > 0 && dark > light : dark > 0 && light > dark, `the canvas shows ${ink ? 'white ink on black' : 'dark ink on white'} (${dark} dark, ${light} light pixels)`);
    // Blank clears to the background; so does the inpainting section's Blank image.
    await page.click('#lik-clear');
    await page.click('#clear-image');
    const [inpainting, likelihood] = await painters();
    assert.ok(likelihood.every((v) => v === blank) && inpainting.every((v) => v === blank), 'Blank is the background');

    // The widget's likelihood mode: its Blank button and a stroke, on its canvas.
    const widget = await widgetPage(`<score-field id="lik" model="models/${name}.json" backend="cpu" mode="likelihood"></score-field>`, `${name}-ink.html`);
    await widgetsIn(widget, ['ready']);
    await widget.$eval('#lik', (w) => [...w.shadowRoot.querySelectorAll('button')].find((b) => b.textContent === 'Blank').click());
    const cleared = await canvasGreys(widget, '#lik', 'canvas.source');
    assert.ok(cleared.every((g) => g === blank * 255), `the widget's Blank is ${blank ? 'white' : 'black'}`);
    await strokeAcross(widget, '#lik', 'canvas.source');
    const stroked = await canvasGreys(widget, '#lik', 'canvas.source');
    assert.ok(stroked.filter((g) => Math.abs(g - ink * 255) < 64).length > 100, 'the widget\'s stroke is in the ink');
    assert.deepEqual([...page.errors, ...widget.errors], []);
    await widget.done();
    await page.done();
  });
}
