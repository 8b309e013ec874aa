/**
 * Golden plans: the builder is a pure function, so each scenario's plan is
 * compared byte for byte with a committed JSON file. After an intended
 * change, regenerate with HPCC_UPDATE_GOLDEN=1 and review the diff.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildPlan } from '../../../../src/runtime/builder/build.js';
import { decodePlan, encodePlan } from '../../../../src/runtime/codec.js';
import type { BuildInput } from '../../../../src/runtime/builder/types.js';
import { REPO_ROOT } from '../../../helpers/env.js';
import { input } from './fixtures.js';

const GOLDEN = path.join(REPO_ROOT, 'test/unit/runtime/builder/golden');

const scenarios: Record<string, () => BuildInput> = {
  'exec-defaults': () => input(),
  'exec-binds-ro': () => input({ bind: ['/data:/mnt/data:ro,/opt/site', 'set1:/work/set1'] }, { host: { lookup: input().host.lookup, cwd: '/data' } }),
  'run-contain-pid': () => input({ action: 'run', args: ['a b', 'c'], contain: true, pid: true }),
  'shell-containall-home': () => input({ action: 'shell', args: [], containAll: true, home: '/scratch:/home/alice' }),
  'exec-cleanenv-env': () =>
    input(
      { cleanEnv: true, env: ['FOO=bar', 'PREPEND_PATH=/pre'], envFiles: [{ path: 'e.env', text: 'export A="1"\n# c\nB=two\n' }] },
      { host: { env: { HPCCENV_X: 'y', HPCCENV_APPEND_PATH: '/app', TERM: 'dumb', HOME: '/home/alice' } } },
    ),
  'exec-no-sh-no-overlay': () =>
    input({ args: ['/app'], noHome: true, writableTmpfs: false }, { image: { lookup: (p) => (p === '/app' || p === '/' ? { kind: p === '/' ? 'dir' : 'file', real: p } : null), passwd: null, group: null, envScripts: [] }, config: { overlay: 'none' } }),
  // the kernel should refuse overlayfs in a user namespace: fuse-overlayfs, then the skeleton
  'exec-overlay-fallback': () => input({ bind: ['/data:/newdir'] }, { host: { overlayInUserns: false, fuseOverlayfs: '/usr/bin/fuse-overlayfs' } }),
  // the env scripts are comments only (as `hpcc build` writes them): the payload is exec'd without the sh wrapper
  'exec-inert-scripts': () =>
    input(
      { env: ['PREPEND_PATH=/pre', 'X=1'] },
      { image: { envScripts: ['01-base.sh', '99-base.sh'], envScriptText: { '01-base.sh': '#!/bin/sh\n# Base environment\n', '99-base.sh': '#!/bin/sh\n' } } },
    ),
  'test-extracted-root': () => input({ action: 'test', args: [] }, { image: { rootDir: '/home/alice/.cache/hpcc/rootfs/abc' } }),
};

describe('runtime/builder: golden plans', () => {
  for (const [name, make] of Object.entries(scenarios)) {
    it(name, () => {
      const plan = buildPlan(make());
      expect(Object.isFrozen(plan)).to.equal(true);
      expect(Object.isFrozen(plan.mounts)).to.equal(true);
      const text = JSON.stringify(plan, null, 2) + '\n';
      expect(JSON.stringify(buildPlan(make()), null, 2) + '\n', 'deterministic').to.equal(text);
      const file = path.join(GOLDEN, `${name}.json`);
      if (process.env.HPCC_UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
      expect(text).to.equal(fs.readFileSync(file, 'utf8'));
      // every plan the builder makes is valid on the helper's wire format
      expect(JSON.parse(JSON.stringify(decodePlan(encodePlan(plan))))).to.deep.equal(JSON.parse(text));
    });
  }
});
