// Accessibility of the page (www/index.html) and the example post (dist/example-post.html), in the
// reader's light and dark schemes (emulated prefers-color-scheme), once every widget on them has
// loaded and the autoplaying ones (and the page's opening run) have run: an axe-core audit with
// the WCAG 2.0, 2.1 and 2.2 A and AA rules finds no violation and leaves nothing undecided (text
// it cannot place on one background, such as a readout spilling out of its widget, is undecided),
// and it reaches into the widgets' Shadow DOM. Then the keyboard: every element Tab reaches shows
// a focus ring.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, serve } from './harness.mjs';

const AXE = readFileSync(path.join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

let browser;
let site; // www/ and pkg/
let dist; // dist/
before(async () => {
  browser = await launch({ webgpu: false });
  site = await serve();
  dist = await serve([], path.join(ROOT, 'dist'));
});
after(async () => {
  await browser?.close();
  site?.close();
  dist?.close();
});

const pages = {
  page: () => `${site.url}index.html?backend=cpu`,
  'example post': () => `${dist.url}example-post.html`,
};

/** Opens `url` in `scheme`, brings every widget into view so that it loads, and waits until each
 * is ready or done (the page's own model too); fails on a widget in error. */
async function settled(url, scheme) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 }, colorScheme: scheme });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(url);
  const count = await page.$$eval('score-field', (ws) => ws.length);
  for (let i = 0; i < count; i++) {
    await page.evaluate((k) => document.querySelectorAll('score-field')[k].scrollIntoView(), i);
    await page.waitForTimeout(200);
  }
  await page.waitForFunction(() => {
    const widgets = [...document.querySelectorAll('score-field')];
    const badge = document.getElementById('badge');
    return widgets.every((w) => ['ready', 'done', 'error'].includes(w.state)) && (!badge || badge.dataset.backend);
  }, null, { timeout: 300_000, polling: 500 });
  // The page's own opening run (the Generate it starts by itself) has drawn its samples.
  await page.evaluate(() => window.scorefield?.idle());
  const states = await page.$$eval('score-field', (ws) => ws.map((w) => `${w.getAttribute('mode')}: ${w.state} ${w.shadowRoot.querySelector('.error')?.textContent ?? ''}`));
  assert.ok(states.every((s) => !s.includes(': error')), `every widget loaded and ran: ${states.join('; ')}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  return page;
}

for (const [name, url] of Object.entries(pages)) {
  for (const scheme of ['light', 'dark']) {
    test(`axe-core finds no WCAG 2 A/AA violation on the ${name} in the ${scheme} scheme, and nothing it cannot decide`, async () => {
      const page = await settled(url(), scheme);
      // The scheme took: the page's background is light or dark.
      const background = await page.evaluate(() => {
        // The first element that paints one, else the canvas's white.
        const painted = [document.body, document.documentElement].map((e) => getComputedStyle(e).backgroundColor).find((c) => c !== 'rgba(0, 0, 0, 0)');
        const [r, g, b] = (painted ?? 'rgb(255, 255, 255)').match(/\d+/g).map(Number);
        return (r + g + b) / 3;
      });
      assert.ok(scheme === 'dark' ? background < 64 : background > 192, `the ${scheme} palette is on (mean channel ${background})`);
      await page.addScriptTag({ content: AXE });
      const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), WCAG_AA);
      const list = (items) => items.flatMap((r) => r.nodes.map((n) => `${r.id} (${r.help}): ${JSON.stringify(n.target)} ${n.failureSummary ?? n.any.map((c) => c.message).join('; ')}`));
      assert.deepEqual(list(result.violations), [], 'violations');
      assert.deepEqual(list(result.incomplete), [], 'checks axe could not decide');
      // The audit reached inside the widgets: contrast checked on text in their Shadow DOM.
      // (A node in a Shadow DOM has a target [[host, selector]].)
      const contrast = result.passes.find((r) => r.id === 'color-contrast');
      const inShadow = contrast?.nodes.filter((n) => n.target.some(Array.isArray)).length ?? 0;
      assert.ok(inShadow >= 5, `text inside the widgets was checked (${inShadow} nodes)`);
      assert.deepEqual(page.errors, []);
      await page.close();
    });
  }
}

for (const [name, url] of Object.entries(pages)) {
  test(`every element the keyboard reaches on the ${name} shows where the focus is`, async () => {
    const page = await settled(url(), 'light');
    const seen = [];
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        let el = document.activeElement;
        while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
        if (!el || el === document.body) return null;
        window.tabIds ??= new WeakMap();
        if (!window.tabIds.has(el)) window.tabIds.set(el, (window.tabCount = (window.tabCount ?? 0) + 1));
        const style = getComputedStyle(el);
        const host = el.getRootNode().host;
        return {
          id: window.tabIds.get(el),
          name: `${host ? `${host.localName}[mode=${host.getAttribute('mode')}] ` : ''}${el.localName}${el.getAttribute('aria-label') ? `[${el.getAttribute('aria-label')}]` : ''}${el.textContent?.trim() ? ` "${el.textContent.trim().slice(0, 20)}"` : ''}`,
          ring: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none',
        };
      });
      if (!focus) break;
      if (seen.some((f) => f.id === focus.id)) break; // round to the start
      seen.push(focus);
    }
    assert.ok(seen.length >= 10, `Tab reached the controls (${seen.map((f) => f.name).join(', ')})`);
    assert.ok(seen.some((f) => f.name.startsWith('score-field')), 'Tab reached into the widgets');
    assert.deepEqual(seen.filter((f) => !f.ring).map((f) => f.name), [], 'focused elements without a visible focus indicator');
    await page.close();
  });
}
