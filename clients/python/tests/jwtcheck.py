"""Upbit and Bithumb: a JWT per request, keyed with the secret as raw bytes, whose
``query_hash`` is the hex SHA-512 of the parameter string (docs/exchanges.md,
"Upbit" and "Bithumb"): for GET/DELETE the query as sent, unencoded; for POST the JSON body's
top-level pairs as ``k=v&...`` in body order, arrays as ``key[]=v``."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Dict, List, Optional, Tuple

import diffkit
from diffkit import Sent

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def hashed_string(s: Sent) -> Optional[str]:
    if s.method in ("GET", "DELETE") or not s.body:
        return s.query or None
    pairs: List[Tuple[str, Any]] = json.loads(s.body, object_pairs_hook=list)
    out = []
    for k, v in pairs:
        for item in v if isinstance(v, list) else [v]:
            out.append(f"{k}[]={item}" if isinstance(v, list) else f"{k}={item}")
    return "&".join(out) or None


def verify(s: Sent, access_key: str, secret: str, alg: str, with_timestamp: bool) -> Dict[str, Any]:
    header, claims, signing_input, sig = diffkit.jwt_parts(diffkit.bearer(s))
    assert header == {"alg": alg, "typ": "JWT"}
    digest = {"HS512": hashlib.sha512, "HS256": hashlib.sha256}[alg]
    import hmac

    assert hmac.new(secret.encode(), signing_input, digest).digest() == sig, "JWT signature"
    assert claims["access_key"] == access_key
    assert UUID4.match(claims["nonce"]), "a fresh UUID v4 nonce"
    expected = {"access_key", "nonce"}
    if with_timestamp:
        expected.add("timestamp")
        assert abs(claims["timestamp"] - time.time() * 1000) < 30_000
    hashed = hashed_string(s)
    if hashed is not None:
        expected |= {"query_hash", "query_hash_alg"}
        assert claims["query_hash"] == hashlib.sha512(hashed.encode()).hexdigest()
        assert claims["query_hash_alg"] == "SHA512"
    assert set(claims) == expected
    return claims
