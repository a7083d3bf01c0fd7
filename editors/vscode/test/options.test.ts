// The `inkling.*` settings in package.json must match the server's options (`inkling options`):
// same names, types and defaults. Fails when either side changes without the other.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { EXTENSION_ONLY_SETTINGS, SERVER_OPTION_NAMES, serverOptions } from '../src/settings';
import { defaultSettings, packageJson, serverOptionDocs } from './support';

const docs = serverOptionDocs();
const props = packageJson().contributes.configuration.properties;

function types(schema: { type: string | string[] }): string[] {
    return Array.isArray(schema.type) ? [...schema.type].sort() : [schema.type];
}

test('every server option is a setting of the same name, type and default', () => {
    for (const doc of docs) {
        const schema = props[`inkling.${doc.name}`];
        assert.ok(schema, `package.json lacks the setting inkling.${doc.name} (${doc.description})`);
        const expectedDefault = JSON.parse(doc.default);
        const expectedTypes = expectedDefault === null ? [doc.type, 'null'].sort() : [doc.type];
        assert.deepEqual(types(schema), expectedTypes, `type of inkling.${doc.name}`);
        assert.deepEqual(schema.default, expectedDefault, `default of inkling.${doc.name}`);
        if (schema.enum) {
            assert.ok(schema.enum.includes(expectedDefault), `inkling.${doc.name}: the default is one of the enum values`);
        }
    }
});

test('every inkling.* setting is a server option or an extension-only setting', () => {
    const known = new Set<string>([...docs.map((d) => d.name), ...EXTENSION_ONLY_SETTINGS]);
    for (const key of Object.keys(props)) {
        assert.ok(key.startsWith('inkling.'), key);
        const name = key.slice('inkling.'.length);
        assert.ok(known.has(name), `package.json has ${key}, which the server does not know (inkling options)`);
    }
});

test('the extension sends exactly the server options', () => {
    assert.deepEqual([...SERVER_OPTION_NAMES], docs.map((d) => d.name));
    const sent = serverOptions(defaultSettings());
    for (const key of Object.keys(sent)) {
        assert.ok((SERVER_OPTION_NAMES as readonly string[]).includes(key), `sends unknown option ${key}`);
    }
    // Extension-only settings never reach the server (it refuses unknown names).
    const withPath = serverOptions(defaultSettings({ serverPath: '/opt/inkling' }));
    assert.equal('serverPath' in withPath, false);
    // A cleared model path is sent as "" (the default model), not null (no change).
    assert.equal(serverOptions(defaultSettings({ modelPath: null })).modelPath, '');
});
