"""Closed vocabularies shared by the contract, the policy catalogue and the engine."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CONSENT_GRANTED = "consent.granted"
    CONSENT_CONFIRMED = "consent.confirmed"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    UNSUBSCRIBED = "unsubscribed"
    OBJECTION_RAISED = "objection.raised"
    PRIVACY_SIGNAL = "privacy.signal"
    ERASURE_REQUESTED = "erasure.requested"
    RESTRICTION_REQUESTED = "restriction.requested"
    RESTRICTION_LIFTED = "restriction.lifted"
    # Emitted by the worker's timers onto the input topic (contract 1.2); publishers need not.
    CONSENT_EXPIRED = "consent.expired"
    CONFIRMATION_LAPSED = "confirmation.lapsed"
    RETENTION_DUE = "retention.due"
    CONSENT_SUPERSEDED = "consent.superseded"  # a material notice change took effect
    # A subject's access (GDPR Art 15) or portability (Art 20) request, and its fulfilment
    # (the export handed over): they run a deadline clock and decide nothing (contract 1.3).
    ACCESS_REQUESTED = "access.requested"
    ACCESS_FULFILLED = "access.fulfilled"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POST = "post"
    WEB = "web"


class Objection(StrEnum):
    DIRECT_MARKETING = "direct_marketing"
    PROFILING = "profiling"
    LEGITIMATE_INTEREST = "legitimate_interest"


class Signal(StrEnum):
    GPC = "gpc"
    DNT = "dnt"


class LegalBasis(StrEnum):
    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"


class Category(StrEnum):
    DIRECT_MARKETING = "direct_marketing"
    PROFILING = "profiling"
    TRACKING = "tracking"
    SALE_OR_SHARING = "sale_or_sharing"
    ESSENTIAL = "essential"


class Destination(StrEnum):
    EMAIL = "email"
    CRM = "crm"
    ANALYTICS = "analytics"


class Action(StrEnum):
    SUPPRESS = "suppress"  # stop contacting
    ALLOW = "allow"
    ERASE = "erase"  # delete the person's data (contract 1.2)


class Reason(StrEnum):
    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    NO_CONSENT = "no_consent"
    PENDING_CONFIRMATION = "pending_confirmation"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    UNSUBSCRIBED = "unsubscribed"
    OBJECTION = "objection"
    PRIVACY_SIGNAL = "privacy_signal"
    ERASURE = "erasure"
    RESTRICTED = "restricted"
    EXPIRED = "expired"  # the consent's lifetime ran out: not allowed, not an opt-out (1.2)
    RECONSENT_REQUIRED = "reconsent_required"  # given under a superseded notice version (1.2)
