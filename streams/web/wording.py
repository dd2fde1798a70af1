"""What the link pages say, in the languages of the controllers' notices (sv, nl, en).

A controller's ``language`` in the policy picks the table; any other language gets English.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_LANGUAGE = "en"

_EN: Mapping[str, str] = {
    "unsubscribe.title": "Unsubscribe?",
    "unsubscribe.lead": "You will no longer receive:",
    "unsubscribe.button": "Unsubscribe",
    "unsubscribed.title": "You are unsubscribed",
    "unsubscribed.text": "You will not receive these messages any more.",
    "undo.text": "Unsubscribed by mistake?",
    "undo.button": "Subscribe again",
    "other.text": "To receive some of these messages again, contact {sender}.",
    "confirm.title": "Confirm your subscription",
    "confirm.lead": "You asked to receive:",
    "confirm.button": "Confirm",
    "confirmed.title": "Thank you",
    "confirmed.text": "Your subscription is confirmed.",
    "refused.title": "Not confirmed",
    "refused.text": "You unsubscribed or withdrew your consent after this link was sent, so the "
    "link does not subscribe you again. Nothing has been changed.",
    "sender": "From: {sender}",
    "all_marketing": "Marketing by {channel}",
    "gone.title": "This link can no longer be used",
    "gone.text": "Please contact the sender.",
    "retry.title": "Please try again",
    "retry.text": "Your request could not be recorded just now. Please try again in a moment.",
    "channel.email": "email",
    "channel.sms": "text message",
    "channel.phone": "phone",
    "channel.post": "post",
    "channel.web": "the web",
}

_SV: Mapping[str, str] = {
    "unsubscribe.title": "Avsluta prenumerationen?",
    "unsubscribe.lead": "Du kommer inte längre att få:",
    "unsubscribe.button": "Avsluta prenumerationen",
    "unsubscribed.title": "Din prenumeration är avslutad",
    "unsubscribed.text": "Du kommer inte att få de här meddelandena längre.",
    "undo.text": "Avslutade du av misstag?",
    "undo.button": "Prenumerera igen",
    "other.text": "Kontakta {sender} om du vill få några av de här meddelandena igen.",
    "confirm.title": "Bekräfta din prenumeration",
    "confirm.lead": "Du har bett att få:",
    "confirm.button": "Bekräfta",
    "confirmed.title": "Tack",
    "confirmed.text": "Din prenumeration är bekräftad.",
    "refused.title": "Inte bekräftad",
    "refused.text": "Du avslutade prenumerationen eller återkallade ditt samtycke efter att "
    "den här länken skickades, så länken anmäler dig inte igen. Ingenting har ändrats.",
    "sender": "Från: {sender}",
    "all_marketing": "Marknadsföring via {channel}",
    "gone.title": "Länken kan inte längre användas",
    "gone.text": "Kontakta avsändaren.",
    "retry.title": "Försök igen",
    "retry.text": "Din begäran kunde inte registreras just nu. Försök igen om en stund.",
    "channel.email": "e-post",
    "channel.sms": "sms",
    "channel.phone": "telefon",
    "channel.post": "post",
    "channel.web": "webben",
}

_NL: Mapping[str, str] = {
    "unsubscribe.title": "Afmelden?",
    "unsubscribe.lead": "U ontvangt dan niet langer:",
    "unsubscribe.button": "Afmelden",
    "unsubscribed.title": "U bent afgemeld",
    "unsubscribed.text": "U ontvangt deze berichten niet meer.",
    "undo.text": "Per ongeluk afgemeld?",
    "undo.button": "Opnieuw aanmelden",
    "other.text": "Neem contact op met {sender} om sommige van deze berichten weer te ontvangen.",
    "confirm.title": "Bevestig uw aanmelding",
    "confirm.lead": "U hebt gevraagd om te ontvangen:",
    "confirm.button": "Bevestigen",
    "confirmed.title": "Bedankt",
    "confirmed.text": "Uw aanmelding is bevestigd.",
    "refused.title": "Niet bevestigd",
    "refused.text": "U hebt zich afgemeld of uw toestemming ingetrokken nadat deze link werd "
    "verstuurd. Daarom meldt deze link u niet opnieuw aan. Er is niets gewijzigd.",
    "sender": "Van: {sender}",
    "all_marketing": "Marketing via {channel}",
    "gone.title": "Deze link kan niet meer worden gebruikt",
    "gone.text": "Neem contact op met de afzender.",
    "retry.title": "Probeer het opnieuw",
    "retry.text": "Uw verzoek kon nu niet worden vastgelegd. Probeer het zo dadelijk opnieuw.",
    "channel.email": "e-mail",
    "channel.sms": "sms",
    "channel.phone": "telefoon",
    "channel.post": "post",
    "channel.web": "het web",
}

LANGUAGES: Mapping[str, Mapping[str, str]] = {"en": _EN, "sv": _SV, "nl": _NL}


def language_of(configured: str | None) -> str:
    return configured if configured is not None and configured in LANGUAGES else DEFAULT_LANGUAGE


def words(language: str) -> Mapping[str, str]:
    return LANGUAGES[language_of(language)]
