"""What only the SQLite store does: a close that never pulls a connection from under another thread."""

from __future__ import annotations

import threading

from db.sqlite import SQLiteStore


def test_close_waits_for_a_transaction_open_in_another_thread(tmp_path):
    # A fresh-clone run crashed its test process (a segmentation fault in COMMIT) when a test's teardown closed the
    # store while a job thread of the app was still recording an email.
    path = tmp_path / "close.sqlite3"
    store = SQLiteStore(path)
    store.init_schema()
    inside, release, errors = threading.Event(), threading.Event(), []

    def writer() -> None:
        try:
            with store._transaction() as conn:
                conn.execute("CREATE TABLE written (x INTEGER)")
                conn.execute("INSERT INTO written VALUES (1)")
                inside.set()
                release.wait(10)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong in the thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close waits while the other thread's transaction is open
    release.set()
    thread.join(10)
    closer.join(10)
    assert not closer.is_alive() and errors == []
    again = SQLiteStore(path)
    with again._db() as conn:
        assert conn.execute("SELECT x FROM written").fetchall()[0][0] == 1  # the transaction committed
    again.close()

