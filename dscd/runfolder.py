"""Run folders: the one skeleton under every search and every final training.

A run folder holds one run and nothing else writes into it while it runs:

* **one writer**: an exclusive lock (``fcntl.flock`` on the folder itself, which cannot be
  deleted or swapped while it holds the run; on Windows ``msvcrt.locking`` on ``.lock`` held open,
  which Windows keeps from being deleted or replaced) for as long as the run is open; a second process
  meets a :class:`RunFolderError` naming the holder, whom ``.lock`` records (a ``.lock`` that is
  a link or not a regular file is refused, never written through);
* **no write follows a link**: every file is written through a temporary created exclusively
  beside it (:func:`tempfile.mkstemp`) and renamed over it, which replaces a link rather than
  writing through it; a temporary that is not renamed is removed, whatever interrupted the write;
* **never overwritten**: a folder holding any run file (:data:`RUN_FILES`) is refused
  unless the run is resumed, whether or not it still has a checkpoint;
* **killed early, started again**: a run killed before its first checkpoint holds only what
  it writes when it starts (:data:`START_FILES`: its configuration and metadata) and no
  record; resuming it starts it afresh when that configuration is the one asked for. So does a
  run stopped before its first checkpoint was complete, whose only computed files are its
  per-epoch logs. A folder holding anything else computed (a summary, a model) but no
  checkpoint is refused;
* **resumable**: ``checkpoint.pt`` is written atomically (temporary file, fsync,
  rename) with the one before kept as ``checkpoint.prev.pt``; a corrupt or incomplete
  checkpoint falls back to the previous one (the bad file is kept aside, renamed);
  the JSON-lines logs are cut back to the records the checkpoint knew of;
* **recorded**: ``config.json`` and ``meta.json`` (package, commit, torch, machine, the
  resolved data source and a digest of its content) are written when the run starts; every
  checkpoint keeps a copy, and a resume puts back either file when it was edited or deleted.

The loops own only their epoch bodies::

    with RunFolder.open(out, "search", resume, identity, must_match, logs=("metrics", "alphas")) as folder:
        ...                                   # load data, build the model (a failure here leaves nothing)
        if folder.state is None:
            folder.start(config.to_dict(), meta)
        for epoch in ...:
            folder.log("metrics").append(record)
            folder.save_checkpoint(state)
        folder.write_json("summary.json", summary)

Errors that come from the file system (a file in the way, no permission, a full
disk) are :class:`RunFolderError` with one line that says what to do; nothing
already written is lost, and no temporary file is left behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["CHECKPOINT", "FIELDS_ADDED_LATER", "PREVIOUS", "RUN_FILES", "START_FILES", "JsonLines", "RecordLog",
           "RunFolder", "RunFolderError", "RunFolderWarning", "RunWriter", "UnsafeFileError", "acquire_lock",
           "check_output_path", "finished_summary", "is_run_folder_file", "load_weights_only", "read_summary",
           "recorded_config", "replace_atomic", "write_atomic"]

CHECKPOINT = "checkpoint.pt"
#: The key under which a checkpoint keeps the run's start files (``config.json``, ``meta.json``).
START_FILES_KEY = "start_files"
PREVIOUS = "checkpoint.prev.pt"
LOCK = ".lock"
#: Files that make a folder a run folder: any of them present and the folder is never started afresh.
RUN_FILES = ("config.json", "meta.json", "metrics.jsonl", "alphas.jsonl", "summary.json", "genotype.json",
             "genotype_best.json", "model.pt", CHECKPOINT, PREVIOUS)
#: What a run of each kind writes when it starts, before anything is computed: a folder holding only these
#: (and empty logs) was killed before its first checkpoint, and resuming it starts it afresh.
START_FILES = {"search": ("config.json", "meta.json"), "train": ("config.json", "meta.json", "genotype.json")}

#: Fields added after run folders were recorded without them, with the value every such run had: a run's
#: recorded configuration is read with these filled in, so that older runs resume and are reused.
FIELDS_ADDED_LATER: dict[str, Any] = {"space": "darts"}


def read_summary(folder: str | Path) -> dict[str, Any] | None:
    """The ``summary.json`` of a finished run (search or training), or ``None`` when it has not finished
    (the one reader of that file: a run's summary is written last, atomically)."""
    path = Path(folder) / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def finished_summary(folder: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a run that must have finished; :class:`RunFolderError` when it has not."""
    summary = read_summary(folder)
    if summary is None:
        raise RunFolderError(f"{folder} holds no finished run (no summary.json): finish or resume it first")
    return summary


def recorded_config(config: Any, fields: Any) -> Any:
    """A configuration dict as a run folder recorded it, with those of :data:`FIELDS_ADDED_LATER` that are
    among ``fields`` (the fields compared) filled in where it lacks them."""
    if not isinstance(config, dict):
        return config
    return {**{k: v for k, v in FIELDS_ADDED_LATER.items() if k in fields}, **config}


#: The only globals a dscd checkpoint may name besides tensors and plain Python values: NumPy's array, for the
#: NumPy generator state a training checkpoint keeps. Anything else is refused, never run.
_NUMPY_GLOBALS = [getattr(np, "_core", np).multiarray._reconstruct, np.ndarray, np.dtype,
                  type(np.dtype(np.uint32))]


def is_run_folder_file(path: str | Path) -> bool:
    """Whether ``path``'s name is one a run folder uses: a run file (:data:`RUN_FILES`), the lock, a corrupt
    checkpoint set aside, or a temporary. No command writes its own output onto such a name."""
    name = Path(path).name
    return (name in RUN_FILES or name == LOCK or name.endswith(".tmp")
            or re.fullmatch(r"checkpoint\.corrupt(-\d+)?\.pt", name) is not None)


class UnsafeFileError(ValueError):
    """A file that names code or types a dscd file never holds; it was not loaded."""


def load_weights_only(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, NumPy arrays allowed: no code in the file runs.
    A file naming anything else is :class:`UnsafeFileError`; other failures are torch's own exceptions."""
    import pickle

    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"unsupported global:? (?:GLOBAL )?(\S+)", str(err), re.IGNORECASE)
        if refused is None:
            raise  # not a refused type: a damaged or foreign file, reported by the caller as unreadable
        found = refused.group(1)
        raise UnsafeFileError(f"{path} names {found}, which no dscd file holds: it was not written by dscd or was "
                              "altered, and was not loaded (nothing in it ran)") from None


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked: in use, holding another run, unwritable, or corrupt."""


class RunFolderWarning(UserWarning):
    """Something was repaired on resume (a corrupt checkpoint set aside for the previous one)."""


def _describe_os_error(err: OSError, path: Path, action: str) -> str:
    if err.errno == errno.ENOSPC:
        return f"the disk is full: cannot {action} {path}; free some space"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to {action} {path} (read-only or immutable); choose a writable folder"
    if err.errno == errno.ENOTDIR:
        return f"cannot {action} {path}: a part of that path is a file, not a folder"
    return f"cannot {action} {path}: {err.strerror or err}"


def check_output_path(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a folder to write into: refuse a file, or a path under a file, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{what} {path} is a file, not a folder: choose a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunFolderError(f"{what} {path} lies under {parent}, which is a file: choose another folder")
            break
    return path


@contextmanager
def _temporary_beside(path: Path) -> Iterator[tuple[Any, Path]]:
    """An open binary file ``(handle, path)`` for a new temporary beside ``path``, created exclusively
    (``O_CREAT | O_EXCL`` under a fresh name, so never through a link planted in advance), with the
    permissions an ordinary new file gets. It is removed on leaving unless the caller renamed it away."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
    finally:
        tmp.unlink(missing_ok=True)


def replace_atomic(path: str | Path, write: Callable[[Any], None], action: str = "write") -> None:
    """Replace ``path`` with what ``write(handle)`` writes into a binary file, atomically: through an
    exclusive temporary beside it (:func:`_temporary_beside`), fsync and a rename, which replaces a
    link at ``path`` instead of writing through it. On any failure (a full disk, an error in ``write``,
    Ctrl-C) the temporary is removed and the old file is intact. File system errors, and torch's
    ``RuntimeError`` from its zip writer on a full disk, are :class:`RunFolderError`."""
    path = Path(path)
    try:
        with _temporary_beside(path) as (fh, tmp):
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)
    except OSError as err:
        raise RunFolderError(_describe_os_error(err, path, action)) from None
    except RuntimeError as err:  # torch's zip writer: "PytorchStreamWriter failed writing file ..."
        if "writ" not in str(err).lower():
            raise
        raise RunFolderError(f"cannot {action} {path}: {str(err).splitlines()[0]} (is the disk full?)") from None


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (:func:`replace_atomic`); on failure
    nothing is left behind and the old file (if any) is intact. Errors are :class:`RunFolderError`."""
    payload = data.encode() if isinstance(data, str) else data
    replace_atomic(path, lambda fh: fh.write(payload))


def acquire_lock(folder: Path, advice: str) -> Any:
    """Take ``folder``'s exclusive writer lock and return what holds it: the lock lasts until its ``close()``.

    On POSIX the lock is ``fcntl.flock`` on the folder itself, so deleting or replacing ``.lock`` cannot let a
    second writer in. On Windows (no ``fcntl``) it is ``msvcrt.locking`` on ``.lock``, held open, which Windows
    does not let anyone delete or replace while it is open: the same guarantee. ``.lock`` names the holder: it
    is written after the lock is held, never through a link, and a ``.lock`` that is a link or not a regular
    file is refused. A held lock is :class:`RunFolderError` naming the holder, followed by ``advice``."""
    lock_path = folder / LOCK
    if lock_path.is_symlink() or (lock_path.exists() and not lock_path.is_file()):
        raise RunFolderError(f"{lock_path} is a link or not a regular file, so {folder} is not a run folder that dscd "
                             "wrote: remove it if the folder is yours, or choose another folder")
    try:
        import fcntl  # POSIX; imported here so that the package imports everywhere
    except ImportError:
        return _lock_with_msvcrt(folder, lock_path, advice)
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:
        raise RunFolderError(_describe_os_error(err, folder, "write into")) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderError(f"{folder} is in use by {_read_holder(lock_path) or 'another process'}: {advice}"
                             ) from None
    try:
        write_atomic(lock_path, _holder())
    except BaseException:
        os.close(fd)
        raise
    return _FolderLock(fd)


#: Where Windows' lock sits in ``.lock``: one byte far past the holder's line, so that the line stays readable
#: (``msvcrt.locking`` bars other processes from the bytes it locks; a lock may lie beyond the end of a file).
_WINDOWS_LOCK_OFFSET = 1 << 20


def _holder() -> str:
    import platform

    return f"process {os.getpid()} on {platform.node()}\n"


def _lock_with_msvcrt(folder: Path, lock_path: Path, advice: str) -> _FolderLock:
    """Windows: lock one byte of ``.lock`` (held open) and write the holder's line at its start."""
    try:
        import msvcrt
    except ImportError:
        raise RunFolderError(f"cannot lock {folder}: this system has neither POSIX (fcntl) nor Windows (msvcrt) "
                             "file locks") from None
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
    except OSError as err:
        raise RunFolderError(_describe_os_error(err, folder, "write into")) from None
    try:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except OSError:
        os.close(fd)
        raise RunFolderError(f"{folder} is in use by {_read_holder(lock_path) or 'another process'}: {advice}"
                             ) from None
    line = _holder().encode()
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, line)
    os.ftruncate(fd, len(line))
    return _FolderLock(fd, unlock=lambda: (os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET),
                                           msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)))  # type: ignore[attr-defined]


def _read_holder(lock_path: Path) -> str:
    """What ``.lock`` says of its holder, read without following a link; empty when there is nothing to read."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, 200).decode(errors="replace").strip()
    finally:
        os.close(fd)


class _FolderLock:
    """The descriptor that holds a folder's lock; closing it releases the lock (``unlock`` first, where the
    platform's lock is released explicitly)."""

    def __init__(self, fd: int, unlock: Callable[[], Any] | None = None) -> None:
        self.fd: int | None = fd
        self._unlock = unlock

    def close(self) -> None:
        if self.fd is not None:
            try:
                if self._unlock is not None:
                    self._unlock()
            finally:
                os.close(self.fd)
                self.fd = None


def _plain(data: Any) -> Any:
    """``data`` as JSON gives it back (tuples become lists), so that it compares equal to what a file holds."""
    return json.loads(json.dumps(data))


class JsonLines:
    """An append-only JSON-lines file that can be cut back to the records a checkpoint knew of."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record; a failed write (full disk) is undone, so the file never ends in half a line."""
        line = (json.dumps(record) + "\n").encode()
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "ab") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            try:
                os.truncate(self.path, size)
            except OSError:
                pass
            raise RunFolderError(_describe_os_error(err, self.path, "append to")) from None

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records (the first ``limit`` of them); a line that is not JSON is an error naming file and line."""
        if not self.path.is_file():
            return []
        records: list[dict[str, Any]] = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if limit is not None and len(records) == limit:
                break
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as err:
                raise RunFolderError(f"{self.path}, line {number}, is not JSON ({err}): the file is damaged") from None
        return records

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` records (those written before the checkpoint being resumed)."""
        records = self.read(limit=lines)
        if len(records) < lines:
            raise RunFolderError(f"{self.path} has {len(records)} records but the checkpoint expects {lines}: "
                                 "the log was cut short; this run cannot be resumed, start it in another folder")
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in records))


@runtime_checkable
class RecordLog(Protocol):
    """What the run loops write their per-epoch records into: :class:`JsonLines`, or on a rank other
    than 0 under torchrun a log that keeps nothing (``dscd.distributed``)."""

    def append(self, record: dict[str, Any]) -> None:
        """Append one record."""

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records so far (the first ``limit`` only, when given)."""


@runtime_checkable
class RunWriter(Protocol):
    """What the run loops need of a run folder: :class:`RunFolder` on the rank that owns the folder,
    ``dscd.distributed.FollowerFolder`` (rank 0's checkpoint, writes that do nothing) on the others."""

    path: Path
    state: dict[str, Any] | None

    def start(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        """Record a new run: its configuration and metadata."""

    def log(self, name: str) -> RecordLog:
        """The log ``name``."""

    def write_json(self, name: str, data: Any) -> Path | None:
        """Write ``data`` as JSON to ``name``; returns the path written (``None`` where nothing is written)."""

    def save_checkpoint(self, state: dict[str, Any]) -> Path | None:
        """Save ``state`` as the checkpoint; returns the path written (``None`` where nothing is written)."""


class RunFolder:
    """One run's folder, locked while open. Use :meth:`open` as a context manager.

    Attributes:
        path: the folder.
        kind: ``"search"`` or ``"train"`` (a checkpoint of another kind is refused).
        state: the checkpoint being resumed, or ``None`` for a new run.
    """

    def __init__(self, path: str | Path, kind: str, logs: Sequence[str] = ("metrics",)) -> None:
        self.path = Path(path)
        self.kind = kind
        self.logs = {name: JsonLines(self.path / f"{name}.jsonl") for name in logs}
        self.state: dict[str, Any] | None = None
        self._lock: Any = None
        self._created = False
        self._started = False
        #: ``config.json`` and ``meta.json`` as the run wrote them; every checkpoint keeps a copy.
        self._start_files: dict[str, Any] = {}

    @property
    def run_kind_name(self) -> str:
        """The run's kind in words (``search run``, ``training run``), for messages."""
        return {"train": "training run"}.get(self.kind, f"{self.kind} run")

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, kind: str, resume: bool, identity: dict[str, Any], must_match: Iterable[str],
             logs: Sequence[str] = ("metrics",), required: Sequence[str] = ("epoch",)) -> RunFolder:
        """Create or open ``path``, take its lock, and refuse or load its checkpoint.

        ``identity`` (the configuration and whatever else defines the run) is stored in every
        checkpoint; on resume the fields ``must_match`` must agree with it, and the checkpoint
        must hold the keys ``required``.
        """
        folder = cls(path, kind, logs)
        check_output_path(folder.path)
        folder._created = not folder.path.exists()
        try:
            folder.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(_describe_os_error(err, folder.path, "create the run folder")) from None
        try:
            folder._acquire()
            existing = folder.existing_run_files()
            if not resume:
                if existing:
                    raise RunFolderError(
                        f"{folder.path} already holds a {folder.run_kind_name} ({', '.join(existing)}): pass --resume "
                        "to continue it, or choose another --out; nothing was changed")
            else:
                folder.state = folder._load_checkpoint(identity, list(must_match), required, existing)
                for log in folder.logs.values():  # a run started afresh (state None) keeps no record
                    log.truncate(int(folder.state["epoch"]) if folder.state is not None else 0)
                if folder.state is not None:
                    folder._restore_start_files(folder.state, list(must_match))
        except BaseException:
            folder.close()
            raise
        return folder

    def rewind(self, required: Sequence[str]) -> dict[str, Any] | None:
        """Resume from the checkpoint before the newest (``checkpoint.prev.pt``), with the logs cut back to it:
        for runs that must continue from one common point, such as the seeds of a batched search stopped
        between their checkpoints. Both files stay (the next checkpoint rotates them as usual). Returns the new
        state, or ``None`` (nothing changed) when there is no usable earlier checkpoint."""
        path = self.path / PREVIOUS
        if self.state is None or not path.is_file():
            return None
        try:
            state = self._read_checkpoint(path, required)
        except RunFolderError:
            return None
        self.state = state
        for log in self.logs.values():
            log.truncate(int(state["epoch"]))
        return state

    def existing_run_files(self) -> list[str]:
        """The run files (:data:`RUN_FILES`) that the folder holds."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def computed_files(self) -> list[str]:
        """The run files that hold something computed: any but the start files, a log only if it has a line."""
        start = START_FILES.get(self.kind, ())
        logs = {log.path.name: log for log in self.logs.values()}
        return [name for name in self.existing_run_files() if name not in start
                and not (name in logs and not logs[name].path.read_bytes().strip())]

    @classmethod
    def holds_run_to_resume(cls, path: str | Path, kind: str, logs: Sequence[str] = ("metrics",)) -> bool:
        """Whether ``path`` holds a run that ``open(..., resume=True)`` would continue: one with a checkpoint
        (a corrupt newest one falls back to the one before), or one stopped before its first checkpoint."""
        folder = cls(path, kind, logs)
        if any((folder.path / name).is_file() for name in (CHECKPOINT, PREVIOUS)):
            return True
        return bool(folder.existing_run_files()) and folder._stopped_before_first_checkpoint()

    def _acquire(self) -> None:
        self._lock = acquire_lock(self.path, "two runs cannot share a folder; wait for it to finish (then --resume) "
                                             "or choose another --out")

    def _load_checkpoint(self, identity: dict[str, Any], must_match: list[str], required: Sequence[str],
                         existing: list[str]) -> dict[str, Any] | None:
        candidates = [self.path / n for n in (CHECKPOINT, PREVIOUS) if (self.path / n).is_file()]
        if not candidates:
            if existing and self._stopped_before_first_checkpoint():
                self._restart_uncomputed(identity, must_match, existing)
                return None
            if existing:
                raise RunFolderError(
                    f"--resume: {self.path} holds a {self.run_kind_name} ({', '.join(existing)}) but no {CHECKPOINT} "
                    f"or {PREVIOUS}, so it cannot be resumed; it is kept as it is: start the run in another --out")
            raise RunFolderError(f"--resume: {self.path} holds no run to resume; start the run without --resume")
        problems = []
        for path in candidates:
            try:
                state = self._read_checkpoint(path, required)
            except RunFolderError as err:
                problems.append(str(err))
                continue
            self._check_identity(path, state, identity, must_match)
            if path.name == PREVIOUS:  # the newer one was missing or unusable: set it aside, never delete it
                bad = self.path / CHECKPOINT
                note = ""
                if bad.exists():
                    aside = self._free_corrupt_name()
                    os.replace(bad, aside)
                    note = f" (it was moved to {aside.name})"
                warnings.warn(f"{'; '.join(problems) or f'{CHECKPOINT} is missing'}{note}; resuming from "
                              f"{PREVIOUS} (epoch {state['epoch']})", RunFolderWarning, stacklevel=3)
            return state
        raise RunFolderError("; ".join(problems) + ": no usable checkpoint is left, so the run cannot be resumed; "
                             "the files were left as they are")

    def _free_corrupt_name(self) -> Path:
        """Where a corrupt checkpoint is set aside: ``checkpoint.corrupt.pt``, or ``checkpoint.corrupt-N.pt`` when
        earlier ones are there (a set-aside file is never replaced)."""
        for n in range(10_000):
            aside = self.path / ("checkpoint.corrupt.pt" if n == 0 else f"checkpoint.corrupt-{n}.pt")
            if not aside.exists() and not aside.is_symlink():
                return aside
        raise RunFolderError(f"{self.path} holds 10,000 corrupt checkpoints set aside: move them away first")

    def _stopped_before_first_checkpoint(self) -> bool:
        """Whether a folder without a checkpoint holds a run stopped before its first one was complete: nothing
        computed, or only the first epoch's records (appended just before the epoch's checkpoint). Starting it
        afresh then recomputes exactly what it held; a folder with more is refused (its checkpoints were removed)."""
        logs = {log.path.name: log for log in self.logs.values()}
        computed = self.computed_files()
        return all(name in logs for name in computed) and all(len(logs[name].read(limit=2)) <= 1 for name in computed)

    def _restore_start_files(self, state: dict[str, Any], must_match: list[str]) -> None:
        """On resume: put back ``config.json`` / ``meta.json`` as the checkpoint keeps them when they were edited
        or deleted (with a :class:`RunFolderWarning`). A checkpoint from before checkpoints kept them: the
        configuration file must agree with it, else one line refuses the resume."""
        saved = state.get(START_FILES_KEY)
        on_disk: dict[str, Any] = {}
        for name in ("config.json", "meta.json"):
            try:
                on_disk[name] = json.loads((self.path / name).read_text())
            except (OSError, ValueError):
                on_disk[name] = None
        if saved:
            self._start_files = saved
            for name, content in saved.items():
                if on_disk.get(name) != content:
                    self.write_json(name, content)
                    what = "missing or unreadable" if on_disk.get(name) is None else "edited"
                    warnings.warn(f"{self.path / name} was {what}; it was put back as the checkpoint recorded it",
                                  RunFolderWarning, stacklevel=3)
            return
        config, recorded = on_disk["config.json"], _plain(state["config"])
        differ = [k for k in must_match if k in recorded and k != "data_fingerprint"
                  and (not isinstance(config, dict) or config.get(k) != recorded[k])]
        if differ:
            raise RunFolderError(f"--resume: {self.path / 'config.json'} is missing or disagrees with the checkpoint "
                                 f"({', '.join(differ[:5])}): restore it from a copy, or start the run in another "
                                 "--out")
        self._start_files = {name: content for name, content in on_disk.items() if content is not None}

    def _restart_uncomputed(self, identity: dict[str, Any], must_match: list[str],
                            existing: list[str]) -> None:
        """A run killed before its first checkpoint: nothing computed is lost by starting it afresh, but only
        if the configuration it recorded is the one asked for (else it is refused like a checkpoint would be)."""
        saved: dict[str, Any] = {}
        read: dict[str, Any] = {}
        for name in (n for n in existing if n in START_FILES.get(self.kind, ())):
            try:
                read[name] = json.loads((self.path / name).read_text())
            except (OSError, ValueError):
                raise RunFolderError(f"{self.path / name} is unreadable or not JSON: the folder is damaged; start "
                                     "the run in another --out") from None
        if not isinstance(read.get("config.json"), dict):
            raise RunFolderError(f"--resume: {self.path} holds {', '.join(existing)} but no configuration of a "
                                 f"{self.run_kind_name} (config.json), so it cannot be resumed; it is kept as it is: "
                                 "start the run in another --out")
        saved.update(read["config.json"])
        unknown = set()  # what a run killed between its first writes has not recorded yet
        if isinstance(read.get("meta.json"), dict) and "data_fingerprint" in read["meta.json"]:
            saved["data_fingerprint"] = read["meta.json"]["data_fingerprint"]
        else:
            unknown.add("data_fingerprint")
        if "genotype.json" in read:
            saved["genotype"] = read["genotype.json"]
        else:
            unknown.add("genotype")
        self._check_identity(self.path / "config.json", {"config": saved}, identity,
                             [k for k in must_match if k not in unknown])
        return None

    def _read_checkpoint(self, path: Path, required: Sequence[str]) -> dict[str, Any]:
        try:
            state = load_weights_only(path)
        except UnsafeFileError as err:
            raise RunFolderError(f"checkpoint {err}") from None
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
            raise RunFolderError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__})") from None
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            found = state.get("kind") if isinstance(state, dict) else type(state).__name__
            raise RunFolderError(f"{path} is not a {self.kind} checkpoint (found {found!r})")
        missing = [k for k in ("config", *required) if k not in state]
        if missing:
            raise RunFolderError(f"checkpoint {path} is incomplete (no {', '.join(missing)})")
        return state

    def _check_identity(self, path: Path, state: dict[str, Any], identity: dict[str, Any],
                        must_match: list[str]) -> None:
        saved = recorded_config(state["config"], must_match)
        differ = [k for k in must_match if saved.get(k) != identity.get(k)]
        if differ:
            details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {identity.get(k)!r}" for k in differ)
            raise RunFolderError(f"{path} belongs to a different configuration ({details}); resume with the "
                                 "configuration it was saved with, or start a new run in another folder")

    # -- writing ----------------------------------------------------------------------------
    def start(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        """Record a new run: ``config.json`` and ``meta.json``; logs start empty."""
        if self.state is not None:
            raise RuntimeError("start() is for a new run; this one is being resumed")
        self._started = True
        self._start_files = {"config.json": _plain(config), "meta.json": _plain(meta)}
        self.write_json("config.json", config)
        self.write_json("meta.json", meta)

    def log(self, name: str) -> JsonLines:
        """The JSON-lines log ``name`` (one of those the folder was opened with)."""
        return self.logs[name]

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as JSON to the file ``name`` in the folder, atomically; returns its path."""
        path = self.path / name
        write_atomic(path, json.dumps(data, indent=2) + "\n")
        return path

    def save_checkpoint(self, state: dict[str, Any]) -> Path:
        """Write ``checkpoint.pt`` atomically, keeping the one before as ``checkpoint.prev.pt``. The checkpoint
        also keeps the run's ``config.json`` and ``meta.json``, which a resume checks and puts back."""
        path, previous = self.path / CHECKPOINT, self.path / PREVIOUS
        payload = {"kind": self.kind, **state, START_FILES_KEY: self._start_files}
        had_one = path.exists() or previous.exists()

        def write(fh: Any) -> None:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
            if path.exists():
                os.replace(path, previous)

        try:
            replace_atomic(path, write)
        except RunFolderError as err:
            kept = (f"the last good checkpoint in {self.path} is intact: resume with --resume" if had_one else
                    f"no checkpoint was written yet, so a --resume of {self.path} starts the run afresh")
            raise RunFolderError(f"{err}; {kept}") from None
        return path

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the lock; a folder this call created and in which no run started is removed again."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._created and not self._started and self.state is None and not self.existing_run_files():
            (self.path / LOCK).unlink(missing_ok=True)
            if not any(self.path.iterdir()):
                self.path.rmdir()
            self._created = False

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
