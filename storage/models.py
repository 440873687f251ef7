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

    class Meta:
        table_name = "inbound_message"
        indexes = (
            (("conversation_key", "state"), False),
            (("state", "next_attempt_at"), False),
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

    class Meta:
        table_name = "message_status"
        indexes = ((("wamid", "status"), True),)


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


ALL_MODELS = (WhatsappTicketMapping, InboundMessageRow, StatusRow, WebhookEventRow, Lease,
              TicketCreation)
