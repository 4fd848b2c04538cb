// The ESM entry point: the same objects as the CommonJS one (one module instance, so
// `instanceof` works across `require` and `import` in one process).
import cjs from './index.js';

export const {
  Agent,
  SignedRequest,
  socketPath,
  checkSocket,
  PROTOCOL_VERSION,
  MAX_FRAME,
  VERSION,
  TapsignError,
  NoSession,
  Refused,
  TokenError,
  Locked,
  Expired,
  BudgetExhausted,
  BudgetSpent,
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
  errorForCode,
} = cjs;

export default cjs;
