"""The link as its page showed it, handed by the page to its POST so that the POST need not read it.

A survey page's GET reads the invitation with its campaign and questionnaire. On PostgreSQL the
page puts what a POST needs of that read into its form (field ``link_state``), with the row's
version (`invitations.ROW_VERSION`), signed with a key derived from SECRET_KEY and bound to the
link's token. The POST then skips its own read: the one statement that saves the draft or stores
the response writes only if the invitation row still has that version and its campaign is still
open with the same questionnaire (`invitations.CAMPAIGN_AS_READ`), so a form that is stale (another
tab saved, the link was used, the campaign closed) changes nothing, and the POST reads the link as
before and starts over.

A value that is missing, altered, signed for another link or with another key, or whose link has
expired since, is not trusted: the POST reads the link instead. Nothing in it is secret from the
customer (their own draft and identifiers), and it can only say what the database already holds.
SQLite has no row versions: its pages carry no state and its POSTs read and lock the link.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json

from flask import current_app

from ..models import CustomerGroup, Source, utcnow
from ..services.invitations import OpenLink
from .tokens import derived_key

#: The form field carrying the state.
FIELD = "link_state"
_KEY_CONTEXT = b"survey link state v1"
#: Longer than any state a questionnaire's draft can make: a longer value is not read at all.
MAX_LENGTH = 32_768


def _signature(token: str, payload: bytes) -> str:
    return hmac.digest(derived_key(current_app, _KEY_CONTEXT), token.encode() + b"\x00" + payload, "sha256").hex()


def seal(token: str, link: OpenLink | None) -> str | None:
    """The signed state of ``link`` (read by ``token``'s page), or None when there is none or it has no row version."""
    if link is None or link.version is None:
        return None
    fields = [
        link.id, link.campaign_id, link.unit_id, str(link.customer_group), str(link.web_source),
        link.questionnaire_id, link.questionnaire_checksum, link.draft, link.draft_page,
        link.expires_at.isoformat(), link.version,
    ]
    # Unpadded: the value then posts as plain ASCII without a "%", which the form checks pass at once.
    payload = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=")
    return f"{payload.decode()}.{_signature(token, payload)}"


def unseal(token: str, value: str | None) -> OpenLink | None:
    """The link a POST's form carries for ``token``, or None when there is none to trust (read it then)."""
    if not value or len(value) > MAX_LENGTH:
        return None
    payload, _, signature = value.encode().rpartition(b".")
    if not payload or not hmac.compare_digest(signature, _signature(token, payload).encode()):
        return None
    try:
        (id_, campaign_id, unit_id, group, source, questionnaire_id, checksum, draft, draft_page, expires_at,
         version) = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        link = OpenLink(
            id=id_,
            campaign_id=campaign_id,
            unit_id=unit_id,
            customer_group=CustomerGroup(group),
            web_source=Source(source),
            questionnaire_id=questionnaire_id,
            questionnaire_checksum=checksum,
            draft=dict(draft),
            draft_page=draft_page,
            expires_at=dt.datetime.fromisoformat(expires_at),
            version=version,
        )
    except (ValueError, TypeError, binascii.Error):  # signed by this key but not a state of this version
        return None
    # Expired by the page's reading: the link may have been extended since, so let the read decide.
    return link if link.expires_at > utcnow() else None
