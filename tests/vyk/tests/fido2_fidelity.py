"""python-fido2 drives the virtual key's FIDO2 applet over PC/SC (CtapPcscDevice).

Run by tests/vyk/tests/fido2_fidelity.rs inside its private pcscd stack:
    python fido2_fidelity.py SCENARIO READER [PIN]
Prints one JSON object on stdout; the Rust test makes the assertions, so this file only
collects what the independent client sees (outputs as hex, CTAP error codes as ints).
"""

import json
import os
import sys

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.pcsc import CtapPcscDevice
from fido2.webauthn import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRequestOptions,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
)

RP_ID = "example.com"
SALT1 = bytes(range(32))
SALT2 = bytes(range(32, 64))


def device(reader):
    devices = list(CtapPcscDevice.list_devices(reader))
    if len(devices) != 1:
        raise SystemExit(f"expected one FIDO device on {reader!r}, found {devices}")
    return devices[0]


class Interaction(UserInteraction):
    def __init__(self, pin):
        self.pin = pin
        self.pin_requests = 0

    def request_pin(self, permissions, rp_id):
        self.pin_requests += 1
        return self.pin


def client(dev, interaction):
    return Fido2Client(
        dev,
        client_data_collector=DefaultClientDataCollector("https://" + RP_ID),
        user_interaction=interaction,
        extensions=[HmacSecretExtension(allow_hmac_secret=True)],
    )


def register(c):
    options = PublicKeyCredentialCreationOptions(
        rp=PublicKeyCredentialRpEntity(id=RP_ID, name="tapsign"),
        user=PublicKeyCredentialUserEntity(id=b"tapsign-user", name="tapsign"),
        challenge=os.urandom(32),
        pub_key_cred_params=[PublicKeyCredentialParameters(type="public-key", alg=-7)],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key="discouraged", user_verification="discouraged"
        ),
        extensions={"hmacCreateSecret": True},
    )
    result = c.make_credential(options)
    created = result.client_extension_results.hmac_create_secret
    return result.raw_id, bool(created)


def evaluate(c, cred_id, salt1, salt2=None, uv="discouraged"):
    salts = {"salt1": salt1}
    if salt2:
        salts["salt2"] = salt2
    options = PublicKeyCredentialRequestOptions(
        challenge=os.urandom(32),
        rp_id=RP_ID,
        allow_credentials=[PublicKeyCredentialDescriptor(type="public-key", id=cred_id)],
        user_verification=uv,
        extensions={"hmacGetSecret": salts},
    )
    response = c.get_assertion(options).get_response(0)
    flags = response.response.authenticator_data.flags
    out = response.client_extension_results.hmac_get_secret
    return {
        "output1": out.output1.hex(),
        "output2": out.output2.hex() if out.output2 else None,
        "flags": int(flags),
    }


def ctap_code(call):
    """Runs call(); returns 0 on success or the CTAP error code."""
    try:
        call()
        return 0
    except CtapError as e:
        return int(e.code)


def hmac_scenario(reader, pin):
    dev = device(reader)
    info = Ctap2(dev).get_info()
    interaction = Interaction(pin)
    c = client(dev, interaction)
    cred_id, created = register(c)
    report = {
        "versions": list(info.versions),
        "pin_uv_protocols": list(info.pin_uv_protocols),
        "aaguid": bytes(info.aaguid).hex(),
        "hmac_create_secret": created,
        "credential_id_len": len(cred_id),
        "salt1": evaluate(c, cred_id, SALT1),
        "salt1_again": evaluate(c, cred_id, SALT1),
        "salt2": evaluate(c, cred_id, SALT2),
        "both": evaluate(c, cred_id, SALT1, SALT2),
    }
    if pin:
        report["salt1_uv"] = evaluate(c, cred_id, SALT1, uv="required")
        report["salt1_uv_again"] = evaluate(c, cred_id, SALT1, uv="required")
    report["pin_requests"] = interaction.pin_requests
    return report


def pin_scenario(reader, _pin):
    dev = device(reader)
    ctap = Ctap2(dev)
    v2, v1 = ClientPin(ctap, PinProtocolV2()), ClientPin(ctap, PinProtocolV1())
    report = {"client_pin_before": ctap.get_info().options.get("clientPin")}
    v2.set_pin("1234")
    report["client_pin_after"] = ctap.get_info().options.get("clientPin")
    report["retries_fresh"] = v2.get_pin_retries()[0]
    report["wrong"] = ctap_code(lambda: v2.get_pin_token("9999"))
    report["retries_after_wrong"] = v2.get_pin_retries()[0]
    report["right_v2"] = len(v2.get_pin_token("1234", ClientPin.PERMISSION.GET_ASSERTION, RP_ID))
    report["retries_after_right"] = v2.get_pin_retries()[0]
    report["right_v1_legacy"] = len(v1.get_pin_token("1234"))
    report["set_again"] = ctap_code(lambda: v2.set_pin("5678"))
    report["change_wrong_old"] = ctap_code(lambda: v1.change_pin("0000", "5678"))
    v1.change_pin("1234", "5678")
    report["old_after_change"] = ctap_code(lambda: v2.get_pin_token("1234"))
    report["new_after_change"] = len(v2.get_pin_token("5678"))
    report["retries_end"] = v2.get_pin_retries()[0]
    return report


def blocked_scenario(reader, pin):
    ctap = Ctap2(device(reader))
    cp = ClientPin(ctap)
    codes = [ctap_code(lambda: cp.get_pin_token("0000")) for _ in range(4)]
    retries, power_cycle = cp.get_pin_retries()
    right = ctap_code(lambda: cp.get_pin_token(pin))
    return {"codes": codes, "retries": retries, "power_cycle": power_cycle, "right": right}


def replugged_scenario(reader, pin):
    ctap = Ctap2(device(reader))
    cp = ClientPin(ctap)
    retries, power_cycle = cp.get_pin_retries()
    right = ctap_code(lambda: cp.get_pin_token(pin))
    return {
        "retries": retries,
        "power_cycle": power_cycle,
        "right": right,
        "retries_after": cp.get_pin_retries()[0],
    }


SCENARIOS = {
    "hmac": hmac_scenario,
    "pin": pin_scenario,
    "blocked": blocked_scenario,
    "replugged": replugged_scenario,
}

if __name__ == "__main__":
    scenario, reader = sys.argv[1], sys.argv[2]
    pin = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(SCENARIOS[scenario](reader, pin)))
