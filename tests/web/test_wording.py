"""Link page wording: every language says everything; other languages get English."""

from __future__ import annotations

from schemas.vocabulary import Action, Reason
from streams.core.policy import load_policy
from streams.web.wording import LANGUAGES, language_of, words


def test_every_language_has_every_phrase() -> None:
    english = set(LANGUAGES["en"])
    for language, table in LANGUAGES.items():
        assert set(table) == english, language
        assert all(text.strip() for text in table.values()), language


def test_unknown_languages_fall_back_to_english() -> None:
    assert language_of("de") == "en" and language_of(None) == "en"
    assert words("de") is LANGUAGES["en"]


def test_shipped_controllers_speak_their_notices_language() -> None:
    policy = load_policy()
    languages = {c.id: c.language for c in policy.controllers.values()}
    assert languages == {"hms-se": "sv", "hms-contact-nl": "nl", "sms-tech": "en", "kms-uk": "en"}
    for controller in policy.controllers.values():
        for purpose in controller.purposes.values():
            if "direct_marketing" in purpose.categories:
                assert purpose.title, (controller.id, purpose.name)


def test_the_export_page_words_every_reason_and_instruction() -> None:
    english = LANGUAGES["en"]
    assert {f"reason.{r.value}" for r in Reason} <= set(english)
    assert {f"action.{a.value}" for a in Action} <= set(english)
