// Maps the `inkling.*` VS Code settings onto the server's options.
//
// Every server option (see `inkling options`) is a VS Code setting of the same name under
// `inkling.`; test/options.test.ts fails when the two lists disagree. Settings that only the
// extension reads (the binary's path, tracing) are listed in EXTENSION_ONLY_SETTINGS and never
// sent: the server refuses unknown option names.
//
// This module does not import `vscode`, so tests can use it as is.

/** The server's option names, in the order `inkling options` prints them. */
export const SERVER_OPTION_NAMES = [
    'enabled',
    'modelPath',
    'maxPrefixTokens',
    'maxSuffixTokens',
    'maxNewTokens',
    'timeBudgetMs',
    'latencyTargetMs',
    'prewarm',
    'multiline',
    'completeInComments',
    'threads',
    'maxDocumentBytes',
    'crossFileContext',
    'maxContextTokens',
    'maxIndexFiles',
    'kvCacheMb',
    'filterPath',
    'minConfidence',
    'routerModelPath',
    'logSuggestions',
] as const;

/** Path options the server reads "" of as "none" or "the default": a cleared setting is sent as "". */
const PATH_OPTIONS: readonly string[] = ['modelPath', 'filterPath', 'routerModelPath'];

export type ServerOptionName = (typeof SERVER_OPTION_NAMES)[number];

/** `inkling.*` settings that configure the extension itself. */
export const EXTENSION_ONLY_SETTINGS = ['serverPath', 'trace.server'] as const;

/** Reads one setting under `inkling.` (VS Code: `workspace.getConfiguration('inkling').get`). */
export type ReadSetting = (name: string) => unknown;

export type ServerOptions = { [K in ServerOptionName]?: unknown };

/**
 * The options object sent as `initializationOptions` and, wrapped as `{ inkling: ... }`, in
 * `workspace/didChangeConfiguration`.
 *
 * The server reads `null` as "keep the current value". An empty `modelPath` (`filterPath`,
 * `routerModelPath`) is sent as `""`, which the server reads as "the default model" ("the filter
 * beside the model", "no router"), so clearing the setting really resets it.
 * `threads` has no such reset value; it only takes effect when the server starts anyway.
 */
export function serverOptions(read: ReadSetting): ServerOptions {
    const out: ServerOptions = {};
    for (const name of SERVER_OPTION_NAMES) {
        const value = read(name);
        if (PATH_OPTIONS.includes(name)) {
            out[name] = typeof value === 'string' ? value.trim() : '';
        } else if (value !== undefined && value !== null) {
            out[name] = value;
        }
    }
    return out;
}
