// What the status bar item says, derived from what the server tells the client: `$/progress`
// while the model loads, `window/showMessage` on errors, and the latency of the last inline
// completion request (measured by the client). Pure: no `vscode` import, tested from Node.

export type Phase = 'starting' | 'loading' | 'ready' | 'error' | 'disabled' | 'stopped';

export interface Status {
    phase: Phase;
    /** Model description or error message, shown in the tooltip. */
    detail?: string;
    /** Milliseconds the last inline completion request took. */
    lastLatencyMs?: number;
}

/** The `value` of a `$/progress` notification for work-done progress. */
export interface ProgressValue {
    kind: 'begin' | 'report' | 'end';
    title?: string;
    message?: string;
}

export function initialStatus(enabled: boolean): Status {
    return { phase: enabled ? 'starting' : 'disabled' };
}

export function onProgress(s: Status, value: ProgressValue): Status {
    switch (value.kind) {
        case 'begin':
        case 'report':
            return { ...s, phase: s.phase === 'disabled' ? 'disabled' : 'loading', detail: value.title ?? value.message ?? s.detail };
        case 'end': {
            // The server ends the load with "ready: <model>" or "failed" (an error message follows).
            const message = value.message ?? '';
            if (message.startsWith('ready')) {
                const detail = message.replace(/^ready:\s*/, '') || s.detail;
                return { ...s, phase: s.phase === 'disabled' ? 'disabled' : 'ready', detail };
            }
            return { ...s, phase: 'error', detail: message || 'the model failed to load' };
        }
    }
}

/** `window/showMessage` from the server. `type` is LSP's MessageType (1 = error, 2 = warning). */
export function onShowMessage(s: Status, type: number, message: string): Status {
    if (type === 1) {
        return { ...s, phase: 'error', detail: message };
    }
    // "inkling: now using <model>" after a model change.
    const now = /^inkling: now using (.*)$/.exec(message);
    if (now) {
        return { ...s, phase: s.phase === 'disabled' ? 'disabled' : 'ready', detail: now[1] };
    }
    return s;
}

/**
 * A finished inline completion request. `suggested`: it brought a suggestion. Only a suggestion
 * proves the server works again after an error: without a model the server answers every
 * request at once with nothing, and that must not hide its "could not load the model" error.
 */
export function onLatency(s: Status, ms: number, suggested = true): Status {
    const phase = suggested && (s.phase === 'error' || s.phase === 'starting') ? 'ready' : s.phase;
    return { ...s, phase, lastLatencyMs: Math.round(ms) };
}

export function setEnabled(s: Status, enabled: boolean): Status {
    if (!enabled) {
        return { ...s, phase: 'disabled' };
    }
    return s.phase === 'disabled' ? { ...s, phase: s.detail ? 'ready' : 'starting' } : s;
}

/** Text (with VS Code codicons) and tooltip for the status bar item. */
export function render(s: Status): { text: string; tooltip: string } {
    const latency = s.lastLatencyMs !== undefined ? ` ${s.lastLatencyMs} ms` : '';
    switch (s.phase) {
        case 'starting':
            return { text: '$(loading~spin) inkling', tooltip: 'inkling: starting the server' };
        case 'loading':
            return { text: '$(loading~spin) inkling', tooltip: `inkling: ${s.detail ?? 'loading the model'}` };
        case 'ready':
            return { text: `$(sparkle) inkling${latency}`, tooltip: `inkling: ready (${s.detail ?? 'model loaded'})${latency ? `; last completion took${latency}` : ''}. Click to disable.` };
        case 'error':
            return { text: '$(error) inkling', tooltip: `${s.detail ?? 'inkling: error'}\nClick to show the log.` };
        case 'disabled':
            return { text: '$(circle-slash) inkling', tooltip: 'inkling: completions are disabled. Click to enable.' };
        case 'stopped':
            return { text: '$(debug-stop) inkling', tooltip: 'inkling: the server is not running. Click to show the log.' };
    }
}

/** The command a click on the status bar item runs. */
export function clickCommand(s: Status): string {
    switch (s.phase) {
        case 'ready':
        case 'loading':
        case 'starting':
            return 'inkling.disable';
        case 'disabled':
            return 'inkling.enable';
        default:
            return 'inkling.showLog';
    }
}
