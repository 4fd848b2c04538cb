'use strict';
// Framing (docs/protocol.md, "Frames"), on its own: the encoder's bytes are the golden ones,
// and the reader copes with frames split anywhere or run together.

const test = require('node:test');
const assert = require('node:assert/strict');

const { encode, FrameReader, MAX_FRAME } = require('../lib/frame');
const { ProtocolError, BadRequest } = require('../lib/errors');
const { golden } = require('./helpers/fake-agent');

test('the encoder writes the golden frames', () => {
  assert.deepEqual(encode({ type: 'status' }), golden('request_status'));
  assert.deepEqual(
    encode({ type: 'hello', version: 1, client: 'mybot/1.2' }),
    golden('request_hello'),
  );
  assert.equal(MAX_FRAME, 65536);
});

test('a frame split into single bytes decodes once complete', () => {
  const bytes = golden('response_status_unlocked');
  const reader = new FrameReader();
  const out = [];
  for (let i = 0; i < bytes.length; i++) out.push(...reader.push(bytes.subarray(i, i + 1)));
  assert.equal(out.length, 1);
  assert.equal(out[0].state, 'unlocked');
  assert.equal(reader.pending, 0);
});

test('frames run together in one chunk all decode, in order', () => {
  const reader = new FrameReader();
  const chunk = Buffer.concat([golden('response_subscribed'), golden('response_event_expiring'), golden('response_event_locked').subarray(0, 10)]);
  const out = reader.push(chunk);
  assert.deepEqual(out.map((m) => m.type), ['subscribed', 'event']);
  assert.equal(reader.pending, 10);
  assert.equal(reader.push(golden('response_event_locked').subarray(10))[0].event, 'locked');
});

test('the golden truncated frames decode to nothing yet', () => {
  for (const name of ['reject_truncated_header', 'reject_truncated_body']) {
    const reader = new FrameReader();
    assert.deepEqual(reader.push(golden(name)), [], name);
  }
});

test('not UTF-8, not JSON, or not a message object is a ProtocolError', () => {
  const frame = (body) => Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
  assert.throws(() => new FrameReader().push(frame(Buffer.from([0xff, 0xfe]))), /not UTF-8/);
  assert.throws(() => new FrameReader().push(frame(Buffer.from('{"type":'))), ProtocolError);
  assert.throws(() => new FrameReader().push(frame(Buffer.from('[1]'))), /not a message object/);
  assert.throws(() => new FrameReader().push(frame(Buffer.from('{"t":1}'))), /"type"/);
});

test('a request over 64 KiB is refused by the encoder', () => {
  assert.throws(() => encode({ type: 'sign', body: 'x'.repeat(MAX_FRAME) }), BadRequest);
  // Exactly at the limit is allowed.
  const overhead = Buffer.byteLength(JSON.stringify({ type: 'sign', body: '' }));
  assert.equal(encode({ type: 'sign', body: 'x'.repeat(MAX_FRAME - overhead) }).length, 4 + MAX_FRAME);
});
