// The built module itself (pkg/scorefield_bg.wasm), compiled by Node's V8 without a page.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './harness.mjs';

// wasm-ld links a module whose exports never call `__wasm_call_ctors` "command-style": it wraps
// every export in a call to the constructors (here the `inventory` registrations of Burn's WGSL
// compiler, about 4,900), and names the wrappers `NAME.command_export`. wasm-bindgen's glue calls
// such exports for every string, object and allocation it hands across, so each crossing re-ran
// every constructor (about 0.5 ms): 10–20 ms per sampler step in the browser
// (docs/PERFORMANCE.md). `start()` in src/web/mod.rs runs them once, which makes the module a
// reactor; this test fails if a wrapper comes back.
test('the module is linked as a reactor: no export re-runs the constructors', async () => {
  const bytes = readFileSync(path.join(ROOT, 'pkg', 'scorefield_bg.wasm'));
  const module = await WebAssembly.compile(bytes);
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  assert.ok(exports.some((name) => name.startsWith('scoremodel_')), `the module exports the model's methods (got ${exports.length} exports)`);
  const wrapped = exports.filter((name) => name.endsWith('command_export'));
  assert.deepEqual(wrapped, [], `exports wrapped in constructor calls: ${wrapped.join(', ')}`);
});
