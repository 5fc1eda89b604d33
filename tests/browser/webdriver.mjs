// A small W3C WebDriver (classic) client over fetch, for WebKitGTK's WebKitWebDriver: a session,
// navigation, scripts, element clicks, pointer actions and screenshots; nothing else is needed by
// the tests. WebKitWebDriver starts Debian's MiniBrowser, which needs an X display: an Xvfb of our
// own (package xvfb), on the display number it picks.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';

export const WEBKIT_DRIVER = process.env.WEBKIT_WEBDRIVER ?? '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.WEBKIT_MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const XVFB = '/usr/bin/Xvfb';
// The W3C identifier of an element in a JSON response.
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

/** Xvfb on a display number of its choosing (-displayfd): {display, proc}. */
function startXvfb(width, height) {
  const proc = spawn(XVFB, ['-displayfd', '3', '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.stdio[3].on('data', (d) => resolve({ display: `:${d.toString().trim()}`, proc }));
    proc.on('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${stderr.slice(-500)}`)));
    setTimeout(() => reject(new Error('Xvfb did not report a display in 10 s')), 10_000);
  });
}

async function waitForDriver(url, proc) {
  const deadline = Date.now() + 15_000;
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`WebKitWebDriver exited with ${exited}`);
    const ready = await fetch(`${url}/status`).then((r) => r.json()).then((s) => s.value?.ready, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('WebKitWebDriver did not answer /status in 15 s');
}

/** Starts Xvfb, WebKitWebDriver (listening on `port`) and a MiniBrowser session: a
 * WebDriverSession. Fails naming the Debian packages when a program is missing. */
export async function launchWebKit({ port, width = 1100, height = 1400 }) {
  const missing = [[WEBKIT_DRIVER, 'webkit2gtk-driver'], [MINIBROWSER, 'libwebkit2gtk-4.1-0'], [XVFB, 'xvfb']].filter(([file]) => !existsSync(file));
  if (missing.length) {
    throw new Error(`WebKit is not installed (${missing.map(([f]) => f).join(', ')} missing): apt-get install ${missing.map(([, p]) => p).join(' ')} (./build.sh browser-test installs them as root)`);
  }
  const xvfb = await startXvfb(width, height);
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: 'ignore', env: { ...process.env, DISPLAY: xvfb.display } });
  const url = `http://127.0.0.1:${port}`;
  const stop = () => {
    driver.kill();
    xvfb.proc.kill();
  };
  try {
    await waitForDriver(url, driver);
    const created = await call(url, 'POST', '/session', {
      capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } } },
    });
    const session = new WebDriverSession(url, created.sessionId, created.capabilities, stop);
    await session.command('POST', '/window/rect', { x: 0, y: 0, width, height });
    return session;
  } catch (e) {
    stop();
    throw e;
  }
}

async function call(base, method, route, body) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`WebDriver ${method} ${route}: HTTP ${response.status}, not JSON: ${text.slice(0, 300)}`);
  }
  if (json.value?.error) throw new Error(`WebDriver ${method} ${route}: ${json.value.error}: ${json.value.message}`);
  return json.value;
}

/** One browser session; `command` sends a W3C command under /session/{id}. */
export class WebDriverSession {
  constructor(base, id, capabilities, stop) {
    this.base = base;
    this.id = id;
    this.capabilities = capabilities;
    this.stop = stop;
  }

  command(method, route, body) {
    return call(this.base, method, `/session/${this.id}${route}`, body);
  }

  navigate(url) {
    return this.command('POST', '/url', { url });
  }

  /** Runs `fn(arg)` in the page (fn may be async) and returns its JSON-serialisable result; a
   * thrown error comes back as one here, with the page's message. */
  async evaluate(fn, arg, timeoutMs = 600_000) {
    await this.command('POST', '/timeouts', { script: timeoutMs });
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => (${fn})(arguments[0])).then(
        (value) => done({ value: value === undefined ? null : value }),
        (e) => done({ error: String(e && e.stack || e) }));`;
    const out = await this.command('POST', '/execute/async', { script, args: [arg ?? null] });
    if (out.error) throw new Error(`in the page: ${out.error}`);
    return out.value;
  }

  async element(selector) {
    const found = await this.command('POST', '/element', { using: 'css selector', value: selector });
    return found[ELEMENT];
  }

  /** Clicks the element's centre (WebDriver scrolls it into view first). */
  async click(selector) {
    await this.command('POST', `/element/${await this.element(selector)}/click`, {});
  }

  /** A pointer (mouse) sequence at viewport coordinates: [{type: 'move'|'down'|'up', x, y}]. */
  async pointer(steps) {
    const actions = steps.map((s) => (s.type === 'move'
      ? { type: 'pointerMove', duration: 20, origin: 'viewport', x: Math.round(s.x), y: Math.round(s.y) }
      : { type: s.type === 'down' ? 'pointerDown' : 'pointerUp', button: 0 }));
    await this.command('POST', '/actions', { actions: [{ type: 'pointer', id: 'mouse', parameters: { pointerType: 'mouse' }, actions }] });
    await this.command('DELETE', '/actions');
  }

  /** A PNG of the viewport, written to `file`. */
  async screenshot(file) {
    writeFileSync(file, Buffer.from(await this.command('GET', '/screenshot'), 'base64'));
  }

  async close() {
    try {
      await this.command('DELETE', '');
    } finally {
      this.stop();
    }
  }
}
