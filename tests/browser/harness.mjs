// Shared set-up of the browser tests: the site served on 127.0.0.1 by tools/serve.py, and
// headless Debian Chromium (never a downloaded browser) driven by playwright-core; for the
// cross-engine tests and benchmark, Debian's Firefox ESR (puppeteer-core over WebDriver BiDi) and
// WebKitGTK (WebKitWebDriver, webdriver.mjs) behind one small page interface (launchEngine).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

const BASE_FLAGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
// WebGPU on SwiftShader's software Vulkan: without --enable-unsafe-webgpu no adapter is found.
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Serves www/ and pkg/ (or the folder `dir`, e.g. dist/) on a free loopback port; `headers`
 * are added to every response. */
export async function serve(headers = [], dir = null) {
  const port = await freePort();
  const args = [path.join(ROOT, 'tools', 'serve.py'), '--port', String(port), '--root', ROOT];
  for (const h of headers) args.push('--header', h);
  if (dir) args.push('--dir', dir);
  const proc = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SCOREFIELD_SERVE_QUIET: '1' } });
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => d.toString().includes('serving') && resolve());
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    setTimeout(() => reject(new Error('server did not start')), 10000);
  });
  return { url: `http://127.0.0.1:${port}/`, close: () => proc.kill() };
}

/** Launches Chromium with (or without) WebGPU. */
export async function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : ['--disable-features=WebGPU'])],
  });
}

/** A new page that records console errors and uncaught exceptions. */
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await page.goto(url);
  return page;
}

/** Once the page's model has loaded: stops its opening run (the Generate it starts by itself) with
 * its Cancel button, as a reader would, and waits until no run of the page is going; for tests
 * that drive the model themselves. */
export async function quiet(page) {
  await page.evaluate(async () => {
    const cancel = document.getElementById('cancel');
    if (!cancel.disabled) cancel.click();
    await window.scorefield.idle();
  });
}

/** An init script (page.addInitScript) that watches the page's opening run from the first frame:
 * `window.opening` = {preview, done}, the ms after navigation when the grid first showed a preview
 * (the samples forming, before any result) and when the finished batch was there. */
export function watchOpening() {
  const seen = (window.opening = { preview: null, done: null });
  const poll = () => {
    const result = window.scorefield?.lastResult;
    if (seen.preview === null && document.getElementById('grid')?.width > 0 && !result) seen.preview = performance.now();
    if (result) seen.done = performance.now();
    else requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}

export const ENGINES = ['chromium', 'firefox', 'webkit'];
const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';

/** One browser engine behind the few page operations the cross-engine tests and the benchmark
 * use (an EnginePage), whatever drives it: Chromium (playwright-core, WebGPU off: the CPU path
 * the other two take), Firefox ESR (puppeteer-core over WebDriver BiDi; no WebGPU here) or
 * WebKitGTK's MiniBrowser (WebKitWebDriver under Xvfb; no WebGPU). A missing browser fails with
 * how to install it. Resolves to {name, version, newPage(), close()}. */
export async function launchEngine(name) {
  const viewport = { width: 1100, height: 1400 };
  if (name === 'chromium') {
    const browser = await launch({ webgpu: false });
    return {
      name,
      version: browser.version(),
      newPage: async () => playwrightPage(await browser.newPage({ viewport })),
      close: () => browser.close(),
    };
  }
  if (name === 'firefox') {
    if (!existsSync(FIREFOX)) throw new Error(`Firefox is not installed (${FIREFOX} missing): apt-get install firefox-esr (./build.sh browser-test installs it as root)`);
    const puppeteer = await import('puppeteer-core').catch((e) => {
      throw new Error(`puppeteer-core is missing (${e.message}): npm ci`);
    });
    const browser = await puppeteer.default.launch({ browser: 'firefox', protocol: 'webDriverBiDi', executablePath: FIREFOX, headless: true, defaultViewport: viewport });
    return {
      name,
      version: await browser.version(),
      newPage: async () => puppeteerPage(await browser.newPage()),
      close: () => browser.close(),
    };
  }
  if (name === 'webkit') {
    const { launchWebKit } = await import('./webdriver.mjs');
    const session = await launchWebKit({ port: await freePort(), ...viewport });
    return {
      name,
      version: `WebKitGTK ${session.capabilities.browserVersion}`,
      // One window: a new page is that window on a blank document.
      newPage: async () => {
        await session.navigate('about:blank');
        return webDriverPage(session);
      },
      close: () => session.close(),
    };
  }
  throw new Error(`unknown engine ${name}: one of ${ENGINES.join(', ')}`);
}

// EnginePage: goto(url), evaluate(fn, arg), waitFor(fn, arg, timeoutMs) (until fn(arg) is
// truthy; resolves to its value), click(selector), pointer([{type: 'move'|'down'|'up', x, y}]) at
// viewport coordinates, screenshot(file), close().
// playwright-core and puppeteer-core pages differ only in waitForFunction's arguments.
function playwrightPage(page) {
  return mousePage(page, (fn, arg, timeout) => page.waitForFunction(fn, arg, { timeout, polling: 250 }));
}

function puppeteerPage(page) {
  return mousePage(page, (fn, arg, timeout) => page.waitForFunction(fn, { timeout, polling: 250 }, arg));
}

function mousePage(page, waitForFunction) {
  return {
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitFor: async (fn, arg, timeout) => (await waitForFunction(fn, arg, timeout)).jsonValue(),
    click: (selector) => page.click(selector),
    pointer: (steps) => mousePointer(page.mouse, steps),
    screenshot: (file) => page.screenshot({ path: file, fullPage: true }),
    close: () => page.close(),
  };
}

async function mousePointer(mouse, steps) {
  for (const s of steps) {
    if (s.type === 'move') await mouse.move(s.x, s.y, { steps: 3 });
    else await mouse[s.type]();
  }
}

function webDriverPage(session) {
  return {
    goto: (url) => session.navigate(url),
    evaluate: (fn, arg) => session.evaluate(fn, arg),
    waitFor: async (fn, arg, timeout) => {
      const deadline = Date.now() + timeout;
      for (;;) {
        const value = await session.evaluate(fn, arg);
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`waitFor timed out after ${timeout} ms: ${fn}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    click: (selector) => session.click(selector),
    pointer: (steps) => session.pointer(steps),
    screenshot: (file) => session.screenshot(file),
    close: () => session.navigate('about:blank'),
  };
}
