"""A small stdio LSP client for tests (standard library only).

Frames JSON-RPC messages with `Content-Length` headers, matches responses to requests, answers
the requests a server sends to the client (`window/workDoneProgress/create`,
`workspace/configuration`) and records notifications (`$/progress`, `window/showMessage`).
"""

import json
import subprocess
import threading
import time


class LspError(Exception):
    pass


class LspClient:
    def __init__(self, argv, configuration=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.configuration = configuration
        self.next_id = 1
        self.responses = {}
        self.notifications = []
        self.cond = threading.Condition()
        self.stderr_tail = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._stderr_loop, daemon=True).start()

    # -- transport ---------------------------------------------------------------------------

    def _send(self, message):
        body = json.dumps(message).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read_message(self):
        length = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise LspError("a message without Content-Length")
        return json.loads(self.proc.stdout.read(length))

    def _read_loop(self):
        while True:
            message = self._read_message()
            if message is None:
                with self.cond:
                    self.cond.notify_all()
                return
            if "id" in message and "method" in message:
                self._answer(message)
            elif "id" in message:
                with self.cond:
                    self.responses[message["id"]] = message
                    self.cond.notify_all()
            else:
                with self.cond:
                    self.notifications.append(message)
                    self.cond.notify_all()

    def _stderr_loop(self):
        for line in self.proc.stderr:
            self.stderr_tail.append(line.decode("utf-8", "replace"))
            del self.stderr_tail[:-50]

    def _answer(self, request):
        method = request["method"]
        if method == "workspace/configuration":
            items = request["params"].get("items", [])
            result = [self.configuration for _ in items]
        else:  # window/workDoneProgress/create and anything else: accept
            result = None
        self._send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    # -- API ---------------------------------------------------------------------------------

    def notify(self, method, params):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params, timeout=120):
        with self.cond:
            rid = self.next_id
            self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self.cond:
            while rid not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise LspError(f"no answer to {method} within {timeout}s; server log:\n{self.log()}")
                self.cond.wait(min(left, 0.5))
            response = self.responses.pop(rid)
        if "error" in response:
            raise LspError(f"{method} failed: {response['error']}")
        return response.get("result")

    def wait_notification(self, predicate, what, timeout=120):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for n in self.notifications:
                    if predicate(n):
                        return n
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise LspError(f"timed out waiting for {what}; notifications: {self.notifications}\nserver log:\n{self.log()}")
                self.cond.wait(min(left, 0.5))

    def messages(self, type_=None):
        """`window/showMessage` notifications so far (of one MessageType if given)."""
        with self.cond:
            return [
                n["params"]
                for n in self.notifications
                if n.get("method") == "window/showMessage" and (type_ is None or n["params"]["type"] == type_)
            ]

    def log(self):
        return "".join(self.stderr_tail)

    def close(self):
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=10)
                self.notify("exit", None)
                self.proc.wait(timeout=10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
