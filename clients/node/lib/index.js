'use strict';
// tapsign: a client for the tapsign agent (docs/protocol.md). No dependencies.
//
//   const { Agent } = require('tapsign');
//   const agent = new Agent({ client: 'mybot/1.2' });
//   const signed = await agent.sign('binance-main', 'GET', '/api/v3/openOrders', { query: 'symbol=BTCUSDT' });
//   fetch(signed.url('https://api.binance.com'), { method: signed.method, headers: signed.headers });
//
// Layout: frame.js (length-prefixed JSON frames), socket.js (where the socket is, and whether
// to trust it), connection.js (one connection: hello, one request at a time), agent.js (the
// Agent and SignedRequest), errors.js (one class per wire code), ccxt/ (the ccxt adapter).

const errors = require('./errors');
const { Agent, SignedRequest } = require('./agent');
const { socketPath, checkSocket } = require('./socket');
const { PROTOCOL_VERSION } = require('./connection');
const { MAX_FRAME } = require('./frame');
const { VERSION } = require('./version');

module.exports = {
  Agent,
  SignedRequest,
  socketPath,
  checkSocket,
  PROTOCOL_VERSION,
  MAX_FRAME,
  VERSION,
  TapsignError: errors.TapsignError,
  NoSession: errors.NoSession,
  Refused: errors.Refused,
  TokenError: errors.TokenError,
  Locked: errors.Locked,
  Expired: errors.Expired,
  BudgetExhausted: errors.BudgetExhausted,
  BudgetSpent: errors.BudgetSpent,
  PolicyDenied: errors.PolicyDenied,
  UnknownKey: errors.UnknownKey,
  BadRequest: errors.BadRequest,
  TokenAbsent: errors.TokenAbsent,
  WrongToken: errors.WrongToken,
  TouchTimeout: errors.TouchTimeout,
  PinInvalid: errors.PinInvalid,
  VersionMismatch: errors.VersionMismatch,
  KeystoreError: errors.KeystoreError,
  Busy: errors.Busy,
  Forbidden: errors.Forbidden,
  Internal: errors.Internal,
  AgentNotRunning: errors.AgentNotRunning,
  ConnectionLost: errors.ConnectionLost,
  AgentTimeout: errors.AgentTimeout,
  NotYourAgent: errors.NotYourAgent,
  ProtocolError: errors.ProtocolError,
  errorForCode: errors.fromWire,
};
