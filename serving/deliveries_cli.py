"""`leadready deliveries`: the webhook outbox of the lead store, for people: list recent
deliveries, requeue dead letters. The statements are in `features.leadstore.outbox`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from leadready.features.console import DatabaseUrl, ModelsDir, console, existing_store, fail
from leadready.features.leadstore.tables import DELIVERY_STATUSES

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Webhook deliveries in the lead store's outbox (docs/store.md): list them, requeue "
    "dead letters.",
    no_args_is_help=True,
)


@app.command("list")
def deliveries_list(
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only this status: {', '.join(DELIVERY_STATUSES)}."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many, newest first.")
    ] = 50,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """List the newest webhook deliveries: status, attempts, when the next attempt is due and
    the last error (what a dead letter died of)."""
    from leadready.features.leadstore.outbox import recent

    if status is not None and status not in DELIVERY_STATUSES:
        raise fail(f"--status {status!r}: expected one of {', '.join(DELIVERY_STATUSES)}")
    engine, where = existing_store(models_dir, database_url)
    try:
        with engine.connect() as connection:
            rows = recent(connection, status, limit)
    finally:
        engine.dispose()
    if not rows:
        console.print(f"No {status + ' ' if status else ''}deliveries in {escape(where)}")
        return
    console.print(
        f"{len(rows):,} webhook deliver{'y' if len(rows) == 1 else 'ies'} in {escape(where)}, "
        "newest first (times UTC):",
        highlight=False,
    )
    for row in rows:
        lead = f"  lead {row['lead_id']}" if row["lead_id"] is not None else ""
        console.print(
            f"{row['delivery_id']}  {row['status']}  {row['type']}{lead}",
            style=STYLES[row["status"]],
            highlight=False,
            markup=False,
        )
        console.print(f"    {_progress(row)}", highlight=False, markup=False, soft_wrap=True)
        if row["last_error"]:
            console.print(
                f"    last error: {row['last_error']}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


STYLES = {"pending": "yellow", "delivered": "green", "dead": "bold red"}


def _progress(row: dict) -> str:
    """Created when, attempts, and what comes next: "created 2026-01-01 09:00:00, 3 attempts,
    next at 2026-01-01 09:00:07"."""
    attempts = f"{row['attempts']} attempt{'' if row['attempts'] == 1 else 's'}"
    then = {
        "pending": f"next at {_time(row['next_attempt_at'])}",
        "delivered": f"delivered at {_time(row['delivered_at'])}",
        "dead": "a dead letter: `leadready deliveries retry` (this id, or --dead) sends it again",
    }[row["status"]]
    return f"created {_time(row['created_at'])}, {attempts}, {then}"


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(sep=" ", timespec="seconds")


@app.command("retry")
def deliveries_retry(
    delivery_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Deliveries to send again (their delivery_id), or --dead."),
    ] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Every dead letter.")] = False,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Requeue dead letters (or make pending deliveries due now): a running server sends them
    within a second, with a new retry window."""
    from leadready.features.leadstore.outbox import RequeueError, requeue
    from leadready.serving.webhooks import utcnow

    if bool(delivery_ids) == dead:
        raise fail(
            "give DELIVERY_ID... or --dead, not both"
            if dead
            else "give the delivery ids to retry, or --dead for every dead letter"
        )
    engine, where = existing_store(models_dir, database_url)
    try:
        with engine.begin() as connection:
            count = requeue(connection, None if dead else list(delivery_ids or []), utcnow())
    except RequeueError as exc:
        raise fail(f"{exc}; nothing was requeued") from None
    finally:
        engine.dispose()
    console.print(
        f"Requeued {count:,} deliver{'y' if count == 1 else 'ies'} in {escape(where)}; a running "
        "server with webhook URLs sends them within a second",
        highlight=False,
    )
