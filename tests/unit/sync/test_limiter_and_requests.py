"""Client-side rate limit and the webhook debouncer."""

from __future__ import annotations

import threading
import time

from qbo_collector.sync import limiter, run


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_ten_a_second_then_wait():
    clock = FakeClock()
    rl = limiter.RateLimiter((limiter.Window(10, 1.0), limiter.Window(500, 60.0)), clock=clock, sleep=clock.sleep)
    for _ in range(10):
        rl.acquire("r")
    assert clock.slept == []
    rl.acquire("r")
    assert clock.slept == [1.0]


def test_five_hundred_a_minute():
    clock = FakeClock()
    rl = limiter.RateLimiter((limiter.Window(10, 1.0), limiter.Window(500, 60.0)), clock=clock, sleep=clock.sleep)
    for _ in range(500):
        rl.acquire("r")
    assert clock.now == 49.0                         # 10/s: the 500th goes at 49 s
    before = clock.now
    rl.acquire("r")                                  # the 501st waits for the first to leave the minute
    assert clock.now >= 60.0 and clock.now > before


def test_realms_are_limited_separately():
    clock = FakeClock()
    rl = limiter.RateLimiter((limiter.Window(2, 1.0),), clock=clock, sleep=clock.sleep)
    for realm in ("a", "a", "b", "b"):
        rl.acquire(realm)
    assert clock.slept == []


def test_a_burst_of_100_requests_is_one_sync():
    ran: list[str] = []
    requests_ = run.SyncRequests(None, None, None, delay=0.2, max_delay=5, sync=ran.append)  # type: ignore[arg-type]
    threads = [threading.Thread(target=requests_.request, args=("111",)) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requests_.request("222")
    assert requests_.wait_idle(5)
    assert sorted(ran) == ["111", "222"]
    requests_.stop()


def test_a_request_during_a_running_sync_is_one_more_sync_after_it():
    ran: list[str] = []
    gate = threading.Event()

    def slow(realm: str) -> None:
        ran.append(realm)
        gate.wait(5)

    requests_ = run.SyncRequests(None, None, None, delay=0.05, max_delay=1, sync=slow)  # type: ignore[arg-type]
    requests_.request("1")
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(10):
        requests_.request("1")
    gate.set()
    assert requests_.wait_idle(5)
    assert ran == ["1", "1"]
    requests_.stop()


def test_a_failing_sync_does_not_stop_the_debouncer():
    ran: list[str] = []

    def boom(realm: str) -> None:
        ran.append(realm)
        raise RuntimeError("QuickBooks is down")

    requests_ = run.SyncRequests(None, None, None, delay=0.01, sync=boom)  # type: ignore[arg-type]
    requests_.request("1")
    assert requests_.wait_idle(5)
    requests_.request("2")
    assert requests_.wait_idle(5)
    assert ran == ["1", "2"]
    requests_.stop()


def test_a_request_counts_from_its_answer():
    clock = FakeClock()
    rl = limiter.RateLimiter((limiter.Window(2, 1.0),), clock=clock, sleep=clock.sleep)
    first = rl.acquire("r")
    clock.now = 0.5                                   # a slow answer: Intuit may have seen it arrive late
    rl.done(first)
    rl.acquire("r")
    rl.acquire("r")                                   # the third waits a full window after the first answer
    assert clock.now == 1.5
