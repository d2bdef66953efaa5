"""Plain-words names of the features, for marketers and sales reps (they travel with the model)."""

from __future__ import annotations

from leadready.features.build import (
    ACTIVITY_WINDOWS,
    HAND_RAISE_WINDOW,
    SIGNAL_WINDOW,
    TOUCH_WINDOW,
)
from leadready.features.contract import ACTIVITY_TYPES, TEAMS

_ACTIVITY_WORDS = {
    "email_open": "email opens",
    "email_click": "email clicks",
    "web_visit": "website visits",
    "pricing_page_view": "pricing-page views",
    "content_download": "content downloads",
    "webinar_attended": "webinars attended",
    "event_attended": "events attended",
    "demo_request": "demo requests",
    "contact_request": "contact requests",
    "chat": "chats",
    "form_submit": "forms submitted",
    "unsubscribe": "unsubscribes",
}
_CHANNEL_WORDS = {
    "email": "emails",
    "call": "calls",
    "meeting": "meetings",
    "direct_mail": "direct mail",
    "social": "social touches",
    "event": "event touches",
}


def _feature_labels() -> dict[str, str]:
    labels = {
        "source": "Lead source",
        "industry": "Industry",
        "company_size_band": "Company size",
        "budget": "Budget",
        "authority": "Authority",
        "need": "Need",
        "timeframe": "Timeframe",
        "lead_age_days": "days since the lead was created",
        "activities_30d": "activities in the last 30 days",
        "days_since_last_activity": "days since the last activity",
        "touches_total": "touches so far",
        f"touches_{TOUCH_WINDOW}d": f"touches in the last {TOUCH_WINDOW} days",
        "touches_responded_share": "share of touches responded to",
        "days_since_last_touch": "days since the last touch",
        f"buying_signal_{SIGNAL_WINDOW}d": (
            f"demo or contact request in the last {SIGNAL_WINDOW} days"
        ),
        f"hand_raise_{HAND_RAISE_WINDOW}d": (
            f"demo or contact request in the last {HAND_RAISE_WINDOW} days"
        ),
        "days_since_hand_raise": "days since the last demo or contact request",
    }
    for kind in ACTIVITY_TYPES:
        for w in ACTIVITY_WINDOWS:
            labels[f"activity_{kind}_{w}d"] = f"{_ACTIVITY_WORDS[kind]} in the last {w} days"
    for name, words in [*((t, f"{t} touches") for t in TEAMS), *_CHANNEL_WORDS.items()]:
        labels[f"touches_{name}_total"] = f"{words} so far"
        labels[f"touches_{name}_{TOUCH_WINDOW}d"] = f"{words} in the last {TOUCH_WINDOW} days"
    return labels


FEATURE_LABELS = _feature_labels()
