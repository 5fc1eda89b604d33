// The inpainting canvas: a source image and a mask painted over it with pointer events (mouse,
// touch, pen). `painted` = 1 marks pixels to regenerate; the model's mask is its complement
// (1 = keep). Every stroke can be undone; `onstrokeend` hears when one ends (live-inpaint.js).
// A blank image is the card's background and ink the other end of its range (inkOf): white ink on
// MNIST's black, dark ink on the emoji's white.

/** A blank image's value and the ink's for a card's `image` ({range, background}): `blank` is its
 * `background`, or the range's low end (black) when the card names none; `ink` is the end of the
 * range farther from it. The page's painters and the widget's draw with these. */
export function inkOf({ range: [lo, hi] = [0, 1], background = lo } = {}) {
  return { blank: background, ink: hi - background >= background - lo ? hi : lo };
}

export class Painter {
  constructor(canvas, image = {}) {
    this.canvas = canvas;
    this.tool = 'mask'; // 'mask' | 'erase' (the mask) | 'draw' | 'rub' (the ink)
    this.radius = 2;
    this.onchange = () => {};
    this.onstrokeend = () => {};
    canvas.style.touchAction = 'none';
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) canvas.addEventListener(type, () => this.up());
    this.reshape(image);
  }

  /** A blank image of another model's shape ({channels, height, width, range, background}: its
   * card's `image`), with no mask and no history: the page keeps its painters when the model
   * changes. */
  reshape({ channels = 1, height = 28, width = 28, range = [0, 1], background } = {}) {
    this.shape = [1, channels, height, width];
    this.range = range;
    ({ blank: this.blank, ink: this.ink } = inkOf({ range, background }));
    this.image = this.blankImage();
    this.painted = new Uint8Array(height * width);
    this.history = [];
    this.stroke = null;
    this.render();
  }

  /** A blank image of the painter's shape: every value the background. */
  blankImage() {
    const [, c, h, w] = this.shape;
    return new Float32Array(c * h * w).fill(this.blank);
  }

  snapshot() {
    this.history.push({ image: this.image.slice(), painted: this.painted.slice() });
    if (this.history.length > 50) this.history.shift();
  }

  undo() {
    const last = this.history.pop();
    if (!last) return false;
    this.image = last.image;
    this.painted = last.painted;
    this.changed();
    return true;
  }

  setImage(values) {
    if (values.length !== this.image.length) throw new Error(`the image has ${values.length} values, the model needs ${this.image.length}`);
    this.snapshot();
    this.image = Float32Array.from(values);
    this.changed();
  }

  clearMask() {
    this.snapshot();
    this.painted.fill(0);
    this.changed();
  }

  /** Masks a whole region: 'top' | 'bottom' | 'left' | 'right' | 'center' half. */
  maskRegion(region) {
    const [, , h, w] = this.shape;
    this.snapshot();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = {
          top: y < h / 2,
          bottom: y >= h / 2,
          left: x < w / 2,
          right: x >= w / 2,
          center: Math.abs(x - (w - 1) / 2) < w / 4 && Math.abs(y - (h - 1) / 2) < h / 4,
        }[region];
        if (inside) this.painted[y * w + x] = 1;
      }
    }
    this.changed();
  }

  /** The mask for the model: 1 = keep, 0 = generate, per value (C·H·W). */
  keepMask() {
    const [, c, h, w] = this.shape;
    const keep = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) keep[ch * h * w + p] = this.painted[p] ? 0 : 1;
    return keep;
  }

  paintedCount() {
    return this.painted.reduce((a, b) => a + b, 0);
  }

  pixelAt(e) {
    const rect = this.canvas.getBoundingClientRect();
    const [, , h, w] = this.shape;
    return [((e.clientX - rect.left) / rect.width) * w, ((e.clientY - rect.top) / rect.height) * h];
  }

  down(e) {
    if (e.button !== undefined && e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.snapshot();
    this.stroke = this.pixelAt(e);
    this.dab(...this.stroke);
    this.changed();
  }

  move(e) {
    if (!this.stroke) return;
    const [x1, y1] = this.pixelAt(e);
    const [x0, y0] = this.stroke;
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2));
    for (let s = 1; s <= steps; s++) this.dab(x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps);
    this.stroke = [x1, y1];
    this.changed();
  }

  up() {
    if (!this.stroke) return;
    this.stroke = null;
    this.onstrokeend();
  }

  dab(cx, cy) {
    const [, c, h, w] = this.shape;
    const r = this.radius;
    for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
      for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        if (d > r) continue;
        if (this.tool === 'mask') this.painted[y * w + x] = 1;
        else if (this.tool === 'erase') this.painted[y * w + x] = 0;
        else if (this.tool === 'rub') for (let ch = 0; ch < c; ch++) this.image[ch * h * w + y * w + x] = this.blank;
        else {
          // Drawing ink: full strength in the core, soft at the rim, like a pen on MNIST; a
          // pixel keeps whichever is nearer the ink, what was there or this dab.
          const strength = Math.min(1, (r + 0.5 - d) / 1.0);
          const value = this.blank + (this.ink - this.blank) * strength;
          const nearer = this.ink > this.blank ? Math.max : Math.min;
          for (let ch = 0; ch < c; ch++) {
            const i = ch * h * w + y * w + x;
            this.image[i] = nearer(this.image[i], value);
          }
        }
      }
    }
  }

  changed() {
    this.render();
    this.onchange();
  }

  render() {
    const [, c, h, w] = this.shape;
    const [lo, hi] = this.range;
    const native = new OffscreenCanvas(w, h);
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let p = 0; p < w * h; p++) {
      for (let k = 0; k < 3; k++) {
        const v = (this.image[(c === 3 ? k : 0) * h * w + p] - lo) / (hi - lo);
        rgba[p * 4 + k] = v * 255;
      }
      if (this.painted[p]) {
        // Painted pixels: tinted, so the reader sees what will be regenerated.
        rgba[p * 4] = 0.45 * rgba[p * 4] + 0.55 * 230;
        rgba[p * 4 + 1] = 0.45 * rgba[p * 4 + 1] + 0.55 * 60;
        rgba[p * 4 + 2] = 0.45 * rgba[p * 4 + 2] + 0.55 * 90;
      }
      rgba[p * 4 + 3] = 255;
    }
    native.getContext('2d').putImageData(new ImageData(rgba, w, h), 0, 0);
    const size = this.canvas.width;
    const ctx = this.canvas.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(native, 0, 0, size, size * (h / w));
  }
}

/** Reads an image file into C·H·W values in `range`, scaled to the model's size; its transparent
 * parts are the `blank` value (the painter's background). */
export async function imageFromFile(file, [, c, h, w], range = [0, 1], blank = range[0]) {
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d');
  const grey = toPixels([blank], range)[0];
  ctx.fillStyle = `rgb(${grey}, ${grey}, ${grey})`;
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0, w, h);
  const { data } = ctx.getImageData(0, 0, w, h);
  const out = new Float32Array(c * h * w);
  for (let p = 0; p < h * w; p++) {
    for (let ch = 0; ch < c; ch++) {
      const v = c === 3 ? data[p * 4 + ch] : 0.299 * data[p * 4] + 0.587 * data[p * 4 + 1] + 0.114 * data[p * 4 + 2];
      out[ch * h * w + p] = range[0] + ((range[1] - range[0]) * v) / 255;
    }
  }
  return out;
}

/** C·H·W values in `range` as 8-bit pixels (the nearest of 256 levels), and back. */
export function toPixels(values, [lo, hi]) {
  return Uint8Array.from(values, (v) => Math.min(255, Math.max(0, Math.round(((v - lo) / (hi - lo)) * 255))));
}

export function fromPixels(pixels, [lo, hi]) {
  return Float32Array.from(pixels, (k) => lo + ((hi - lo) * k) / 255);
}
