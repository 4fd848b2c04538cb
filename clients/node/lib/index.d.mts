// Types for the ESM entry (lib/index.mjs): the same names as the CommonJS entry.
export * from './index.js';
import * as tapsign from './index.js';
export default tapsign;
