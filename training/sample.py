"""A seeded simulator of a realistic CRM export, for demos, tests and benchmarks.

The data is not random noise: it comes from a hidden day-by-day process that a point-in-time
model can learn, while a static BANT scorecard only sees part of it. Same seed, same bytes.
The module is longer than our usual ~500 lines on purpose: the story below, the constants that
set each of its rates and the daily process that applies them read best side by side.

Generative story (all rates are per lead per day unless said otherwise)
-----------------------------------------------------------------------
1. Arrival. `n_leads` leads arrive over the `SIMULATED_DAYS` (730) days before `EXPORT_AT`
   (2026-06-30T00:00, fixed so output never depends on today). Arrivals grow ~30% over the
   window and are lower at weekends. Each lead has a source (`SOURCE_MIX`), an industry
   (`INDUSTRIES`), a company size (log-normal employees, `SIZE_MISSING` blank) and a country
   (`COUNTRIES`, `COUNTRY_MISSING` blank). The creation itself is logged as a matching activity
   (a web form submit, a trade-show visit, a webinar attendance, ...).
2. Fit. A hidden Bernoulli draw decides whether the company can buy at all. Its log-odds add a
   source term (`SOURCE_FIT`: referral and partner best, trade_show mostly prize-draw entries),
   an industry term (`INDUSTRY_FIT`) and a company-size term (tiny companies rarely fit). About
   35-40% of leads are no-fit: they never buy, however engaged, and they answer and react less.
3. BANT. Each lead has true budget/authority/need/timeframe levels drawn from a latent that
   loads on fit. The export shows them noisily: each field is "unknown" with probability
   `BANT_UNKNOWN` (lower for referral/partner/outbound, where someone asked), and when known it
   is the true level with probability `BANT_ACCURACY`, otherwise any level.
4. Readiness. A hidden readiness R (1.0 = sales-ready) starts at a source-dependent level
   (`SOURCE_READINESS`, log-normal noise), halves every `HALF_LIFE_DAYS` (21) days, so leads
   left alone go cold, and rises with every meaningful touch by `TOUCH_GAIN[team, channel] x
   receptivity x (1 + RESPONSE_BONUS if the lead responded)`. Receptivity is log-normal per lead
   (times `NO_FIT_RECEPTIVITY` for no-fit leads), and only `OUT_OF_MARKET_GAIN` of it applies
   until the lead has a live buying project: `IN_MARKET_AT_START` of leads arrive with one, the
   others start one with daily hazard `IN_MARKET_HAZARD`. So most leads drift cold however
   often they are touched, while a lead in market typically becomes ready after 8-12
   meaningful touches.
5. Touches. Marketing touches (mostly email, some social, direct mail, events) come with daily
   probability `MARKETING_BASE + MARKETING_HOT x min(R, 1)` (about weekly for a cold lead),
   until the lead unsubscribes. Sales touches (call, email, meeting; meetings likelier as R
   rises) start once the lead shows a buying signal (or, with daily chance `SALES_WARM_START`,
   once R > `SALES_WARM_READINESS`), with daily probability `SALES_BASE + SALES_HOT x
   min(R, 1)`. A touch gets a response with probability rising with R (no-fit leads answer
   less); `RESPONDED_MISSING` of the responses are left blank.
6. Engagement. Activities are Poisson counts per day whose rates grow with R and the lead's own
   engagement propensity: email opens/clicks follow the emails sent that day; web visits and
   content downloads are common at any readiness; buying signals (pricing page views, webinar
   attendance, demo and contact requests, chats) switch on steeply as R approaches 1
   (logistic in R around `SIGNAL_MIDPOINT`) and are rarer for no-fit leads (`NO_FIT_SIGNALS`:
   demo and contact requests especially). Cold leads unsubscribe now and then (no-fit ones
   more), after which marketing touches stop.
7. Outcome. A fit lead with R above `WIN_FROM` is won with a daily hazard `WIN_HAZARD x
   (R - WIN_FROM) x (0.3 + 1.4 x BANT strength)`, the strength being the mean of its true BANT
   levels scaled to 0 (worst) .. 1 (best); wins come days to weeks after the lead is ready.
   A lead is lost when it has been cold (R < `COLD_READINESS`) for its patience
   (`PATIENCE_DAYS`, 60-120 days) after `MIN_AGE_TO_LOSE` days in the funnel, when it reaches
   `MAX_AGE_DAYS` (365), or, for no-fit leads once sales talk to them, with the daily
   disqualification hazard `DISQUALIFY_HAZARD` (sales qualify them out). Leads still open at
   the export have outcome "open" and no outcome date. Nothing happens to a lead after its outcome.

With the defaults and 20,000 leads: about 39% of leads are no-fit, about 21% of closed leads
are won (referral ~40%, trade_show ~7%), about 17% are still open at the export, and there are
about 45 activities and 19 touches per lead.

Times of day: leads are created between 06:00 and 20:00, events happen between 06:00 and 21:00
(after created_at on the creation day) and outcomes are recorded between 21:00 and 24:00, so no
event is before created_at, after outcome_at or after `EXPORT_AT`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadready.features.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_TYPES,
    AUTHORITY,
    BUDGET,
    CHANNELS,
    LEAD_COLUMNS,
    NEED,
    SOURCES,
    TEAMS,
    TIMEFRAME,
    TOUCH_COLUMNS,
)
from leadready.features.files import write_csv

EXPORT_AT = np.datetime64("2026-06-30T00:00", "m")
"""The moment of the export: every date in the output is before it."""
SIMULATED_DAYS = 730
"""Days simulated before EXPORT_AT; the total a progress bar should expect."""
PROGRESS_EVERY = 10
"""Days between two progress callbacks."""
ARRIVAL_GROWTH = 0.3
"""Arrivals per day grow by this fraction from the first to the last simulated day."""
WEEKEND_ARRIVALS = 0.3
"""Arrivals on a Saturday or Sunday relative to a weekday."""

INDUSTRIES = (
    "software",
    "manufacturing",
    "finance",
    "healthcare",
    "retail",
    "education",
    "logistics",
    "public_sector",
)
INDUSTRY_MIX = (0.22, 0.16, 0.13, 0.12, 0.11, 0.08, 0.10, 0.08)
INDUSTRY_FIT = (0.5, 0.2, 0.3, 0.0, -0.3, -0.8, 0.0, -0.5)
"""Log-odds added to fit per industry."""
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "AU", "SE")
COUNTRY_MIX = (0.38, 0.14, 0.13, 0.09, 0.07, 0.08, 0.06, 0.05)
COUNTRY_MISSING = 0.08
SIZE_MEDIAN = 120.0
"""Median company size in employees (log-normal)."""
SIZE_SIGMA = 1.6
SIZE_MISSING = 0.18

# Per source, in SOURCES order: web_form, trade_show, webinar, content_download, referral,
# partner, outbound, chat, other.
SOURCE_MIX = (0.19, 0.13, 0.11, 0.17, 0.07, 0.06, 0.13, 0.06, 0.08)
SOURCE_FIT = (0.8, -1.2, 0.5, 0.2, 2.2, 1.8, 0.2, 1.0, 0.0)
"""Log-odds of fit per source, before industry and size."""
SOURCE_READINESS = (0.30, 0.05, 0.20, 0.15, 0.45, 0.40, 0.05, 0.35, 0.10)
"""Mean readiness at creation per source (1.0 = ready)."""
SOURCE_ACTIVITY = (
    "form_submit",
    "event_attended",
    "webinar_attended",
    "content_download",
    "form_submit",
    "form_submit",
    None,
    "chat",
    "web_visit",
)
"""The activity logged at creation per source (None: outbound leads are not inbound)."""
SOURCE_BANT_KNOWN = (1.0, 0.8, 0.9, 0.8, 1.4, 1.4, 1.3, 1.1, 0.9)
"""Multiplier on the chance a BANT field is known (someone asked)."""

BANT_UNKNOWN = 0.52
"""Base share of each BANT field left unknown."""
BANT_ACCURACY = 0.7
"""Chance a known BANT field shows the true level (else a uniformly random level)."""
BANT_FIT_LOADING = 1.1
"""How strongly true BANT levels follow fit (latent units, noise sd 1)."""

HALF_LIFE_DAYS = 21.0
"""Readiness halves after this many days without touches."""
READINESS_CAP = 1.6
RECEPTIVITY_SIGMA = 0.4
"""Log-normal spread of how much touches move a lead (median 1)."""
IN_MARKET_AT_START = 0.16
"""Share of leads with a live buying project when they arrive."""
IN_MARKET_HAZARD = 1 / 1000
"""Daily chance that a lead not yet in market starts a project (new budget, new pain)."""
OUT_OF_MARKET_GAIN = 0.15
"""Touches move a lead without a live project only this much."""
NO_FIT_RECEPTIVITY = 0.6
"""No-fit leads take touches less to heart."""
MARKETING_CHANNELS = ("email", "social", "direct_mail", "event")
MARKETING_CHANNEL_MIX = (0.78, 0.12, 0.05, 0.05)
SALES_CHANNELS = ("call", "email", "meeting")
TOUCH_GAIN = {
    ("marketing", "email"): 0.10,
    ("marketing", "social"): 0.08,
    ("marketing", "direct_mail"): 0.14,
    ("marketing", "event"): 0.22,
    ("sales", "call"): 0.16,
    ("sales", "email"): 0.11,
    ("sales", "meeting"): 0.30,
}
"""Readiness added by one touch, before receptivity and response."""
RESPONSE_BONUS = 1.5
"""A touch the lead responded to counts (1 + RESPONSE_BONUS) times."""
MARKETING_BASE = 0.13
MARKETING_HOT = 0.17
SALES_BASE = 0.10
SALES_HOT = 0.30
SALES_WARM_START = 0.03
"""Daily chance sales pick up a lead with R > SALES_WARM_READINESS without a buying signal."""
SALES_WARM_READINESS = 0.6
MEETING_SHARE = (0.03, 0.4)
"""(base, slope): share of sales touches that are meetings, base + slope x min(R, 1)."""
SALES_EMAIL_SHARE = 0.35
"""Share of sales touches that are emails; the rest are calls."""
RESPONSE_BASE = 0.06
RESPONSE_SLOPE = 0.6
"""A touch gets a response with chance RESPONSE_BASE + RESPONSE_SLOPE x min(R, 1) ..."""
NO_FIT_RESPONSE = 0.4
"""... times this for no-fit leads ..."""
SALES_RESPONSE_BOOST = 0.15
"""... plus this for sales touches (a person asking gets more answers)."""
RESPONDED_MISSING = 0.10

ENGAGEMENT_SIGMA = 0.5
"""Log-normal spread of a lead's own activity propensity (mean 1)."""
EMAIL_RATES = {"email_open": (0.45, 1.0), "email_click": (0.04, 0.35)}
"""(base, slope): expected count per email received today is base + slope x min(R, 1)."""
BROWSE_RATES = {
    "web_visit": (0.12, 0.7),
    "content_download": (0.015, 0.05),
    "form_submit": (0.002, 0.012),
}
"""(base, slope): daily rate is engagement x (base + slope x min(R, 1))."""
REOPEN_RATE = 0.01
"""Daily rate of opening an older email, for leads still subscribed."""
EVENT_ATTENDANCE = (0.1, 0.4)
"""(base, slope): chance of attending per event invitation, base + slope x min(R, 1)."""
SIGNAL_MIDPOINT = 0.8
SIGNAL_WIDTH = 0.08
NO_FIT_SIGNALS = {
    "pricing_page_view": 0.6,
    "webinar_attended": 0.6,
    "demo_request": 0.15,
    "contact_request": 0.15,
    "chat": 0.4,
}
"""Buying-signal rate multipliers for no-fit leads: students, competitors and tyre kickers
browse prices and attend webinars, but rarely ask for a demo or a call."""
BUYING_SIGNALS = (
    "pricing_page_view",
    "webinar_attended",
    "demo_request",
    "contact_request",
    "chat",
)
SIGNAL_RATE = {
    "pricing_page_view": 0.30,
    "webinar_attended": 0.03,
    "demo_request": 0.04,
    "contact_request": 0.03,
    "chat": 0.05,
}
"""Daily rate of each buying signal for a ready lead of average engagement."""
SIGNAL_BACKGROUND = 0.002
"""Daily rate of each buying signal per unit of readiness, regardless of the switch."""
UNSUBSCRIBE_COLD_NO_FIT = 0.004
UNSUBSCRIBE_COLD_FIT = 0.0008

WIN_FROM = 0.9
WIN_HAZARD = 0.12
"""Daily win hazard per unit of readiness above WIN_FROM, at average BANT strength."""
COLD_READINESS = 0.2
PATIENCE_DAYS = (60, 120)
MIN_AGE_TO_LOSE = 30
MAX_AGE_DAYS = 365
DISQUALIFY_HAZARD = 0.02

OUTCOME_NAMES = ("open", "won", "lost")
"""Outcome strings by the simulator's internal outcome code."""

DAY_START_MIN = 6 * 60
DAY_END_MIN = 21 * 60
CREATED_END_MIN = 20 * 60
MINUTES_PER_DAY = 24 * 60

_ACT = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
_CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
_MARKETING_CODES = np.array([_CHANNEL[c] for c in MARKETING_CHANNELS])
_SALES_CODES = np.array([_CHANNEL[c] for c in SALES_CHANNELS])
_MARKETING_GAIN = np.array([TOUCH_GAIN["marketing", c] for c in MARKETING_CHANNELS])
_SALES_GAIN = np.array([TOUCH_GAIN["sales", c] for c in SALES_CHANNELS])
_SIGNAL_CODES = np.array([_ACT[s] for s in BUYING_SIGNALS])
_BANT_LEVELS = {  # true levels, best first; "unknown" is only an observation
    "budget": BUDGET[:3],
    "authority": AUTHORITY[:3],
    "need": NEED[:3],
    "timeframe": TIMEFRAME[:5],
}


@dataclass
class _Leads:
    """Static lead attributes, one array entry per lead, in created_at order."""

    created_day: np.ndarray  # day index in [0, SIMULATED_DAYS)
    created_min: np.ndarray  # minute of the day
    source: np.ndarray  # index into SOURCES
    industry: np.ndarray  # index into INDUSTRIES
    size: np.ndarray  # employees (true, even when the export leaves it blank)
    size_shown: np.ndarray  # bool
    country: np.ndarray  # index into COUNTRIES, -1 when blank
    fit: np.ndarray  # bool
    bant_true: dict[str, np.ndarray]  # level index, 0 = best
    bant_shown: dict[str, np.ndarray]  # level index, -1 = unknown
    bant_strength: np.ndarray  # 0 (all worst) .. 1 (all best)
    receptivity: np.ndarray
    market_day: np.ndarray  # day the lead starts a buying project (may be after the window)
    engagement: np.ndarray
    patience: np.ndarray  # cold days tolerated before the lead is lost


@dataclass
class _State:
    """Hidden state evolving day by day."""

    readiness: np.ndarray
    cold_days: np.ndarray
    sales_active: np.ndarray
    unsubscribed: np.ndarray
    outcome: np.ndarray  # 0 open, 1 won, 2 lost
    outcome_day: np.ndarray


@dataclass
class _Events:
    """Events gathered day by day as lists of arrays (concatenated at the end)."""

    act_lead: list[np.ndarray]
    act_day: list[np.ndarray]
    act_type: list[np.ndarray]
    touch_lead: list[np.ndarray]
    touch_day: list[np.ndarray]
    touch_channel: list[np.ndarray]
    touch_team: list[np.ndarray]
    touch_responded: list[np.ndarray]  # 1, 0, -1 = not recorded


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _arrival_days(n: int, rng: np.random.Generator) -> np.ndarray:
    """Creation day per lead, sorted: arrivals grow over the window and dip at weekends."""
    days = np.arange(SIMULATED_DAYS)
    weekday = ((_first_day() + days).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    growth = 1.0 + ARRIVAL_GROWTH * days / SIMULATED_DAYS
    weight = growth * np.where(weekday >= 5, WEEKEND_ARRIVALS, 1.0)
    return np.sort(rng.choice(days, size=n, p=weight / weight.sum()))


def _first_day() -> np.datetime64:
    """The first simulated calendar day."""
    return EXPORT_AT.astype("datetime64[D]") - SIMULATED_DAYS


def _fit_probability(source: np.ndarray, industry: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Chance the company can buy at all: source, industry and size terms on the log-odds.

    Companies under ~20 employees rarely fit; very large ones a little less (long procurement).
    """
    log_size = np.log10(np.maximum(size, 1.0))
    size_term = np.clip(1.6 * (log_size - 1.3), -2.0, 0.6) - 0.3 * np.maximum(log_size - 3.7, 0)
    logit = np.asarray(SOURCE_FIT)[source] + np.asarray(INDUSTRY_FIT)[industry] + size_term
    return _logistic(logit - 0.35)


def _draw_bant(
    fit: np.ndarray, source: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """True BANT levels (0 = best), their noisy exported view (-1 = unknown) and the strength.

    The strength (0 = all worst levels, 1 = all best) scales the win hazard.
    """
    n = len(fit)
    shift = np.where(fit, 0.6, -0.9) * BANT_FIT_LOADING
    known_mult = np.asarray(SOURCE_BANT_KNOWN)[source]
    true, shown, strength = {}, {}, np.zeros(n)
    for field, levels in _BANT_LEVELS.items():
        k = len(levels)
        latent = shift + rng.normal(0.0, 1.0, n)
        # Evenly spaced cut points: the best level needs latent > 0.8 or so.
        cuts = np.linspace(0.8, -0.8, k - 1)
        level = (latent[:, None] < cuts[None, :]).sum(axis=1)
        true[field] = level
        strength += 1.0 - level / (k - 1)
        known = rng.random(n) < np.clip((1.0 - BANT_UNKNOWN) * known_mult, 0.0, 0.95)
        accurate = rng.random(n) < BANT_ACCURACY
        noisy = rng.integers(0, k, n)
        shown[field] = np.where(known, np.where(accurate, level, noisy), -1)
    return true, shown, strength / len(_BANT_LEVELS)


def _draw_leads(n: int, rng: np.random.Generator) -> _Leads:
    """All static lead attributes (see steps 1-3 of the module docstring)."""
    created_day = _arrival_days(n, rng)
    created_min = rng.integers(DAY_START_MIN, CREATED_END_MIN, n)
    created_min = created_min[np.lexsort((created_min, created_day))]  # ids follow time
    source = rng.choice(len(SOURCES), size=n, p=SOURCE_MIX)
    industry = rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_MIX)
    size = np.maximum(np.round(SIZE_MEDIAN * np.exp(rng.normal(0.0, SIZE_SIGMA, n))), 1.0)
    size_shown = rng.random(n) >= SIZE_MISSING
    country = np.where(
        rng.random(n) < COUNTRY_MISSING, -1, rng.choice(len(COUNTRIES), size=n, p=COUNTRY_MIX)
    )
    fit = rng.random(n) < _fit_probability(source, industry, size)
    bant_true, bant_shown, strength = _draw_bant(fit, source, rng)
    receptivity = np.exp(rng.normal(0.0, RECEPTIVITY_SIGMA, n))
    receptivity *= np.where(fit, 1.0, NO_FIT_RECEPTIVITY)
    wait = rng.geometric(IN_MARKET_HAZARD, n)
    market_day = created_day + np.where(rng.random(n) < IN_MARKET_AT_START, 0, wait)
    engagement = np.exp(rng.normal(-(ENGAGEMENT_SIGMA**2) / 2, ENGAGEMENT_SIGMA, n))
    patience = rng.integers(PATIENCE_DAYS[0], PATIENCE_DAYS[1] + 1, n)
    return _Leads(
        created_day,
        created_min,
        source,
        industry,
        size,
        size_shown,
        country,
        fit,
        bant_true,
        bant_shown,
        strength,
        receptivity,
        market_day,
        engagement,
        patience,
    )


def _initial_state(leads: _Leads, rng: np.random.Generator) -> _State:
    n = len(leads.fit)
    start = np.asarray(SOURCE_READINESS)[leads.source] * np.exp(rng.normal(-0.18, 0.6, n))
    return _State(
        readiness=np.minimum(start, READINESS_CAP),
        cold_days=np.zeros(n, dtype=np.int64),
        sales_active=np.zeros(n, dtype=bool),
        unsubscribed=np.zeros(n, dtype=bool),
        outcome=np.zeros(n, dtype=np.int8),
        outcome_day=np.full(n, -1, dtype=np.int64),
    )


def _response_probability(readiness: np.ndarray, fit: np.ndarray, sales: bool) -> np.ndarray:
    """Chance a touch gets a response: rises with readiness; no-fit leads answer less."""
    p = RESPONSE_BASE + RESPONSE_SLOPE * np.minimum(readiness, 1.0)
    p = p * np.where(fit, 1.0, NO_FIT_RESPONSE) + (SALES_RESPONSE_BOOST if sales else 0.0)
    return np.clip(p, 0.0, 0.95)


def _signal_level(readiness: np.ndarray) -> np.ndarray:
    """0..1 switch for buying signals, steep around SIGNAL_MIDPOINT."""
    return _logistic((readiness - SIGNAL_MIDPOINT) / SIGNAL_WIDTH)


def _touches_today(
    idx: np.ndarray,
    day: int,
    leads: _Leads,
    state: _State,
    events: _Events,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw today's touches for open leads `idx`, add their readiness gain, log them.

    Returns per lead in `idx` the number of emails and events received today (they drive
    email opens/clicks and event attendance).
    """
    r = state.readiness[idx]
    fit = leads.fit[idx]
    hot = np.minimum(r, 1.0)
    gain = np.zeros(len(idx))
    emails = np.zeros(len(idx))
    event_invites = np.zeros(len(idx))

    p_mkt = np.where(state.unsubscribed[idx], 0.0, MARKETING_BASE + MARKETING_HOT * hot)
    mkt = np.flatnonzero(rng.random(len(idx)) < p_mkt)
    mkt_kind = rng.choice(len(MARKETING_CHANNELS), size=len(mkt), p=MARKETING_CHANNEL_MIX)
    mkt_resp = rng.random(len(mkt)) < _response_probability(r[mkt], fit[mkt], sales=False)
    gain[mkt] += _MARKETING_GAIN[mkt_kind] * (1.0 + RESPONSE_BONUS * mkt_resp)
    emails[mkt] += MARKETING_CHANNELS.index("email") == mkt_kind
    event_invites[mkt] += MARKETING_CHANNELS.index("event") == mkt_kind

    p_sales = np.where(state.sales_active[idx], SALES_BASE + SALES_HOT * hot, 0.0)
    sales = np.flatnonzero(rng.random(len(idx)) < p_sales)
    # Meetings get likelier as the lead warms up; calls are the default.
    meet = MEETING_SHARE[0] + MEETING_SHARE[1] * hot[sales]
    u = rng.random(len(sales))
    sales_kind = np.select(
        [u < meet, u < meet + SALES_EMAIL_SHARE],
        [SALES_CHANNELS.index("meeting"), SALES_CHANNELS.index("email")],
        SALES_CHANNELS.index("call"),
    )
    sales_resp = rng.random(len(sales)) < _response_probability(r[sales], fit[sales], sales=True)
    gain[sales] += _SALES_GAIN[sales_kind] * (1.0 + RESPONSE_BONUS * sales_resp)
    emails[sales] += SALES_CHANNELS.index("email") == sales_kind

    in_market = np.where(leads.market_day[idx] <= day, 1.0, OUT_OF_MARKET_GAIN)
    gain *= leads.receptivity[idx] * in_market
    state.readiness[idx] = np.minimum(r + gain, READINESS_CAP)

    lead = np.concatenate([idx[mkt], idx[sales]])
    responded = np.concatenate([mkt_resp, sales_resp]).astype(np.int8)
    responded[rng.random(len(lead)) < RESPONDED_MISSING] = -1
    events.touch_lead.append(lead)
    events.touch_day.append(np.full(len(lead), day))
    events.touch_channel.append(
        np.concatenate([_MARKETING_CODES[mkt_kind], _SALES_CODES[sales_kind]])
    )
    events.touch_team.append(
        np.concatenate([np.zeros(len(mkt), np.int8), np.ones(len(sales), np.int8)])
    )
    events.touch_responded.append(responded)
    return emails, event_invites


def _activity_rates(
    r: np.ndarray,
    fit: np.ndarray,
    engagement: np.ndarray,
    emails: np.ndarray,
    event_invites: np.ndarray,
    unsubscribed: np.ndarray,
) -> np.ndarray:
    """Expected count of each activity type today, shape (leads, ACTIVITY_TYPES).

    Email opens and clicks follow the emails received; browsing is common at any readiness;
    buying signals switch on near readiness 1 and are rarer for no-fit leads.
    """
    hot = np.minimum(r, 1.0)
    rates = np.zeros((len(r), len(ACTIVITY_TYPES)))
    for name, (base, slope) in EMAIL_RATES.items():
        rates[:, _ACT[name]] = emails * (base + slope * hot)
    rates[:, _ACT["email_open"]] += REOPEN_RATE * ~unsubscribed
    for name, (base, slope) in BROWSE_RATES.items():
        rates[:, _ACT[name]] = engagement * (base + slope * hot)
    base, slope = EVENT_ATTENDANCE
    rates[:, _ACT["event_attended"]] = event_invites * (base + slope * hot)
    signal = _signal_level(r) * np.sqrt(engagement)
    for name, rate in SIGNAL_RATE.items():
        no_fit = NO_FIT_SIGNALS[name]
        rates[:, _ACT[name]] = rate * signal * np.where(fit, 1.0, no_fit) + SIGNAL_BACKGROUND * hot
    return rates


def _activities_today(
    idx: np.ndarray,
    day: int,
    emails: np.ndarray,
    event_invites: np.ndarray,
    leads: _Leads,
    state: _State,
    events: _Events,
    rng: np.random.Generator,
) -> None:
    """Draw today's activities (Poisson per type) and unsubscribes; start sales on signals."""
    r = state.readiness[idx]
    rates = _activity_rates(
        r, leads.fit[idx], leads.engagement[idx], emails, event_invites, state.unsubscribed[idx]
    )
    counts = rng.poisson(rates)
    cold = r < COLD_READINESS
    p_unsub = np.where(leads.fit[idx], UNSUBSCRIBE_COLD_FIT, UNSUBSCRIBE_COLD_NO_FIT) * cold
    unsub = (rng.random(len(idx)) < p_unsub) & ~state.unsubscribed[idx]
    counts[:, _ACT["unsubscribe"]] = unsub
    state.unsubscribed[idx[unsub]] = True

    signalled = counts[:, _SIGNAL_CODES].sum(axis=1) > 0
    warm = (r > SALES_WARM_READINESS) & (rng.random(len(idx)) < SALES_WARM_START)
    state.sales_active[idx[signalled | warm]] = True

    rows, types = np.nonzero(counts)
    reps = counts[rows, types]
    events.act_lead.append(np.repeat(idx[rows], reps))
    events.act_day.append(np.full(int(reps.sum()), day))
    events.act_type.append(np.repeat(types, reps).astype(np.int8))


def _close_today(
    idx: np.ndarray, day: int, leads: _Leads, state: _State, rng: np.random.Generator
) -> None:
    """Decide wins and losses at the end of the day (step 7 of the module docstring)."""
    r = state.readiness[idx]
    age = day - leads.created_day[idx]
    cold = r < COLD_READINESS
    state.cold_days[idx] = np.where(cold, state.cold_days[idx] + 1, 0)
    fit = leads.fit[idx]
    hazard = WIN_HAZARD * np.maximum(r - WIN_FROM, 0.0) * (0.3 + 1.4 * leads.bant_strength[idx])
    won = fit & (age >= 1) & (rng.random(len(idx)) < hazard)
    disqualified = ~fit & state.sales_active[idx] & (rng.random(len(idx)) < DISQUALIFY_HAZARD)
    lost = (
        ~won
        & (age >= 1)
        & (
            ((state.cold_days[idx] >= leads.patience[idx]) & (age >= MIN_AGE_TO_LOSE))
            | (age >= MAX_AGE_DAYS)
            | disqualified
        )
    )
    state.outcome[idx[won]] = 1
    state.outcome[idx[lost]] = 2
    state.outcome_day[idx[won | lost]] = day


def _simulate(
    leads: _Leads, rng: np.random.Generator, progress: Callable[[int], None] | None
) -> tuple[_State, _Events]:
    """Step day by day over all open leads at once (vectorised over leads)."""
    state = _initial_state(leads, rng)
    events = _Events([], [], [], [], [], [], [], [])
    decay = 0.5 ** (1.0 / HALF_LIFE_DAYS)
    arrived_by = np.searchsorted(leads.created_day, np.arange(SIMULATED_DAYS), side="right")
    reported = 0
    for day in range(SIMULATED_DAYS):
        arrived = arrived_by[day]
        idx = np.flatnonzero(state.outcome[:arrived] == 0)
        state.readiness[idx] *= decay
        emails, event_invites = _touches_today(idx, day, leads, state, events, rng)
        _activities_today(idx, day, emails, event_invites, leads, state, events, rng)
        _close_today(idx, day, leads, state, rng)
        done = day + 1
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == SIMULATED_DAYS):
            progress(done - reported)
            reported = done
    return state, events


def _timestamps(
    lead: np.ndarray, day: np.ndarray, leads: _Leads, rng: np.random.Generator
) -> np.ndarray:
    """Minute-resolution times for events: 06:00-21:00, after created_at on the creation day."""
    created_today = day == leads.created_day[lead]
    low = np.where(created_today, leads.created_min[lead] + 1, DAY_START_MIN)
    minute = low + np.floor(rng.random(len(lead)) * (DAY_END_MIN - low)).astype(np.int64)
    return _first_day().astype("datetime64[m]") + day * MINUTES_PER_DAY + minute


def _creation_activities(leads: _Leads) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The activity each inbound lead was created by, at created_at exactly."""
    codes = np.array([-1 if a is None else _ACT[a] for a in SOURCE_ACTIVITY])[leads.source]
    lead = np.flatnonzero(codes >= 0)
    times = _lead_created_at(leads)[lead]
    return lead, times, codes[lead].astype(np.int8)


def _lead_created_at(leads: _Leads) -> np.ndarray:
    return (
        _first_day().astype("datetime64[m]")
        + leads.created_day * MINUTES_PER_DAY
        + leads.created_min
    )


def _iso(times: np.ndarray) -> np.ndarray:
    """ISO 8601 strings such as 2025-03-04T10:15:00."""
    return np.datetime_as_string(times.astype("datetime64[s]"), unit="s")


def _lead_ids(n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return np.array([f"L{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _leads_frame(
    leads: _Leads, state: _State, ids: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    n = len(ids)
    outcome_min = rng.integers(DAY_END_MIN, MINUTES_PER_DAY, n)
    outcome_at = (
        _first_day().astype("datetime64[m]") + state.outcome_day * MINUTES_PER_DAY + outcome_min
    )
    closed = state.outcome > 0
    frame = pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": _iso(_lead_created_at(leads)),
            "source": np.asarray(SOURCES, dtype=object)[leads.source],
            "industry": np.asarray(INDUSTRIES, dtype=object)[leads.industry],
            "company_size": np.where(
                leads.size_shown, leads.size.astype(np.int64).astype(str), ""
            ).astype(object),
            "country": np.where(
                leads.country >= 0, np.asarray(COUNTRIES)[np.maximum(leads.country, 0)], ""
            ).astype(object),
        }
    )
    for field, levels in _BANT_LEVELS.items():
        shown = leads.bant_shown[field]
        frame[field] = np.where(
            shown >= 0, np.asarray(levels)[np.maximum(shown, 0)], "unknown"
        ).astype(object)
    frame["outcome"] = np.asarray(OUTCOME_NAMES, dtype=object)[state.outcome]
    frame["outcome_at"] = np.where(closed, _iso(outcome_at), "").astype(object)
    return frame[list(LEAD_COLUMNS)]


def _activities_frame(
    leads: _Leads, events: _Events, ids: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    lead = np.concatenate(events.act_lead)
    day = np.concatenate(events.act_day)
    kind = np.concatenate(events.act_type)
    times = _timestamps(lead, day, leads, rng)
    c_lead, c_times, c_kind = _creation_activities(leads)
    lead = np.concatenate([c_lead, lead])
    times = np.concatenate([c_times, times])
    kind = np.concatenate([c_kind, kind])
    order = np.lexsort((kind, lead, times))
    return pd.DataFrame(
        {
            "lead_id": ids[lead[order]],
            "occurred_at": _iso(times[order]),
            "type": np.asarray(ACTIVITY_TYPES, dtype=object)[kind[order]],
        }
    )[list(ACTIVITY_COLUMNS)]


def _touches_frame(
    leads: _Leads, events: _Events, ids: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    lead = np.concatenate(events.touch_lead)
    day = np.concatenate(events.touch_day)
    channel = np.concatenate(events.touch_channel)
    team = np.concatenate(events.touch_team)
    responded = np.concatenate(events.touch_responded)
    times = _timestamps(lead, day, leads, rng)
    order = np.lexsort((team, lead, times))
    return pd.DataFrame(
        {
            "lead_id": ids[lead[order]],
            "occurred_at": _iso(times[order]),
            "channel": np.asarray(CHANNELS, dtype=object)[channel[order]],
            "team": np.asarray(TEAMS, dtype=object)[team[order]],
            "responded": np.asarray(["", "true", "false"], dtype=object)[
                np.where(responded[order] < 0, 0, 2 - responded[order])
            ],
        }
    )[list(TOUCH_COLUMNS)]


def generate_sample(
    n_leads: int, seed: int, progress: Callable[[int], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate a CRM export: (leads, activities, touches) with the contract's columns.

    All values are strings as they would sit in a CSV export (ISO 8601 dates, "" for missing
    optional values, "true"/"false" for responded). `progress`, if given, is called with the
    number of simulated days just advanced; the calls add up to SIMULATED_DAYS.
    """
    if n_leads < 1:
        raise ValueError(f"n_leads must be at least 1, got {n_leads}")
    rng = np.random.default_rng(seed)
    leads = _draw_leads(n_leads, rng)
    state, events = _simulate(leads, rng, progress)
    ids = _lead_ids(n_leads)
    return (
        _leads_frame(leads, state, ids, rng),
        _activities_frame(leads, events, ids, rng),
        _touches_frame(leads, events, ids, rng),
    )


def write_sample(
    out: Path, n_leads: int, seed: int, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Write leads.csv, activities.csv and touches.csv into `out`, each file atomically
    (`features.files.write_csv`); return rows per table."""
    out = Path(out)
    frames = generate_sample(n_leads, seed, progress)
    counts = {}
    for name, frame in zip(("leads", "activities", "touches"), frames, strict=True):
        write_csv(frame, out / f"{name}.csv")
        counts[name] = len(frame)
    return counts
