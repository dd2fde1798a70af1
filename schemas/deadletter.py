"""Dead-letter contract: one rejected record on ``consent.deadletter``, kept intact."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loc: str = Field(description="Dotted path of the offending field; empty for the whole record")
    msg: str


class RecordSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, title="DeadLetter")

    payload_b64: str = Field(description="The original value bytes, base64; lossless")
    key_b64: str | None = Field(description="The original key bytes, base64; null if keyless")
    errors: list[FieldError] = Field(min_length=1)
    source: RecordSource
    received_at: AwareDatetime
