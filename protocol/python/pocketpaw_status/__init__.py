"""Report an agent's sessions to pocketpaw-status. Standard library only, Python 3.9+.

    from pocketpaw_status import StatusEmitter

    status = StatusEmitter(agent="my-agent")
    status.emit({"type": "agent_start", "session_key": "websocket:abc", "title": "Fix the tests"})
    ...
    status.close()

Its promise to the agent: ``emit()`` returns at once and never raises, whether or not the daemon runs. A background
thread writes events to the socket when connected; otherwise they wait in a bounded queue (the oldest dropped first
and counted in ``dropped``). The thread reconnects by itself (backoff capped at ``max_backoff`` seconds), and on every
connection it first says ``hello`` (so the daemon marks this agent's sessions ``agent disconnected`` if it dies) and
then re-sends, for every session that has started and not ended, the few events that rebuild its state: a restarted
daemon shows the truth again at once.

This is the same design as protocol/emitter.ts; keep the two in step. The wire protocol is in protocol/README.md.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import select
import socket
import sys
import threading
import time
from typing import Any, Deque, Dict, List, Mapping, Optional

__all__ = ["StatusEmitter", "default_socket_path", "SOCKET_ENV"]

SOCKET_ENV = "POCKETPAW_STATUS_SOCKET"

_MIN_BACKOFF = 0.05
_CONNECT_TIMEOUT = 2.0
# A connection that dies sooner than this does not reset the backoff (a daemon that accepts and then refuses).
_STABLE_CONNECTION = 1.0
_WRITE_BATCH_BYTES = 64 * 1024
_UNKNOWN_ERROR = "Unknown error"

# The fields the protocol reads. An event too long for one line is cut down to these (PocketPaw's tool_start carries
# the tool's whole `params`, which can be far larger than the daemon accepts).
_PROTOCOL_FIELDS = (
    "type", "v", "session_key", "title", "name", "tool", "status", "result", "message",
    "input", "output", "input_tokens", "output_tokens", "agent", "version", "max_concurrent",
    "call_id", "create_session", "pid",
)
# As the daemon's MAX_OPEN_CALLS: calls never closed cannot grow the mirror without bound.
_MAX_OPEN_CALLS = 64
_CUT_TEXT = 1000
_log = logging.getLogger("pocketpaw_status")


def default_socket_path(env: Optional[Mapping[str, str]] = None) -> str:
    """The daemon's default socket, exactly as ``pocketpaw-status serve`` computes it."""
    env = os.environ if env is None else env
    runtime = env.get("RUNTIME_DIRECTORY")
    if runtime:
        return os.path.join(runtime.split(":")[0], "ingest.sock")
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "pocketpaw-status", "ingest.sock")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join("/tmp", "pocketpaw-status-%s" % uid, "ingest.sock")


class StatusEmitter:
    """A long-lived connection to the pocketpaw-status daemon that never blocks or fails the agent."""

    def __init__(
        self,
        socket_path: Optional[str] = None,
        agent: Optional[str] = None,
        version: Optional[Any] = None,
        max_concurrent: Optional[int] = None,
        max_queue: int = 10000,
        max_backoff: float = 1.0,
        max_line_bytes: int = 65536,
    ) -> None:
        env_path = os.environ.get(SOCKET_ENV, "").strip()
        self.socket_path = socket_path or env_path or default_socket_path()
        # Only the default path is checked for its owner (see _untrusted_reason): an explicit one is the user's choice.
        self._check_owner = self.socket_path == default_socket_path()
        hello: Dict[str, Any] = {"type": "hello", "agent": agent or _default_agent_name()}
        if version is not None:
            hello["version"] = version
        if max_concurrent is not None:
            hello["max_concurrent"] = max_concurrent
        self._hello = _encode(hello)
        self._max_queue = max(1, int(max_queue))
        self._max_backoff = max(_MIN_BACKOFF, float(max_backoff))
        self._max_line_bytes = int(max_line_bytes)

        # Everything below is shared with the thread and guarded by the lock; the lock is never held during I/O.
        self._lock = threading.Lock()
        self._queue: Deque[bytes] = collections.deque()
        self._sessions: Dict[str, Dict[str, Any]] = {}
        self._dropped = 0
        self._rejected = 0
        self._last_error: Optional[str] = None
        self._connected = False
        self._closing = False
        self._deadline = 0.0
        self._sock: Optional[socket.socket] = None
        # Set when an event was dropped: the next write starts with the replay, so nothing dropped stays wrong.
        self._resync = False

        # emit() wakes the thread by writing a byte here: the thread sleeps in select() on it and on the daemon socket.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="pocketpaw-status-emitter", daemon=True)
        self._thread.start()

    # -- the agent's side -------------------------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Events lost so far: the queue overflowed, the event could not be serialised, or it came after close()."""
        return self._dropped

    @property
    def rejected(self) -> int:
        """Lines the daemon answered with an error (a malformed event); ``last_error`` holds the latest answer."""
        return self._rejected

    @property
    def last_error(self) -> Optional[str]:
        return self._last_error

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        return len(self._queue)

    def emit(self, event: Mapping[str, Any]) -> None:
        """Queues one event (a dict with ``type``) and returns at once. Never raises."""
        try:
            # A copy: the agent may change its dict afterwards, and a Mapping that is not a dict must not be
            # serialised through default=str as a JSON string.
            event = dict(event) if isinstance(event, Mapping) and not self._closing else None
            line = self._line(event) if event is not None else None
            with self._lock:
                if line is None:
                    self._dropped += 1
                    return
                _track(self._sessions, event)
                if len(self._queue) >= self._max_queue:
                    self._queue.popleft()
                    self._dropped += 1
                    self._resync = True
                self._queue.append(line)
            self._wake()
        except Exception:  # noqa: BLE001 - the agent must never pay for a bad payload or a bug here
            try:
                self._dropped += 1
            except Exception:  # noqa: BLE001
                pass

    def close(self, timeout: float = 1.0) -> None:
        """Writes what is queued (connecting once more if needed), then closes. Returns within about ``timeout``
        seconds whatever happens; what could not be written is counted in ``dropped``. Closing is this agent leaving:
        the daemon marks its unfinished sessions ``agent disconnected``."""
        try:
            with self._lock:
                if not self._closing:
                    self._closing = True
                    self._deadline = time.monotonic() + max(0.0, timeout)
            self._wake()
            self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.1)
            if self._thread.is_alive():
                # Stuck writing to a daemon that does not read: cut the connection under it.
                sock = self._sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self._thread.join(0.5)
            with self._lock:
                self._dropped += len(self._queue)
                self._queue.clear()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "StatusEmitter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _line(self, event: Dict[str, Any]) -> Optional[bytes]:
        line = _encode(event)
        if len(line) > self._max_line_bytes:
            slim = {k: _cut(event[k]) for k in _PROTOCOL_FIELDS if k in event}
            line = _encode(slim)
            if len(line) > self._max_line_bytes:
                return None
        return line

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the buffer is full: the thread is awake already

    # -- the thread -------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = _MIN_BACKOFF
        try:
            while True:
                with self._lock:
                    closing, empty = self._closing, not self._queue
                if closing and (empty or time.monotonic() >= self._deadline):
                    return
                sock = self._connect()
                if sock is None:
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                started = time.monotonic()
                try:
                    finished = self._serve(sock)
                finally:
                    self._connected = False
                    self._sock = None
                    try:
                        sock.close()
                    except OSError:
                        pass
                if finished:
                    return
                if time.monotonic() - started >= _STABLE_CONNECTION:
                    backoff = _MIN_BACKOFF
                else:
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
        except Exception:  # noqa: BLE001 - a thread that dies silently is still better than one that raises into logs
            self._connected = False
        finally:
            for s in (self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass

    def _connect(self) -> Optional[socket.socket]:
        reason = _untrusted_reason(self.socket_path) if self._check_owner else None
        if reason is not None:
            with self._lock:
                new, self._last_error = self._last_error != reason, reason
            if new:
                _log.warning("%s", reason)
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect(self.socket_path)
            sock.settimeout(None)
            return sock
        except OSError:
            sock.close()
            return None

    def _serve(self, sock: socket.socket) -> bool:
        """Runs one connection: hello, the replay, then the queue as it fills. True once close() is done with it."""
        with self._lock:
            first = self._hello + self._replay()
        self._sock = sock
        self._connected = True
        try:
            sock.sendall(first)
        except OSError:
            return False
        tail = b""
        while True:
            with self._lock:
                batch: List[bytes] = [self._replay()] if self._resync else []
                size = 0
                while self._queue and size < _WRITE_BATCH_BYTES:
                    line = self._queue.popleft()
                    batch.append(line)
                    size += len(line)
                closing = self._closing
            if batch:
                try:
                    sock.sendall(b"".join(batch))
                except OSError:
                    return False  # what was in flight is lost; the next connection's replay rebuilds the state
                continue
            if closing:
                self._finish(sock)
                return True
            readable, _, _ = select.select([sock, self._wake_r], [], [])
            if self._wake_r in readable:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except OSError:
                    pass
            if sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return False
                if not data:
                    return False  # the daemon went away; reconnect
                try:
                    tail = self._replies(tail + data)
                except Exception:  # noqa: BLE001 - no reply may stop the emitter (100,000 "[" raise RecursionError)
                    return False  # drop this connection; the loop reconnects

    def _replay(self) -> bytes:
        """The lines that rebuild every live session (call with the lock held)."""
        self._resync = False
        return b"".join(_encode(e) for key, s in self._sessions.items() for e in _rebuild(key, s))

    def _finish(self, sock: socket.socket) -> None:
        # The daemon closes its side once it has read everything we sent.
        try:
            sock.shutdown(socket.SHUT_WR)
            while True:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return
                readable, _, _ = select.select([sock], [], [], left)
                if not readable or not sock.recv(65536):
                    return
        except OSError:
            return

    def _replies(self, data: bytes) -> bytes:
        """The daemon answers only rejected lines, each with ``{"error": "line N: ..."}``."""
        *lines, tail = data.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            text = raw.decode("utf-8", "replace")
            try:
                reply = json.loads(text)
                message = reply.get("error") if isinstance(reply, dict) else None
            except ValueError:
                message = None
            with self._lock:
                self._rejected += 1
                self._last_error = message if isinstance(message, str) else text
        return tail[-4096:]

    def _sleep(self, seconds: float) -> None:
        """Waits before the next attempt; close() cuts the wait short."""
        with self._lock:
            if self._closing:
                seconds = min(seconds, max(0.0, self._deadline - time.monotonic()))
        try:
            readable, _, _ = select.select([self._wake_r], [], [], seconds)
            if readable:
                while self._wake_r.recv(4096):
                    pass
        except OSError:
            time.sleep(min(seconds, 0.05))


def _untrusted_reason(path: str) -> Optional[str]:
    """Why not to connect to the default socket, or None: its folder or file belongs to a uid other than ours or
    root, so another user may have created /tmp/pocketpaw-status-<uid> first to read what agents send."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is None:
        return None
    for what, target in (("folder", os.path.dirname(path)), ("file", path)):
        try:
            owner = os.lstat(target).st_uid
        except OSError:
            return None  # absent: nothing to connect to
        if owner not in (uid, 0):
            return (
                "not connecting to %s: the socket %s %s belongs to uid %d, not to this user (uid %d) or root, so "
                "another user may be posing as the daemon to read what agents send; remove it and restart the "
                "daemon, or set %s to the daemon's socket" % (path, what, target, owner, uid, SOCKET_ENV)
            )
    return None


def _encode(event: Mapping[str, Any]) -> bytes:
    # default=str: datetimes, enums and the like in forwarded payloads become text instead of an error.
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    return text.encode("utf-8") + b"\n"


def _cut(value: Any) -> Any:
    return value[:_CUT_TEXT] if isinstance(value, str) else value


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value != "" else None


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _track(sessions: Dict[str, Dict[str, Any]], e: Mapping[str, Any]) -> None:
    """A small mirror of the daemon's fold, limited to what ``_rebuild`` needs."""
    key = e.get("session_key")
    if not isinstance(key, str) or key == "":
        return
    kind = e.get("type")
    if kind == "agent_start":
        old = sessions.get(key)
        title = _text(e.get("title")) or (old["title"] if old else None)
        sessions[key] = {"title": title, "state": "thinking", "tool": None, "message": None, "tokens": None, "calls": []}
        return
    s = sessions.get(key)
    if s is None and e.get("create_session") is True and kind != "agent_end":
        # As the daemon does: the event starts its session when it is not live.
        s = {"title": None, "state": "thinking", "tool": None, "message": None, "tokens": None, "calls": []}
        sessions[key] = s
    if s is None:
        return

    def enter(state: str, tool: Optional[str] = None) -> None:
        s["state"], s["tool"], s["message"] = state, tool, None
        # Only tool_running and waiting_for_user hold open calls (the daemon's rule).
        if state not in ("tool_running", "waiting_for_user"):
            s["calls"] = []

    def open_call(call: str, name: Optional[str], asks: bool) -> None:
        calls = [c for c in s["calls"] if c["id"] != call]
        calls.append({"id": call, "name": name, "asks": asks})
        s["calls"] = calls[-_MAX_OPEN_CALLS:]

    call_id = _text(e.get("call_id"))
    failed_run = kind == "tool_result" and e.get("status") == "error" and e.get("name") == "agent"
    if kind == "agent_end":
        del sessions[key]
    elif kind in ("thinking", "stream_end"):
        enter("thinking")
    elif kind == "tool_start":
        name = _text(e.get("name")) or _text(e.get("tool"))
        if call_id is not None:
            open_call(call_id, name, False)
        if call_id is not None and any(c["asks"] for c in s["calls"]):
            enter("waiting_for_user")
        else:
            enter("tool_running", name)
    elif kind == "tool_result" and call_id is not None and not failed_run:
        index = next((i for i, c in enumerate(s["calls"]) if c["id"] == call_id), None)
        if index is not None:
            plain_wait = s["state"] == "waiting_for_user" and not any(c["asks"] for c in s["calls"])
            del s["calls"][index]
            if not s["calls"]:
                enter("thinking")
            elif plain_wait or any(c["asks"] for c in s["calls"]):
                enter("waiting_for_user")
            else:
                enter("tool_running", s["calls"][-1]["name"])
    elif kind == "tool_result":
        if e.get("status") == "error" and e.get("name") == "agent":
            result = e.get("result")
            enter("error")
            if isinstance(result, str) and result != "":
                s["message"] = result
            elif result is None or result == "":
                s["message"] = _UNKNOWN_ERROR
            else:
                s["message"] = json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str)
        elif s["state"] == "tool_running":
            enter("streaming")
    elif kind == "stream_start":
        enter("streaming")
    elif kind == "ask_user_question":
        if call_id is not None:
            open_call(call_id, None, True)
        enter("waiting_for_user")
    elif kind == "error":
        enter("error")
        s["message"] = _text(e.get("message")) or _UNKNOWN_ERROR
    elif kind == "title":
        s["title"] = _text(e.get("title"))
    elif kind == "token_usage":
        i = _count(e.get("input"))
        i = _count(e.get("input_tokens")) if i is None else i
        o = _count(e.get("output"))
        o = _count(e.get("output_tokens")) if o is None else o
        old = s["tokens"] or {"input": 0, "output": 0}
        s["tokens"] = {"input": max(old["input"], i or 0), "output": max(old["output"], o or 0)}


def _rebuild(key: str, s: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Events that bring a fresh daemon to this session's state: a new run, its state, its token totals."""
    start: Dict[str, Any] = {"type": "agent_start", "session_key": key}
    if s["title"] is not None:
        start["title"] = s["title"]
    events = [start]
    # Open calls first, oldest first, with their ids: their later closes then count on the new daemon too.
    for c in s["calls"]:
        if c["asks"]:
            events.append({"type": "ask_user_question", "session_key": key, "call_id": c["id"]})
        else:
            call: Dict[str, Any] = {"type": "tool_start", "session_key": key, "call_id": c["id"]}
            if c["name"] is not None:
                call["name"] = c["name"]
            events.append(call)
    state = s["state"]
    if _rebuilt_by_calls(s):
        pass
    elif state == "tool_running":
        event: Dict[str, Any] = {"type": "tool_start", "session_key": key}
        if s["tool"] is not None:
            event["name"] = s["tool"]
        events.append(event)
    elif state == "streaming":
        events.append({"type": "stream_start", "session_key": key})
    elif state == "waiting_for_user":
        events.append({"type": "ask_user_question", "session_key": key})
    elif state == "error":
        events.append({"type": "error", "session_key": key, "message": s["message"] or _UNKNOWN_ERROR})
    if s["tokens"] is not None:
        events.append({"type": "token_usage", "session_key": key, **s["tokens"]})
    return events


def _rebuilt_by_calls(s: Mapping[str, Any]) -> bool:
    """Whether the open calls replayed first already bring the daemon to the session's state."""
    calls = s["calls"]
    if not calls:
        return False
    if s["state"] == "waiting_for_user":
        return any(c["asks"] for c in calls)
    return s["state"] == "tool_running" and not calls[-1]["asks"] and calls[-1]["name"] == s["tool"]


def _default_agent_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
