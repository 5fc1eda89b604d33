// Live inpainting, for the page's Inpaint section and the widget's inpaint mode: when a brush
// stroke ends (pointer up, not on every move), the masked region is regenerated. A live run still
// going is cancelled first and the next starts once it has ended, so that its previews and result
// are the last drawn; strokes that end meanwhile come to one run, with the mask as it is then.
// Live runs never change the seed: each takes the seed control's value, the previous live run's
// unless the reader changed it, so the noise is the same and the completion changes only as far
// as the mask did (no flicker between strokes).

export class LiveInpaint {
  /** `painter`: the Painter whose strokes start runs (its `onstrokeend`). `host`: how its page or
   * widget runs: run() starts one inpaint with the current image, mask and controls and resolves
   * to the result, or null when it was cancelled or failed (it never rejects); cancel() stops the
   * run in progress; busy() says whether a run is in progress. */
  constructor(painter, host) {
    this.painter = painter;
    this.host = host;
    this.enabled = true;
    this.current = null; // the loop of live runs, while one goes
    this.wanted = false; // a stroke has ended since the running live run started
    this.runs = []; // every live run: {superseded (a later stroke cancelled it), finished (it gave a result)}
    painter.onstrokeend = () => this.strokeEnded();
  }

  /** After a stroke: regenerate, unless live is off, nothing is painted, or a run the reader
   * started (Generate, Inpaint) is going. */
  strokeEnded() {
    if (!this.enabled || !this.painter.paintedCount()) return;
    if (!this.current && this.host.busy()) return;
    this.wanted = true;
    if (this.current) {
      const last = this.runs.at(-1);
      if (last && !last.superseded) {
        last.superseded = true;
        this.host.cancel();
      }
      return;
    }
    this.current = this.#loop();
  }

  /** Resolves when no live run is going. */
  idle() {
    return this.current ?? Promise.resolve();
  }

  async #loop() {
    try {
      while (this.wanted) {
        this.wanted = false;
        const entry = { superseded: false, finished: false };
        this.runs.push(entry);
        entry.finished = Boolean(await this.host.run());
      }
    } finally {
      this.current = null;
    }
  }
}
