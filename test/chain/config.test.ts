import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSuiConfig } from '../../src/chain/config.ts';
import { bytesToHex, leafHash } from '../../src/event/leaf.ts';
import { receipts } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const t = tempDir('receipts-config-');
afterAll(() => t.cleanup());
const KEY = 'suiprivkey1qzdlfxn2qa2lj5uprl8pyhexs02sg2wrhdy7qaq50cqgnffw4c2477kg9h3';
const good = {
  network: 'localnet',
  package_id: '0x1',
  registry_id: '0x2',
  registry_initial_shared_version: 5,
  cap_id: '0x3',
  private_key: KEY,
};

const write = (name: string, value: unknown) => {
  const f = join(t.dir, name);
  writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
};

describe('Sui config', () => {
  it('reads a config, with the network default RPC URL', () => {
    expect(loadSuiConfig(write('ok.json', good), {})).toEqual({
      network: 'localnet',
      rpcUrl: 'http://127.0.0.1:9000',
      packageId: '0x1',
      registryId: '0x2',
      registryInitialSharedVersion: '5',
      capId: '0x3',
      privateKey: KEY,
    });
  });

  it('takes the key from RECEIPTS_SUI_PRIVATE_KEY over the file', () => {
    const { private_key: _k, ...noKey } = good;
    expect(loadSuiConfig(write('nokey.json', noKey), { RECEIPTS_SUI_PRIVATE_KEY: KEY }).privateKey).toBe(KEY);
    expect(loadSuiConfig(write('nokey2.json', noKey), {}).privateKey).toBeUndefined();
  });

  it.each([
    ['a missing field', { ...good, cap_id: undefined }, /cap_id/],
    ['a bad object id', { ...good, registry_id: 'registry' }, /registry_id: must be a 0x-prefixed object id/],
    ['an unknown network', { ...good, network: 'moon' }, /network/],
    ['a key that is not a Sui key', { ...good, private_key: 'hunter2' }, /private_key: must be a Bech32 Sui private key/],
    ['an unknown field', { ...good, colour: 'blue' }, /unknown field colour/],
  ])('names the field for %s', (_n, value, message) => {
    expect(() => loadSuiConfig(write('bad.json', value), {})).toThrow(message);
  });

  it('says how to get a config when the file is missing or not JSON', () => {
    expect(() => loadSuiConfig(join(t.dir, 'none.json'), {})).toThrow(/cannot read the Sui config .*npm run localnet/);
    expect(() => loadSuiConfig(write('junk.json', '{'), {})).toThrow(/cannot read the Sui config/);
  });

  it('never echoes the key in an error', () => {
    try {
      loadSuiConfig(write('k.json', { ...good, cap_id: 'nope' }), {});
    } catch (err) {
      expect((err as Error).message).not.toContain(KEY);
    }
  });
});

describe('serve and verify with Sui options', () => {
  it('serve --network without --sui-config says what is missing', () => {
    const r = receipts(['serve', '--db', join(t.dir, 'x.db'), '--network', 'localnet', '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--network localnet needs --sui-config FILE/);
  });

  it('serve refuses a config for another network', () => {
    const r = receipts([
      'serve',
      '--db',
      join(t.dir, 'y.db'),
      '--network',
      'testnet',
      '--sui-config',
      write('net.json', good),
      '--port',
      '0',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--network testnet but .* is for localnet/);
  });

  it('verify --onchain needs --rpc; --rpc says a receipt that is not anchored is not verifiable yet (3); an unreachable node exits 2', () => {
    const event = { namespace: 'acme/prod', request_id: 'r1', caller: 'c', action: 'recall', units: 1, artifact_digest: '', ts_ms: 1 };
    const leaf = bytesToHex(leafHash(event));
    const receipt = {
      version: 1,
      status: 'sealed',
      event,
      leaf_hash: leaf,
      epoch: 0,
      leaf_index: 0,
      tree_size: 1,
      proof: [],
      root: leaf,
      anchor: null,
    };
    const f = write('r.json', receipt);
    expect(receipts(['verify', f, '--onchain'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--onchain needs --rpc/) });
    expect(receipts(['verify', f, '--rpc', 'http://127.0.0.1:1'])).toMatchObject({
      code: 3,
      stdout: expect.stringMatching(/^not verifiable yet: the receipt is sealed but not anchored yet/),
    });
    const anchored = write('a.json', {
      ...receipt,
      status: 'anchored',
      anchor: { network: 'localnet', package_id: '0x1', registry_id: '0x2', tx_digest: 'x', checkpoint: '1' },
    });
    expect(receipts(['verify', anchored, '--rpc', 'http://127.0.0.1:1'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/cannot read registry 0x2 through http:\/\/127.0.0.1:1/),
    });
  });
});
