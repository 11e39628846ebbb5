"""A JSON-RPC proxy in front of a real litecoind: forwards every call with the node's own
credentials, and lets a test rewrite results (`rewrite(method, result)`) or take the node
"down" (HTTP 502 for every request, as a dead node behind a load balancer answers).

`calls` counts the JSON-RPC methods that reached the node through this proxy (batch items one
by one; requests refused while down are not counted).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Rewrite = Callable[[str, Any], Any]


def unchanged(method: str, result: Any) -> Any:
    return result


def dumps_with_decimals(document: Any) -> bytes:
    """JSON with Decimals as plain numbers, as the node writes them (not as strings)."""
    text = json.dumps(document, default=lambda d: f"@@{d}@@")
    return re.sub(r'"@@(-?[0-9.E+-]+)@@"', r"\1", text).encode()


class LyingProxy:
    """Forwards JSON-RPC to the real node and lets `rewrite(method, result)` forge results.
    Any Basic auth the client sends is replaced by the node's (`auth`)."""

    def __init__(self, upstream: str, auth: tuple[str, str], rewrite: Rewrite = unchanged) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if proxy.down:
                    self.send_response(502)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                request = json.loads(body)
                answer = httpx.post(upstream, content=body, auth=auth, timeout=30)
                decoded = json.loads(answer.text, parse_float=Decimal)
                items = decoded if isinstance(decoded, list) else [decoded]
                calls = request if isinstance(request, list) else [request]
                with proxy._lock:
                    proxy.calls.update(str(call["method"]) for call in calls)
                for call, item in zip(calls, items, strict=True):
                    if item.get("error") is None:
                        item["result"] = proxy.rewrite(call["method"], item["result"])
                out = dumps_with_decimals(decoded)
                self.send_response(answer.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_: Any) -> None:
                pass

        self.rewrite = rewrite
        self.down = False
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
