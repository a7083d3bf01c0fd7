// The status bar's states (src/status.ts), as the extension moves between them.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import * as status from '../src/status';

const loaded = (): status.Status => status.onProgress(status.onProgress(status.initialStatus(true), { kind: 'begin', title: 'inkling: loading m.gguf' }), { kind: 'end', message: 'ready: m' });

test('loading, then ready with the latency of the last suggestion', () => {
    const begin = status.onProgress(status.initialStatus(true), { kind: 'begin', title: 'inkling: loading m.gguf' });
    assert.equal(status.render(begin).text, '$(loading~spin) inkling');
    const ready = status.onLatency(loaded(), 640.4, true);
    assert.equal(status.render(ready).text, '$(sparkle) inkling 640 ms');
});

test('an empty answer does not hide the server\'s "could not load the model" error', () => {
    // Without a model the server answers every request at once, with nothing.
    const failed = status.onShowMessage(loaded(), 1, 'inkling: could not load the model /x.gguf: not found. Completions are off until this is fixed: ...');
    assert.equal(failed.phase, 'error');
    const after = status.onLatency(failed, 1, false);
    assert.equal(after.phase, 'error');
    assert.equal(status.render(after).text, '$(error) inkling');
    // A suggestion does prove the server works again (e.g. after an invalid settings message).
    assert.equal(status.onLatency(failed, 300, true).phase, 'ready');
});
