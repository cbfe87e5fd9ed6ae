"""The ``telemetry_capture`` fixture reaches a test file with no import, through the ``pytest11`` entry point of
the installed package (a pytest subprocess, as a user's run would load it)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixture_is_available_without_an_import(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``telemetry_capture`` fixture works in a user's test without an import, with env config applied."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "user-tests")  # the fixture runs instrument(): env config applies
    pytester.makepyfile(
        test_user="""
        import logging

        from opentelemetry import trace


        def test_agent(telemetry_capture):
            with trace.get_tracer("user").start_as_current_span("invoke_agent planner"):
                logging.getLogger("user").warning("planning")
            telemetry_capture.flush()
            span = telemetry_capture.span("invoke_agent planner")
            assert span.resource.attributes["service.name"] == "user-tests"
            assert any(r.log_record.body == "planning" for r in telemetry_capture.logs())
        """
    )
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    res.assert_outcomes(passed=1)
    assert "fixture 'telemetry_capture' not found" not in res.stdout.str()
