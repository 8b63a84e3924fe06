from __future__ import annotations

import threading
import time

from wajah.matcher.locking import ReadWriteLock


def test_readers_share_the_lock() -> None:
    lock = ReadWriteLock()
    inside = threading.Barrier(3, timeout=5)  # fails unless 3 readers are inside at once

    def reader() -> None:
        with lock.read():
            inside.wait()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not inside.broken


def test_a_writer_excludes_readers_and_waits_for_those_in_flight() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    reader_inside = threading.Event()

    def slow_reader() -> None:
        with lock.read():
            reader_inside.set()
            time.sleep(0.2)
            events.append("reader done")

    def writer() -> None:
        with lock.write():
            events.append("writer in")
            time.sleep(0.1)
            events.append("writer out")

    def late_reader() -> None:
        with lock.read():
            events.append("late reader")

    first = threading.Thread(target=slow_reader)
    first.start()
    reader_inside.wait(5)
    writing = threading.Thread(target=writer)
    writing.start()
    time.sleep(0.05)  # the writer is now waiting; a new reader must queue behind it
    late = threading.Thread(target=late_reader)
    late.start()
    for thread in (first, writing, late):
        thread.join(timeout=10)
    assert events == ["reader done", "writer in", "writer out", "late reader"]
