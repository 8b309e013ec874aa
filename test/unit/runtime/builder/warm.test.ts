/**
 * builder/warm.ts: when a plan asks for a warm mount and which keeper it
 * names (the key), and the config/env setting of the idle time.
 */
import { expect } from 'chai';
import { HpccError } from '../../../../src/errors/index.js';
import { buildPlan } from '../../../../src/runtime/builder/build.js';
import { decodePlan, encodePlan } from '../../../../src/runtime/codec.js';
import { parseConfig, parseWarmIdle } from '../../../../src/runtime/builder/config.js';
import { warmFacts } from '../../../../src/runtime/builder/facts.js';
import type { LaunchPlan } from '../../../../src/runtime/plan.js';
import { defaultConfig } from '../../../../src/runtime/builder/config.js';
import { host, image, input } from './fixtures.js';

type Squash = Extract<LaunchPlan['rootfs'], { kind: 'squashfuse' }>;
const WARM = { dir: '/tmp/hpcc-1000/warm', idleSeconds: 300, node: 'n1' };
const ID = '2049:77:4096:1:2';

interface Over {
  host?: ReturnType<typeof host>;
  image?: ReturnType<typeof image>;
  flags?: Parameters<typeof input>[0];
}
function warmOf(o: Over = {}): Squash['warm'] {
  const r = buildPlan(input(o.flags ?? {}, { ...(o.host ? { host: o.host } : {}), ...(o.image ? { image: o.image } : {}) })).rootfs;
  expect(r.kind).to.equal('squashfuse');
  return (r as Squash).warm;
}

describe('runtime/builder: warm mounts', () => {
  it('a squashfuse root with the host and image facts for it asks for a warm mount', () => {
    const w = warmOf({ host: host({ warm: WARM }), image: image({ identity: ID }) });
    expect(w).to.include({ dir: WARM.dir, idleSeconds: 300, identity: `${ID}:${image().offset}` });
    expect(w!.key).to.match(/^[0-9a-f]{32}$/);
  });

  it('none when warm mounts are off, the identity is unknown, or the root is an extraction', () => {
    expect(warmOf({ host: host({ warm: null }), image: image({ identity: ID }) })).to.equal(undefined);
    expect(warmOf({ host: host({ warm: WARM }) })).to.equal(undefined);
    const r = buildPlan(input({}, { host: host({ warm: WARM }), image: image({ identity: ID, rootDir: '/cache/x' }) })).rootfs;
    expect(r.kind).to.equal('dir');
  });

  it('--sharens: a required warm mount, also with warm mounts off (the default idle time), the same keeper as without it; on the wire as warm 2', () => {
    const base = { host: host({ warm: WARM }), image: image({ identity: ID }) };
    const w = warmOf({ ...base, flags: { sharens: true } })!;
    expect(w).to.include({ required: true, idleSeconds: 300 });
    expect(w.key).to.equal(warmOf(base)!.key);
    expect(warmOf({ ...base, host: host({ warm: { ...WARM, idleSeconds: 0 } }) })).to.equal(undefined);
    expect(warmOf({ ...base, host: host({ warm: { ...WARM, idleSeconds: 0 } }), flags: { sharens: true } })).to.include({ idleSeconds: 300, required: true });
    const plan = buildPlan(input({ sharens: true }, base));
    const bytes = encodePlan(plan);
    expect(decodePlan(bytes).rootfs).to.deep.equal(plan.rootfs);
  });

  it('--sharens with no keeper possible (an extraction, no launch directory, no identity): HPCC_E_LAUNCH_SHARENS', () => {
    const cases: Over[] = [
      { host: host({ warm: WARM }), image: image({ identity: ID, rootDir: '/cache/x' }) },
      { host: host({ warm: null }), image: image({ identity: ID }) },
      { host: host({ warm: WARM }), image: image() },
    ];
    for (const c of cases) {
      let err: unknown;
      try {
        buildPlan(input({ sharens: true }, { ...(c.host ? { host: c.host } : {}), ...(c.image ? { image: c.image } : {}) }));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(HpccError);
      expect([(err as HpccError).code, (err as HpccError).exitCode]).to.deep.equal(['HPCC_E_LAUNCH_SHARENS', 99]);
    }
  });

  it('the key tells apart images, identities, id mappings (--fakeroot) and nodes', () => {
    const base = { host: host({ warm: WARM }), image: image({ identity: ID }) };
    const k = warmOf(base)!.key;
    expect(warmOf(base)!.key).to.equal(k);
    expect(warmOf({ ...base, image: image({ identity: '2049:77:4096:1:3' }) })!.key).to.not.equal(k);
    expect(warmOf({ ...base, image: image({ identity: ID, path: '/other.sif' }) })!.key).to.not.equal(k);
    expect(warmOf({ ...base, host: host({ warm: { ...WARM, node: 'n2' } }) })!.key).to.not.equal(k);
    expect(warmOf({ ...base, flags: { fakeroot: true } })!.key).to.not.equal(k);
  });

  it('HPCC_WARM_IDLE wins over [launch] warm; 0 turns warm mounts off; bad values are usage errors', () => {
    const c = { ...defaultConfig(), warm: 60 };
    const stages = ['/tmp/hpcc-1000'];
    expect(warmFacts({}, c, 1000, stages)!.idleSeconds).to.equal(60);
    expect(warmFacts({ HPCC_WARM_IDLE: '5' }, c, 1000, stages)!.idleSeconds).to.equal(5);
    expect(warmFacts({ HPCC_WARM_IDLE: '0' }, c, 1000, stages)!.idleSeconds).to.equal(0);
    expect(warmFacts({}, defaultConfig(), 1000, stages)!.idleSeconds).to.equal(300);
    expect(warmFacts({}, c, 1000, stages)!.dir).to.equal('/tmp/hpcc-1000/warm');
    expect(warmFacts({}, c, 1000, ['/mnt'])).to.equal(null); // the per-user directory is not ours
    expect(parseConfig('[launch]\nwarm = 120\n', 'f').warm).to.equal(120);
    for (const bad of ['-1', 'x', '1.5', '604801', '']) expect(() => parseWarmIdle(bad, 'HPCC_WARM_IDLE'), bad).to.throw(/not a number of seconds/);
  });
});
