// What the colour-model tests (emoji.test.mjs, engines.test.mjs) check of a batch and a canvas:
// that the images are coloured (their channels differ), that an inpainting kept the unmasked
// values exactly, and that a canvas shows colour rather than grey.

/** Per image of a [B, 3, H, W] batch (`data` a plain array), the mean over pixels of the largest
 * difference between two of its channels: 0 for a grey image. */
export function channelSpread(data, [b, c, h, w]) {
  if (c !== 3) throw new Error(`a colour batch has 3 channels, this one ${c}`);
  const n = h * w;
  return Array.from({ length: b }, (_, i) => {
    let sum = 0;
    for (let p = 0; p < n; p++) {
      const [r, g, bl] = [0, 1, 2].map((k) => data[(i * 3 + k) * n + p]);
      sum += Math.max(r, g, bl) - Math.min(r, g, bl);
    }
    return sum / n;
  });
}

/** How many values of an inpainting's batch (`out`: {data, shape, image, keep}, plain arrays)
 * differ in any bit from the source where the mask keeps them: 0 when the kept pixels are the
 * original, byte for byte. Also, per channel, how many masked values changed by more than 1/255
 * (`regenerated`: one count per channel; a mask that missed a channel leaves its count at 0). */
export function inpaintingChanges(out) {
  const n = out.image.length;
  const plane = n / out.shape[1];
  let kept = 0;
  const regenerated = Array(out.shape[1]).fill(0);
  for (let b = 0; b < out.shape[0]; b++) {
    for (let i = 0; i < n; i++) {
      const v = out.data[b * n + i];
      if (out.keep[i] === 1) kept += Object.is(v, out.image[i]) ? 0 : 1;
      else if (Math.abs(v - out.image[i]) > 1 / 255) regenerated[Math.floor(i / plane)]++;
    }
  }
  return { kept, regenerated };
}

/** In the page (pass to evaluate with the canvas's selector, and the widget's for a canvas in its
 * Shadow DOM): the share of the canvas's pixels whose red, green and blue differ by more than 16
 * of 255 (0 for a grey picture), and how many of them are drawn at all. */
export function canvasColour([host, selector]) {
  const root = host ? document.querySelector(host).shadowRoot : document;
  const c = root.querySelector(selector);
  if (!c.width || !c.height) return { coloured: 0, pixels: 0 };
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let coloured = 0;
  for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 16) coloured++;
  return { coloured: coloured / (d.length / 4), pixels: d.length / 4 };
}
