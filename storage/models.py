"""peewee models of wajira's tables.

The tables themselves are created by `storage.schema` from frozen DDL, not from these
classes, so a model change never silently changes what an old migration step does; the
integration tests check the two agree. Models use a DatabaseProxy (see `storage.db.bind`);
the storage classes also pass their database to every query explicitly.

Indexed text columns are VARCHAR(191): the longest utf8mb4 column an old InnoDB index can
hold whole. Unindexed text is TEXT so an unexpectedly long value from Meta cannot fail an
insert (which would turn a delivery into 503s until Meta gives up).
"""

from __future__ import annotations

import peewee

database_proxy = peewee.DatabaseProxy()

KEY_LENGTH = 191


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class WhatsappTicketMapping(BaseModel):
    """Which Jira ticket a phone's conversation goes to (the seed's table, name and columns kept)."""

    id = peewee.AutoField()
    phone_number = peewee.CharField(max_length=KEY_LENGTH, unique=True)
    issue_key = peewee.CharField(max_length=KEY_LENGTH, index=True)
    service_id = peewee.CharField(max_length=KEY_LENGTH)
    user_id = peewee.CharField(max_length=KEY_LENGTH, null=True)
    created_at = peewee.DateTimeField()  # naive UTC
    updated_at = peewee.DateTimeField()  # naive UTC

    class Meta:
        table_name = "whatsapp_ticket_mapping"
        indexes = ((("user_id", "service_id"), False),)


class InboundMessageRow(BaseModel):
    """One customer message waiting to become (or already made into) a Jira comment."""

    id = peewee.BigAutoField()
    wamid = peewee.CharField(max_length=KEY_LENGTH, unique=True)
    conversation_key = peewee.CharField(max_length=KEY_LENGTH)
    wa_id = peewee.TextField(null=True)
    user_id = peewee.TextField(null=True)
    phone_number_id = peewee.TextField()
    display_phone_number = peewee.TextField(null=True)
    profile_name = peewee.TextField(null=True)
    meta_timestamp = peewee.BigIntegerField()
    kind = peewee.TextField()
    raw_json = peewee.TextField()
    state = peewee.CharField(max_length=16, default="pending")
    attempts = peewee.IntegerField(default=0)  # failures counted toward giving up
    started = peewee.IntegerField(default=0)  # processing began this often; >0 after a crash
    next_attempt_at = peewee.DoubleField()
    last_error = peewee.TextField(null=True)
    issue_key = peewee.CharField(max_length=KEY_LENGTH, null=True)
    comment_id = peewee.CharField(max_length=KEY_LENGTH, null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    done_at = peewee.DoubleField(null=True)
    origin = peewee.CharField(max_length=16, default="customer")  # customer | echo | history (v5)
    from_business = peewee.IntegerField(default=0)  # 0/1: the business sent it (v5)

    class Meta:
        table_name = "inbound_message"
        indexes = (
            (("conversation_key", "state"), False),
            (("state", "next_attempt_at"), False),
            (("meta_timestamp",), False),  # v7: the hot tickets
            (("issue_key", "state"), False),  # v8: a ticket's delivered messages
        )


class InboundConversationRow(BaseModel):
    """A conversation with pending inbound messages and bounds on them (storage/inbound_index.py)."""

    conversation_key = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    first_id = peewee.BigIntegerField()  # at most the id of its oldest pending message
    due_at = peewee.DoubleField()  # at least the latest next_attempt_at of its pending messages
    version = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "inbound_conversation"
        indexes = (
            (("due_at",), False),
            (("first_id",), False),
        )


class StatusRow(BaseModel):
    """A delivery status Meta reported for a message the business sent."""

    id = peewee.BigAutoField()
    wamid = peewee.CharField(max_length=KEY_LENGTH)
    status = peewee.CharField(max_length=64)
    meta_timestamp = peewee.BigIntegerField()
    recipient_id = peewee.TextField(null=True)
    phone_number_id = peewee.TextField()
    errors_json = peewee.TextField()
    raw_json = peewee.TextField()
    created_at = peewee.DoubleField()
    applied = peewee.IntegerField(default=0)  # 1 once the outbox has applied it (schema v2)

    class Meta:
        table_name = "message_status"
        indexes = ((("wamid", "status"), True), (("applied", "id"), False))


class WebhookEventRow(BaseModel):
    """A webhook change we keep but do not act on (echoes, history, unknown fields)."""

    id = peewee.BigAutoField()
    field = peewee.CharField(max_length=KEY_LENGTH)
    dedupe_key = peewee.CharField(max_length=64, unique=True)
    phone_number_id = peewee.TextField(null=True)
    raw_json = peewee.TextField()
    created_at = peewee.DoubleField()
    state = peewee.CharField(max_length=16, default="stored")

    class Meta:
        table_name = "webhook_event"


class Lease(BaseModel):
    """A named, expiring claim (the poll job's singleton, a conversation's worker)."""

    name = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    owner = peewee.CharField(max_length=KEY_LENGTH)
    expires_at = peewee.DoubleField()
    acquired_at = peewee.DoubleField()

    class Meta:
        table_name = "lease"


class TicketCreation(BaseModel):
    """A ticket creation that began and may not have finished: after a crash, search Jira
    for the ticket before creating a second one."""

    conversation_key = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    service_id = peewee.CharField(max_length=KEY_LENGTH)
    started_at = peewee.DoubleField()

    class Meta:
        table_name = "ticket_creation"


class OutboundMessageRow(BaseModel):
    """One WhatsApp message to send (a part of a split reply counts as one)."""

    id = peewee.BigAutoField()
    dedupe_key = peewee.CharField(max_length=KEY_LENGTH, unique=True)
    issue_key = peewee.CharField(max_length=KEY_LENGTH, index=True)
    conversation_key = peewee.CharField(max_length=KEY_LENGTH)
    to_wa_id = peewee.TextField(null=True)
    to_user_id = peewee.TextField(null=True)
    phone_number_id = peewee.TextField()
    kind = peewee.CharField(max_length=32)
    body = peewee.TextField()
    state = peewee.CharField(max_length=16, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DoubleField()
    claimed_by = peewee.CharField(max_length=KEY_LENGTH, null=True)
    claimed_until = peewee.DoubleField(null=True)
    wamid = peewee.CharField(max_length=KEY_LENGTH, null=True, index=True)
    last_error = peewee.TextField(null=True)
    error_code = peewee.IntegerField(null=True)
    via_template = peewee.IntegerField(default=0)  # 0/1: BOOLEAN differs per engine
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    sent_at = peewee.DoubleField(null=True)
    status_at = peewee.DoubleField(null=True)  # Meta's time of the newest applied status
    payload = peewee.TextField(null=True)  # JSON: what a file or template message needs (v7)

    class Meta:
        table_name = "outbound_message"
        indexes = (
            (("state", "next_attempt_at"), False),
            (("conversation_key", "state", "id"), False),
            (("conversation_key", "kind", "id"), False),  # v8: a conversation's CSAT survey
        )


class PollStateRow(BaseModel):
    """Where a poll job got to (its watermark) and how its last run went."""

    name = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    watermark_ms = peewee.BigIntegerField(null=True)
    last_run_at = peewee.DoubleField(null=True)
    last_success_at = peewee.DoubleField(null=True)
    last_error = peewee.TextField(null=True)
    runs = peewee.IntegerField(default=0)

    class Meta:
        table_name = "poll_state"


class HandledCommentRow(BaseModel):
    """A Jira comment the poll job has seen and acted on (or chose not to)."""

    comment_id = peewee.CharField(max_length=64, primary_key=True)
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    route = peewee.CharField(max_length=32)
    author_kind = peewee.CharField(max_length=32, null=True)
    comment_created = peewee.DoubleField()
    handled_at = peewee.DoubleField()

    class Meta:
        table_name = "handled_comment"
        indexes = ((("issue_key", "route", "comment_created"), False),)


class AiTurnRow(BaseModel):
    """A customer message the AI may answer, debounced and claimed like a queue row."""

    id = peewee.BigAutoField()
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    service_id = peewee.CharField(max_length=KEY_LENGTH)
    conversation_key = peewee.CharField(max_length=KEY_LENGTH)
    trigger_comment_id = peewee.CharField(max_length=KEY_LENGTH, unique=True)
    trigger_created = peewee.DoubleField()
    created_at = peewee.DoubleField()
    due_at = peewee.DoubleField()
    state = peewee.CharField(max_length=16, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DoubleField()
    claimed_by = peewee.CharField(max_length=KEY_LENGTH, null=True)
    claimed_until = peewee.DoubleField(null=True)
    reply_comment_id = peewee.CharField(max_length=KEY_LENGTH, null=True)
    tokens = peewee.BigIntegerField(default=0)
    last_error = peewee.TextField(null=True)
    updated_at = peewee.DoubleField()
    finished_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "ai_turn"
        indexes = (
            (("state", "next_attempt_at"), False),
            (("issue_key", "state"), False),
            (("service_id", "finished_at"), False),
        )


class MediaTaskRow(BaseModel):
    """One medium of a customer's message on its way to becoming a Jira attachment (schema v4)."""

    id = peewee.BigAutoField()
    wamid = peewee.CharField(max_length=KEY_LENGTH)
    media_id = peewee.CharField(max_length=KEY_LENGTH)
    kind = peewee.CharField(max_length=16)
    mime_type = peewee.TextField(null=True)
    filename = peewee.TextField()
    """The attachment's name, decided when the comment naming it was rendered."""
    expected_sha256 = peewee.CharField(max_length=128, null=True)
    """As the webhook gave it (base64)."""
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    state = peewee.CharField(max_length=16, default="pending")
    attempts = peewee.IntegerField(default=0)
    uploads = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DoubleField()
    claimed_by = peewee.CharField(max_length=KEY_LENGTH, null=True)
    claimed_until = peewee.DoubleField(null=True)
    attachment_id = peewee.CharField(max_length=KEY_LENGTH, null=True)
    size = peewee.BigIntegerField(null=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    finished_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "media_task"
        indexes = (
            (("wamid", "media_id"), True),
            (("state", "next_attempt_at"), False),
            (("issue_key",), False),
        )


class AiSwitchRow(BaseModel):
    """Whether the AI may answer on a ticket, as the latest `/ai on|off` command set it (v7)."""

    issue_key = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    enabled = peewee.IntegerField()  # 0/1: BOOLEAN differs per engine
    comment_id = peewee.CharField(max_length=64)  # the command comment that decided
    comment_created = peewee.DoubleField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "ai_switch"


class StatusWatchRow(BaseModel):
    """The status the poll last saw a ticket in, and how often it entered a new one (v8)."""

    issue_key = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    status_name = peewee.CharField(max_length=255)  # "" = opened by us, not seen yet
    entries = peewee.IntegerField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "status_watch"


class CsatRatingRow(BaseModel):
    """A customer's answer to one satisfaction survey, the latest tap kept (v8)."""

    id = peewee.BigAutoField()
    request_id = peewee.BigIntegerField(unique=True)  # the survey's outbound_message id
    service_id = peewee.CharField(max_length=KEY_LENGTH)
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    conversation_key = peewee.CharField(max_length=KEY_LENGTH)
    wamid = peewee.CharField(max_length=KEY_LENGTH)  # the customer's message that rated
    rating = peewee.IntegerField()
    rated_at = peewee.DoubleField()  # Meta's timestamp of that message

    class Meta:
        table_name = "csat_rating"
        indexes = ((("service_id", "rated_at"), False),)


ALL_MODELS = (
    WhatsappTicketMapping,
    InboundMessageRow,
    InboundConversationRow,
    StatusRow,
    WebhookEventRow,
    Lease,
    TicketCreation,
    OutboundMessageRow,
    PollStateRow,
    HandledCommentRow,
    AiTurnRow,
    MediaTaskRow,
    AiSwitchRow,
    StatusWatchRow,
    CsatRatingRow,
)
