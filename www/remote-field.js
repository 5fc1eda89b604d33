// The 2-D explainer's distributions in worker 0 of the pool (worker-pool.js; src/web/field.rs).
import { FIELD_OPS, REQUESTS } from './protocol.js';
import { request } from './worker-pool.js';

/** The 2-D explainer's distribution in the worker (src/web/field.rs): `spec` is
 * {distribution, sde} or {points: [x0, y0, …], sde}. */
export class RemoteField {
  constructor(spec) {
    this.spec = spec;
  }

  /** Presets, dynamics, defaults and limits, as the library describes them. */
  static describe() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.describe }).promise;
  }

  /** {weights, means, modes, direction}: `direction` is the time picture's axis u. */
  info() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.info, spec: this.spec }).promise;
  }

  /** The time picture: {nt, nx, density [nx, nt]} of u·x(t), t from 0 to 1 left to right. */
  slice(nt, nx) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.slice, spec: this.spec, nt, nx }).promise;
  }

  /** p_t and its score on an n × n grid for each t: [{t, sigma, n, density, score}]. */
  grids(times, n) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.grids, spec: this.spec, times, n }).promise;
  }

  /** A fresh score network and its training set: {points}. */
  learn(seed) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.learn, spec: this.spec, seed }).promise;
  }

  /** `steps` steps of denoising score matching: {losses, step}. */
  train(steps) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.train, spec: this.spec, steps }).promise;
  }

  /** The learned score on an n × n grid at t against the exact one (src/web/field.rs). */
  learnedGrid(t, n) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.learnedGrid, spec: this.spec, t, n }).promise;
  }

  forget() {
    return request({ type: REQUESTS.field, op: FIELD_OPS.forget, spec: this.spec }).promise;
  }

  /** A particle run: {count, frames, times, sigmas, updates, shares}. */
  particles(options) {
    return request({ type: REQUESTS.field, op: FIELD_OPS.particles, spec: this.spec, options }).promise;
  }
}
