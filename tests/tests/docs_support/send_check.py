# Runs after docs/exchanges.md's Python example (which defines `send`): serves HTTP on
# loopback, sends two signed requests through `send`, and prints each request line and body
# as the server read them off the wire (tests/tests/docs.rs checks them).
import http.client
import http.server
import threading

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
for signed in (
    {"method": "GET", "path": "/v1/orders/open",
     "query": "market=KRW-BTC&states[]=wait&states[]=watch", "body": "",
     "headers": {"Authorization": "Bearer x"}},
    {"method": "POST", "path": "/v1/orders", "query": "",
     "body": '{"market":"KRW-BTC","side":"bid"}', "headers": {"Authorization": "Bearer x"}},
):
    send(host, signed, "application/json; charset=utf-8").read()
for line, body in seen:
    print(line)
    print("body", body)
server.shutdown()
