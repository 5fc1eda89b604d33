// Shared set-up of the browser tests: the site served on 127.0.0.1 by tools/serve.py, and
// headless Debian Chromium (never a downloaded browser) driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
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

async function freePort() {
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
