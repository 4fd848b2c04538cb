'use strict';
// Errors: one class per stable wire code (docs/protocol.md, "Error codes"), each carrying the
// agent's message verbatim, plus four the client raises itself. Every class extends
// TapsignError, and `err.code` is the wire code (or the client's own code), so a bot can
// match on either the class or the code.

class TapsignError extends Error {
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

// The agent's codes, in docs/protocol.md order. The class name is the code in PascalCase; a
// class built with `new Locked(message)` carries its own code.
function codeClass(name, code) {
  // The computed key names the class, so stack traces and `err.name` say `Locked`, not `cls`.
  return {
    [name]: class extends TapsignError {
      constructor(message, wireCode = code) {
        super(message, wireCode);
      }
    },
  }[name];
}
const Locked = codeClass('Locked', 'locked');
const Expired = codeClass('Expired', 'expired');
const BudgetExhausted = codeClass('BudgetExhausted', 'budget_exhausted');
const PolicyDenied = codeClass('PolicyDenied', 'policy_denied');
const UnknownKey = codeClass('UnknownKey', 'unknown_key');
const BadRequest = codeClass('BadRequest', 'bad_request');
const TokenAbsent = codeClass('TokenAbsent', 'token_absent');
const WrongToken = codeClass('WrongToken', 'wrong_token');
const TouchTimeout = codeClass('TouchTimeout', 'touch_timeout');
const PinInvalid = codeClass('PinInvalid', 'pin_invalid');
const VersionMismatch = codeClass('VersionMismatch', 'version_mismatch');
const Keystore = codeClass('Keystore', 'keystore');
const Busy = codeClass('Busy', 'busy');
const Forbidden = codeClass('Forbidden', 'forbidden');
const Internal = codeClass('Internal', 'internal');

const BY_CODE = Object.freeze({
  locked: Locked,
  expired: Expired,
  budget_exhausted: BudgetExhausted,
  policy_denied: PolicyDenied,
  unknown_key: UnknownKey,
  bad_request: BadRequest,
  token_absent: TokenAbsent,
  wrong_token: WrongToken,
  touch_timeout: TouchTimeout,
  pin_invalid: PinInvalid,
  version_mismatch: VersionMismatch,
  keystore: Keystore,
  busy: Busy,
  forbidden: Forbidden,
  internal: Internal,
});

// Raised by the client, never sent by the agent.
/** No agent answers at the socket, or the connection dropped before the answer came. */
class AgentUnreachable extends TapsignError {
  constructor(message) {
    super(message, 'unreachable');
  }
}
/** The agent sent something that is not a valid answer (bad frame, bad JSON, wrong type). */
class ProtocolError extends TapsignError {
  constructor(message) {
    super(message, 'protocol');
  }
}
/** The socket could be served by another user: it is not trusted with a request. */
class UntrustedSocket extends TapsignError {
  constructor(message) {
    super(message, 'untrusted_socket');
  }
}
/** The agent did not answer within the call's timeout. */
class Timeout extends TapsignError {
  constructor(message) {
    super(message, 'timeout');
  }
}

/**
 * The error for an `error` frame. A code this client does not know is treated as `internal`
 * (docs/protocol.md: new codes may be added), keeping the code the agent sent on `err.code`.
 */
function fromWire(code, message) {
  const Cls = Object.prototype.hasOwnProperty.call(BY_CODE, code) ? BY_CODE[code] : Internal;
  return new Cls(String(message), typeof code === 'string' ? code : 'internal');
}

module.exports = {
  TapsignError,
  Locked,
  Expired,
  BudgetExhausted,
  // The name the issue uses for the same code; one class, two names.
  BudgetSpent: BudgetExhausted,
  PolicyDenied,
  UnknownKey,
  BadRequest,
  TokenAbsent,
  WrongToken,
  TouchTimeout,
  PinInvalid,
  VersionMismatch,
  Keystore,
  Busy,
  Forbidden,
  Internal,
  AgentUnreachable,
  ProtocolError,
  UntrustedSocket,
  Timeout,
  BY_CODE,
  fromWire,
};
