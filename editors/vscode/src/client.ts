// Builds the language client: how `inkling serve` is started, which documents it sees, the
// options it gets, and the middleware that feeds the status bar. Kept apart from activation so
// that tests can build the very same client (with a stand-in `vscode` module) and read the
// capabilities and initialization options it would send.

import * as vscode from 'vscode';
import {
    LanguageClient,
    LanguageClientOptions,
    Middleware,
    ServerOptions as ProcessOptions,
} from 'vscode-languageclient/node';

import { ReadSetting, serverOptions } from './settings';
import { ProgressValue } from './status';

/** The languages inkling completes (VS Code language ids). */
export const LANGUAGES = [
    'rust',
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'go',
    'c',
    'cpp',
    'java',
];

/** What the client reports back to the extension, for the status bar. */
export interface ClientHooks {
    onProgress(value: ProgressValue): void;
    onShowMessage(type: number, message: string): void;
    /** `suggested`: the answer held at least one suggestion. */
    onInlineLatency(ms: number, suggested: boolean): void;
}

const NO_HOOKS: ClientHooks = { onProgress() {}, onShowMessage() {}, onInlineLatency() {} };

/** The binary to run: `inkling.serverPath`, else `inkling` on PATH. */
export function serverCommand(read: ReadSetting): string {
    const configured = read('serverPath');
    return typeof configured === 'string' && configured.trim() !== '' ? configured.trim() : 'inkling';
}

function middleware(hooks: ClientHooks): Middleware {
    return {
        // Time every ghost-text request; cancelled ones (the user kept typing) do not count.
        async provideInlineCompletionItems(document, position, context, token, next) {
            const started = Date.now();
            const result = await next(document, position, context, token);
            if (!token.isCancellationRequested) {
                const items = Array.isArray(result) ? result : result?.items;
                hooks.onInlineLatency(Date.now() - started, (items?.length ?? 0) > 0);
            }
            return result;
        },
        // Observe the model-loading progress; VS Code still shows its own progress notification.
        handleWorkDoneProgress(token, params, next) {
            // Model loading only: the server also reports workspace indexing ("inkling/index/…").
            if (String(token).startsWith('inkling/load')) {
                hooks.onProgress(params);
            }
            next(token, params);
        },
    };
}

export function clientOptions(read: ReadSetting, hooks: ClientHooks = NO_HOOKS, outputChannel?: vscode.LogOutputChannel): LanguageClientOptions {
    return {
        documentSelector: LANGUAGES.flatMap((language) => [
            { scheme: 'file', language },
            { scheme: 'untitled', language },
        ]),
        initializationOptions: serverOptions(read),
        middleware: middleware(hooks),
        outputChannel,
        // Settings are sent by the extension itself (see extension.ts): the server refuses the
        // extension-only keys that `synchronize.configurationSection` would include.
    };
}

export function processOptions(read: ReadSetting): ProcessOptions {
    // No `transport`: the client then talks over the process's stdin/stdout as is.
    // `TransportKind.stdio` would make vscode-languageclient append `--stdio` to the arguments,
    // which older `inkling serve` binaries refused (they exited before `initialize`).
    return { command: serverCommand(read), args: ['serve'] };
}

export function createLanguageClient(read: ReadSetting, hooks: ClientHooks = NO_HOOKS, outputChannel?: vscode.LogOutputChannel): LanguageClient {
    return new LanguageClient('inkling', 'inkling', processOptions(read), clientOptions(read, hooks, outputChannel));
}
