#!/usr/bin/env bash
# scorefield's one entry point.
#   ./build.sh test              all tests: cargo tests (CPU + native wgpu on lavapipe when present)
#   ./build.sh serve [--port N]  install what is missing, build the wasm package, serve the demo
#   ./build.sh wasm              build pkg/ only
#   ./build.sh dist              dist/: the <score-field> widget, pkg/, the models, an example post;
#                                also the npm package score-field (package.json, declarations)
#   ./build.sh package           dist/ from the current pkg/ (no cargo), packed: score-field-VERSION.tgz
#   ./build.sh browser-test      only the browser tests
#   ./build.sh bench             native and browser benchmarks into docs/performance/
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
TOOLS=${SCOREFIELD_TOOLS:-$HOME/.cache/scorefield/tools}   # outside the clone, shared by fresh clones
# Cargo's build output lives outside the clone, so fresh clones (CI) on this machine reuse it.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/scorefield/target}
# Native builds carry both backends: Burn's CPU backend (flex) and wgpu. One feature set for the
# tests and the CLI, so that cargo builds the dependencies once.
NATIVE_FEATURES=wgpu

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (not root: install them and rerun)"
    return 1
  fi
  log "installing ${missing[*]}"
  [ $APT_UPDATED = 1 ] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_wasm_tools() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || {
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  }
  local version
  version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$version"; then
    log "installing wasm-bindgen-cli $version into $TOOLS"
    # Not --locked: the registry lacks one of its locked dependencies.
    cargo install wasm-bindgen-cli --version "$version" --root "$TOOLS" --quiet
  fi
}

build_wasm() {
  ensure_wasm_tools
  # Profile `web` (Cargo.toml): release + fat LTO + one codegen unit; 7.5 min from cold here.
  log "building the wasm library (profile web)"
  RUSTFLAGS="--cfg getrandom_backend=\"wasm_js\" -C target-feature=+simd128 ${RUSTFLAGS:-}" \
    cargo build --lib --profile web --target wasm32-unknown-unknown --no-default-features --features web
  rm -rf pkg
  # Function names are 6.9 MB of the module and only serve stack traces.
  "$TOOLS/bin/wasm-bindgen" --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir pkg "$CARGO_TARGET_DIR/wasm32-unknown-unknown/web/scorefield.wasm"
  write_version
  # Binaryen's wasm-opt is opt-in (SCOREFIELD_WASM_OPT=1): Debian's (binaryen 108) breaks the
  # module ("WebAssembly.Table.set(): Argument 1 is invalid for table"); npm's `binaryen` 132
  # (`npm install --no-save binaryen@132.0.0`, used when present) works, but its -Oz makes the
  # download larger and its speed-up is mixed, and it takes 5 min here: docs/PERFORMANCE.md, "wasm-opt".
  if [ "${SCOREFIELD_WASM_OPT:-0}" = 1 ]; then
    local wasm_opt=wasm-opt
    [ -x node_modules/.bin/wasm-opt ] && wasm_opt=node_modules/.bin/wasm-opt
    log "optimising with $wasm_opt -Oz ($("$wasm_opt" --version))"
    "$wasm_opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
      --enable-reference-types --strip-debug --strip-producers pkg/scorefield_bg.wasm -o pkg/scorefield_bg.wasm
  fi
  sizes
}

# The version of everything built here (the crate, the wasm module, the npm package, the page's
# footer): Cargo.toml's [package] version, its one definition.
project_version() {
  awk '/^\[/ { section = $0 } section == "[package]" && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' Cargo.toml
}

# pkg/version.js: that version beside the wasm module, for the page and the widget's `version`.
write_version() {
  local version
  version=$(project_version)
  [ -n "$version" ] || { echo "no version in Cargo.toml's [package]" >&2; exit 1; }
  printf '%s\n' "// Written by build.sh from Cargo.toml: the version of scorefield this module was built from." \
    "export const version = '$version';" > pkg/version.js
}

sizes() {
  log "transfer sizes (raw / gzip)"
  for f in pkg/scorefield_bg.wasm pkg/scorefield.js www/models/*.safetensors; do
    [ -f "$f" ] || continue
    printf '  %-40s %10d B  %10d B gzip\n' "$f" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
  done
}

cmd_test() {
  log "cargo test (features: $NATIVE_FEATURES)"
  cargo test --release --features "$NATIVE_FEATURES"
  # The native wgpu tests need a device and are ignored by a plain `cargo test`; Mesa's lavapipe
  # gives one (a CPU Vulkan device), and run with --ignored a missing device fails them.
  if apt_install mesa-vulkan-drivers libvulkan1; then
    log "native wgpu tests on lavapipe"
    cargo test --release --features "$NATIVE_FEATURES" --test wgpu -- --ignored
  else
    log "no lavapipe: the native wgpu tests stay ignored"
  fi
  cmd_browser_test
}

# The page in headless Debian Chromium (never a downloaded browser), driven by playwright-core;
# engines.test.mjs also in Debian's Firefox ESR (puppeteer-core over WebDriver BiDi) and WebKitGTK
# (WebKitWebDriver, its MiniBrowser on an Xvfb display).
cmd_browser_test() {
  apt_install chromium $ENGINE_PACKAGES
  cmd_dist
  export_onnx
  local dep
  for dep in $NODE_DEPS; do
    if [ ! -d "node_modules/$dep" ]; then
      log "installing $NODE_DEPS (npm ci)"
      npm ci --no-audit --no-fund --loglevel=error
      break
    fi
  done
  log "browser tests (screenshots in tests/artifacts/)"
  node --test --test-concurrency=1 tests/browser/
}

# The browser tests' npm packages (package.json's devDependencies, installed by `npm ci`).
NODE_DEPS="playwright-core puppeteer-core onnxruntime-web esbuild typescript axe-core"
# The other engines, from Debian: Firefox ESR; WebKitWebDriver (its MiniBrowser comes with
# libwebkit2gtk-4.1-0) and the X server it draws on.
ENGINE_PACKAGES="firefox-esr webkit2gtk-driver xvfb"

# Everything a static host needs for the widget, flat: the modules, pkg/ beside them, the models.
WIDGET_FILES="score-field.js subject.js run-options.js widget-attributes.js widget-controls.js widget-style.js mode.js mode-generate.js live-inpaint.js mode-trajectory.js mode-interpolate.js mode-likelihood.js likelihood-path.js field-view.js field-draw.js field-learn.js client.js worker-pool.js remote-model.js remote-field.js protocol.js worker.js render.js painter.js example-post.html"
# The shipped models: the digits with their guide, classifier and reference likelihoods; the
# digits' consistency model (distilled from them); the emoji with their guide, classifier and
# reference likelihoods.
MODEL_FILES="mnist.json mnist.safetensors mnist-guide.json mnist-guide.safetensors mnist-classifier.json mnist-classifier.safetensors mnist-likelihood.json mnist-cm.json mnist-cm.safetensors emoji.json emoji.safetensors emoji-guide.json emoji-guide.safetensors emoji-classifier.json emoji-classifier.safetensors emoji-likelihood.json"
cmd_dist() {
  build_wasm
  write_dist
}

# dist/ from the current pkg/: the widget's files, which are also the npm package `score-field`
# (npm/: its package.json, given the version here, its README and its TypeScript declarations).
write_dist() {
  [ -f pkg/scorefield.js ] && [ -f pkg/scorefield_bg.wasm ] || { echo "no pkg/: run ./build.sh wasm first" >&2; exit 1; }
  write_version
  log "writing dist/"
  rm -rf dist
  mkdir -p dist/pkg dist/models
  for f in $WIDGET_FILES; do cp "www/$f" dist/; done
  cp -r pkg/. dist/pkg/
  for f in $MODEL_FILES; do cp "www/models/$f" dist/models/; done
  cp -r npm/. dist/
  node -e '
    const [file, version] = process.argv.slice(1);
    const manifest = JSON.parse(require("fs").readFileSync(file, "utf8"));
    if ("version" in manifest) throw new Error(`${file} has a version: it comes from Cargo.toml alone`);
    process.stdout.write(JSON.stringify({ name: manifest.name, version, ...manifest }, null, 2) + "\n");
  ' npm/package.json "$(project_version)" > dist/package.json
  log "dist/ ($(du -sh dist | cut -f1)): open dist/example-post.html through any static server"
}

# The npm package as a tarball (`npm publish score-field-VERSION.tgz` publishes it).
cmd_package() {
  write_dist
  log "packing dist/ as the npm package"
  npm pack ./dist --pack-destination . --loglevel=error
}

# The shipped network (the EDM U-Net) and the first network (mnist-ncsn) as ONNX, for ONNX Runtime
# Web in the benchmark page (not committed: written from the model files).
export_onnx() {
  log "exporting www/models/mnist.onnx, www/models/mnist-ncsn.onnx and www/models/emoji.onnx"
  cargo build --release --features "$NATIVE_FEATURES" --bin scorefield
  local bin="$CARGO_TARGET_DIR/release/scorefield"
  "$bin" export-onnx --model www/models/mnist.json --out www/models/mnist.onnx
  "$bin" export-onnx --model www/models/mnist-ncsn.json --out www/models/mnist-ncsn.onnx
  "$bin" export-onnx --model www/models/emoji.json --out www/models/emoji.onnx
}

cmd_bench() {
  log "native benchmark (CPU, flex)"
  cargo build --release --features "$NATIVE_FEATURES"
  mkdir -p docs/performance
  "$CARGO_TARGET_DIR/release/scorefield" bench --device cpu --json docs/performance/native-cpu.json
  if [ "${SCOREFIELD_BENCH_WGPU:-0}" = 1 ]; then
    log "native benchmark (wgpu)"
    "$CARGO_TARGET_DIR/release/scorefield" bench --device wgpu --json docs/performance/native-wgpu.json
  fi
  apt_install chromium $ENGINE_PACKAGES
  build_wasm
  export_onnx
  [ -d node_modules/playwright-core ] && [ -d node_modules/puppeteer-core ] && [ -d node_modules/onnxruntime-web ] || npm ci --no-audit --no-fund --loglevel=error
  log "browser benchmark (www/bench.html in headless Chromium; the default Generate in Chromium, Firefox and WebKit)"
  node tools/bench.mjs
}

cmd_serve() {
  local port=8080
  while [ $# -gt 0 ]; do
    case $1 in
      --port) port=$2; shift 2 ;;
      --port=*) port=${1#--port=}; shift ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  build_wasm
  log "serving http://127.0.0.1:$port/"
  exec python3 "$ROOT/tools/serve.py" --port "$port" --root "$ROOT"
}

case ${1:-} in
  test) shift; cmd_test "$@" ;;
  serve) shift; cmd_serve "$@" ;;
  wasm) shift; build_wasm ;;
  dist) shift; cmd_dist ;;
  package) shift; cmd_package ;;
  bench) shift; cmd_bench ;;
  browser-test) shift; cmd_browser_test ;;
  *) echo "usage: ./build.sh test | serve [--port N] | wasm | dist | package | browser-test | bench" >&2; exit 2 ;;
esac
