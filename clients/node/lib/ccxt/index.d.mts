// Types for the adapter's ESM entry (index.mjs): the same names as the CommonJS entry.
export * from './index.js';
import * as adapter from './index.js';
export default adapter;
