// The package's JavaScript API in one module (the npm package's `score-field/client`, declared in
// client.d.ts): models and 2-D fields in a pool of workers shared by everything on the page. Each
// concern has its module: worker-pool.js the workers, the base path, the worker count and the
// errors' names; remote-model.js a model's loading and runs; remote-field.js the explainer's field.
export { basePath, measuredCoreCount, namedError, setBasePath, setWorkers, startedWorkers, workerStats } from './worker-pool.js';
export { RemoteModel, likelihoodReferences } from './remote-model.js';
export { RemoteField } from './remote-field.js';
