'use strict';
// Which request a `signed` answer is for (lib/answer.js): the agent's own answers, shaped as
// agent/src/sign/*.rs makes them, are taken; answers to other requests are ProtocolErrors.
// The same cases as the Python client's tests/test_wire.py.

const test = require('node:test');
const assert = require('node:assert/strict');

const { checkAnswers } = require('../lib/answer');
const { ProtocolError } = require('../lib/errors');

const HEX = 'ab49a552077a94d691d8775442963d0c6f390bdc72854cbb2aed02feff5a1c7b';
const ED = `${'Zm9v'.repeat(21)}%2B%2F%3D%3D`; // 86 base64 characters and `==`, percent-encoded
const ORDER = 'symbol=BTCUSDT&side=BUY&quantity=1';
const DEADLINE = '2026-12-06T18:10:30Z';
const DEADLINE_FORM = DEADLINE.replaceAll(':', '%3A');

const sign = ([method, path, query, body], kind) => ({ type: 'sign', key: 'k', method, path, query, body, ...(kind ? { kind } : {}) });
const reply = ([method, path, query, body], headers = { 'X-Fake': 'k' }) => ({ method, path, query, body, headers });

const THE_AGENTS_ANSWERS = [
  // Unchanged: every exchange but Binance and Kraken signs in headers.
  [['GET', '/v5/order/realtime', 'category=linear', ''], ['category=linear', '']],
  [['POST', '/api/v5/trade/order', '', '{"instId":"BTC-USDT"}'], ['', '{"instId":"BTC-USDT"}']],
  // Binance: appended to the body when there is one, else to the query.
  [['GET', '/api/v3/openOrders', 'symbol=BTCUSDT', ''], [`symbol=BTCUSDT&timestamp=1795600000000&signature=${HEX}`, '']],
  [['GET', '/api/v3/account', '', ''], [`timestamp=1&signature=${HEX}`, '']],
  [['POST', '/api/v3/order', '', ORDER], ['', `${ORDER}&timestamp=1&signature=${ED}`]],
  [['POST', '/api/v3/order', 'a=1', ORDER], ['a=1', `${ORDER}&recvWindow=3000&timestamp=1&signature=${HEX}`]],
  // ... recvWindow only when the bot sent none, timestamp exactly when it sent none.
  [['POST', '/api/v3/order', '', `${ORDER}&recvWindow=2000`], ['', `${ORDER}&recvWindow=2000&timestamp=1&signature=${HEX}`]],
  [['POST', '/api/v3/order', '', `${ORDER}&%54imestamp=1`], ['', `${ORDER}&%54imestamp=1&signature=${HEX}`]],
  // Kraken: POST without a query, the nonce first in the body.
  [['POST', '/0/private/Balance', '', ''], ['', 'nonce=17']],
  [['POST', '/0/private/CancelOrder', '', 'txid=O1'], ['', 'nonce=17&txid=O1']],
  [['POST', '/0/private/CancelOrderBatch', '', '{"orders":["O1"]}'], ['', '{"nonce":"17","orders":["O1"]}']],
  [['POST', '/0/private/CancelOrderBatch', '', ' \n{ "orders":["O1"]} '], ['', '{"nonce":"17","orders":["O1"]} ']],
  [['POST', '/0/private/Balance', '', '{ }'], ['', '{"nonce":"17"}']],
  // ... and on an order method, the agent's deadline after it, unless the bot sent its own.
  [['POST', '/0/private/AddOrder', '', 'pair=XBTUSD'], ['', `nonce=17&deadline=${DEADLINE_FORM}&pair=XBTUSD`]],
  [['POST', '/0/private/EditOrder', '', ''], ['', `nonce=17&deadline=${DEADLINE_FORM}`]],
  [['POST', '/0/private/AmendOrder', '', '{"txid":"O1"}'], ['', `{"nonce":"17","deadline":"${DEADLINE}","txid":"O1"}`]],
  [['POST', '/0/private/AmendOrder', '', '{}'], ['', `{"nonce":"17","deadline":"${DEADLINE}"}`]],
  [['POST', '/0/private/AddOrderBatch', '', '{"orders":[]}'], ['', `{"nonce":"17","deadline":"${DEADLINE}","orders":[]}`]],
  [['POST', '/0/private/AddOrder', '', `pair=XBTUSD&deadline=${DEADLINE}`], ['', `nonce=17&pair=XBTUSD&deadline=${DEADLINE}`]],
  [['POST', '/0/private/AmendOrder', '', `{"deadline":"${DEADLINE}"}`], ['', `{"nonce":"17","deadline":"${DEADLINE}"}`]],
];

test("the agent's answer to a request is taken", () => {
  for (const [sent, [query, body]] of THE_AGENTS_ANSWERS) {
    assert.doesNotThrow(() => checkAnswers(sign(sent), reply([sent[0], sent[1], query, body])), JSON.stringify(sent));
  }
});

const ANOTHER_REQUESTS = [
  [['POST', '/api/v3/order', '', ORDER], ['GET', '/api/v3/order', '', ORDER]],
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/openOrders', '', ORDER]],
  [['GET', '/v5/order/realtime', 'category=linear', ''], ['GET', '/v5/order/realtime', 'category=spot', '']],
  [['POST', '/api/v5/trade/order', '', '{"side":"buy"}'], ['POST', '/api/v5/trade/order', '', '{"side":"sell"}']],
  // Binance: another order, signed; the bot's order with a parameter more; in the wrong part.
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/order', '', `${ORDER.slice(0, -1)}2&timestamp=1&signature=${HEX}`]],
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/order', '', `${ORDER}&price=1&timestamp=1&signature=${HEX}`]],
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/order', `timestamp=1&signature=${HEX}`, ORDER]],
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/order', '', `${ORDER}&timestamp=1&signature=${HEX.slice(0, -1)}`]],
  // ... a timestamp the agent would not have added, or left out.
  [['POST', '/api/v3/order', '', `${ORDER}&timestamp=1`], ['POST', '/api/v3/order', '', `${ORDER}&timestamp=1&timestamp=2&signature=${HEX}`]],
  [['POST', '/api/v3/order', '', ORDER], ['POST', '/api/v3/order', '', `${ORDER}&signature=${HEX}`]],
  [['POST', '/api/v3/order', '', `${ORDER}&recvWindow=1`], ['POST', '/api/v3/order', '', `${ORDER}&recvWindow=1&recvWindow=2&timestamp=1&signature=${HEX}`]],
  // Kraken: another body after the nonce, or a nonce that is not one.
  [['POST', '/0/private/CancelOrder', '', 'txid=O1'], ['POST', '/0/private/CancelOrder', '', 'nonce=17&txid=O2']],
  [['POST', '/0/private/CancelOrder', '', 'txid=O1'], ['POST', '/0/private/CancelOrder', '', 'nonce=x&txid=O1']],
  [['POST', '/0/private/CancelOrderBatch', '', '{"orders":["O1"]}'], ['POST', '/0/private/CancelOrderBatch', '', '{"nonce":"17","orders":["O2"]}']],
  // ... an order without the deadline the agent stamps, one where the bot sent its own, or one
  // on a method that takes none.
  [['POST', '/0/private/AddOrder', '', 'pair=XBTUSD'], ['POST', '/0/private/AddOrder', '', 'nonce=17&pair=XBTUSD']],
  [['POST', '/0/private/AmendOrder', '', '{"txid":"O1"}'], ['POST', '/0/private/AmendOrder', '', '{"nonce":"17","txid":"O1"}']],
  [['POST', '/0/private/AddOrder', '', `deadline=${DEADLINE}`], ['POST', '/0/private/AddOrder', '', `nonce=17&deadline=${DEADLINE_FORM}&deadline=${DEADLINE}`]],
  [['POST', '/0/private/CancelOrder', '', 'txid=O1'], ['POST', '/0/private/CancelOrder', '', `nonce=17&deadline=${DEADLINE_FORM}&txid=O1`]],
  [['POST', '/0/private/AddOrder', '', 'pair=XBTUSD'], ['POST', '/0/private/AddOrder', '', `nonce=17&deadline=${DEADLINE}&pair=XBTUSD`]],
];

test('an answer to another request is a ProtocolError', () => {
  for (const [sent, got] of ANOTHER_REQUESTS) {
    assert.throws(
      () => checkAnswers(sign(sent), reply(got)),
      (e) => e instanceof ProtocolError && /not the answer to this request/.test(e.message),
      JSON.stringify(got),
    );
  }
});

test('a ws_login answer has no query and no headers', () => {
  const sent = sign(['GET', '/v5/private', '', ''], 'ws_login');
  assert.doesNotThrow(() => checkAnswers(sent, reply(['GET', '/v5/private', '', '{"op":"auth","args":[]}'], {})));
  for (const got of [
    reply(['GET', '/v5/private', 'a=1', '{}'], {}),
    reply(['GET', '/v5/private', '', '{}']),
    reply(['GET', '/realtime', '', '{}'], {}),
  ]) {
    assert.throws(() => checkAnswers(sent, got), ProtocolError);
  }
});
