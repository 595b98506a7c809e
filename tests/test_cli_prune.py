"""`returnflow prune` on the demo's SQLite file, run as a command."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from returnflow import retention
from returnflow.demo.scenarios import SCENARIOS
from returnflow.domain.inbound import CarrierUpdate
from returnflow.errors import ValidationError
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness


def returnflow(*argv: str) -> subprocess.CompletedProcess[str]:
    installed = Path(sys.executable).with_name("returnflow")
    command = [str(installed)] if installed.exists() else [sys.executable, "-m", "returnflow.cli"]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, check=False, timeout=120
    )


def counts(db: Path) -> tuple[int, int, int, int]:
    """Returns, history entries, outbox rows, inbox keys."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("returns", "history", "outbox", "inbox")
        )


def test_prune_drops_delivered_effects_and_keeps_inbox_keys_inside_their_window(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    assert returnflow("demo", "--db", str(db)).returncode == 0
    returns, history, outbox, inbox = counts(db)
    assert outbox > returns > 0
    assert inbox > 0
    # the demo's returns ended in January 2026: long before 90 days ago
    done = returnflow(
        "prune", "--db", str(db), "--older-than", "90d", "--inbox-older-than", "9999d"
    )
    assert done.returncode == 0, done.stderr
    after = counts(db)
    assert after[:2] == (returns, history)  # returns and their history stay
    assert after[3] == inbox
    assert 0 < outbox - after[2] <= outbox
    assert done.stdout.strip() == (
        f"pruned {db}: {outbox - after[2]} delivered effects of returns ended more than 90 "
        f"days ago, 0 inbox keys older than 9999 days"
    )

    # every inbound event the demo processed is still refused when redelivered
    store = SqliteStore(db)
    try:
        # a scenario may open returns in more than its own shop (merchant-shops)
        shops = [f"demo-{scenario.name}" for scenario in SCENARIOS]
        with contextlib.closing(sqlite3.connect(db)) as connection:
            stored = {row[0] for row in connection.execute("SELECT DISTINCT shop FROM returns")}
        shops += sorted(stored - set(shops))
        redelivered = 0
        for shop in shops:
            for record in store.list(shop):
                harness = Harness(store=store)
                for source, event_id, _ in store.inbound(shop, record.id):
                    # the inbox knows an event by its source and id, whatever it said
                    event = CarrierUpdate(
                        shop=shop,
                        return_id=record.id,
                        event_id=event_id,
                        status="DELIVERED",
                        source=source,
                    )
                    assert harness.service.handle(event).status == "duplicate", event
                    redelivered += 1
        assert redelivered == inbox
    finally:
        store.close()
    assert counts(db) == after

    again = returnflow("prune", "--db", str(db), "--older-than", "90d", "--inbox-older-than", "1h")
    assert again.returncode == 0, again.stderr
    assert counts(db) == (*after[:3], 0)
    assert "0 delivered effects" in again.stdout
    assert f"{inbox} inbox keys older than 1 hours" in again.stdout


def test_effects_of_returns_ended_recently_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert returnflow("demo", "--db", str(db), "loop-upsell").returncode == 0
    before = counts(db)
    span = f"{(timedelta(days=36500)).days}d"  # a century: nothing is that old
    done = returnflow("prune", "--db", str(db), "--older-than", span)
    assert done.returncode == 0, done.stderr
    assert counts(db) == before


def test_a_window_longer_than_any_stored_instant_prunes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert returnflow("demo", "--db", str(db), "loop-upsell").returncode == 0
    before = counts(db)
    longest = f"{timedelta.max.days}d"  # its cutoff is before year 1
    done = returnflow("prune", "--db", str(db), "--older-than", longest)
    assert done.returncode == 0, done.stderr
    done = returnflow(
        "prune", "--db", str(db), "--older-than", longest, "--inbox-older-than", longest
    )
    assert done.returncode == 0, done.stderr
    assert counts(db) == before


def test_an_age_or_a_cutoff_out_of_range_is_a_validation_error(tmp_path: Path) -> None:
    for text in ("9" * 5000 + "d", "99999999999d"):
        with pytest.raises(ValidationError) as refused:
            retention.age(text, field="older_than")
        assert refused.value.field == "older_than"
    store = SqliteStore(tmp_path / "r.db")
    try:
        year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
        with pytest.raises(ValidationError) as refused:
            store.prune(older_than=year_one, inbox_older_than=year_one)
        assert refused.value.field == "older_than"
        with pytest.raises(ValidationError) as refused:
            retention.prune(store, now=year_one)
        assert refused.value.field == "now"
        now = datetime(1950, 1, 1, tzinfo=timezone.utc)
        assert retention.prune(store, now=now, older_than=timedelta.max) == retention.prune(
            store, now=now
        )
    finally:
        store.close()


def test_a_bad_age_is_a_usage_error_and_prunes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert returnflow("demo", "--db", str(db), "loop-upsell").returncode == 0
    before = counts(db)
    for flag, value in (
        ("--older-than", "90"),
        ("--older-than", "0d"),
        ("--older-than", "-5d"),
        ("--inbox-older-than", "soon"),
        ("--older-than", "99999999999d"),  # beyond what a timedelta holds
        ("--inbox-older-than", "9999999999999999999w"),
        ("--older-than", "\u0663d"),  # an Arabic-Indic 3: not a number of the syntax
    ):
        argv = ["prune", "--db", str(db), "--older-than", "90d", f"{flag}={value}"]
        done = returnflow(*argv)
        assert done.returncode == 2, (flag, value)
        assert f"argument {flag}: {flag}={value!r}" in done.stderr
        assert done.stdout == ""
    assert returnflow("prune", "--db", str(db)).returncode == 2  # --older-than is required
    assert counts(db) == before
