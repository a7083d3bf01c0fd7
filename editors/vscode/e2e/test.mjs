// The inkling extension in a real VS Code (code-server 4.139, VS Code 1.139) in a real Chromium,
// driven by playwright-core through the browser's keyboard like a person. Run by run.sh, which
// installs everything and sets the environment:
//   INKLING_BIN, INKLING_TEST_MODEL, INKLING_VSIX, INKLING_E2E_CHROMIUM, INKLING_E2E_ARTIFACTS,
//   INKLING_E2E_MODULES (the folder with code-server and playwright-core), INKLING_E2E_PIDFILE (where the code-server process group id is written, for run.sh's trap).
//
// Checks, one line each ("ok - ..." / "not ok - ..."), then "code-server: N passed, M failed":
//   1. the .vsix installs into code-server;
//   2. the status bar item goes from loading (spinner) to ready (sparkle) as the model loads;
//   3. typing in a Python file brings ghost text (an inline suggestion) into the editor;
//   4. Tab accepts it: the saved file holds the typed text followed by the suggestion;
//   5. the status bar then shows the suggestion's latency ("inkling N ms");
//   6. a model path that does not exist, set in settings.json while running, reaches the
//      server, which answers with its one message ("could not load the model ... Completions
//      are off until this is fixed ..."), and the status bar shows the error, still after
//      typing on (the server's empty answers do not hide it);
//   7. setting the real model again reaches the server too ("inkling: now using ...") and the
//      status bar is ready again;
//   8. VS Code's own commands work on inkling's ghost text: "Trigger Inline Suggestion" (Command
//      Palette) brings it, Ctrl+Right ("Accept Next Word Of Inline Suggestion") takes one word.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run e2e/run.sh)`);
    return v;
};
// code-server and playwright-core, installed by run.sh outside the checkout.
const require = createRequire(path.join(env('INKLING_E2E_MODULES'), 'package.json'));
const { chromium } = require('playwright-core');
const BIN = env('INKLING_BIN');
const MODEL = env('INKLING_TEST_MODEL');
const VSIX = env('INKLING_VSIX');
const CHROMIUM = env('INKLING_E2E_CHROMIUM');
const ARTIFACTS = env('INKLING_E2E_ARTIFACTS');
const CODE_SERVER = path.join(path.dirname(require.resolve('code-server/package.json')), 'out', 'node', 'entry.js');

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (...a) => console.log(`[${elapsed()}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
async function waitFor(what, ms, fn, every = 250) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
        await sleep(every);
    }
}

const results = [];
function record(name, ok, why) {
    results.push(ok);
    console.log(ok ? `ok - ${name}` : `not ok - ${name}: ${why}`);
}
async function check(name, fn) {
    try {
        const note = await fn();
        record(name + (note ? ` (${note})` : ''), true);
        return true;
    } catch (e) {
        record(name, false, e instanceof Error ? e.message : String(e));
        if (page) {
            // What the screen showed, for the failure's diagnosis.
            const shot = path.join(ARTIFACTS, `failed-${results.length}.png`);
            await page.screenshot({ path: shot }).catch(() => undefined);
            const states = await statusStates(page).catch(() => []);
            const tooltip = await page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].find((e) => e.id.includes('inkling.status'))?.getAttribute('aria-label')).catch(() => undefined);
            console.log(`  screenshot: ${shot}\n  status bar states: ${states.join(' ; ') || 'none'} (${JSON.stringify(tooltip)})\n  notifications: ${JSON.stringify(await toasts(page).catch(() => []))}`);
        }
        return false;
    }
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

// --- a scratch home for this run: user data, extensions, workspace ---------------------------
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'inkling-e2e-'));
const userData = path.join(root, 'user-data');
const extensions = path.join(root, 'extensions');
const workspace = path.join(root, 'workspace');
const missingModel = path.join(root, 'no-such-model.gguf');
fs.mkdirSync(workspace, { recursive: true });
fs.mkdirSync(ARTIFACTS, { recursive: true });
const source = path.join(workspace, 'demo.py');
fs.writeFileSync(source, 'def add(a, b):\n    return a + b\n\n\n');

function writeSettings(modelPath) {
    const settings = {
        // A quiet, deterministic workbench.
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'workbench.welcomePage.walkthroughs.openOnInstall': false,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        'chat.disableAIFeatures': true,
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'extensions.ignoreRecommendations': true,
        'git.enabled': false,
        'files.autoSave': 'off',
        // Ghost text on; the suggestion popup off, so that Tab can only mean "accept ghost text".
        'editor.inlineSuggest.enabled': true,
        'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
        'editor.suggestOnTriggerCharacters': false,
        'editor.wordBasedSuggestions': 'off',
        // The extension.
        'inkling.serverPath': BIN,
        'inkling.modelPath': modelPath,
        'inkling.threads': 2,
        'inkling.maxNewTokens': 24,
    };
    const text = JSON.stringify(settings, null, 2);
    // `inkling.serverPath` and `inkling.modelPath` are machine-scoped: code-server is a remote
    // window, which reads those from the remote ("Machine") settings, the rest from "User".
    for (const dir of ['User', 'Machine']) {
        fs.mkdirSync(path.join(userData, dir), { recursive: true });
        fs.writeFileSync(path.join(userData, dir, 'settings.json'), text);
    }
}

// --- processes, and their cleanup ------------------------------------------------------------
let server;
let browser;
let page;
async function cleanup() {
    if (browser) await browser.close().catch(() => undefined);
    browser = undefined;
    if (server && server.exitCode === null) {
        try {
            process.kill(-server.pid, 'SIGTERM');
        } catch {}
        await Promise.race([new Promise((r) => server.once('exit', r)), sleep(3000)]);
        try {
            process.kill(-server.pid, 'SIGKILL');
        } catch {}
    }
    if (process.env.INKLING_E2E_KEEP) console.log(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        console.log(`${sig}: stopping`);
        void cleanup().finally(() => process.exit(1));
    });
}

const codeServerArgs = ['--config', path.join(root, 'config.yaml'), '--user-data-dir', userData, '--extensions-dir', extensions];
const csEnv = { ...process.env, XDG_CONFIG_HOME: path.join(root, 'xdg-config'), XDG_DATA_HOME: path.join(root, 'xdg-data'), HOME: process.env.HOME };
fs.writeFileSync(path.join(root, 'config.yaml'), 'auth: none\n');

// --- status bar helpers (run in the page) ----------------------------------------------------
// An init script records every state the inkling status bar item shows, so that a short
// "loading" phase is not missed between two polls from here.
function recordStatus() {
    window.__inklingStatus = [];
    const read = () => {
        const item = [...document.querySelectorAll('.statusbar-item')].find(
            (e) => e.id.includes('inkling.status') || /inkling/.test(e.getAttribute('aria-label') ?? e.textContent ?? ''),
        );
        if (!item) return;
        const icon = [...item.querySelectorAll('.codicon')].map((c) => [...c.classList].find((k) => k.startsWith('codicon-') && k !== 'codicon-modifier-spin')?.slice(8)).join(',');
        const state = `${icon}|${item.textContent.trim()}`;
        const list = window.__inklingStatus;
        if (list[list.length - 1] !== state) list.push(state);
    };
    setInterval(read, 40);
}
const statusStates = (page) => page.evaluate(() => window.__inklingStatus ?? []);
const statusNow = async (page) => (await statusStates(page)).at(-1) ?? '';

/** The ghost text Monaco shows: the part on the cursor's line and any lines below it. */
const ghostText = (page) =>
    page.evaluate(() => {
        const clean = (s) => (s ?? '').replace(/\u00a0/g, ' ');
        const inline = [...document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview')].map((e) => clean(e.textContent)).join('');
        const below = [...document.querySelectorAll('.monaco-editor .ghost-text .view-line')].map((e) => clean(e.textContent));
        return { inline, below };
    });

/** Runs a command from the Command Palette (F1), by its title, as a person would. */
async function runCommand(page, title) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await page.keyboard.type(title);
    const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 10_000 });
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden' });
}

/** Texts of the notification toasts on screen. */
const toasts = (page) =>
    page.evaluate(() => [...document.querySelectorAll('.notifications-toasts .notification-toast .notification-list-item-message')].map((e) => e.textContent ?? ''));

async function main() {
    writeSettings(MODEL);

    // 1. The .vsix installs.
    const installed = await check('the .vsix installs into code-server', () => {
        const r = spawnSync(process.execPath, [CODE_SERVER, ...codeServerArgs, '--install-extension', VSIX, '--force'], { env: csEnv, encoding: 'utf8', timeout: 120_000 });
        const out = `${r.stdout}${r.stderr}`;
        if (r.status !== 0 || !/successfully installed/i.test(out)) throw new Error(`exit ${r.status}: ${out.trim().slice(-500)}`);
        const list = spawnSync(process.execPath, [CODE_SERVER, ...codeServerArgs, '--list-extensions', '--show-versions'], { env: csEnv, encoding: 'utf8' });
        const line = list.stdout.split('\n').find((l) => l.startsWith('inkling.inkling@'));
        if (!line) throw new Error(`not listed: ${list.stdout}`);
        return line.trim();
    });
    if (!installed) return;

    const port = await freePort();
    server = spawn(
        process.execPath,
        [CODE_SERVER, ...codeServerArgs, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', workspace],
        { env: csEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (process.env.INKLING_E2E_PIDFILE) fs.writeFileSync(process.env.INKLING_E2E_PIDFILE, String(server.pid));
    let serverLog = '';
    const keep = (d) => {
        serverLog = (serverLog + d).slice(-20_000);
    };
    server.stdout.on('data', keep);
    server.stderr.on('data', keep);
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
    await waitFor('code-server to listen', 60_000, async () => {
        if (server.exitCode !== null) throw new Error(`code-server exited (${server.exitCode}): ${serverLog.slice(-2000)}`);
        return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok).catch(() => false);
    });
    log(`code-server listening on 127.0.0.1:${port}`);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('pageerror', (e) => log('page error:', e.message));
    await page.addInitScript(recordStatus);
    await page.goto(url);
    await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 90_000 });
    log('workbench loaded');

    // Open demo.py with Quick Open, as a person would.
    await waitFor('the explorer to list demo.py', 60_000, () => page.locator('.explorer-folders-view').getByText('demo.py').count());
    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
    await page.keyboard.type('demo.py');
    await waitFor('Quick Open to find demo.py', 30_000, () => page.locator('.quick-input-list').getByText('demo.py').count());
    await page.keyboard.press('Enter');
    await page.waitForSelector('.monaco-editor .view-lines', { timeout: 30_000 });
    await waitFor('demo.py in the editor', 30_000, () => page.evaluate(() => /def\u00a0add|def add/.test(document.querySelector('.monaco-editor .view-lines')?.textContent ?? '')));
    log('demo.py open');

    // 2. Status bar: loading, then ready.
    await check('the status bar item goes loading (spinner) -> ready (sparkle)', async () => {
        await waitFor("the status bar item to be ready", Number(process.env.INKLING_E2E_READY_MS ?? 90_000), async () => (await statusNow(page)).startsWith('sparkle|'));
        const states = await statusStates(page);
        const loading = states.findIndex((s) => s.startsWith('loading|'));
        const ready = states.findIndex((s) => s.startsWith('sparkle|'));
        if (loading < 0 || ready < loading) throw new Error(`states seen: ${states.join(' ; ')}`);
        const tooltip = await page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].find((e) => e.id.includes('inkling.status'))?.getAttribute('aria-label') ?? '');
        return `${states.map((s) => s.replace('|', ' ')).join(' -> ')}${tooltip ? `; "${tooltip}"` : ''}`;
    });
    const statusBar = page.locator('.part.statusbar');
    await statusBar.screenshot({ path: path.join(ARTIFACTS, 'status-ready.png') });

    // 3. Typing brings ghost text.
    const typed = 'def subtract(a, b):\n';
    const typed2 = 'return ';
    let ghost = { inline: '', below: [] };
    const gotGhost = await check('typing in demo.py brings ghost text', async () => {
        await page.locator('.monaco-editor .view-lines').first().click();
        await page.keyboard.press('Control+End');
        await page.keyboard.type(typed, { delay: 30 });
        await page.keyboard.type(typed2, { delay: 30 });
        const t0 = Date.now();
        let lastTrigger = Date.now();
        ghost = await waitFor('ghost text in the editor', 90_000, async () => {
            const g = await ghostText(page);
            if (g.inline.trim() || g.below.some((l) => l.trim())) return g;
            // Ask again now and then.
            if (Date.now() - lastTrigger > 15_000) {
                await runCommand(page, 'Trigger Inline Suggestion');
                lastTrigger = Date.now();
            }
            return undefined;
        });
        await sleep(300); // let it render fully
        ghost = await ghostText(page);
        await page.screenshot({ path: path.join(ARTIFACTS, 'ghost-text.png') });
        return `after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(ghost.inline)}${ghost.below.length ? ` + ${ghost.below.length} more line(s)` : ''}`;
    });

    // 4. Tab accepts; the file on disk has the suggestion.
    await check('Tab accepts the ghost text (the saved file holds it)', async () => {
        if (!gotGhost) throw new Error('no ghost text to accept');
        const before = fs.readFileSync(source, 'utf8');
        await page.keyboard.press('Tab');
        await sleep(300);
        const after = await ghostText(page);
        if (after.inline.trim()) throw new Error(`ghost text still shown after Tab: ${JSON.stringify(after.inline)}`);
        await page.keyboard.press('Control+S');
        const saved = await waitFor('the file to be saved', 15_000, () => {
            const t = fs.readFileSync(source, 'utf8');
            return t !== before ? t : undefined;
        });
        const lines = saved.split('\n');
        const def = lines.findIndex((l) => l.startsWith(typed.trim()));
        const line = def >= 0 ? lines[def + 1] : undefined;
        if (line === undefined || !line.trimStart().startsWith(typed2)) throw new Error(`no "${typed2}" line after "${typed.trim()}" in:\n${saved}`);
        const expected = (typed2 + ghost.inline).trimEnd();
        if (!line.trim().startsWith(expected.trim())) throw new Error(`expected the line to start with ${JSON.stringify(expected)}, got ${JSON.stringify(line)}`);
        if (line.trim() === typed2.trim()) throw new Error('nothing was inserted');
        for (const extra of ghost.below.filter((l) => l.trim())) {
            if (!saved.includes(extra.trimEnd())) throw new Error(`the accepted line ${JSON.stringify(extra)} is not in the file`);
        }
        fs.copyFileSync(source, path.join(ARTIFACTS, 'demo.py'));
        return JSON.stringify(line.trim());
    });

    // 5. The latency of that suggestion in the status bar.
    await check('the status bar shows the last suggestion\'s latency', async () => {
        const s = await waitFor('"inkling N ms" in the status bar', 10_000, async () => {
            const now = await statusNow(page);
            return /^sparkle\|inkling \d+ ms$/.test(now) ? now : undefined;
        });
        await statusBar.screenshot({ path: path.join(ARTIFACTS, 'status-latency.png') });
        return JSON.stringify(s.split('|')[1]);
    });

    // 6. A missing model, set while running: the server's one message, and the error state.
    await check('a missing model path (a settings change) gives the server\'s one clear message', async () => {
        writeSettings(missingModel);
        const toast = await waitFor('the server\'s "could not load the model" message', 60_000, async () =>
            (await toasts(page)).find((t) => t.includes('could not load the model') && t.includes(missingModel)),
        );
        if (!/Completions are off until this is fixed/.test(toast)) throw new Error(`unexpected message: ${toast}`);
        await waitFor('the status bar to show the error', 10_000, async () => (await statusNow(page)).startsWith('error|'));
        // Typing on asks for completions again; the message is not repeated.
        await page.keyboard.press('End');
        await page.keyboard.type('\n', { delay: 30 });
        await runCommand(page, 'Trigger Inline Suggestion');
        await sleep(3000);
        const same = (await toasts(page)).filter((t) => t.includes('Completions are off'));
        await page.screenshot({ path: path.join(ARTIFACTS, 'missing-model.png') });
        if (same.length !== 1) throw new Error(`${same.length} such messages on screen`);
        // The server's empty answers do not turn the error back into "ready".
        const now = await statusNow(page);
        if (!now.startsWith('error|')) throw new Error(`after a completion request the status bar shows ${JSON.stringify(now)}, not the error`);
        return JSON.stringify(toast);
    });

    // 7. The real model again: reloaded by the server, announced, ready.
    await check('setting the model again reaches the server ("now using", then ready)', async () => {
        writeSettings(MODEL);
        const toast = await waitFor('"inkling: now using" from the server', 60_000, async () => (await toasts(page)).find((t) => t.includes('inkling: now using')));
        await waitFor('the status bar to be ready', 30_000, async () => (await statusNow(page)).startsWith('sparkle|'));
        return JSON.stringify(toast);
    });

    // 8. VS Code's own inline suggestion commands: "Trigger Inline Suggestion" from the Command
    //    Palette, Ctrl+Right ("Accept Next Word Of Inline Suggestion") takes only its first word.
    await check('the standard commands: Trigger Inline Suggestion, then Ctrl+Right accepts one word', async () => {
        const line = 'def multiply(a, b):\n';
        // At the end of the file, on a fresh unindented line.
        await page.keyboard.press('Control+End');
        await page.keyboard.press('Shift+Home');
        await page.keyboard.press('Shift+Home');
        await page.keyboard.press('Delete');
        await page.keyboard.type(`\n${line}`, { delay: 30 });
        await page.keyboard.type(typed2, { delay: 30 });
        // Dismiss whatever came up while typing, then ask for a suggestion explicitly.
        await sleep(500);
        await page.keyboard.press('Escape');
        await waitFor('no ghost text after Escape', 10_000, async () => !(await ghostText(page)).inline.trim());
        await runCommand(page, 'Trigger Inline Suggestion');
        const full = (await waitFor('ghost text after Trigger Inline Suggestion', 60_000, async () => {
            const g = await ghostText(page);
            return g.inline.trim() ? g : undefined;
        })).inline;
        const before = fs.readFileSync(source, 'utf8');
        await page.keyboard.press('Control+ArrowRight');
        await sleep(300);
        const rest = (await ghostText(page)).inline;
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+S');
        const saved = await waitFor('the file to be saved', 15_000, () => {
            const t = fs.readFileSync(source, 'utf8');
            return t !== before ? t : undefined;
        });
        const lines = saved.split('\n');
        const def = lines.findIndex((l) => l.trimStart().startsWith(line.trim()));
        const got = def >= 0 ? lines[def + 1] ?? '' : '';
        const accepted = got.trimStart().slice(typed2.length);
        if (!accepted.trim()) throw new Error(`nothing accepted: ${JSON.stringify(got)} (suggestion ${JSON.stringify(full)})`);
        if (!full.startsWith(accepted) || accepted.length >= full.trimEnd().length) {
            throw new Error(`expected the first word of ${JSON.stringify(full)}, the line reads ${JSON.stringify(got)}`);
        }
        return `suggestion ${JSON.stringify(full)}, accepted ${JSON.stringify(accepted)}, still shown ${JSON.stringify(rest)}`;
    });
}

let crashed = false;
try {
    await main();
} catch (e) {
    crashed = true;
    record('the test ran to the end', false, e instanceof Error ? e.stack : String(e));
}
await cleanup();
const passed = results.filter(Boolean).length;
const failed = results.length - passed;
log(`done in ${elapsed()}`);
console.log(`code-server: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || crashed ? 1 : 0);
