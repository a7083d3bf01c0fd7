// Shared by the tests: where the server binary and the test model are, the server's option list,
// and the settings a fresh VS Code would have (the defaults in package.json).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const EXTENSION_ROOT = path.resolve(__dirname, '..', '..');
const REPO_ROOT = path.resolve(EXTENSION_ROOT, '..', '..');

/** `INKLING_BIN`, else the release build in this checkout. */
export function serverBinary(): string {
    const bin = process.env.INKLING_BIN || path.join(REPO_ROOT, 'target', 'release', 'inkling');
    if (!fs.existsSync(bin)) {
        throw new Error(`no inkling binary at ${bin}: run \`cargo build --release\` or set INKLING_BIN`);
    }
    return bin;
}

/** `INKLING_TEST_MODEL`, else the small model in the cache. */
export function testModel(): string {
    const model = process.env.INKLING_TEST_MODEL || path.join(os.homedir(), '.cache', 'inkling', 'models', 'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf');
    if (!fs.existsSync(model)) {
        throw new Error(`no test model at ${model}: set INKLING_TEST_MODEL (finetune/fetch_model.py --small --print-path)`);
    }
    return model;
}

export interface OptionDoc {
    name: string;
    type: string;
    default: string;
    description: string;
}

/** The server's own list of options (`inkling options`). */
export function serverOptionDocs(): OptionDoc[] {
    return JSON.parse(execFileSync(serverBinary(), ['options'], { encoding: 'utf8' })) as OptionDoc[];
}

export interface SettingSchema {
    type: string | string[];
    default: unknown;
    enum?: unknown[];
}

export function packageJson(): { contributes: { configuration: { properties: Record<string, SettingSchema> } } } {
    return JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT, 'package.json'), 'utf8'));
}

/** A `ReadSetting` that answers like VS Code with default settings, plus `overrides`. */
export function defaultSettings(overrides: Record<string, unknown> = {}): (name: string) => unknown {
    const props = packageJson().contributes.configuration.properties;
    return (name) => (name in overrides ? overrides[name] : props[`inkling.${name}`]?.default);
}
