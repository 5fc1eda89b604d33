// Drawing batches of images on canvases: one pixel per value at native size, then upscaled with
// crisp pixels (no smoothing).

/** Values of image `i` of a [B, C, H, W] batch as RGBA bytes, mapping `range` to 0..255. */
export function toRgba(data, shape, i, range = [0, 1]) {
  const [, c, h, w] = shape;
  const rgba = new Uint8ClampedArray(h * w * 4);
  const scale = 255 / (range[1] - range[0]);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const ch = c === 3 ? k : 0;
      const v = data[(i * c + ch) * h * w + p];
      rgba[p * 4 + k] = Number.isFinite(v) ? (v - range[0]) * scale : 0;
    }
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

/** Grid geometry of a batch: columns, rows, cell size in native pixels (with a 1-pixel gap). */
export function gridLayout(shape, columns) {
  const [b, , h, w] = shape;
  const cols = columns ?? Math.ceil(Math.sqrt(b));
  const rows = Math.ceil(b / cols);
  return { cols, rows, cellW: w + 1, cellH: h + 1, width: cols * (w + 1) + 1, height: rows * (h + 1) + 1 };
}

/** The largest whole pixel scale at which the grid of a batch fits in `width` CSS pixels. */
export function fitScale(shape, width) {
  return Math.max(1, Math.floor(width / gridLayout(shape).width));
}

/** Draws the batch as a grid on `canvas`, `scale` screen pixels per image pixel. */
export function drawGrid(canvas, data, shape, { range = [0, 1], scale = 4, columns } = {}) {
  const [b, , h, w] = shape;
  const g = gridLayout(shape, columns);
  const native = new OffscreenCanvas(g.width, g.height);
  const nctx = native.getContext('2d');
  nctx.fillStyle = '#3a3f47';
  nctx.fillRect(0, 0, g.width, g.height);
  for (let i = 0; i < b; i++) {
    const img = new ImageData(toRgba(data, shape, i, range), w, h);
    nctx.putImageData(img, 1 + (i % g.cols) * g.cellW, 1 + Math.floor(i / g.cols) * g.cellH);
  }
  canvas.width = g.width * scale;
  canvas.height = g.height * scale;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(native, 0, 0, canvas.width, canvas.height);
  canvas.dataset.cols = g.cols;
  canvas.dataset.scale = scale;
  return g;
}

/** Which image of a grid drawn by drawGrid lies under the point (x, y) in CSS pixels, or -1. */
export function gridIndexAt(canvas, shape, x, y) {
  const g = gridLayout(shape, Number(canvas.dataset.cols) || undefined);
  const rect = canvas.getBoundingClientRect();
  const px = (x / rect.width) * g.width;
  const py = (y / rect.height) * g.height;
  const col = Math.floor((px - 1) / g.cellW);
  const row = Math.floor((py - 1) / g.cellH);
  const i = row * g.cols + col;
  return col >= 0 && col < g.cols && row >= 0 && i < shape[0] ? i : -1;
}

/** Draws single images (each `{data}` of C·H·W values) side by side as one grid, e.g. the frames
 * of x(t) along a path; `shape` is one image's [1, C, H, W]. */
export function drawFrames(canvas, frames, shape, options) {
  const [, c, h, w] = shape;
  const data = new Float32Array(frames.length * c * h * w);
  frames.forEach((f, i) => data.set(f.data, i * c * h * w));
  drawGrid(canvas, data, [frames.length, c, h, w], options);
}
