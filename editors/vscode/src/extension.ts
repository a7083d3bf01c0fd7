// The inkling extension: starts `inkling serve`, keeps its settings in sync, and shows its state
// in the status bar. Ghost text itself comes from vscode-languageclient's inline completion
// feature (LSP `textDocument/inlineCompletion`), which is on by default.

import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, LanguageClient, MessageType, ShowMessageNotification, State } from 'vscode-languageclient/node';

import { createLanguageClient } from './client';
import { ReadSetting, serverOptions } from './settings';
import * as status from './status';

let client: LanguageClient | undefined;

function readSetting(): ReadSetting {
    const config = vscode.workspace.getConfiguration('inkling');
    return (name) => config.get(name);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    const output = vscode.window.createOutputChannel('inkling', { log: true });
    const item = vscode.window.createStatusBarItem('inkling.status', vscode.StatusBarAlignment.Right, 100);
    item.name = 'inkling';
    context.subscriptions.push(output, item);

    let state = status.initialStatus(readSetting()('enabled') !== false);
    const update = (next: status.Status) => {
        state = next;
        const { text, tooltip } = status.render(state);
        item.text = text;
        item.tooltip = tooltip;
        item.command = status.clickCommand(state);
        item.backgroundColor = state.phase === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    };
    update(state);
    item.show();

    const hooks = {
        onProgress: (value: status.ProgressValue) => update(status.onProgress(state, value)),
        onShowMessage: (type: number, message: string) => update(status.onShowMessage(state, type, message)),
        onInlineLatency: (ms: number, suggested: boolean) => update(status.onLatency(state, ms, suggested)),
    };

    const start = async () => {
        const c = createLanguageClient(readSetting(), hooks, output);
        // Replaces the client's default handler, so the extension shows the message itself.
        c.onNotification(ShowMessageNotification.type, ({ type, message }) => {
            hooks.onShowMessage(type, message);
            const show = type === MessageType.Error ? vscode.window.showErrorMessage : type === MessageType.Warning ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
            void show(message, 'Show Log').then((choice) => choice && output.show(true));
        });
        c.onDidChangeState(({ newState }) => {
            if (newState === State.Stopped && state.phase !== 'error') {
                update({ ...state, phase: 'stopped' });
            }
        });
        client = c;
        update(status.initialStatus(readSetting()('enabled') !== false));
        try {
            await c.start();
        } catch (e) {
            update({ ...state, phase: 'error', detail: `inkling could not start: ${e instanceof Error ? e.message : String(e)}. Set inkling.serverPath to the inkling binary.` });
        }
    };

    const stop = async () => {
        const c = client;
        client = undefined;
        if (c) {
            await c.stop().catch(() => undefined);
        }
    };

    const setEnabled = async (enabled: boolean) => {
        // Writes the user setting; the change listener below tells the server.
        await vscode.workspace.getConfiguration('inkling').update('enabled', enabled, vscode.ConfigurationTarget.Global);
    };

    context.subscriptions.push(
        vscode.commands.registerCommand('inkling.enable', () => setEnabled(true)),
        vscode.commands.registerCommand('inkling.disable', () => setEnabled(false)),
        vscode.commands.registerCommand('inkling.restart', async () => {
            await stop();
            await start();
        }),
        vscode.commands.registerCommand('inkling.showLog', () => output.show(true)),
        vscode.workspace.onDidChangeConfiguration(async (e) => {
            if (!e.affectsConfiguration('inkling')) {
                return;
            }
            if (e.affectsConfiguration('inkling.serverPath')) {
                await stop();
                await start();
                return;
            }
            const read = readSetting();
            update(status.setEnabled(state, read('enabled') !== false));
            if (client?.isRunning()) {
                await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { inkling: serverOptions(read) } });
            }
        }),
        { dispose: () => void stop() },
    );

    await start();
}

export async function deactivate(): Promise<void> {
    if (client) {
        await client.stop().catch(() => undefined);
        client = undefined;
    }
}
