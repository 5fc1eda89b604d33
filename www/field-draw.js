// Drawing for <score-field mode="field"> (field-view.js holds the state): the density as a heat
// map, the score as arrows, the particles with their trails, the time picture, the learned
// score's panels and the loss curve. Functions of what they draw; they keep nothing.

// Arrows a side.
const ARROWS = 16;
// Frames of trail behind each particle.
const TRAIL = 6;
// Particle paths drawn on the time picture.
const PATHS = 24;
// Behind the heat map: its own lowest colour.
const BACKGROUND = '#141830';

// Five stops from dark blue through teal to pale yellow (density, low to high).
const STOPS = [[20, 24, 48], [40, 70, 130], [30, 140, 140], [120, 200, 110], [250, 240, 170]];
function colour(v) {
  const x = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => c + f * (STOPS[i + 1][k] - c));
}

/** A density as an image on a log scale: `density` × `size` (1 = uniform over the view) from
 * 10⁻¹ to 10². */
export function heatMap(density, width, height, size) {
  const img = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = colour((Math.log10(Math.max(density[i] * size, 1e-6)) + 1) / 3);
    img.data.set([r, g, b, 255], 4 * i);
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d').putImageData(img, 0, 0);
  return canvas;
}

/** A square canvas over the view [−w, w]²: its 2-D context, side, and data → pixel maps. */
function view(canvas, w) {
  const ctx = canvas.getContext('2d');
  const size = canvas.width;
  return { ctx, size, px: (x) => ((x + w) / (2 * w)) * size, py: (y) => ((w - y) / (2 * w)) * size };
}

/** The figure: `grid`'s heat map and score arrows (none before the field is computed), the
 * drawn `points` (or null), and `run`'s particles at `frame` with their trails (or no run). */
export function drawField(canvas, { grid, halfWidth, points, run, frame }) {
  const { ctx, size, px, py } = view(canvas, halfWidth);
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, size, size);
  if (grid) {
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(grid.image, 0, 0, size, size);
    arrows(ctx, grid, size);
  }
  if (points) {
    ctx.fillStyle = '#ffffff';
    for (const [x, y] of points) ctx.fillRect(px(x) - 1.5, py(y) - 1.5, 3, 3);
  }
  if (!run) return;
  const n = run.count;
  const f = run.frames;
  const at = (k, i) => 2 * (k * n + i);
  // Trails: a segment per particle between consecutive recent frames, older ones fainter.
  ctx.lineWidth = 1;
  for (let back = TRAIL; back >= 1; back--) {
    const k = frame - back;
    if (k < 0) continue;
    ctx.strokeStyle = `rgba(255, 170, 60, ${(0.5 * (TRAIL - back + 1)) / TRAIL})`;
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      ctx.moveTo(px(f[at(k, i)]), py(f[at(k, i) + 1]));
      ctx.lineTo(px(f[at(k + 1, i)]), py(f[at(k + 1, i) + 1]));
    }
    ctx.stroke();
  }
  ctx.fillStyle = '#ffb040';
  for (let i = 0; i < n; i++) ctx.fillRect(px(f[at(frame, i)]) - 1, py(f[at(frame, i) + 1]) - 1, 2, 2);
}

/** The time picture: the density of u·x(t) (`slice`, an image) with t across, the first
 * particles' paths up to `frame` (u is `direction`), and a line at the frame's t. */
export function drawTime(canvas, { slice, run, frame, direction, halfWidth }) {
  const ctx = canvas.getContext('2d');
  const [width, height] = [canvas.width, canvas.height];
  const w = halfWidth;
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  if (!slice) return;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(slice, 0, 0, width, height);
  if (!run) return;
  const [ux, uy] = direction;
  const n = run.count;
  const f = run.frames;
  const tx = (t) => t * width;
  const py = (k, i) => ((w - (ux * f[2 * (k * n + i)] + uy * f[2 * (k * n + i) + 1])) / (2 * w)) * height;
  if (!run.fixedSigma) {
    ctx.strokeStyle = 'rgba(255, 176, 64, 0.8)';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < Math.min(PATHS, n); i++) {
      ctx.moveTo(tx(run.times[0]), py(0, i));
      for (let k = 1; k <= frame; k++) ctx.lineTo(tx(run.times[k]), py(k, i));
    }
    ctx.stroke();
  }
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.8)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(tx(run.times[frame]), 0);
  ctx.lineTo(tx(run.times[frame]), height);
  ctx.stroke();
}

/** A panel beside the figure: `image` (a heat map), the score arrows of `grid` over it (or
 * none), and the samples a network learned from (`points`, [x0, y0, x1, …]) as white dots. */
export function drawPanel(canvas, { image, grid, points, halfWidth }) {
  const { ctx, size, px, py } = view(canvas, halfWidth);
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(image, 0, 0, size, size);
  if (grid) arrows(ctx, grid, size);
  ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
  for (let i = 0; i < points.length; i += 2) ctx.fillRect(px(points[i]) - 1, py(points[i + 1]) - 1, 2, 2);
}

/** The training loss: a running mean over 25 steps on a log scale, in `line`, with its last
 * value and the step count written in `text` (colours), in `font` (a family). */
export function drawLoss(canvas, losses, { line, text, font }) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (losses.length < 2) return;
  const smooth = [];
  let sum = 0;
  losses.forEach((v, i) => {
    sum += v - (i >= 25 ? losses[i - 25] : 0);
    smooth.push(sum / Math.min(i + 1, 25));
  });
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of smooth) [lo, hi] = [Math.min(lo, Math.log(v)), Math.max(hi, Math.log(v))];
  ctx.strokeStyle = line;
  ctx.lineWidth = 2;
  ctx.beginPath();
  smooth.forEach((v, i) => {
    const x = (i / (smooth.length - 1)) * canvas.width;
    const y = canvas.height - 4 - ((Math.log(v) - lo) / Math.max(hi - lo, 1e-6)) * (canvas.height - 8);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = text;
  ctx.font = `20px ${font}`;
  ctx.fillText(`loss ${smooth[smooth.length - 1].toFixed(3)} · step ${losses.length}`, 8, 22);
}

/** The score as arrows on a coarser grid: direction of ∇ log p, length growing with its size
 * (square root, relative to the largest), so that both steep and flat regions read. */
function arrows(ctx, g, size) {
  const step = g.n / ARROWS;
  const cell = size / ARROWS;
  let top = 0;
  const picks = [];
  for (let r = 0; r < ARROWS; r++) {
    for (let c = 0; c < ARROWS; c++) {
      const i = Math.floor((r + 0.5) * step) * g.n + Math.floor((c + 0.5) * step);
      const sx = g.score[2 * i];
      const sy = g.score[2 * i + 1];
      const m = Math.hypot(sx, sy);
      top = Math.max(top, m);
      picks.push([r, c, sx, sy, m]);
    }
  }
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.75)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const [r, c, sx, sy, m] of picks) {
    if (m === 0) continue;
    const len = 0.45 * cell * Math.sqrt(m / top);
    const [dx, dy] = [(sx / m) * len, (-sy / m) * len];
    const [x0, y0] = [(c + 0.5) * cell - dx / 2, (r + 0.5) * cell - dy / 2];
    const [x1, y1] = [x0 + dx, y0 + dy];
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    // Arrow head.
    const a = Math.atan2(dy, dx);
    const head = Math.min(4, len * 0.4);
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * Math.cos(a - 0.5), y1 - head * Math.sin(a - 0.5));
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * Math.cos(a + 0.5), y1 - head * Math.sin(a + 0.5));
  }
  ctx.stroke();
}
