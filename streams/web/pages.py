"""Small self-contained HTML pages for people following links from e-mails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from aiohttp import web

# No scripts, no external resources, no referrer (the URL holds the token), no framing.
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#222;line-height:1.5}h1{font-size:1.4rem}button{font-size:1rem;padding:.6rem 1.4rem;"
    "border:0;border-radius:.3rem;background:#1a5fb4;color:#fff;cursor:pointer}"
)


@dataclass(frozen=True, slots=True)
class Form:
    """A button that POSTs ``hidden`` to ``action`` (empty: back to the page's own URL)."""

    button: str
    hidden: Mapping[str, str] = field(default_factory=dict)
    action: str = ""
    lead: str = ""  # a line above the button


def _form(form: Form) -> str:
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in form.hidden.items()
    )
    submit = f'<button type="submit">{escape(form.button)}</button>'
    lead = f"<p>{escape(form.lead)}</p>" if form.lead else ""
    # An empty or relative action resolves against the page's URL, whatever prefix a proxy adds.
    return f'{lead}<form method="post" action="{escape(form.action)}">{fields}{submit}</form>'


def page(
    title: str,
    *paragraphs: str,
    status: int = 200,
    forms: Sequence[Form] = (),
    language: str = "en",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A page with a heading, paragraphs and forms, in ``language``."""
    body = "".join(f"<p>{escape(text)}</p>" for text in paragraphs if text)
    html = (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}{''.join(map(_form, forms))}</body></html>"
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={**PAGE_HEADERS, "Content-Language": language, **(headers or {})},
    )
