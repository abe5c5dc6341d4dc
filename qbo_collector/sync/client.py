"""The one QuickBooks read client of the sync: rate limit, retries, error translation, call count.

Every HTTP request of a ``QboClient`` goes through one transport adapter that waits for the
realm's rate limiter, counts the call and sets a timeout (python-quickbooks sets none).
A response hook on ``qb.session`` records the real HTTP status: python-quickbooks turns a
throttle into ``ValidationException`` (JSON fault 3001), a base ``QuickbooksException``
(XML body) or worse, so retryability is decided from the status, never from the class.

    429, 5xx, timeout, connection error, cut-off JSON  → retried (tenacity: Retry-After
                                                          honoured, else exponential backoff
                                                          with jitter; bounded) → TransientFailure
    401                                                → TokenManager refreshes, one retry
                                                          → ReconnectNeeded when refused again
    any other fault                                    → PermanentFailure (with QBO's code)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import requests
import tenacity
from quickbooks import QuickBooks
from quickbooks import exceptions as qb_exceptions
from requests.adapters import HTTPAdapter

from qbo_collector import config, errors
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sync import limiter as limiter_mod
from qbo_collector.sync import streams, tokens

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_NETWORK = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How hard one API call tries. Tests shrink the waits; production keeps the defaults."""

    attempts: int = 6                 # tries per call, the first included
    initial_wait: float = 1.0         # first backoff; doubles, plus up to as much jitter
    max_wait: float = 60.0            # cap of one backoff
    max_retry_after: float = 60.0     # cap on a server's Retry-After (Intuit asks for up to 60 s)
    connect_timeout: float = 10.0
    read_timeout: float = 125.0       # QBO itself gives up at 120 s


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Transport(HTTPAdapter):
    """Every request: wait for the limiter (a batch request for the batch limiter too), count it,
    give it a timeout."""

    def __init__(self, owner: "QboClient") -> None:
        super().__init__(pool_connections=1, pool_maxsize=2)
        self.owner = owner

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        owner = self.owner
        batch = (request.path_url or "").split("?", 1)[0].endswith("/batch")
        batch_slot = owner.batch_limiter.acquire(owner.realm_id) if batch and owner.batch_limiter else None
        slot = owner.limiter.acquire(owner.realm_id)
        owner.api_calls += 1
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (owner.policy.connect_timeout, owner.policy.read_timeout)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            owner.limiter.done(slot)
            if batch_slot is not None:
                owner.batch_limiter.done(batch_slot)  # type: ignore[union-attr]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare at Intuit; the backoff applies


class QboClient:
    """Reads one realm. Not shared between threads; cheap to build (the token is fetched lazily)."""

    def __init__(self, settings: config.Settings, db: Database, vault: Vault, realm_id: str, *,
                 policy: RetryPolicy | None = None, limiter: limiter_mod.RateLimiter | None = None,
                 batch_limiter: limiter_mod.RateLimiter | None = None) -> None:
        self.realm_id = realm_id
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or limiter_mod.DEFAULT
        # Intuit's batch window (40/min) as well, unless the caller chose its own limiter and no
        # batch one (tests and benchmarks against the sandbox): then its limiter alone applies.
        self.batch_limiter = batch_limiter or (limiter_mod.BATCHES if limiter is None else None)
        self.tokens = tokens.TokenManager(settings, db, vault, realm_id)
        self.api_calls = 0        # HTTP requests sent to the Accounting API, retries included
        self.retries = 0
        self.last_time: datetime | None = None  # server time of the last answer ("time" field)
        self._qb: QuickBooks | None = None
        self._status: int | None = None
        self._retry_after: float | None = None

    # --- plumbing --------------------------------------------------------------------

    def _client(self) -> QuickBooks:
        if self._qb is None:
            qb = self.tokens.client()
            transport = _Transport(self)
            qb.session.mount("https://", transport)
            qb.session.mount("http://", transport)
            qb.session.hooks["response"].append(self._on_response)
            self._qb = qb
        return self._qb

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._status = response.status_code
        self._retry_after = _retry_after(response)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after)
        backoff = tenacity.wait_exponential_jitter(multiplier=self.policy.initial_wait, max=self.policy.max_wait,
                                                   jitter=self.policy.initial_wait)
        return float(backoff(state))

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("qbo call retried realm=%s attempt=%s reason=%s wait=%.2fs", self.realm_id, state.attempt_number,
                 getattr(exc, "reason", exc), state.next_action.sleep if state.next_action else 0.0)

    def _once(self, fn: Callable[[QuickBooks], T]) -> T:
        """One try, its outcome classified by the HTTP status the hook saw."""
        qb = self._client()
        self._status = self._retry_after = None
        try:
            return self.tokens.call(qb, fn)
        except RETRYABLE_NETWORK as exc:
            raise _Retry(type(exc).__name__) from None
        except qb_exceptions.QuickbooksException as exc:
            status = self._status
            if status == 429:
                raise _Retry("throttled (429)", self._retry_after) from None
            if status is not None and status >= 500:
                raise _Retry(f"server error ({status})", self._retry_after) from None
            if status == 200 and "json" in str(exc.message).lower():
                raise _Retry("malformed JSON in a 200 answer") from None
            if status in (401, 403):
                raise errors.ReconnectNeeded(f"QuickBooks refused access to company {self.realm_id} "
                                             f"(HTTP {status}); reconnect it on the settings page.") from None
            said = f"{exc.message} {exc.detail or ''}".strip()  # QuickBooks' own words
            raise errors.PermanentFailure(f"QuickBooks refused the request (HTTP {status}): {said}",
                                          code=exc.error_code, said=said) from None

    def call(self, action: str, fn: Callable[[QuickBooks], T], *, attempts: int | None = None) -> T:
        """Run ``fn(qb)`` with the retry policy (``attempts`` tries instead of the policy's, when
        given); errors come out as our own tree."""
        attempts = attempts or self.policy.attempts
        retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(attempts), wait=self._wait,
                                     retry=tenacity.retry_if_exception_type(_Retry),
                                     before_sleep=self._before_sleep, reraise=True)
        try:
            return retrying(self._once, fn)
        except _Retry as exc:
            raise errors.TransientFailure(f"QuickBooks did not answer to {action} after {attempts} "
                                          f"tries ({exc.reason}); the sync will resume from where it stopped.",
                                          retry_after=exc.retry_after) from None

    def _remember_time(self, result: dict[str, Any]) -> None:
        moment = streams.parse_time(result.get("time")) if isinstance(result, dict) else None
        if moment is not None:
            self.last_time = moment

    # --- reads -----------------------------------------------------------------------

    def query(self, statement: str, *, include: str | None = None) -> dict[str, Any]:
        """One page: the ``QueryResponse`` object (``{}`` when QBO found nothing)."""
        params = {"include": include} if include else None
        result = self.call(f"read {statement.split(' FROM ', 1)[-1].split(' ', 1)[0]}",
                           lambda qb: qb.query(statement, params=dict(params) if params else None))
        self._remember_time(result)
        response = result.get("QueryResponse") if isinstance(result, dict) else None
        if not isinstance(response, dict):
            raise errors.TransientFailure("QuickBooks answered a query without a QueryResponse.")
        return response

    def cdc(self, entities: list[str], since: datetime) -> dict[str, list[dict[str, Any]]]:
        """Changed (and deleted) rows since ``since``, per entity, in one call."""
        changed_since = streams.format_since(since)
        result = self.call("read the changes", lambda qb: qb.change_data_capture(",".join(entities), changed_since))
        self._remember_time(result)
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in entities}
        for cdc in result.get("CDCResponse") or ():
            for response in cdc.get("QueryResponse") or ():
                if not isinstance(response, dict):
                    continue
                for name in entities:
                    rows = response.get(name)
                    if isinstance(rows, list):
                        out[name].extend(rows)
        return out
