"""dialer.core.forms: flat form bodies, from hand-built bytes (no socket), and
against the stdlib's readers (``email`` for multipart, ``parse_qsl``) on valid bodies."""

from __future__ import annotations

import email.parser
import email.policy
from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core import forms
from dialer.core.errors import ProtocolError

B = "XyZ"
CT = f"multipart/form-data; boundary={B}"


def part(name: str, value: str, headers: str = "") -> bytes:
    return (
        f'--{B}\r\nContent-Disposition: form-data; name="{name}"\r\n{headers}\r\n'.encode()
        + value.encode()
        + b"\r\n"
    )


def one(headers: bytes, value: bytes = b"v") -> bytes:
    """A body of one part with these raw header lines."""
    return b"--XyZ\r\n" + headers + b"\r\n\r\n" + value + b"\r\n--XyZ--"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{B}--\r\n".encode()


EXOTEL = body(
    part("CallSid", "a1b2c3"),
    part("Status", "completed"),
    part("EventType", "terminal"),
    part("CustomField", "c:1"),
    part("Legs", '[{"OnCallDuration": 7, "Status": "completed"}]'),
    part("RecordingUrl", ""),
)


def test_an_exotel_multipart_callback() -> None:
    assert forms.parse(CT, EXOTEL) == [
        ("CallSid", "a1b2c3"),
        ("Status", "completed"),
        ("EventType", "terminal"),
        ("CustomField", "c:1"),
        ("Legs", '[{"OnCallDuration": 7, "Status": "completed"}]'),
        ("RecordingUrl", ""),
    ]


@pytest.mark.parametrize(
    ("ctype", "data", "pairs"),
    [
        ("application/x-www-form-urlencoded", b"a=1&b=&c", [("a", "1"), ("b", ""), ("c", "")]),
        ("application/x-www-form-urlencoded", b"a=x+y&b=%3A%C3%A9", [("a", "x y"), ("b", ":é")]),
        ("application/x-www-form-urlencoded; charset=latin-1", b"a=%E9", [("a", "é")]),
        ("application/x-www-form-urlencoded", b"", []),
        ("application/x-www-form-urlencoded", b"a=1\r\n", [("a", "1")]),
        # a quoted boundary, a preamble, transport padding, an epilogue
        (
            'multipart/form-data; boundary="XyZ"',
            b"preamble\r\n" + part("a", "1").replace(b"XyZ\r\n", b"XyZ  \r\n") + b"--XyZ--junk",
            [("a", "1")],
        ),
        # a part charset, an escaped quote in a name, a value with CRLF, an empty filename
        (
            CT,
            body(
                part("a", "é", "Content-Type: text/plain; charset=utf-8\r\n"),
                b'--XyZ\r\nContent-Disposition: form-data; name="q\\"n"\r\n\r\nx\r\ny\r\n',
                b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename=""\r\n\r\nv\r\n',
            ),
            [("a", "é"), ('q"n', "x\r\ny"), ("f", "v")],
        ),
        (
            CT,
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
            b"Content-Type: text/plain; charset=latin-1\r\n\r\n\xe9\r\n--XyZ--",
            [("a", "é")],
        ),
        (CT, b"--XyZ--\r\n", []),
    ],
)
def test_valid_bodies(ctype: str, data: bytes, pairs: list[tuple[str, str]]) -> None:
    assert forms.parse(ctype, data) == pairs


@pytest.mark.parametrize(
    ("ctype", "data", "why"),
    [
        ("multipart/form-data", EXOTEL, "without a boundary"),
        ("multipart/form-data; boundary=" + "x" * 71, EXOTEL, "bad multipart boundary"),
        ("multipart/form-data; boundary=a\\b", EXOTEL, "bad multipart boundary"),
        (CT, b"no boundary here", "opening boundary"),
        (CT, part("a", "1"), "closing boundary"),
        (CT, b"--XyZ\r\nContent-Disposition: form-data", "too long or unterminated"),
        (CT, b"--XyZ", "closing boundary"),
        (CT, b"--XyZjunk\r\n" + part("a", "1")[7:] + b"--XyZ--", "boundary line"),
        (CT, one(b"x" * 600_000), "too long"),
        (CT, one(b'Content-Disposition: form-data; name="\x1f"'), "control"),
        (CT, b"--XyZ\r\n\r\nv\r\n--XyZ--", "without headers"),
        (CT, one(b"Content-Type: text/plain"), "without a name"),
        (CT, one(b"No-Colon"), "malformed multipart part header"),
        (CT, body(part("a", "1", "Content-Type: application/octet-stream\r\n")), "only text"),
        (CT, body(part("a", "1", "Content-Type: multipart/mixed; boundary=Q\r\n")), "only text"),
        (CT, body(part("a", "1", "Content-Transfer-Encoding: base64\r\n")), "transfer"),
        (CT, body(part("a", "1", "Content-Type: text/plain; charset=nope\r\n")), "charset"),
        (CT, one(b'Content-Disposition: form-data; name="f"; filename="a.txt"'), "file field 'f'"),
        (CT, one(b"Content-Disposition: attachment; name=a"), "not form-data"),
        (CT, one(b"Content-Disposition: form-data; name=a", b"\xff"), "utf-8"),
        (CT, one(b"Content-Disposition: form-data; name=\xff"), "UTF-8"),
        (CT, one(b'Content-Disposition: form-data; name="a'), "header"),
        (CT, body(*[part("a", "1")] * (forms.MAX_FIELDS + 1)), "more than"),
        ("application/x-www-form-urlencoded; charset=no-such", b"a=1", "unknown charset"),
        ("application/x-www-form-urlencoded; charset=utf-16", b"a=1", "utf-16"),
        ("application/x-www-form-urlencoded", b"a=\xff", "utf-8"),
        ("application/x-www-form-urlencoded", b"a&" * forms.MAX_FIELDS, "more than"),
        ("text/plain", b"a=1", "not a form"),
    ],
)
def test_malformed_bodies_say_why(ctype: str, data: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match="(?i)" + why.replace("(", r"\(")):
        forms.parse(ctype, data)


def test_header_params() -> None:
    assert forms.header_params('form-data; name="a;b"; filename=x.txt;') == (
        "form-data",
        {"name": "a;b", "filename": "x.txt"},
    )
    assert forms.header_params("Multipart/Form-Data") == ("multipart/form-data", {})
    with pytest.raises(ProtocolError):
        forms.header_params('form-data; name="unterminated')


# Field names and values as a browser or Exotel writes them: any text without
# surrogates; names without CR, LF or '"' (browsers percent-encode those).
values = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
names = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='"\\'),
    min_size=1,
    max_size=20,
)
field_lists = st.lists(st.tuples(names, values), max_size=12)


def email_multipart(ctype: str, data: bytes) -> list[tuple[str, str]]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + data
    )
    out = []
    for p in msg.iter_parts():  # type: ignore[attr-defined]
        payload = p.get_payload(decode=True)
        out.append((p.get_param("name", header="content-disposition"), payload.decode()))
    return out


@settings(max_examples=300, deadline=None)
@given(
    pairs=field_lists, boundary=st.sampled_from(["XyZ", "----WebKitFormBoundary7MA4YWxkTrZu0gW"])
)
def test_multipart_agrees_with_the_stdlib(pairs: list[tuple[str, str]], boundary: str) -> None:
    if not pairs or any(f"--{boundary}" in v for _, v in pairs):
        return
    data = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in pairs
        )
        + f"--{boundary}--\r\n".encode()
    )
    ctype = f"multipart/form-data; boundary={boundary}"
    assert forms.parse(ctype, data) == pairs
    if all("\r" not in v and "\n" not in v for _, v in pairs):
        # the email package normalises line ends inside values: compare where it cannot
        assert email_multipart(ctype, data) == pairs


@settings(max_examples=300, deadline=None)
@given(pairs=field_lists)
def test_urlencoded_agrees_with_parse_qsl(pairs: list[tuple[str, str]]) -> None:
    data = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode()
    got = forms.parse("application/x-www-form-urlencoded", data)
    assert got == parse_qsl(data.rstrip().decode(), keep_blank_values=True)
    assert got == pairs
