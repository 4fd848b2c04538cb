// The ESM entry point of the ccxt adapter: the same functions as the CommonJS one.
import cjs from './index.js';

export const { attach, toCcxtError, PLACEHOLDERS, CCXT_ERROR } = cjs;

export default cjs;
