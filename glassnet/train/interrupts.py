"""Ctrl-C during training: deferred to the end of the current step, then a checkpoint and a resume hint.

:class:`InterruptSteps` holds the :class:`~glassnet.train.trainer.Trainer`'s methods for it. The
first SIGINT sets a flag that the loop checks between steps (``_check_interrupt``): ``last`` is
saved, the trainer says where and how to resume, and ``KeyboardInterrupt`` is raised. A second
SIGINT stops at once; a ``KeyboardInterrupt`` raised mid-code (no handler: not the main thread)
saves only if the state is consistent.
"""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["InterruptSteps"]


class InterruptSteps:
    """The Ctrl-C methods of :class:`~glassnet.train.trainer.Trainer` (it inherits them)."""

    @contextlib.contextmanager
    def _sigint_deferred(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True
            self.report("\ninterrupt: finishing the current step, then saving a checkpoint "
                        "(Ctrl-C again to stop at once)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _check_interrupt(self) -> None:
        if not self._interrupted:
            return
        stem = self._save("last")
        self._report_interrupt(stem)
        raise KeyboardInterrupt

    def _save_on_interrupt(self) -> None:
        """A KeyboardInterrupt raised mid-code: save only if the state is consistent."""
        stem = None
        if self._phase is None:
            stem = self._save("last")
        elif self._phase == "forward":  # the step had not touched the weights: rewind its RNG draws
            stem = self._save("last", glassnet_state=self._rng_at_step)
        self._report_interrupt(stem)

    def _report_interrupt(self, stem) -> None:
        if self.log is None:
            return
        if stem is None:
            self.report("interrupted; no checkpoint was written" + (
                f" ({self._last_good().strip()})" if self.out_dir is not None else ""))
            return
        self.report(f"interrupted: saved checkpoint {stem}.safetensors (epoch {self.epoch + 1}/{self.epochs}, "
                    f"step {self.step}/{len(self.train_loader)}, global step {self.global_step}).")
        if self.resume_hint:
            self.report(f"resume with: {self.resume_hint}")

