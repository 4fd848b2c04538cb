// Types for the ccxt adapter (CommonJS entry; index.d.mts re-exports them for ESM).
import type { Agent } from '../index.js';

export interface AttachOptions {
  /** The credential's name in the keystore (`tapsign key list`). */
  key: string;
  /** An Agent to share between instances; default: a new one per attached instance. */
  agent?: Agent;
  /** The agent's socket, when no `agent` is given; default: discovered as docs/protocol.md says. */
  path?: string;
  /** Names the bot in the agent's log, when no `agent` is given. */
  client?: string;
  /**
   * The scheme, for an instance whose ccxt id tapsign does not know (a class of your own for one
   * of the ten exchanges). ccxt's classes for other companies' hosts (binanceus, bybiteu, bybitid,
   * gateeu) are refused without it: see the README.
   */
  scheme?: 'upbit' | 'bithumb' | 'binance' | 'bybit' | 'okx' | 'coinbase' | 'kraken' | 'gate' | 'kucoin' | 'bitget';
}

/** The shape of a ccxt exchange instance the adapter needs. */
export interface CcxtExchange {
  id: string;
  sign(...args: any[]): any;
  fetch(...args: any[]): Promise<any>;
  [k: string]: any;
}

/** Make the agent sign `exchange`'s private requests; returns `exchange`. */
export function attach<T extends CcxtExchange>(exchange: T, options: AttachOptions): T;

/** A tapsign error as the ccxt error class that fits (others unchanged). */
export function toCcxtError(exchange: CcxtExchange, error: unknown): unknown;

/** The credentials an attached instance holds: placeholders that sign nothing. */
export const PLACEHOLDERS: { apiKey: string; secret: string; password: string };

/** tapsign error classes → ccxt error class names, most fitting first; first match wins. */
export const CCXT_ERROR: Array<[new (...args: any[]) => Error, string[]]>;
