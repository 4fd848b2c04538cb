"""Send a signed request's URL through ccxt's ``requests`` session exactly as the agent signed it.

``requests`` re-encodes a URL when it prepares a request (``%41`` becomes ``A``, ``[]``
becomes ``%5B%5D``) and urllib3 does again before writing the request line, so what the
exchange hashes would not be what the agent signed (Upbit's ``states[]=wait``, Bybit's query
as it is). For the one call :func:`sending` marks, the session's ``request`` prepares the
request as usual, puts the signed URL back, and sends it through an adapter whose urllib3
connections write the request target as given. Any other call goes through the session
untouched. Redirects are not followed for a signed request (ccxt gets the 3xx answer).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

_local = threading.local()  # .url: the URL to send as it is; .target: the request target


def _exact_target() -> Optional[str]:
    return getattr(_local, "target", None)


@contextlib.contextmanager
def sending(exchange: Any, url: str) -> Iterator[None]:
    """While inside, ``exchange.session.request(method, url, ...)`` sends ``url`` byte for byte."""
    session = getattr(exchange, "session", None)
    if session is not None and not getattr(session, "_tapsign_exact", False):
        _wrap(session)
    before = getattr(_local, "url", None)
    _local.url = url
    try:
        yield
    finally:
        _local.url = before


def _wrap(session: Any) -> None:
    import requests

    original = session.request
    adapter = _adapter()

    def request(method: Any, url: Any, params: Any = None, data: Any = None, headers: Any = None,
                cookies: Any = None, files: Any = None, auth: Any = None, timeout: Any = None,
                allow_redirects: bool = True, proxies: Any = None, hooks: Any = None,
                stream: Any = None, verify: Any = None, cert: Any = None, json: Any = None) -> Any:
        exact = getattr(_local, "url", None)
        if exact is None or url != exact or params:
            return original(method, url, params=params, data=data, headers=headers, cookies=cookies,
                            files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                            proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert,
                            json=json)
        req = requests.Request(method=str(method).upper(), url=url, headers=headers, files=files,
                               data=data or {}, json=json, params={}, auth=auth, cookies=cookies,
                               hooks=hooks)
        prep = session.prepare_request(req)
        prep.url = exact  # prepare() re-encoded it
        settings = session.merge_environment_settings(prep.url, proxies or {}, stream, verify, cert)
        response = adapter.send(prep, timeout=timeout, **settings)
        if not settings.get("stream"):
            response.content  # read it all, as Session.send does
        return response

    session.request = request
    session._tapsign_exact = True


_ADAPTER: Any = None
_ADAPTER_LOCK = threading.Lock()


def _adapter() -> Any:
    global _ADAPTER
    with _ADAPTER_LOCK:
        if _ADAPTER is None:
            _ADAPTER = _make_adapter()
        return _ADAPTER


def _make_adapter() -> Any:
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Connection(HTTPConnection):
        def putrequest(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
            super().putrequest(method, _exact_target() or url, *args, **kwargs)

    class _TLSConnection(HTTPSConnection):
        def putrequest(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
            super().putrequest(method, _exact_target() or url, *args, **kwargs)

    class _Targets:
        """A pool whose connections write the target requests asked for (path and query, or
        the whole URL through a proxy), not urllib3's re-encoding of it."""

        def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            before = _exact_target()
            _local.target = url
            try:
                return super().urlopen(method, url, *args, **kwargs)  # type: ignore[misc]
            finally:
                _local.target = before

    class _Pool(_Targets, HTTPConnectionPool):
        ConnectionCls = _Connection

    class _TLSPool(_Targets, HTTPSConnectionPool):
        ConnectionCls = _TLSConnection

    pools = {"http": _Pool, "https": _TLSPool}

    class _ExactAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(pools)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            # An HTTP(S) proxy; a SOCKS one has connection classes of its own.
            if not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = dict(pools)
            return manager

    return _ExactAdapter()
