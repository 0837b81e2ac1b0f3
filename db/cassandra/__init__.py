"""The Cassandra store: ``cassandra://host1,host2:9042/keyspace`` (or an Astra secure connect bundle).

Tables (all fixed, created by ``init_schema``; statements are prepared once per session):

* ``jobs (id)``: one row per job. Every write to it is a lightweight transaction (LWT): created with
  ``IF status = null``, claimed with ``IF status = 'queued'``, finished with ``IF status = 'running' AND
  claimed_by = ?``, requeued with ``IF ... heartbeat_at < ?``; heartbeats and mail bookkeeping are conditional too,
  so plain writes and Paxos never touch the same cells. Rows are written with UPDATE (no row marker), so a row
  disappears entirely once its cells expire.
* ``jobs_active ((shard), id)``: queued or running jobs, for ``queued_jobs`` and ``requeue_stale``.
* ``jobs_finished ((shard), id)``: done or failed jobs with ``finished_at`` and ``zip_name``, for retention.
* ``jobs_pending_mail ((shard), id)``: jobs whose last email waits for a retry.
* ``image_urls ((job_id), position, seq)`` and ``events ((job_id), at, seq)``: one partition per job.
* ``admission``, ``confirmed_addresses`` and ``confirmation_mails``: the caps and the double opt-in (``consent``).
* ``crawl_pages``, ``crawl_images``, ``crawl_urls`` and ``crawl_meta``: the crawl state of crawl jobs (``crawl``),
  sequence-bucketed partitions whose status is updated in place; deleted by ``purge_job``.

The three lists are single partitions (``shard = 0``): the app holds few jobs at a time (queued, running and the
retention window), so one partition per list is small.

Retention by TTL: nothing expires while a job is queued or running (a job for next week waits). ``finish_job``
rewrites the whole job row, its image URLs and its events ``USING TTL retention_seconds``, so the personal data (email,
query, URLs, log) disappear that long after the job ends; later writes (mail bookkeeping, events) use the remaining
TTL. The ``jobs_finished`` entry (id, zip name, times; nothing personal) lives a day longer, so the periodic cleanup
still finds the job's zip after its row has expired; ``purge_job`` deletes everything explicitly.

Timestamps are Cassandra ``timestamp`` values: millisecond precision, returned as timezone-aware UTC datetimes.

Modules: ``connection`` (the per-process session, error mapping, LWT and the SERIAL read-back), ``schema`` (DDL, URL,
settings and replication parsing), ``rows`` (job rows to and from Cassandra values), ``lists`` (the three lists and
the TTL policy), ``records`` (image URLs and events), ``consent`` (the caps, unconfirmed jobs, confirmed addresses),
``crawl`` (crawl jobs' state) and ``store`` (the job methods).
"""

from db.cassandra.schema import DEFAULT_REPLICATION, parse_replication, parse_url
from db.cassandra.store import CassandraStore

__all__ = ["DEFAULT_REPLICATION", "CassandraStore", "parse_replication", "parse_url"]
