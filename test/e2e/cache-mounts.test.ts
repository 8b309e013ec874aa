/**
 * `hpcc cache list|clean --type mounts` end to end (src/oci/cache/mounts.ts)
 * as the unprivileged test user: a keeper started by a launch is listed with
 * its image, pid and users (1 while a container runs, 0 after), clean
 * --dry-run leaves it, clean stops it and leaves no process, mount or file;
 * a dead keeper's files are removed; a rendezvous directory others may write
 * is not read at all.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT } from '../helpers/env.js';
import { exitOf, hpccAs, spawnUnprivileged } from './launch-fixture.js';
import { alive, fuseHolders, keepersIn, sleep, until, warmSuite } from './warm-fixture.js';

interface Listed {
  type: string;
  name: string;
  image: string;
  pid: number | null;
  users: number | null;
  idleSeconds: number | null;
  idleLimit: number | null;
  stale: boolean;
  dead: boolean;
}

describe('e2e: hpcc cache list|clean --type mounts', function () {
  this.timeout(120_000);
  const w = warmSuite('hpcc-e2e-cmounts-');
  const warmDir = w.warmDir;
  const env = (): Record<string, string> => ({ HPCC_TMPDIR: w.tdir, HPCC_WARM_IDLE: '60', HPCC_CACHEDIR: path.join(w.tdir, 'cache') });
  const hpcc = (args: string[]) => hpccAs(w.img.tmp, args, { env: env() });
  function list(): Listed[] {
    const r = hpcc(['cache', 'list', '--type', 'mounts', '--json']);
    expect(r.status, r.stderr).to.equal(0);
    return (JSON.parse(r.stdout) as { entries: Listed[] }).entries;
  }

  it('lists a keeper with its users, dry-run keeps it, clean stops it and leaves nothing', async () => {
    expect(list()).to.deep.equal([]);
    const c = spawnUnprivileged(['exec', w.img.sif, 'sh', '-c', 'echo up; sleep 3'], w.img.tmp, env());
    await until('the launch runs', () => keepersIn(warmDir()).length === 1);
    await sleep(500);
    let ls = list();
    expect(ls).to.have.length(1);
    const [k] = keepersIn(warmDir());
    expect(ls[0]).to.include({ type: 'mount', image: w.img.sif, pid: k!.pid, users: 1, idleSeconds: 0, idleLimit: 60, stale: false, dead: false });
    expect((await exitOf(c)).code).to.equal(0);
    await until('the launch has left the keeper', () => list()[0]?.users === 0);
    ls = list();
    expect(ls[0]).to.include({ pid: k!.pid, users: 0, dead: false });
    // the text listing and the default (all) listing show it too
    let r = hpcc(['cache', 'list']);
    expect(r.stdout).to.match(new RegExp(`mount +pid ${k!.pid} age \\d+s idle \\d+s/60s users 0 live  ${w.img.sif}`));
    r = hpcc(['cache', 'clean', '--type', 'mounts', '--dry-run']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`Would stop mount ${ls[0]!.name} (pid ${k!.pid}`);
    await sleep(300);
    expect(alive(k!.pid)).to.equal(true);
    r = hpcc(['cache', 'clean', '--type', 'mounts']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`Stopped mount ${ls[0]!.name}`);
    await until('the keeper ended', () => !alive(k!.pid), 10_000);
    await until('no FUSE mount of the image', () => fuseHolders(w.img.sif).length === 0);
    await until('the rendezvous directory is empty', () => fs.readdirSync(warmDir()).length === 0);
    expect(list()).to.deep.equal([]);
  });

  it('a SIGKILLed keeper is listed dead; clean removes its files', async () => {
    const r0 = hpcc(['exec', w.img.sif, 'true']);
    expect(r0.status, r0.stderr).to.equal(0);
    const [k] = keepersIn(warmDir());
    // the keeper and the parent that would clean up after it
    const parent = Number(fs.readFileSync(`/proc/${k!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    process.kill(parent, 'SIGKILL');
    process.kill(k!.pid, 'SIGKILL');
    await until('the keeper is gone', () => !alive(k!.pid) && fuseHolders(w.img.sif).length === 0);
    expect(fs.readdirSync(warmDir())).to.have.length(2);
    expect(list()[0]).to.include({ pid: k!.pid, dead: true, users: null });
    const r = hpcc(['cache', 'clean', '--type', 'mounts']);
    expect(r.stdout).to.contain('Removed dead mount');
    expect(fs.readdirSync(warmDir())).to.deep.equal([]);
  });

  it('security: a rendezvous directory others may write is neither read nor cleaned', async function () {
    if (!IS_ROOT) this.skip();
    const r0 = hpcc(['exec', w.img.sif, 'true']);
    expect(r0.status, r0.stderr).to.equal(0);
    const [k] = keepersIn(warmDir());
    fs.chmodSync(warmDir(), 0o777);
    expect(list()).to.deep.equal([]);
    const r = hpcc(['cache', 'clean', '--type', 'mounts']);
    expect(r.status, r.stderr).to.equal(0);
    await sleep(500);
    expect(alive(k!.pid)).to.equal(true);
    fs.chmodSync(warmDir(), 0o700);
    expect(list()).to.have.length(1);
  });
});
