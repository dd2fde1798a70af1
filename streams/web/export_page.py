"""The access export as a page a person can be given, in the controller's language.

Every value is escaped: evidence and identifiers come from publishers and are untrusted, so
markup in them is shown as text. Same protections as the link pages (no scripts, no external
resources, no framing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape

import orjson
from aiohttp import web

from streams.core.policy import Controller
from streams.security.receipts import JWKS_PATH
from streams.web.models import ExportOut, LedgerEntryOut
from streams.web.pages import PAGE_HEADERS
from streams.web.wording import language_of, words

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#222;line-height:1.45}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;"
    "padding:.3rem .5rem;border-bottom:1px solid #ddd}pre,code{white-space:pre-wrap;"
    "word-break:break-all;font-size:.85rem;margin:0}"
)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _table(headings: Sequence[str], rows: Iterable[Sequence[str]], none: str) -> str:
    """A table of already-escaped cells (or ``none`` when there are no rows)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f"<p>{escape(none)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _evidence(entry: LedgerEntryOut, erased: str) -> str:
    if entry.shredded:
        return f"<em>{escape(erased)}</em>"
    if entry.evidence is None:
        return ""
    text = orjson.dumps(entry.evidence, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return f"<pre>{escape(text.decode())}</pre>"


def _what(entry: LedgerEntryOut, titles: Mapping[str, str]) -> str:
    parts = [entry.type]
    if entry.purpose:
        parts.append(titles.get(entry.purpose, entry.purpose))
    parts += [p for p in (entry.channel, entry.objection, entry.signal) if p]
    return escape(" · ".join(parts))


def _how(entry: LedgerEntryOut) -> str:
    parts = [entry.source or "", f"notice {entry.notice_version}" if entry.notice_version else ""]
    return escape(", ".join(p for p in parts if p))


def export_page(export: ExportOut, controller: Controller) -> web.Response:
    language = language_of(controller.language)
    w = words(language)
    titles = {p.name: p.title or p.description or p.name for p in controller.purposes.values()}

    def channel(name: str) -> str:
        return w.get(f"channel.{name}", name)

    yes, no = w["export.yes"], w["export.no"]
    decisions = _table(
        [
            w["export.purpose"],
            w["export.channel"],
            w["export.allowed"],
            w["export.reason"],
            w["export.since"],
        ],
        (
            [
                escape(titles.get(d.purpose, d.purpose)),
                escape(channel(d.channel.value)),
                escape(yes if d.allowed else no),
                escape(w.get(f"reason.{d.reason.value}", d.reason.value)),
                escape(_when(d.since)),
            ]
            for d in export.decisions
        ),
        w["export.none"],
    )
    identifiers = _table(
        ["", w["export.since"]],
        (
            [escape(f"{i.kind}: {i.value}"), escape(_when(i.first_recorded))]
            for i in export.identifiers
        ),
        w["export.none"],
    )
    history = _table(
        ["#", w["export.when"], w["export.what"], w["export.how"], w["export.evidence"]],
        (
            [
                str(e.sequence),
                escape(_when(e.occurred_at)),
                _what(e, titles),
                _how(e),
                _evidence(e, w["export.erased"]),
            ]
            for e in export.ledger
        ),
        w["export.none"],
    )
    told = _table(
        [
            w["export.when"],
            w["export.purpose"],
            w["export.channel"],
            w["export.instruction"],
            w["export.systems"],
        ],
        (
            [
                escape(_when(n.at)),
                escape(titles.get(n.purpose, n.purpose)),
                escape(channel(n.channel)),
                escape(w.get(f"action.{n.action}", n.action)),
                escape(", ".join(n.destinations)),
            ]
            for n in export.notifications
        ),
        w["export.none"],
    )
    receipts = _table(
        [w["export.what"], ""],
        ([escape(r.event_id), f"<code>{escape(r.receipt)}</code>"] for r in export.receipts),
        w["export.none"],
    )
    chain = export.chain
    integrity = (
        f"<p>{escape(w['export.intact'])}</p>"
        if chain.intact
        else f"<p>{escape(w['export.broken'])}</p><ul>"
        + "".join(
            f"<li>{p.sequence}: {escape(p.problem)} ({escape(p.detail)})</li>"
            for p in chain.problems
        )
        + "</ul>"
    )
    name = export.controller.name
    title = w["export.title"].format(controller=name)
    html = (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{escape(w['export.intro'].format(controller=name, time=_when(export.generated_at)))}"
        f"</p><p>{escape(w['export.subject'].format(subject=export.subject_id))}</p>"
        f"<h2>{escape(w['export.decisions'])}</h2>{decisions}"
        f"<h2>{escape(w['export.identifiers'])}</h2>{identifiers}"
        f"<h2>{escape(w['export.history'])}</h2>{history}"
        f"<h2>{escape(w['export.told'])}</h2>{told}"
        f"<h2>{escape(w['export.receipts'])}</h2>"
        f"<p>{escape(w['export.receipts.text'].format(jwks=JWKS_PATH))}</p>{receipts}"
        f"<h2>{escape(w['export.integrity'])}</h2>{integrity}"
        "</body></html>"
    )
    return web.Response(
        text=html,
        content_type="text/html",
        headers={**PAGE_HEADERS, "Content-Language": language},
    )
