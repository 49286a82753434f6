"""The interrupt state: a signal is recorded, raised where it is safe, and never lost."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import weakref

import pytest

from sweeper.interrupts import INTERRUPTS, SweepInterrupted


def _signal_self(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.2)  # the handler runs in between: it raises here unless deferred


def test_raised_at_once_outside_a_deferred_block_and_handlers_restored() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ran: list[str] = []
    with INTERRUPTS.installed():
        with pytest.raises(SweepInterrupted, match="SIGINT"):
            _signal_self(signal.SIGINT)
            ran.append("after SIGINT")
        assert INTERRUPTS.requested
    assert ran == []
    assert not INTERRUPTS.requested  # the outermost block ends with no stop pending
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_deferred_block_runs_to_its_end_then_raises() -> None:
    ran: list[str] = []
    with INTERRUPTS.installed():
        with pytest.raises(SweepInterrupted, match="SIGTERM"), INTERRUPTS.deferred():
            _signal_self(signal.SIGTERM)
            ran.append("deferred block ended")
        with pytest.raises(SweepInterrupted):  # sticky: every later safe point raises again
            INTERRUPTS.check()
    assert ran == ["deferred block ended"]


def test_check_inside_a_deferred_block_raises_and_shielded_never_does() -> None:
    ran: list[str] = []
    with INTERRUPTS.installed():
        with pytest.raises(SweepInterrupted), INTERRUPTS.deferred():
            _signal_self(signal.SIGINT)
            ran.append("before the safe point")
            INTERRUPTS.check()
            ran.append("after the safe point")
        with INTERRUPTS.shielded():  # clean-up after a stop: nothing raised, even at its end
            _signal_self(signal.SIGINT)
            ran.append("clean-up done")
    assert ran == ["before the safe point", "clean-up done"]


def test_undeferred_lets_a_signal_through_again() -> None:
    with INTERRUPTS.installed(), INTERRUPTS.deferred():
        with pytest.raises(SweepInterrupted), INTERRUPTS.undeferred():
            _signal_self(signal.SIGINT)
            pytest.fail("not raised inside the undeferred block")
        INTERRUPTS.requested = False  # taken: the deferred block may end quietly


def test_a_raise_swallowed_by_a_gc_callback_is_raised_at_the_next_check() -> None:
    """What Python does with an exception raised inside a weakref callback: prints it, drops it."""

    class Thing:
        pass

    swallowed: list[str] = []
    before = sys.unraisablehook
    with INTERRUPTS.installed():
        thing = Thing()

        def callback(_ref: object) -> None:
            # the signal arrives while the callback runs: the handler's raise is "ignored"
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # give the handler a bytecode boundary inside the callback
                pass
            swallowed.append("callback ended")

        ref = weakref.ref(thing, callback)
        del thing
        gc.collect()
        assert ref() is None
        time.sleep(0.05)
        assert swallowed == []  # the raise ended the callback, and Python dropped it
        assert INTERRUPTS.requested  # but the request is kept
        with pytest.raises(SweepInterrupted):
            INTERRUPTS.check()
    assert sys.unraisablehook is before


def test_other_unraisable_errors_still_reach_the_previous_hook() -> None:
    seen: list[BaseException] = []
    before = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    try:
        with INTERRUPTS.installed():

            class Broken:
                def __del__(self) -> None:
                    raise ValueError("from __del__")

            Broken()
            gc.collect()
    finally:
        sys.unraisablehook = before
    assert [type(e) for e in seen] == [ValueError]


def test_stop_hooks_run_when_the_signal_arrives_or_at_once_if_it_already_did() -> None:
    stopped: list[str] = []
    with INTERRUPTS.installed(), INTERRUPTS.shielded():
        with INTERRUPTS.on_stop(lambda: stopped.append("first")):
            _signal_self(signal.SIGINT)
        assert stopped == ["first"]
        with INTERRUPTS.on_stop(lambda: stopped.append("second")):
            pass
        assert stopped == ["first", "second"]
        _signal_self(signal.SIGINT)  # hooks are unregistered when their block ends
        assert stopped == ["first", "second"]


def test_nested_installation_shares_one_state() -> None:
    with INTERRUPTS.installed():
        handler = signal.getsignal(signal.SIGINT)
        with INTERRUPTS.installed():
            assert signal.getsignal(signal.SIGINT) == handler
            with pytest.raises(SweepInterrupted):
                _signal_self(signal.SIGINT)
        assert INTERRUPTS.requested  # the inner block's end does not clear the outer's stop
        assert signal.getsignal(signal.SIGINT) == handler
