#!/usr/bin/env python3
"""Seeds with BuildKit's "prefix:" session-name forms (docs/session-names.md)
for the inspector and call-glue fuzzers: Session, local.session,
local-sessionid:*, ResolveImageConfig.SessionID and ResolveSourceMeta attrs
holding "p:rest", "p:", ":rest" and "a:b:c".  Run from the repository root;
writes into tests/fuzz/seeds/."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(num, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def entry(k, v):
    return ld(1, k) + ld(2, v)


def source_op(ident, attrs):
    return ld(1, ident) + b"".join(ld(2, entry(k, v)) for k, v in attrs)


def op_source(ident, attrs):
    return ld(3, source_op(ident, attrs))  # Op.source = 3


def solve(session, local_session, sessionid_attr):
    ops = [op_source("local://context", [("local.session", local_session)]),
           op_source("local://dockerfile", [("local.session", ":" + local_session)])]
    definition = b"".join(ld(1, o) for o in ops)
    return (ld(1, "r1") + ld(2, definition) + ld(5, session) + ld(6, "dockerfile.v0") +
            ld(7, entry("local-sessionid:context", sessionid_attr)))


ALICE = "alice.q2jnwdkas0i0iu4knchd92jaz"
seeds = {
    "fuzz_inspect/control-solve-prefix-session": solve("x:" + ALICE, "x:" + ALICE, "ctx:" + ALICE),
    "fuzz_inspect/control-solve-prefix-empty-rest": solve("p:", "p:", ":"),
    "fuzz_inspect/control-solve-prefix-many-colons": solve("a:b:c", "a:" + ALICE + ":c", "::"),
    # fuzz_policy_call: byte 0 = policy 1 (isolated builder), byte 1 = method index
    "fuzz_policy_call/prefix-solve.bin": b"\x01\x00" + solve("x:" + ALICE, "x:" + ALICE, "ctx:abc"),
    "fuzz_policy_call/prefix-resolve-image.bin": b"\x01\x0a" + ld(1, "alpine") + ld(6, "x:" + ALICE),
    "fuzz_policy_call/prefix-resolve-source.bin":
        b"\x01\x0b" + ld(1, source_op("local://ctx", [("local.session", "x:" + ALICE),
                                                      ("oci.session", "p:")])),
}
for name, data in seeds.items():
    with open("tests/fuzz/seeds/" + name, "wb") as f:
        f.write(data)
