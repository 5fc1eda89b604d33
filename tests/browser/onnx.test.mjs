// The ONNX export against ONNX Runtime Web in the same browser: the benchmark page (www/bench.html
// with ort=1) runs our network and ORT's on the same inputs and refuses to time them unless the
// outputs agree to 1e-3. Here with tiny repeat counts: numbers for the record come from
// ./build.sh bench. Needs www/models/mnist.onnx (./build.sh browser-test writes it).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, openPage, serve } from './harness.mjs';

let site;
let browser;
before(async () => {
  assert.ok(existsSync(path.join(ROOT, 'www/models/mnist.onnx')), 'www/models/mnist.onnx is missing: run `scorefield export-onnx --out www/models/mnist.onnx`');
  site = await serve();
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser?.close();
  site?.close();
});

// The shipped networks (the EDM U-Net of the digits, and of the colour emoji: its channels and
// size from the card) and the first network (ncsn); ./build.sh browser-test writes the ONNX files.
const MODELS = [
  ['the shipped EDM U-Net', 'models/mnist.json', 'models/mnist.onnx'],
  ['the emoji U-Net (3×32×32)', 'models/emoji.json', 'models/emoji.onnx'],
  ['the first network (ncsn)', 'models/mnist-ncsn.json', 'models/mnist-ncsn.onnx'],
];
for (const [label, model, onnx] of MODELS) for (const backend of ['cpu', 'webgpu']) {
  test(`ONNX Runtime Web (${backend === 'cpu' ? 'wasm' : 'webgpu'}) computes what scorefield computes on ${backend}: ${label}`, async () => {
    assert.ok(existsSync(path.join(ROOT, 'www', onnx)), `www/${onnx} is missing: run ./build.sh browser-test`);
    const page = await openPage(browser, `${site.url}bench.html?backend=${backend}&batches=1&repeats=2&warmup=1&runs=0&first=0&ort=1&model=${model}&onnx=${onnx}`);
    await page.waitForFunction(() => document.body.dataset.done === '1', null, { timeout: 600_000 });
    const results = await page.evaluate(() => window.benchResults);
    await page.close();
    assert.equal(results.error, undefined, results.error);
    const ort = results.onnxRuntime;
    console.log(`${backend}: ${JSON.stringify(ort)}`);
    assert.equal(ort.provider, backend === 'cpu' ? 'wasm' : 'webgpu');
    assert.ok(ort.check.maxAbsDiff < 1e-3, `max |diff| ${ort.check.maxAbsDiff}`);
    // The outputs are O(1), so agreeing to 1e-3 is not agreeing on zeros.
    assert.ok(ort.check.maxAbs > 0.1, `max |output| ${ort.check.maxAbs}`);
    assert.equal(ort.evals.length, 1);
    assert.ok(ort.evals[0].medianMs > 0 && Number.isFinite(ort.evals[0].ratio));
  });
}
