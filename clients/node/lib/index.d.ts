// Types for the tapsign client (CommonJS entry; lib/index.d.mts re-exports them for ESM).

export interface KeyStatus {
  name: string;
  exchange: string;
  /** Absent when the key has no budget of its own. */
  signatures_left?: number;
  signatures_made: number;
}

export interface ClientInfo {
  pid: number;
  exe: string;
  signatures: number;
}

export interface SessionStatus {
  expires_in_secs: number;
  idle_timeout_secs: number;
  idle_expires_in_secs: number;
  signatures_left: number;
  signatures_made: number;
  /** Every key of the session, or its first ones when `keys_total` is given. */
  keys: KeyStatus[];
  /** How many keys the session holds, when the status was cut to fit one answer and `keys`
   *  lists only the first of them; absent when `keys` lists them all. */
  keys_total?: number;
  clients: ClientInfo[];
  opened_by: string;
}

export interface TokenInfo {
  id: string;
  kind: string;
  description: string;
}

export interface LockSource {
  name: string;
  live: boolean;
  detail?: string;
}

/** `status` (and `unlock`) answers, as docs/protocol.md describes them, without `type`. */
export interface Status {
  state: 'locked' | 'unlocked';
  agent: string;
  lock_reason?: string;
  session?: SessionStatus;
  tokens: TokenInfo[];
  warnings?: string[];
  lock_sources: LockSource[];
  /** Keys whose config.toml policy widens or narrows their exchange's trading profile. */
  key_policies?: KeyPolicy[];
  /** Where the audit log's hash chain ends: keep copies elsewhere and check the log later with
   *  `tapsign audit verify --head SEQ:HASH`. Absent while the log cannot be read or was found
   *  tampered with (`warnings` says how). */
  audit_head?: { seq: number; hash: string };
  /** The keystore manifest the agent last verified, at an unlock. `log_unread` (present only
   *  when true): that unlock could not read the audit log, so the agent vouches for nothing
   *  about this keystore until an unlock with the log readable (docs/keystore-format.md). */
  keystore?: { generation: number; vault_key: string; log_unread?: boolean };
  /** Credentials replaced or removed in the last day, by name; `warnings` says when and how. */
  changed_keys?: string[];
}

export interface KeyPolicy {
  key: string;
  /** `allow POST /x (a, b)`, `only GET /y`, `ws_login`. */
  rules: string[];
}

/** A session event from `events()`. */
export interface SessionEvent {
  event: 'unlocked' | 'extended' | 'expiring_soon' | 'budget_low' | 'locked';
  message: string;
  /** Why the session ended (`locked` only). */
  reason?: string;
  /** What a `sign` now gets (`locked` only). */
  code?: 'locked' | 'expired' | 'budget_exhausted' | string;
  expires_in_secs?: number;
  signatures_left?: number;
}

export interface AgentOptions {
  /** The socket; default: `$TAPSIGN_SOCK`, `$XDG_RUNTIME_DIR/tapsign/agent.sock`, ... at each connect. */
  path?: string;
  /** Names the bot in the agent's log (`mybot/1.2`). */
  client?: string;
  /** Milliseconds to wait for an answer (not for unlock); 0: no limit. Default 30000. */
  timeout?: number;
}

export interface UnlockOptions {
  /** The keys the session opens; left out, every key. An empty list is refused (`BadRequest`). */
  keys?: string[];
  ttl_secs?: number;
  idle_secs?: number;
  max_signatures?: number;
  /** The enrolled token to use, by id (`status().tokens`): the PIN goes to it alone. */
  token?: string;
  pin?: string;
  extend?: boolean;
  /** Milliseconds to wait for the touch; default: no limit. */
  timeout?: number;
}

export interface SignOptions {
  /** The query string, without `?`, exactly as it will be sent. */
  query?: string;
  /** The body, exactly as it will be sent. */
  body?: string;
  /** `rest` (default) or `ws_login` (a websocket login message comes back as `body`). */
  kind?: 'rest' | 'ws_login';
}

/** The request to send, exactly as the agent returned it. */
export class SignedRequest {
  method: string;
  path: string;
  query: string;
  body: string;
  headers: Record<string, string>;
  /** `base` (`https://api.binance.com`) + path + `?query` when there is one. */
  url(base: string): string;
}

export class Agent {
  constructor(options?: AgentOptions);
  readonly path: string;
  client: string;
  timeout: number;
  /** The agent's self-description from `hello` (`tapsign 0.1.0`). */
  hello(): Promise<string>;
  status(): Promise<Status>;
  unlock(options?: UnlockOptions): Promise<Status>;
  lock(): Promise<void>;
  sign(key: string, method: string, path: string, options?: SignOptions): Promise<SignedRequest>;
  events(): AsyncGenerator<SessionEvent, void, undefined>;
  close(): void;
}

/** The socket path docs/protocol.md describes, from the environment. */
export function socketPath(
  env?: Record<string, string | undefined>,
  uid?: number,
  isDir?: (path: string) => boolean,
): string;

/** What checkSocket returns: the socket's lstat, to compare after connecting. */
export interface SocketStat {
  dev: number;
  ino: number;
  uid: number;
  mode: number;
  isSocket(): boolean;
}

/** Refuse a socket another user could serve; throws AgentNotRunning or NotYourAgent. */
export function checkSocket(path: string, uid?: number): Promise<SocketStat>;

export const PROTOCOL_VERSION: number;
export const MAX_FRAME: number;
export const VERSION: string;

/** Every error this package raises. `code` is the agent's wire code, null for an error on this side. */
export class TapsignError extends Error {
  constructor(message: string, code?: string | null);
  code: string | null;
}
/** No usable session (Locked, Expired, BudgetExhausted). */
export class NoSession extends TapsignError {}
/** Refused; the same request gets the same answer (PolicyDenied, UnknownKey, BadRequest). */
export class Refused extends TapsignError {}
/** A token problem during unlock (TokenAbsent, WrongToken, TouchTimeout, PinInvalid). */
export class TokenError extends TapsignError {}
export class Locked extends NoSession {}
export class Expired extends NoSession {}
export class BudgetExhausted extends NoSession {}
/** The same class as BudgetExhausted. */
export const BudgetSpent: typeof BudgetExhausted;
export class PolicyDenied extends Refused {}
export class UnknownKey extends Refused {}
export class BadRequest extends Refused {}
export class TokenAbsent extends TokenError {}
export class WrongToken extends TokenError {}
export class TouchTimeout extends TokenError {}
export class PinInvalid extends TokenError {}
export class VersionMismatch extends TapsignError {}
export class KeystoreError extends TapsignError {}
export class Busy extends TapsignError {}
export class Forbidden extends TapsignError {}
/** Also raised for a code this client does not know; `code` keeps the agent's. */
export class Internal extends TapsignError {}
/** No agent answers at the socket (code null). */
export class AgentNotRunning extends TapsignError {}
/** The connection dropped while a request was in flight, and it was not sent again (code null). */
export class ConnectionLost extends TapsignError {}
/** No answer within the timeout (code null). */
export class AgentTimeout extends TapsignError {}
/** The socket could be served by another user; nothing was sent (code null). */
export class NotYourAgent extends TapsignError {}
/** The agent sent something that is not a valid answer (code null). */
export class ProtocolError extends TapsignError {}

/** The error class for a wire code (unknown codes: Internal). */
export function errorForCode(code: string, message: string): TapsignError;
