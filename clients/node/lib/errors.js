'use strict';
// Errors: one class per stable wire code (docs/protocol.md, "Error codes"), each carrying the
// agent's message verbatim, grouped as the Python client groups them (NoSession, Refused,
// TokenError), plus five the client raises itself. Every class extends TapsignError;
// `err.code` is the wire code, or null for an error on this side.

class TapsignError extends Error {
  constructor(message, code = null) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No usable session: stop trading, tell the trader to run `tapsign unlock`, poll status slowly. */
class NoSession extends TapsignError {}
/** The agent refused this request; sent again unchanged it gets the same answer. */
class Refused extends TapsignError {}
/** A hardware-token problem during unlock; a human has to act. */
class TokenError extends TapsignError {}

// The agent's codes, in docs/protocol.md order. The class name is the code in PascalCase; a
// class built with `new Locked(message)` carries its own code.
function codeClass(name, code, Base = TapsignError) {
  // The computed key names the class, so stack traces and `err.name` say `Locked`, not `cls`.
  return {
    [name]: class extends Base {
      constructor(message, wireCode = code) {
        super(message, wireCode);
      }
    },
  }[name];
}
const Locked = codeClass('Locked', 'locked', NoSession);
const Expired = codeClass('Expired', 'expired', NoSession);
const BudgetExhausted = codeClass('BudgetExhausted', 'budget_exhausted', NoSession);
const PolicyDenied = codeClass('PolicyDenied', 'policy_denied', Refused);
const UnknownKey = codeClass('UnknownKey', 'unknown_key', Refused);
const BadRequest = codeClass('BadRequest', 'bad_request', Refused);
const TokenAbsent = codeClass('TokenAbsent', 'token_absent', TokenError);
const WrongToken = codeClass('WrongToken', 'wrong_token', TokenError);
const TouchTimeout = codeClass('TouchTimeout', 'touch_timeout', TokenError);
const PinInvalid = codeClass('PinInvalid', 'pin_invalid', TokenError);
const VersionMismatch = codeClass('VersionMismatch', 'version_mismatch');
const KeystoreError = codeClass('KeystoreError', 'keystore');
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
  keystore: KeystoreError,
  busy: Busy,
  forbidden: Forbidden,
  internal: Internal,
});

// Raised by the client, never sent by the agent (code null).
/** No agent answers at the socket: start it (`tapsign agent`) or point TAPSIGN_SOCK at it. */
class AgentNotRunning extends TapsignError {}
/** The connection dropped while a request was in flight, and the request was not sent again. */
class ConnectionLost extends TapsignError {}
/** No answer within the client's timeout; the connection is dropped, the next call reconnects. */
class AgentTimeout extends TapsignError {}
/** The socket could be served by another user: nothing (no PIN, no request) is sent to it. */
class NotYourAgent extends TapsignError {}
/** The agent sent something this client cannot read (a bad frame, an unexpected answer). */
class ProtocolError extends TapsignError {}

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
  NoSession,
  Refused,
  TokenError,
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
  KeystoreError,
  Busy,
  Forbidden,
  Internal,
  AgentNotRunning,
  ConnectionLost,
  AgentTimeout,
  NotYourAgent,
  ProtocolError,
  BY_CODE,
  fromWire,
};
