// A stand-in for the `vscode` module, so that vscode-languageclient (and the extension's
// client.ts) can be loaded in plain Node. Every property is another stand-in and every call
// returns one; only `version` is real, because vscode-languageclient checks it. This is enough
// to construct a LanguageClient and ask it which capabilities it would send; nothing is started.

import Module = require('node:module');

function anything(): any {
    const target: any = function () {};
    return new Proxy(target, {
        get(t, prop) {
            if (prop === 'then') {
                return undefined; // not a promise
            }
            if (prop === Symbol.toPrimitive) {
                return () => '';
            }
            if (!(prop in t) || prop === 'prototype') {
                t[prop] = prop === 'prototype' ? {} : anything();
            }
            return t[prop];
        },
        apply: () => anything(),
        construct: () => anything(),
    });
}

let installed = false;

/** Makes `require('vscode')` return the stand-in (VS Code `version` as given). */
export function installVscodeStub(version = '1.91.0'): void {
    if (installed) {
        return;
    }
    installed = true;
    const stub = anything();
    stub.version = version;
    const mod = Module as any;
    const resolve = mod._resolveFilename;
    mod._resolveFilename = function (request: string, ...rest: unknown[]) {
        return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
    };
    require.cache['vscode'] = { id: 'vscode', filename: 'vscode', loaded: true, exports: stub } as any;
}
