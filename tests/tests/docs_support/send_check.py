# Runs after docs/exchanges.md's Python example (which defines `send`): serves HTTP on
# loopback, has the agent (TAPSIGN_SOCK, a key named upbit-main, unlocked) sign two requests
# through the Python client, sends what `sign` returned through `send` as the example's comment
# does, and prints each request line and body as the server read them off the wire
# (tests/tests/docs.rs checks them). A `send` written for another shape than the client's
# `SignedRequest` fails here (red-team round 26: it indexed a dict).
import http.client
import http.server
import threading

import tapsign

seen = []


class Recorder(http.server.BaseHTTPRequestHandler):
    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        seen.append((self.requestline, self.rfile.read(length).decode()))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = record

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
threading.Thread(target=server.serve_forever, daemon=True).start()
http.client.HTTPSConnection = http.client.HTTPConnection  # the test server has no TLS
host = f"127.0.0.1:{server.server_port}"
agent = tapsign.Agent()
for signed in (
    agent.sign("upbit-main", "GET", "/v1/orders/open",
               query="market=KRW-BTC&states[]=wait&states[]=watch"),
    agent.sign("upbit-main", "POST", "/v1/orders",
               body='{"market":"KRW-BTC","side":"bid","ord_type":"price","price":"10000"}'),
):
    assert isinstance(signed, tapsign.SignedRequest), type(signed)
    send(host, signed, "application/json; charset=utf-8").read()
for line, body in seen:
    print(line)
    print("body", body)
server.shutdown()
