"""seccomp_profile_sha256 (reference policy-format.md §5.6)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.policy.seccomp import normalize, profile_sha256, security_context_sha256

PROFILE = {
    "syscalls": [{"comment": "dropped", "names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"op": "SCMP_CMP_EQ", "valueTwo": 0, "extra": 1}]},
                 {"errnoRet": 1}],
    "architectures": ["SCMP_ARCH_X86_64"],
    "unknown": True,
    "defaultErrnoRet": 38,
}
# fixed key order, defaults filled in, unknown keys gone; written out by hand
NORMALIZED = ('{"defaultAction":"","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],'
              '"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW",'
              '"args":[{"index":0,"value":0,"valueTwo":0,"op":"SCMP_CMP_EQ"}]},'
              '{"names":[],"action":"","errnoRet":1}]}')


def test_normalize():
    assert json.dumps(normalize(PROFILE), separators=(",", ":")) == NORMALIZED


def test_hash_of_base64_profile():
    encoded = base64.b64encode(json.dumps(PROFILE, indent=4).encode()).decode()
    assert security_context_sha256(encoded) == hashlib.sha256(NORMALIZED.encode()).hexdigest()
    assert profile_sha256(json.dumps(PROFILE)) == hashlib.sha256(NORMALIZED.encode()).hexdigest()


@pytest.mark.parametrize("value", [None, {"type": "RuntimeDefault"}, {"type": "Unconfined"}])
def test_no_hash(value):
    assert security_context_sha256(value) == ""


def test_localhost_needs_a_profile():
    with pytest.raises(UserInputError) as info:
        security_context_sha256({"type": "Localhost"})
    assert info.value.message == "Localhost profile type specified but no seccomp JSON provided."
    assert security_context_sha256({"type": "Localhost"}, PROFILE) == hashlib.sha256(NORMALIZED.encode()).hexdigest()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"[1]").decode(),
                                   base64.b64encode(b"{oops").decode()])
def test_bad_profiles(value):
    with pytest.raises(UserInputError):
        security_context_sha256(value)
