"""Helix: the languages.toml snippet, and the real server answering what Helix 25.07 sends.

Helix cannot be installed here, so the second part replays its side of the protocol: the
`initialize` capabilities of Helix 25.07 (helix_capabilities.json), the `[language-server.inkling]`
config from languages.toml as `initializationOptions` and again in `didChangeConfiguration`
(Helix sends it after `initialized`), keystrokes as incremental `didChange`, then
`textDocument/completion`. The item is applied the way Helix applies it: the snippet text
replaces the `textEdit` range.

Run: python3 editors/helix/test/test_helix.py  (INKLING_BIN, INKLING_TEST_MODEL optional)
"""

import json
import os
import re
import subprocess
import sys
import tomllib
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lsp_client import LspClient  # noqa: E402

REPO = HERE.parents[2]
LANGUAGES_TOML = HERE.parent / "languages.toml"
BIN = os.environ.get("INKLING_BIN") or str(REPO / "target" / "release" / "inkling")
MODEL = os.environ.get("INKLING_TEST_MODEL") or str(
    Path.home() / ".cache" / "inkling" / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
)

# Each main language and the server Helix users usually run for it.
USUAL_SERVERS = {
    "rust": "rust-analyzer",
    "python": "pylsp",
    "javascript": "typescript-language-server",
    "typescript": "typescript-language-server",
    "tsx": "typescript-language-server",
    "go": "gopls",
    "c": "clangd",
    "cpp": "clangd",
    "java": "jdtls",
}


def load_languages_toml():
    with open(LANGUAGES_TOML, "rb") as f:
        return tomllib.load(f)


def snippet_text(snippet):
    """The text a snippet inserts: escapes resolved, tab stops dropped, placeholders kept."""
    out, i = [], 0
    while i < len(snippet):
        c = snippet[i]
        if c == "\\" and i + 1 < len(snippet) and snippet[i + 1] in "\\$}":
            out.append(snippet[i + 1])
            i += 2
            continue
        if c == "$":
            m = re.match(r"\$(\d+)|\$\{(\d+)\}|\$\{(\d+):([^}]*)\}", snippet[i:])
            if m:
                out.append(m.group(4) or "")
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def apply_edit(lines, edit):
    """Applies one single-line TextEdit (utf-8 columns) to a list of lines."""
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert start["line"] == end["line"], edit
    line = lines[start["line"]].encode("utf-8")
    new = line[: start["character"]] + edit["newText"].encode("utf-8") + line[end["character"] :]
    return lines[: start["line"]] + new.decode("utf-8").split("\n") + lines[start["line"] + 1 :]


class LanguagesTomlTest(unittest.TestCase):
    def test_every_language_runs_inkling_beside_its_usual_server(self):
        languages = {entry["name"]: entry for entry in load_languages_toml()["language"]}
        for name, usual in USUAL_SERVERS.items():
            with self.subTest(language=name):
                self.assertIn(name, languages)
                servers = [s if isinstance(s, str) else s["name"] for s in languages[name]["language-servers"]]
                self.assertIn("inkling", servers)
                self.assertIn(usual, servers)

    def test_server_section_starts_inkling_serve(self):
        server = load_languages_toml()["language-server"]["inkling"]
        self.assertEqual(server["command"], "inkling")
        self.assertEqual(server["args"], ["serve"])

    def test_config_uses_only_server_options_with_the_right_types(self):
        docs = json.loads(subprocess.run([BIN, "options"], check=True, capture_output=True, text=True).stdout)
        types = {d["name"]: d["type"] for d in docs}
        python_type = {"integer": int, "boolean": bool, "string": str}
        for key, value in load_languages_toml()["language-server"]["inkling"]["config"].items():
            with self.subTest(option=key):
                self.assertIn(key, types, f"`inkling options` has no option {key}")
                self.assertIs(type(value), python_type[types[key]])


class HelixProtocolTest(unittest.TestCase):
    URI = "file:///tmp/inkling-helix-test/add.py"

    @classmethod
    def setUpClass(cls):
        for path, hint in ((BIN, "cargo build --release or INKLING_BIN"), (MODEL, "INKLING_TEST_MODEL")):
            if not os.path.exists(path):
                raise unittest.SkipTest(f"{path} is missing ({hint})")
        with open(HERE / "helix_capabilities.json") as f:
            capabilities = json.load(f)
        capabilities.pop("_source")
        cls.config = load_languages_toml()["language-server"]["inkling"]["config"]
        server = load_languages_toml()["language-server"]["inkling"]
        # The test model comes from the command line, so the config stays exactly as shipped.
        cls.client = LspClient([BIN, *server["args"], "--model", MODEL], configuration=cls.config)
        init = cls.client.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": "file:///tmp/inkling-helix-test",
                "rootPath": "/tmp/inkling-helix-test",
                "workspaceFolders": [{"uri": "file:///tmp/inkling-helix-test", "name": "inkling-helix-test"}],
                "initializationOptions": cls.config,
                "capabilities": capabilities,
                "clientInfo": {"name": "helix", "version": "25.07"},
            },
        )
        cls.init = init
        cls.client.notify("initialized", {})
        cls.client.notify("workspace/didChangeConfiguration", {"settings": cls.config})
        cls.client.wait_notification(
            lambda n: n.get("method") == "$/progress" and n["params"]["value"].get("kind") == "end",
            "the model to load",
        )

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_negotiates_utf8_and_offers_completion(self):
        caps = self.init["capabilities"]
        self.assertEqual(caps["positionEncoding"], "utf-8")
        self.assertIn("completionProvider", caps)
        self.assertEqual(self.client.messages(1), [], "no error messages: the config was accepted")

    def test_completion_while_typing_return_finishes_the_line(self):
        lines = ["def add(a, b):", "    ", ""]
        self.client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": self.URI, "languageId": "python", "version": 1, "text": "\n".join(lines)}},
        )
        # Type "return" one key at a time, as Helix reports edits (incremental, utf-8 columns).
        version = 1
        for ch in "return":
            col = len(lines[1])
            version += 1
            self.client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": self.URI, "version": version},
                    "contentChanges": [
                        {"range": {"start": {"line": 1, "character": col}, "end": {"line": 1, "character": col}}, "text": ch}
                    ],
                },
            )
            lines[1] += ch
        cursor = {"line": 1, "character": len(lines[1])}
        result = self.client.request(
            "textDocument/completion",
            {"textDocument": {"uri": self.URI}, "position": cursor, "context": {"triggerKind": 1}},
        )
        items = result["items"] if isinstance(result, dict) else result
        self.assertEqual(len(items), 1, result)
        item = items[0]
        edit = item["textEdit"]
        # Same line, ends at the cursor, starts where the word "return" starts.
        self.assertEqual(edit["range"]["end"], cursor)
        self.assertEqual(edit["range"]["start"], {"line": 1, "character": 4})
        self.assertEqual(item.get("insertTextFormat"), 2, "a snippet, since Helix declares snippetSupport")
        applied = apply_edit(lines, {**edit, "newText": snippet_text(edit["newText"])})
        self.assertEqual(applied[1].rstrip(), "    return a + b", f"item {item}")
        # Helix filters items by the typed word against filterText (or the label).
        self.assertTrue((item.get("filterText") or item["label"]).startswith("return"), item)
        print(f"\nhelix: completion item {item['label']!r} -> {applied[1]!r}", file=sys.stderr)

    def test_completion_after_a_space_does_not_double_it(self):
        # Regression: after `return ` the item must not start with a space ("return  a + b").
        uri = "file:///tmp/inkling-helix-test/space.py"
        text = "def add(a, b):\n    return \n"
        self.client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
        result = self.client.request(
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 11}, "context": {"triggerKind": 2, "triggerCharacter": " "}},
        )
        items = result["items"] if isinstance(result, dict) else result
        self.assertEqual(len(items), 1, result)
        edit = items[0]["textEdit"]
        applied = apply_edit(text.split("\n"), {**edit, "newText": snippet_text(edit["newText"])})
        self.assertEqual(applied[1].rstrip(), "    return a + b")

    def test_snippet_text(self):
        self.assertEqual(snippet_text(r"a \$b \} \\c$0"), r"a $b } \c")
        self.assertEqual(snippet_text("f(${1:x})"), "f(x)")


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    print(f"helix: {passed} passed, {failed} failed ({len(result.expectedFailures)} known server issue, {len(result.skipped)} skipped)")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
