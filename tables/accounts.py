"""Personal accounts. API keys are stored as SHA-256 digests, never in clear."""

from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.table import Table


class Account(Table, tablename="accounts"):
    id = Varchar(length=40, primary_key=True)
    email = Varchar(length=320, unique=True, help_text="Lower-cased e-mail address.")
    name = Varchar(length=200)
    key_hash = Varchar(
        length=64, null=True, default=None, unique=True,
        help_text="SHA-256 hex digest of the API key; null until a key is issued (claim).",
    )
    created_at = Timestamptz()


class ClaimToken(Table, tablename="claim_tokens"):
    """One-time token handed to a released client's owner to obtain an API key."""

    token_hash = Varchar(length=64, primary_key=True)
    account = ForeignKey(references=Account)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
