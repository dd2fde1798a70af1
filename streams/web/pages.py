"""Small self-contained HTML pages for people following links from e-mails."""

from __future__ import annotations

from collections.abc import Mapping
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


def page(
    title: str,
    message: str,
    *,
    status: int = 200,
    button: str | None = None,
    hidden: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A page with a heading, a message and, with ``button``, a form that POSTs to this URL."""
    form = ""
    if button is not None:
        fields = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
            for k, v in (hidden or {}).items()
        )
        # An empty action posts back to the page's own URL, whatever prefix a proxy adds.
        submit = f'<button type="submit">{escape(button)}</button>'
        form = f'<form method="post" action="">{fields}{submit}</form>'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>{form}</body></html>"
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={**PAGE_HEADERS, **(headers or {})},
    )
