// A bundled page's script: the element imported from the installed package (esbuild resolves it in
// node_modules), its run-time files served from a copy of the package's folder.
import { setBasePath, version } from 'score-field';

setBasePath('./score-field/');
document.documentElement.dataset.version = version;
