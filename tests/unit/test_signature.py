import pytest

from bot.rules.signature import SignatureCheck, check_signature, sign

# RFC-style vector published on Wikipedia's HMAC page (key "key").
FOX_KEY = "key"
FOX_BODY = b"The quick brown fox jumps over the lazy dog"
FOX_HEX = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"

# Computed independently with `openssl dgst -sha256 -hmac test-app-secret`.
SECRET = "test-app-secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'
BODY_HEX = "c84a394cc475525991e78ff16e430b02e47f953877d2af0ade26956ce6f384dc"


def test_sign_matches_known_vectors():
    assert sign(FOX_KEY, FOX_BODY) == "sha256=" + FOX_HEX
    assert sign(SECRET, BODY) == "sha256=" + BODY_HEX


@pytest.mark.parametrize(
    "header",
    ["sha256=" + BODY_HEX, "sha256=" + BODY_HEX.upper(), "  sha256=" + BODY_HEX + "\n"],
    ids=["lower", "upper-hex", "surrounding-space"],
)
def test_valid_signature(header):
    assert check_signature(SECRET, BODY, header) is SignatureCheck.OK


@pytest.mark.parametrize("header", [None, "", "   "], ids=["none", "empty", "blank"])
def test_missing_signature(header):
    assert check_signature(SECRET, BODY, header) is SignatureCheck.MISSING


@pytest.mark.parametrize(
    "header",
    [
        BODY_HEX,  # no prefix
        "sha1=" + BODY_HEX[:40],
        "SHA256=" + BODY_HEX,
        "sha256=",
        "sha256=" + BODY_HEX[:-1],  # too short
        "sha256=" + BODY_HEX + "0",  # too long
        "sha256=" + "z" * 64,  # not hex
        "sha256=" + "é" * 64,
        "sha256=" + "0" * 64,  # well-formed, wrong digest
        "sha256=" + FOX_HEX,  # right shape, other body
    ],
)
def test_invalid_signature(header):
    assert check_signature(SECRET, BODY, header) is SignatureCheck.INVALID


def test_signature_is_over_the_exact_bytes():
    # Same JSON, different bytes: Meta signed the bytes, so this must fail.
    reformatted = b'{"object": "whatsapp_business_account", "entry": []}'
    assert check_signature(SECRET, reformatted, "sha256=" + BODY_HEX) is SignatureCheck.INVALID


def test_wrong_secret_is_invalid():
    assert check_signature("other-secret", BODY, "sha256=" + BODY_HEX) is SignatureCheck.INVALID


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        check_signature("", BODY, "sha256=" + BODY_HEX)
    with pytest.raises(ValueError):
        sign("", BODY)


def test_non_ascii_secret_is_utf8():
    header = sign("sécret", b"x")
    assert check_signature("sécret", b"x", header) is SignatureCheck.OK
    assert check_signature("secret", b"x", header) is SignatureCheck.INVALID


class _FakeSession:
    """Records posts and answers with a scripted list of status codes."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.posts = []

    def post(self, url, data, headers, timeout):
        self.posts.append((url, data, headers))
        return type("Response", (), {"status_code": self.statuses.pop(0)})()


def test_meta_sender_signs_like_meta():
    from sandbox.meta import MetaSender

    session = _FakeSession([200])
    sender = MetaSender("http://127.0.0.1:1/hook", SECRET, session=session)
    assert sender.deliver({"object": "whatsapp_business_account", "entry": [], "x": "👍"}) == 200
    ((url, body, headers),) = session.posts
    assert url == "http://127.0.0.1:1/hook"
    assert body == b'{"object":"whatsapp_business_account","entry":[],"x":"\\ud83d\\udc4d"}'
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "facebookexternalua"
    assert check_signature(SECRET, body, headers["X-Hub-Signature-256"]) is SignatureCheck.OK


def test_meta_sender_retries_until_200_with_the_same_bytes():
    from sandbox.meta import MetaSender

    session = _FakeSession([503, 500, 200])
    sender = MetaSender("http://x/hook", SECRET, session=session)
    assert sender.deliver(b"{}", retries_until_200=True, delay=0) == 200
    assert [p[1] for p in session.posts] == [b"{}"] * 3

    session = _FakeSession([503, 503])
    sender = MetaSender("http://x/hook", SECRET, session=session)
    assert sender.deliver(b"{}", retries_until_200=True, max_tries=2, delay=0) == 503
    assert MetaSender("http://x/hook", SECRET, session=_FakeSession([403])).deliver(b"{}") == 403
