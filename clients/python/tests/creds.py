"""Test credentials, one per exchange, stored in the test agent with `tapsign key add`. None is
real. Where an exchange publishes an example key, it is that one."""

from __future__ import annotations

import base64
from typing import Dict, List

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

# Binance's published example (docs/exchanges.md uses it too).
BINANCE = ["vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
           "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"]
UPBIT = ["upbit-access-key-0000000000000000000000", "upbit-secret-key-1111111111111111111111"]
BITHUMB = ["bithumb-access-key-22222222222222222222", "bithumb-secret-key-3333333333333333333333"]
BYBIT = ["XXXXXXXXXXbybitkey", "YYYYYYYYYYYYYYYYYYbybitsecretYYYYYYYYY"]
OKX = ["okx-api-key-4444-4444", "OKXSECRET5555555555555555555555555", "okx-Passphrase-1!"]
GATE = ["gate-key-666666666666666666666666", "gate-secret-77777777777777777777777777777777777777777777777777777777"]
# KuCoin's published example key and secret, with a passphrase of our own.
KUCOIN = ["5c2db93503aa674c74a31734", "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3", "kucoin-passphrase-1"]
BITGET = ["bg_0123456789abcdef0123456789abcdef", "bitgetsecret8888888888888888888888888888888888888888888888888888", "bitgetPass99"]
KRAKEN = ["kraken-api-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          base64.b64encode(bytes(range(64))).decode()]

_cb_key = ec.generate_private_key(ec.SECP256R1())
COINBASE_KEY_NAME = "organizations/11111111-2222-3333-4444-555555555555/apiKeys/66666666-7777-8888-9999-000000000000"
COINBASE_PEM = _cb_key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
).decode()
COINBASE_PUBLIC = _cb_key.public_key()
COINBASE = [COINBASE_KEY_NAME, COINBASE_PEM.strip()]

_bn_ed = ed25519.Ed25519PrivateKey.generate()
BINANCE_ED25519_PEM = _bn_ed.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
BINANCE_ED25519_PUBLIC = _bn_ed.public_key()
BINANCE_ED25519 = ["binance-ed25519-api-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", BINANCE_ED25519_PEM.strip()]

# name -> (exchange, fields)
KEYS: Dict[str, "tuple[str, List[str]]"] = {
    "upbit-main": ("upbit", UPBIT),
    "bithumb-main": ("bithumb", BITHUMB),
    "binance-main": ("binance", BINANCE),
    "binance-ed": ("binance", BINANCE_ED25519),
    "bybit-main": ("bybit", BYBIT),
    "okx-main": ("okx", OKX),
    "coinbase-main": ("coinbase", COINBASE),
    "kraken-main": ("kraken", KRAKEN),
    "gate-main": ("gate", GATE),
    "kucoin-main": ("kucoin", KUCOIN),
    "bitget-main": ("bitget", BITGET),
}
