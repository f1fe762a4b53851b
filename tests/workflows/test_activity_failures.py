"""An activity's failure stays small enough for the server to keep it whole (under 4 KB): a
short message and type up top, the details clipped in its cause."""

from __future__ import annotations

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, CancelledError

from workflows.activity_support import django_activity

SERVER_LIMIT = 4 * 1024


class ChainTrouble(RuntimeError):
    pass


def _deep(n: int) -> None:
    if n == 0:
        try:
            raise ValueError("rpc said: " + "x" * 3_000)
        except ValueError as inner:
            raise ChainTrouble("submit failed: nonce too low\n" + "trace " * 800) from inner
    _deep(n - 1)


def failure_of(call) -> tuple[Failure, BaseException]:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as caught:
        call()
    failure = Failure()
    converter = DataConverter.default
    converter.failure_converter.to_failure(caught.value, converter.payload_converter, failure)
    return failure, caught.value


def test_a_large_error_becomes_a_short_failure_with_details_in_its_cause() -> None:
    failure, _ = failure_of(django_activity(lambda: _deep(30)))
    assert failure.ByteSize() < SERVER_LIMIT * 3 / 4, failure.ByteSize()
    assert failure.message == "submit failed: nonce too low"
    # The type is the exception's class name: non_retryable_error_types still match it.
    assert failure.application_failure_info.type == "ChainTrouble"
    assert not failure.application_failure_info.non_retryable
    details = failure.cause.message
    assert details.startswith("ChainTrouble: submit failed: nonce too low")
    assert "_deep" in details and "caused by ValueError: rpc said" in details


def test_an_application_error_keeps_its_type_details_and_retry_flag() -> None:
    def fail() -> None:
        raise ApplicationError("refused " * 200, {"batch": 7}, type="BatchAbandoned",
                               non_retryable=True)  # fmt: skip

    failure, error = failure_of(django_activity(fail))
    assert isinstance(error, ApplicationError)
    assert (error.type, error.non_retryable, error.details) == (
        "BatchAbandoned",
        True,
        ({"batch": 7},),
    )
    assert len(error.message) <= 240
    assert failure.ByteSize() < SERVER_LIMIT * 3 / 4


def test_temporals_own_errors_pass_through_unchanged() -> None:
    cancelled = CancelledError("cancelled by the workflow")

    def fail() -> None:
        raise cancelled

    with pytest.raises(CancelledError) as caught:
        django_activity(fail)()
    assert caught.value is cancelled
