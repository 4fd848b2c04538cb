'use strict';
// Framing (docs/protocol.md, "Frames"): a 4-byte big-endian length, then that many bytes of
// one JSON object in UTF-8, at most 64 KiB, in both directions.

const { BadRequest, ProtocolError } = require('./errors');

const MAX_FRAME = 65536;

/** One message as a frame. An oversized request is refused here, before the agent closes on it. */
function encode(message) {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME) {
    throw new BadRequest(
      `the ${message.type} request is ${body.length} bytes, over the protocol's ${MAX_FRAME}-byte ` +
        'frame limit; send a smaller query or body',
    );
  }
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Collects bytes as they arrive and hands out whole messages. */
class FrameReader {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  /** Add `chunk`; return the messages it completes (possibly none). Throws ProtocolError. */
  push(chunk) {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const len = this.buf.readUInt32BE(0);
      // Checked before waiting for (or holding) the body, as the agent does.
      if (len > MAX_FRAME) {
        throw new ProtocolError(`the agent sent a frame of ${len} bytes, over the ${MAX_FRAME}-byte limit`);
      }
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      out.push(decodeBody(body));
    }
    return out;
  }

  /** Bytes of a frame that has started but not finished. */
  get pending() {
    return this.buf.length;
  }
}

function decodeBody(body) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new ProtocolError('the agent sent a frame that is not UTF-8');
  }
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`the agent sent a frame that is not JSON: ${e.message}`);
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
    throw new ProtocolError('the agent sent a JSON value that is not a message object with a "type"');
  }
  return msg;
}

module.exports = { MAX_FRAME, encode, FrameReader };
