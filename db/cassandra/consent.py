"""The Cassandra store's caps and consent: admission under a Paxos lease, addresses only as keyed hashes.

* ``admission ((shard))``: one row, taken with ``INSERT ... IF NOT EXISTS USING TTL`` by the submission that counts
  and creates a job, and deleted ``IF holder = ?`` after it; so two processes never both take the last place. A
  process that dies holding it loses it when the TTL ends.
* ``confirmed_addresses ((key))``: a confirmed address's HMAC, expiring by TTL when its confirmation does.
* ``confirmation_mails ((key))``: the times of an address's recent confirmation emails, replaced with
  ``IF sent = <what was read>`` so concurrent reservations cannot both pass.

Unconfirmed jobs are in ``jobs_active`` like queued ones (readers keep the status they want).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from cassandra import ConsistencyLevel, WriteTimeout

from db.base import ACTIVE, QUEUED, UNCONFIRMED, WAITING, Job, LimitReached, StoreError, StoreUnavailable, same_address
from db.cassandra import lists
from db.cassandra.connection import CassandraConnection
from db.cassandra.rows import as_utc, row_to_job, to_ms, utc_now

LEASE_SECONDS = 10  # far longer than counting and creating a job takes
LEASE_TRIES = 50  # bounded wait for a busy lease: about 5 s in all
LEASE_WAIT = 0.1
CAS_RETRIES = 5


class ConsentRecords(CassandraConnection):
    """The Store methods for the caps, unconfirmed jobs, confirmed addresses and confirmation emails."""

    create_job: Callable[[Job], None]

    # Admission
    def _take_lease(self, holder: str) -> bool:
        cql = "INSERT INTO {ks}.admission (shard, holder) VALUES (0, ?) IF NOT EXISTS USING TTL ?"
        try:
            return bool(self.run(cql, (holder, LEASE_SECONDS)).was_applied)
        except WriteTimeout:
            # The outcome of the Paxos write is unknown: the row read back at SERIAL says whose lease it is.
            bound = self.prepare("SELECT holder FROM {ks}.admission WHERE shard = 0").bind(())
            bound.consistency_level = ConsistencyLevel.LOCAL_SERIAL
            row = self.session().execute(bound).one()
            return row is not None and row.holder == holder

    @contextmanager
    def _admission(self) -> Iterator[None]:
        holder = uuid.uuid4().hex
        for _attempt in range(LEASE_TRIES):
            if self._take_lease(holder):
                break
            time.sleep(LEASE_WAIT)
        else:
            raise StoreUnavailable("Cassandra: too many submissions at once (admission stayed busy)")
        try:
            yield
        finally:
            self.run("DELETE FROM {ks}.admission WHERE shard = 0 IF holder = ?", (holder,))

    def create_job_capped(self, job: Job, per_email: int, in_all: int) -> None:
        with self.errors(), self._admission():
            rows = lists.active_rows(self)
            if sum(1 for r in rows if r.status in ACTIVE and same_address(r.email or "", job.email)) >= per_email:
                raise LimitReached("email")
            if sum(1 for r in rows if r.status in WAITING) >= in_all:
                raise LimitReached("all")
            self.create_job(job)

    def confirm_jobs(self, email: str) -> list[str]:
        confirmed = []
        with self.errors():
            for row in lists.active_rows(self):
                if row.status != UNCONFIRMED or not same_address(row.email or "", email):
                    continue
                applied, _ = self.cas(
                    "UPDATE {ks}.jobs SET status = ?, phase = ? WHERE id = ? IF status = ?",
                    (QUEUED, QUEUED, row.id, UNCONFIRMED), row.id, lambda r: r.status != UNCONFIRMED,
                )
                if applied:
                    confirmed.append(row.id)
        return confirmed

    def unconfirmed_before(self, cutoff: datetime) -> list[Job]:
        cutoff = to_ms(cutoff)
        with self.errors():
            rows = [r for r in lists.active_rows(self) if r.status == UNCONFIRMED
                    and r.created_at is not None and as_utc(r.created_at) < cutoff]
        return sorted((row_to_job(r) for r in rows), key=lambda job: (job.created_at, job.id))

    # Confirmed addresses
    def remember_confirmed(self, key: str, until: datetime) -> None:
        ttl = max(1, int((to_ms(until) - utc_now()).total_seconds()))
        with self.errors():
            self.run("INSERT INTO {ks}.confirmed_addresses (key, until) VALUES (?, ?) USING TTL ?",
                     (key, to_ms(until), ttl))

    def is_confirmed(self, key: str, now: datetime) -> bool:
        with self.errors():
            row = self.run("SELECT until FROM {ks}.confirmed_addresses WHERE key = ?", (key,)).one()
        return row is not None and row.until is not None and as_utc(row.until) > to_ms(now)

    # Confirmation emails
    def reserve_confirmation_mail(self, key: str, now: datetime, limits: Sequence[tuple[timedelta, int]]) -> bool:
        now = to_ms(now)
        longest = max((window for window, _ in limits), default=timedelta(0))
        ttl = max(1, int(longest.total_seconds()))
        with self.errors():
            for _attempt in range(CAS_RETRIES):
                row = self.run("SELECT sent FROM {ks}.confirmation_mails WHERE key = ?", (key,)).one()
                old = list(row.sent or []) if row is not None else []
                recent = [as_utc(t) for t in old if now - longest < as_utc(t) <= now]
                if any(sum(1 for t in recent if t > now - window) >= most for window, most in limits):
                    return False
                if row is None:
                    result: Any = self.run(
                        "INSERT INTO {ks}.confirmation_mails (key, sent) VALUES (?, ?) IF NOT EXISTS USING TTL ?",
                        (key, [*recent, now], ttl))
                else:
                    result = self.run(
                        "UPDATE {ks}.confirmation_mails USING TTL ? SET sent = ? WHERE key = ? IF sent = ?",
                        (ttl, [*recent, now], key, row.sent))
                if result.was_applied:
                    return True
            raise StoreError("confirmation_mails: the reservation kept losing to concurrent ones")
