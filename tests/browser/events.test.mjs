// <score-field>'s events and methods as a host page uses them, in headless Chromium on the CPU,
// the widget served from dist/ as a blogger would copy it: `progress`, `done` and `error`
// CustomEvents heard on the document (they bubble out of the Shadow DOM), `run()`, `cancel()` and
// the read-only `result`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, serve } from './harness.mjs';

let server;
let browser;
let models;
let modelDir;
before(async () => {
  server = await serve([], path.join(ROOT, 'dist'));
  // A model whose weights file is cut in half (a broken upload), served beside the page's widget.
  modelDir = mkdtempSync(path.join(os.tmpdir(), 'scorefield-events-'));
  const card = JSON.parse(readFileSync(path.join(ROOT, 'www/models/mnist.json'), 'utf8'));
  const weights = readFileSync(path.join(ROOT, 'www/models/mnist.safetensors'));
  writeFileSync(path.join(modelDir, 'truncated.json'), JSON.stringify({ ...card, weights: 'truncated.safetensors', guide: undefined, classifier: undefined, likelihood_references: undefined }));
  writeFileSync(path.join(modelDir, 'truncated.safetensors'), weights.subarray(0, weights.length >> 1));
  models = await serve(['Access-Control-Allow-Origin: *'], modelDir);
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  server?.close();
  models?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

/** A host page of `body`, with every progress, done and error event that reaches the document
 * recorded in `window.heard` from the very start: {type, id, bubbles, composed, detail}. */
async function hostPage(body) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 3000 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.addInitScript(() => {
    window.heard = [];
    for (const type of ['progress', 'done', 'error']) {
      document.addEventListener(type, (e) => window.heard.push({ type, id: e.target.id, bubbles: e.bubbles, composed: e.composed, detail: e.detail }));
    }
  });
  const html = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/score-field.js"></script>${body}`;
  await page.route(`${server.url}host.html`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${server.url}host.html`);
  return page;
}

const settled = (page, ids) => page.waitForFunction((list) => list.every((id) => ['ready', 'done', 'error'].includes(document.getElementById(id).state)), ids, { timeout: 120_000 });

test('run() fires progress events whose fraction rises to 1, then one done whose detail is the result; result is read-only', async () => {
  const page = await hostPage('<score-field id="gen" sampler="dpmpp-2m" steps="8" batch="2" seed="1" controls="run"></score-field>');
  await settled(page, ['gen']);
  const out = await page.$eval('#gen', async (w) => {
    window.heard.length = 0;
    const returned = await w.run();
    const done = window.heard.filter((e) => e.type === 'done');
    // Assigning `result` changes nothing: it has a getter and no setter.
    const assigned = Reflect.set(w, 'result', { fake: true });
    return {
      progress: window.heard.filter((e) => e.type === 'progress').map((e) => ({ ...e.detail, bubbles: e.bubbles, composed: e.composed })),
      done: done.length,
      errors: window.heard.filter((e) => e.type === 'error').length,
      sameObject: done[0]?.detail === w.result && returned === w.result,
      doneFlags: [done[0]?.bubbles, done[0]?.composed],
      shape: w.result.shape,
      assigned,
      kept: w.result === returned,
      order: window.heard.map((e) => e.type).lastIndexOf('progress') < window.heard.map((e) => e.type).indexOf('done'),
    };
  });
  const fractions = out.progress.map((p) => p.fraction);
  assert.ok(out.progress.length >= 8, `${out.progress.length} progress events for 8 steps`);
  assert.ok(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])), `fractions do not rise: ${fractions}`);
  assert.ok(fractions[0] < 0.5, `the first fraction is ${fractions[0]}`);
  assert.equal(fractions.at(-1), 1);
  // Each carries the step and the noise level of the library's progress message.
  const last = out.progress.at(-1);
  assert.ok(Number.isInteger(last.step) && last.step >= 1 && Number.isFinite(last.t) && Number.isFinite(last.sigma), JSON.stringify(last));
  assert.ok(out.progress.every((p) => p.bubbles && p.composed), 'a progress event does not bubble out of the Shadow DOM');
  assert.deepEqual({ done: out.done, errors: out.errors, sameObject: out.sameObject, doneFlags: out.doneFlags, order: out.order }, { done: 1, errors: 0, sameObject: true, doneFlags: [true, true], order: true });
  assert.deepEqual(out.shape, [2, 1, 28, 28]);
  assert.deepEqual({ assigned: out.assigned, kept: out.kept }, { assigned: false, kept: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('cancel() during a run: run() resolves to null, one error event named CancelledError, no done, no error box, the last result kept', async () => {
  const page = await hostPage('<score-field id="slow" sampler="em" steps="400" batch="1" seed="1" controls="run"></score-field>');
  await settled(page, ['slow']);
  const out = await page.$eval('#slow', async (w) => {
    // cancel() with nothing running does nothing.
    w.cancel();
    const idle = window.heard.length;
    window.heard.length = 0;
    const run = w.run();
    await new Promise((resolve) => w.addEventListener('progress', (e) => e.detail.fraction > 0.02 && resolve(), { once: false }));
    w.cancel();
    const returned = await run;
    return {
      idle,
      returned,
      result: w.result,
      heard: window.heard.filter((e) => e.type !== 'progress').map((e) => ({ type: e.type, id: e.id, name: e.detail.name, message: e.detail.message })),
      state: w.state,
      errorBox: w.shadowRoot.querySelector('[part~=error]').hidden,
      status: w.shadowRoot.querySelector('[part~=status]').textContent,
    };
  });
  assert.equal(out.idle, 0, 'cancel() with nothing running fired an event');
  assert.equal(out.returned, null);
  assert.equal(out.result, null, 'a cancelled run left a result');
  assert.equal(out.heard.length, 1, JSON.stringify(out.heard));
  assert.equal(out.heard[0].type, 'error');
  assert.equal(out.heard[0].id, 'slow');
  assert.equal(out.heard[0].name, 'CancelledError');
  assert.match(out.heard[0].message, /cancel/);
  assert.deepEqual({ state: out.state, errorBox: out.errorBox, status: out.status }, { state: 'ready', errorBox: true, status: 'cancelled' });
  // The widget runs again afterwards, to done.
  const again = await page.$eval('#slow', (w) => {
    w.setAttribute('steps', '60');
    return w.run().then((r) => r.shape);
  });
  assert.deepEqual(again, [1, 1, 28, 28]);
  await page.close();
});

test('failures fire error events with the library\'s error name: a missing model, broken weights, a refused run, a run the library refuses', async () => {
  const page = await hostPage(`
    <score-field id="missing" model="/models/missing.json"></score-field>
    <score-field id="broken" model="${models.url}truncated.json"></score-field>
    <score-field id="ok" sampler="em" steps="60" batch="1" controls="run,steps,batch"></score-field>`);
  await settled(page, ['missing', 'broken', 'ok']);
  const loads = await page.evaluate(() => window.heard.filter((e) => e.type === 'error').map((e) => ({ id: e.id, name: e.detail.name, message: e.detail.message })));
  const of = (id) => loads.filter((e) => e.id === id);
  assert.equal(of('missing').length, 1, JSON.stringify(loads));
  assert.equal(of('missing')[0].name, 'FetchError');
  assert.match(of('missing')[0].message, /missing\.json.*404/);
  assert.equal(of('broken').length, 1, JSON.stringify(loads));
  assert.equal(of('broken')[0].name, 'ModelFileError');
  assert.deepEqual(of('ok'), []);
  // The states match: the two that could not load are in error, and run() there gives null.
  assert.deepEqual(await page.$$eval('score-field', (ws) => ws.map((w) => w.state)), ['error', 'error', 'ready']);
  assert.equal(await page.$eval('#missing', (w) => w.run()), null);
  // The widget refuses fewer steps than the sampler's floor itself: InvalidOptionError, and the
  // message in its box.
  const refused = await page.$eval('#ok', async (w) => {
    window.heard.length = 0;
    w.shadowRoot.querySelector('input[name=steps]').value = '2';
    const returned = await w.run();
    return { returned, heard: window.heard.map((e) => ({ type: e.type, name: e.detail?.name, message: e.detail?.message })), box: w.shadowRoot.querySelector('[part~=error]').textContent, state: w.state };
  });
  assert.equal(refused.returned, null);
  assert.deepEqual(refused.heard.map((e) => [e.type, e.name]), [['error', 'InvalidOptionError']]);
  assert.equal(refused.heard[0].message, refused.box);
  assert.equal(refused.state, 'ready');
  // A batch beyond every limit reaches the library, which refuses it: the run fails.
  const failed = await page.$eval('#ok', async (w) => {
    window.heard.length = 0;
    w.shadowRoot.querySelector('input[name=steps]').value = '60';
    w.shadowRoot.querySelector('input[name=batch]').value = '100000';
    const returned = await w.run();
    return { returned, heard: window.heard.filter((e) => e.type !== 'progress').map((e) => ({ type: e.type, name: e.detail?.name })), state: w.state, box: w.shadowRoot.querySelector('[part~=error]').textContent };
  });
  assert.equal(failed.returned, null);
  assert.deepEqual(failed.heard, [{ type: 'error', name: 'InvalidOptionError' }]);
  assert.equal(failed.state, 'error');
  assert.match(failed.box, /batch/);
  await page.close();
});

test('field mode: run() fires done with the particles; cancel() drops a run before it starts or while the worker computes it, with a CancelledError; an empty drawing is refused with InvalidOptionError', async () => {
  const page = await hostPage(`
    <score-field id="field" mode="field" sampler="em" particles="200" seed="1"></score-field>
    <score-field id="draw" mode="field" distribution="draw" particles="50"></score-field>`);
  await settled(page, ['field', 'draw']);
  const out = await page.$eval('#field', async (w) => {
    const events = () => window.heard.splice(0).map((e) => ({ type: e.type, name: e.detail?.name, same: e.detail === w.result }));
    window.heard.length = 0;
    const returned = await w.run();
    const first = { returned: returned.count, heard: events(), state: w.state };
    // Cancelled at once: before the run reaches the worker.
    const early = w.run();
    w.cancel();
    const before = { returned: await early, heard: events(), state: w.state, kept: w.result === returned };
    // Cancelled while the worker computes 20,000 particles (the worker finishes; the widget drops them).
    w.shadowRoot.querySelector('input[name=particles]').value = '20000';
    const late = w.run();
    await new Promise((resolve) => {
      const watch = new MutationObserver(() => w.state === 'running' && (watch.disconnect(), resolve()));
      watch.observe(w, { attributes: true, attributeFilter: ['state'] });
    });
    w.cancel();
    const during = { returned: await late, heard: events(), state: w.state, kept: w.result === returned, status: w.shadowRoot.querySelector('[part~=status]').textContent };
    return { first, before, during };
  });
  assert.deepEqual(out.first, { returned: 200, heard: [{ type: 'done', name: undefined, same: true }], state: 'done' });
  const cancelled = { returned: null, heard: [{ type: 'error', name: 'CancelledError', same: false }], state: 'ready', kept: true };
  assert.deepEqual(out.before, cancelled);
  assert.deepEqual(out.during, { ...cancelled, status: 'cancelled' });
  const empty = await page.$eval('#draw', async (w) => ({ returned: await w.run(), heard: window.heard.filter((e) => e.id === 'draw').map((e) => ({ type: e.type, name: e.detail?.name })) }));
  assert.deepEqual(empty, { returned: null, heard: [{ type: 'error', name: 'InvalidOptionError' }] });
  await page.close();
});
