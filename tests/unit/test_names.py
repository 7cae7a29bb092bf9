import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import InvalidName
from rules.names import normalize

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True).filter(lambda label: label[2:4] != "--")


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("example.com", "example.com"),
        ("  Example.COM  ", "example.com"),
        ("example.com.", "example.com"),
        ("shop.example.co.uk", "shop.example.co.uk"),
        ("Bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("ＥＸＡＭＰＬＥ.com", "example.com"),
        ("example。com", "example.com"),
    ],
)
def test_domain_names_come_back_as_lowercase_a_labels(given_name, expected):
    assert normalize("domain", given_name) == expected


@pytest.mark.parametrize(
    ("bad_name", "hint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost", "two labels"),
        ("example..com", "cannot be empty"),
        (".example.com", "cannot be empty"),
        ("a" * 64 + ".com", "1 to 63 characters"),
        ("ü" * 60 + ".com", "1 to 63 characters"),
        ("a" * 2000 + ".com", "at most 253"),
        (".".join(["a" * 63] * 4) + ".com", "253"),
        ("exa_mple.com", r"U\+005F"),
        ("-example.com", "hyphen"),
        ("example-.com", "hyphen"),
        ("ab--cd.com", "hyphen"),
        ("exa mple.com", r"U\+0020"),
        ("1.2.3.4", "digits"),
        ("💩.la", "not allowed"),
        ("xn--zz.com", "A-label"),
    ],
)
def test_invalid_domain_names_say_what_to_fix(bad_name, hint):
    with pytest.raises(InvalidName, match=hint) as caught:
        normalize("domain", bad_name)

    assert "example.com" in caught.value.message


def test_domain_of_exactly_253_characters_is_accepted():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])

    assert len(name) == 253
    assert normalize("domain", name) == name


@given(st.lists(labels, min_size=1, max_size=3), st.sampled_from(["com", "de", "xn--p1ai"]))
def test_normalizing_a_domain_twice_changes_nothing(parts, tld):
    once = normalize("domain", ".".join(parts + [tld]).upper())

    assert once == ".".join(parts + [tld])
    assert normalize("domain", once) == once


@given(st.text(alphabet="abcdéüß例", min_size=1, max_size=20))
def test_unicode_domains_normalize_to_ascii(label):
    result = normalize("domain", f"{label}.com")

    assert result.isascii()
    assert result.endswith(".com")


@pytest.mark.parametrize("kind", ["mailbox", "hosting", "certificate"])
def test_other_names_are_trimmed_but_keep_their_case(kind):
    assert normalize(kind, "  Alice Smith – Inbox ") == "Alice Smith – Inbox"


def test_other_name_of_200_characters_is_accepted():
    assert normalize("hosting", "x" * 200) == "x" * 200


@pytest.mark.parametrize("bad_name", ["", "   ", "x" * 201])
def test_other_name_must_be_1_to_200_characters(bad_name):
    with pytest.raises(InvalidName, match="1 to 200 characters"):
        normalize("mailbox", bad_name)


@pytest.mark.parametrize("bad_name", ["bad\x00name", "two\nlines", "tab\there", "del\x7f", "c1\x85end", "\ud800x"])
def test_other_names_refuse_control_characters(bad_name):
    with pytest.raises(InvalidName, match="control characters"):
        normalize("certificate", bad_name)


@pytest.mark.parametrize(
    ("query", "forms"),
    [
        ("Example", ("example",)),
        ("café", ("café", "xn--caf-dma")),
        ("CAFÉ.FR", ("café.fr", "xn--caf-dma.fr")),
        ("bücher.", ("bücher.", "xn--bcher-kva.")),
        ("  ", ()),
        ("💩.la", ("💩.la",)),  # not a valid IDNA label: no stored domain name can hold it
    ],
)
def test_a_name_search_also_looks_for_the_stored_a_label_form(query, forms):
    from rules.names import search_forms

    assert search_forms(query) == forms


@given(st.text(max_size=60))
def test_a_name_search_never_fails_and_every_form_is_lower_case(query):
    from rules.names import search_forms

    forms = search_forms(query)

    assert all(form == form.lower() and form for form in forms)


@given(st.lists(labels, min_size=1, max_size=3), st.sampled_from(["é", "ü", "ß", "ж"]))
def test_a_whole_unicode_label_finds_the_stored_name(parts, letter):
    from rules.names import search_forms

    name = ".".join([parts[0] + letter, *parts[1:], "fr"])

    assert any(form in normalize("domain", name) for form in search_forms(parts[0] + letter))
