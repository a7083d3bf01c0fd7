// Drives the real `inkling serve` with the real small model, the way the extension would: the
// capabilities are the ones vscode-languageclient 11 computes for the extension's own client, the
// options are the extension's `initializationOptions`, and the status bar logic is fed the
// server's real `$/progress` and messages.

import { strict as assert } from 'node:assert';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import {
    createProtocolConnection,
    DidChangeConfigurationNotification,
    DidOpenTextDocumentNotification,
    InitializeRequest,
    InitializedNotification,
    InlineCompletionRequest,
    InlineCompletionTriggerKind,
    ProtocolConnection,
    ShowMessageNotification,
    StreamMessageReader,
    StreamMessageWriter,
    WorkDoneProgress,
    WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';

import { serverOptions } from '../src/settings';
import * as status from '../src/status';
import { defaultSettings, serverBinary, testModel } from './support';
import { installVscodeStub } from './vscodeStub';
import type { TransportKind } from 'vscode-languageclient/node';

installVscodeStub();
// Loaded after the stub: client.ts imports `vscode`.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const extensionClient: typeof import('../src/client') = require('../src/client');

const URI = 'file:///tmp/inkling-vscode-test/add.py';
const TEXT = 'def add(a, b):\n    return \n';
const CURSOR = { line: 1, character: 11 };
const LOAD_TIMEOUT_MS = 120_000;

let proc: ChildProcessWithoutNullStreams;
let conn: ProtocolConnection;
let state = status.initialStatus(true);
const messages: { type: number; message: string }[] = [];
let stderr = '';

function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const tick = () => {
            if (ok()) {
                resolve();
            } else if (Date.now() - started > timeoutMs) {
                reject(new Error(`timed out waiting for ${what}; status ${JSON.stringify(state)}; messages ${JSON.stringify(messages)}\nserver log:\n${stderr.slice(-3000)}`));
            } else {
                setTimeout(tick, 50);
            }
        };
        tick();
    });
}

function inlineCompletion() {
    return conn.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri: URI },
        position: CURSOR,
        context: { triggerKind: InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
    });
}

before(async () => {
    const read = defaultSettings({ modelPath: testModel(), maxNewTokens: 48 });
    const client = extensionClient.createLanguageClient(read);
    // The capabilities vscode-languageclient would send for this very client (private method).
    const capabilities = (client as any).computeClientCapabilities();
    assert.deepEqual(capabilities.general.positionEncodings, ['utf-16']);
    assert.equal(capabilities.window.workDoneProgress, true);
    assert.ok(capabilities.textDocument.inlineCompletion, 'vscode-languageclient declares inline completion');

    // The command line vscode-languageclient 11 runs (lib/node/main.js): a `transport` of stdio
    // or pipe adds `--stdio` / `--pipe=...` to the arguments.
    const processOptions = extensionClient.processOptions(read) as { command: string; args: string[]; transport?: TransportKind };
    assert.equal(processOptions.transport, undefined, 'no transport: the server gets exactly `serve`');
    assert.deepEqual(processOptions.args, ['serve']);
    proc = spawn(serverBinary(), processOptions.args, { stdio: 'pipe' });
    proc.stderr.on('data', (chunk) => (stderr += chunk));
    conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
    conn.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
        conn.onProgress(WorkDoneProgress.type, token, (value) => {
            state = status.onProgress(state, value);
        });
    });
    conn.onNotification(ShowMessageNotification.type, (m) => {
        messages.push(m);
        state = status.onShowMessage(state, m.type, m.message);
    });
    conn.listen();

    const init = await conn.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        rootUri: null,
        capabilities,
        initializationOptions: extensionClient.clientOptions(read).initializationOptions,
        clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
    });
    assert.equal(init.capabilities.positionEncoding, 'utf-16');
    assert.ok(init.capabilities.inlineCompletionProvider, 'the server offers inline completion');
    await conn.sendNotification(InitializedNotification.type, {});
    await waitFor('the model to load (status "ready")', () => state.phase === 'ready' || state.phase === 'error', LOAD_TIMEOUT_MS);
    assert.equal(state.phase, 'ready', `status after loading: ${JSON.stringify(state)}`);
    assert.deepEqual(messages.filter((m) => m.type === 1), [], 'no error messages: the options were accepted');
    await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: URI, languageId: 'python', version: 1, text: TEXT } });
});

after(async () => {
    if (conn) {
        await conn.sendRequest('shutdown').catch(() => undefined);
        await conn.sendNotification('exit').catch(() => undefined);
        conn.dispose();
    }
    if (proc && proc.exitCode === null) {
        setTimeout(() => proc.kill(), 2000).unref();
    }
});

test('inline completion of the Python add example contains `a + b`', async () => {
    const started = Date.now();
    const result = await inlineCompletion();
    state = status.onLatency(state, Date.now() - started);
    const items = Array.isArray(result) ? result : result?.items ?? [];
    assert.equal(items.length, 1, `one item: ${JSON.stringify(result)}`);
    const text = typeof items[0].insertText === 'string' ? items[0].insertText : items[0].insertText.value;
    assert.ok(text.includes('a + b'), `ghost text: ${JSON.stringify(text)}`);
    assert.deepEqual(items[0].range, { start: CURSOR, end: CURSOR });
    console.log(`inline completion: ${JSON.stringify(text)} in ${state.lastLatencyMs} ms; status bar: ${status.render(state).text}`);
});

// Regression: after `return ` (cursor after a space) the ghost text must not start with a space.
test('accepting the ghost text after `return ` gives `return a + b`', async () => {
    const result = await inlineCompletion();
    const items = Array.isArray(result) ? result : result?.items ?? [];
    const text = items.length ? (typeof items[0].insertText === 'string' ? items[0].insertText : items[0].insertText.value) : '';
    const line = TEXT.split('\n')[1];
    const accepted = line.slice(0, CURSOR.character) + text + line.slice(CURSOR.character);
    assert.equal(accepted, '    return a + b');
});

test('disabling through didChangeConfiguration stops completions, enabling brings them back', async () => {
    const send = (enabled: boolean) =>
        conn.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { inkling: serverOptions(defaultSettings({ enabled, modelPath: testModel(), maxNewTokens: 48 })) },
        });
    await send(false);
    const off = await inlineCompletion();
    assert.deepEqual(Array.isArray(off) ? off : off?.items ?? [], [], 'no items while disabled');
    await send(true);
    const on = await inlineCompletion();
    assert.equal((Array.isArray(on) ? on : on?.items ?? []).length, 1, 'items again once enabled');
    assert.deepEqual(messages.filter((m) => m.type === 1), [], 'no error messages');
});
