"""Drive one training process (``python -m engine.train.train_process``) with QProcess and parse its JSON lines.

The GUI never trains in its own process: a crash, an out-of-memory kill or a hung CUDA driver takes the
child down, and the window reports it. Pause and stop both ask the child to save a checkpoint and exit (a
``stop`` file plus SIGTERM); resume restarts it with ``--resume`` and continues exactly where it stopped.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import QApplication

from engine.api import training_command as command

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_LINES = 30
SUGGESTION = "try a smaller batch size or image size"


class RunController(QObject):
    """Start, pause, resume and stop a training run; ``state`` is idle, running, stopping, paused or failed.

    Signals:
        event(dict): one decoded Progress event (``kind``, ``step``, ``total``, ``losses``, ...).
        state_changed(str): the new state.
        failed(str): the process crashed or reported an error; the text ends with the stderr tail.
    """

    event = Signal(dict)
    state_changed = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.run_dir: Path | None = None
        self.state = "idle"
        self.last_event: dict[str, Any] = {}
        self._error: dict[str, Any] | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._buffer = b""
        self._after_stop = "paused"
        self.nproc = 1  # training processes of the current run (torchrun when more than one)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # --- commands ---------------------------------------------------------------------------------
    def start(self, spec: dict[str, Any], run_dir: str | Path, nproc: int = 1) -> None:
        """Start a new run in ``run_dir`` (created) from a RunSpec JSON dict, on ``nproc`` GPUs."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        self.nproc = nproc
        self._launch(run_dir, ["--spec", str(spec_path)])

    def resume(self, run_dir: str | Path | None = None, steps: int | None = None,
               retune: dict[str, Any] | None = None, nproc: int | None = None,
               device: str | None = None) -> None:
        """Continue ``run_dir`` (default: the current run) from its latest checkpoint, optionally with a new
        total step count, new values for the family's retunable fields (e.g. StyleGAN2's ``r1_gamma``) and on
        another ``device``."""
        target = Path(run_dir) if run_dir is not None else self.run_dir
        if target is None:
            return
        self.nproc = self.nproc if nproc is None else nproc
        args = ["--resume"] + ([] if steps is None else ["--steps", str(steps)])
        args += [] if device is None else ["--device", device]
        self._launch(target, args + (["--retune", json.dumps(retune)] if retune else []))

    def pause(self) -> None:
        """Save a checkpoint and end the process; :meth:`resume` continues exactly."""
        self._request_stop("paused")

    def stop(self) -> None:
        """Save a checkpoint and end the run (it can still be resumed later from the runs list)."""
        self._request_stop("stopped")

    def shutdown(self, timeout_ms: int = 20000) -> None:
        """On quit: ask for a checkpoint and wait for it, then kill whatever is left."""
        if self.running:
            self._request_stop("stopped")
            if not self.process.waitForFinished(timeout_ms):
                self.process.terminate()  # torchrun ends its processes (a kill would orphan them)
                self.process.waitForFinished(5000)
                self.process.kill()
                self.process.waitForFinished(2000)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    # --- process ----------------------------------------------------------------------------------
    def _launch(self, run_dir: Path, args: list[str]) -> None:
        if self.running:
            raise RuntimeError("a training process is already running")
        self.run_dir, self._error, self._buffer = run_dir, None, b""
        self._stderr.clear()
        (run_dir / "stop").unlink(missing_ok=True)
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONPATH", os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.value("PYTHONPATH")])))
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(PROJECT_ROOT))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        self._set_state("running")
        program, *arguments = command([*args, str(run_dir)], self.nproc)
        process.start(program, arguments)

    def _request_stop(self, after: str) -> None:
        if not self.running or self.run_dir is None:
            return
        self._after_stop = after
        (self.run_dir / "stop").write_text("requested by the GUI\n", encoding="utf-8")
        if self.nproc == 1:  # torchrun would end its processes on SIGTERM; they see the file and agree instead
            self.process.terminate()  # SIGTERM: the child saves a checkpoint and exits 0
        self._set_state("stopping")

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                self._stderr.append(line.decode(errors="replace"))
                continue
            if record.get("kind") == "error":
                self._error = record
            else:
                self.last_event = record
            self.event.emit(record)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode(errors="replace")
        self._stderr.extend(line for line in text.splitlines() if line.strip())

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(f"the training process could not start ({self.process.errorString()})")

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if status == QProcess.ExitStatus.NormalExit and code == 0:
            kind = self.last_event.get("kind")
            self._set_state("done" if kind == "done" else self._after_stop)
            return
        if self._error is not None:
            message = self._error.get("message", "training failed")
        elif status == QProcess.ExitStatus.CrashExit:
            message = "the training process was killed or crashed (out of memory?)"
        else:
            message = f"the training process exited with code {code}"
        self._fail(message)

    def _fail(self, message: str) -> None:
        tail = "\n".join(self._stderr)
        oom = self._error is None or bool(self._error.get("oom"))
        text = message + (f"\n\nSuggestion: {SUGGESTION}." if oom else "")
        if tail:
            text += "\n\nLast lines of the process's error output:\n" + tail
        self._set_state("failed")
        self.failed.emit(text)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)
