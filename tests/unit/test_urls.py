import pytest

from rules.errors import InvalidUrl
from rules.urls import MAX_HOST_LENGTH, MAX_LABEL_LENGTH, check_well_formed

LONGEST_HOST = ".".join(["a" * 63] * 3 + ["a" * 61])


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "http://127.0.0.1:9000/hook",
        "http://[::1]/hook",
        "https://example.com./hook",  # the root's dot
        "https://bücher.example/hook",  # an internationalised name
        "https://xn--bcher-kva.example/hook",
        "https://_acme.example.com/hook",
        "https://" + "a" * MAX_LABEL_LENGTH + ".example.com/hook",
        f"https://{LONGEST_HOST}/hook",
        "ftp://example.com/hook",  # well formed; whether acceptable is the caller's rule
    ],
)
def test_well_formed_urls_pass(url):
    check_well_formed(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://" + "a" * 64 + ".example.com/hook", "label of 64 characters"),
        (f"https://{LONGEST_HOST}a/hook", f"at most {MAX_HOST_LENGTH}"),
        ("https://" + "ü" * 60 + ".example/hook", "internationalised"),  # too long once encoded
        ("https://a..example.com/hook", "empty label"),
        ("https://.example.com/hook", "empty label"),
        ("https://exa\x00mple.com/hook", "control characters"),
        ("https://example.com/ho\tok", "control characters"),
        ("https://exa mple.com/hook", "spaces"),
        ("https://example.com:99999/hook", "Port out of range"),
        ("https://[zz]/hook", "not a valid URL"),
        ("http:///hook", "has no host"),
        ("https://999.1.1.1/hook", "not a valid IPv4 address"),
        ("https://\u2603.example/hook", "internationalised"),
        ("https://exa%00mple.com/hook", "only letters, digits"),
    ],
)
def test_malformed_urls_are_refused_saying_why(url, says):
    with pytest.raises(InvalidUrl, match=says) as refused:
        check_well_formed(url)

    assert refused.value.code == "invalid_url"
