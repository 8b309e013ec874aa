/**
 * The launch contract (src/cli/launch-options.ts) against everything that
 * derives from it: every option of the table, in every form (long, `=VALUE`,
 * short, repeated, after -j, before `--`, in the payload), is parsed by oclif
 * (launch-command.ts parseWithOclif, LaunchCommand's parse), the lean parser
 * (fast-launch.ts parseFast) and the native front (dist/native/hpcc with
 * HPCC_FRONT_DUMP=1), which must agree on IMAGE, the payload's arguments and
 * each option's values, and on which command lines a launch memo may serve.
 * The generated C header must be the renderer's output for the current table
 * (no stale build), hold no hand-written copy in native/, and the front must
 * key the same environment variables by value as memo.ts. Launches through
 * every path are compared in test/e2e/launch-parity.test.ts.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFast } from '../../src/cli/fast-launch.js';
import { checkContract, renderContractHeader } from '../../src/cli/contract-header.js';
import { parseWithOclif } from '../../src/cli/launch-command.js';
import { LAUNCH_ACTIONS, LAUNCH_OPTIONS, type LaunchOption, type ParsedLaunch } from '../../src/cli/launch-options.js';
import { envKeyedByValue } from '../../src/runtime/memo.js';
import { REPO_ROOT } from '../helpers/env.js';
import { argvCases, type ArgvCase } from './launch-contract-cases.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const HEADER = path.join(REPO_ROOT, 'dist/gen/hpcc-contract.h');

interface Norm {
  image: string;
  rest: string[];
  options: Record<string, string[]>;
}
const norm = (p: ParsedLaunch): Norm => ({ image: p.image, rest: p.rest, options: Object.fromEntries([...p.options].sort(([a], [b]) => (a < b ? -1 : 1))) });

interface FrontParse {
  /** null: the front hands the command line to Node unparsed */
  parsed: Norm | null;
  memo: string;
  env: Map<string, boolean>;
}

/** The native front's parse (HPCC_FRONT_DUMP=1: NUL-terminated fields, see front.c main). */
function frontParse(action: string, argv: string[], env: Record<string, string> = {}): FrontParse {
  const r = spawnSync(FRONT, [action, ...argv], { env: { HPCC_FRONT_DUMP: '1', ...env } });
  expect(r.status, r.stderr?.toString()).to.equal(0);
  const f = r.stdout.toString('utf8').split('\0');
  expect(f.pop()).to.equal('');
  const options: Record<string, string[]> = {};
  const out: FrontParse = { parsed: null, memo: '', env: new Map() };
  let image: string | null = null;
  const rest: string[] = [];
  let node = false;
  for (let i = 0; i < f.length; ) {
    const tag = f[i++]!;
    if (tag === 'action') expect(f[i++]).to.equal((LAUNCH_ACTIONS as readonly string[]).includes(action) ? action : '');
    else if (tag === 'opt') (options[f[i++]!] ??= []).push(f[i++]!);
    else if (tag === 'image') image = f[i++]!;
    else if (tag === 'arg') rest.push(f[i++]!);
    else if (tag === 'node') node = true;
    else if (tag === 'memo') out.memo = f[i++]!;
    else if (tag === 'env') out.env.set(f[i++]!, f[i++] === '1');
    else throw new Error(`front dump: unknown record ${tag}`);
  }
  if (!node) {
    expect(image).to.not.equal(null);
    out.parsed = { image: image!, rest, options: Object.fromEntries(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1))) };
  }
  return out;
}

async function oclifParse(argv: string[]): Promise<Norm | Error> {
  try {
    return norm(await parseWithOclif(argv));
  } catch (e) {
    return e as Error;
  }
}

/** What the front says about memos for a parse: "yes", or the reason of the first option that may not be served. */
function memoVerdict(p: Norm): string {
  const o = LAUNCH_OPTIONS.find((x) => p.options[x.name] !== undefined && x.memo !== true);
  return o ? (o.memo as string) : 'yes';
}

describe('integration: the launch contract (one table; oclif, lean parser and native front agree)', function () {
  this.timeout(60_000);
  before(() => {
    if (!fs.existsSync(FRONT) || !fs.existsSync(HEADER)) throw new Error('run npm run build first (dist/native/hpcc, dist/gen/hpcc-contract.h)');
  });

  it('the built C header is the generator output for the current table (a stale or hand-edited header fails)', () => {
    expect(fs.readFileSync(HEADER, 'utf8')).to.equal(renderContractHeader());
    const h = renderContractHeader();
    for (const o of LAUNCH_OPTIONS) expect(h, o.name).to.contain(`{"${o.name}", ${o.char ? `'${o.char}'` : '0'}, ${o.value ? 1 : 0}, ${o.multiple ? 1 : 0}, `);
    expect(h).to.contain(`#define HPCC_LAUNCH_OPTION_COUNT ${LAUNCH_OPTIONS.length}\n`);
  });

  it('native/ holds no hand-written copy of the contract: options, actions, env lists, credential words, plan limits, memo constants, cache layout', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (/\.[ch]$/.test(e.name)) files.push(path.join(d, e.name));
      }
    };
    walk(path.join(REPO_ROOT, 'native'));
    expect(files.length).to.be.greaterThan(5);
    const optionWords = LAUNCH_OPTIONS.map((o) => `"--${o.name}"`);
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      const rel = path.relative(REPO_ROOT, f);
      for (const w of optionWords) expect(text, `${rel} spells ${w}`).to.not.contain(w);
      expect(text, `${rel} defines a plan limit`).to.not.match(/#define\s+PLAN_MAX_|#define\s+HPCC_PLAN_(MAGIC|VERSION)\s/);
      expect(text, `${rel} lists keyed variables`).to.not.match(/"SINGULARITY"|"LOGNAME"/);
      expect(text, `${rel} spells a memo constant`).to.not.match(/"HPCCMEMO1|"hpcc-memo\/|\(4 << 20\)|\(1 << 20\)/);
      expect(text, `${rel} spells a cache layout name or a credential word`).to.not.match(/"HPCC_CACHEDIR"|"XDG_CACHE_HOME"|\.cache\/hpcc|"%s\/launch"|"PASSPHRASE"/);
      expect(text, `${rel} lists the actions`).to.not.match(/"shell"/);
    }
  });

  it('the generator refuses a table the C parser cannot carry, and carries any new option it can', () => {
    const base = { actions: LAUNCH_ACTIONS, options: LAUNCH_OPTIONS };
    const add = (o: Partial<LaunchOption>) => ({ ...base, options: [...LAUNCH_OPTIONS, { name: 'new-opt', value: false, multiple: false, description: 'd', memo: true, ...o } as LaunchOption] });
    for (const [why, input] of [
      ['a repeatable flag', add({ multiple: true })],
      ['a taken short form', add({ char: 'B' })],
      ['a two-letter short form', add({ char: 'ab' })],
      ['a duplicate name', add({ name: 'bind' })],
      ['an upper-case name', add({ name: 'Bind2' })],
      ['a memo reason that is empty', add({ memo: '' as unknown as true })],
      ['a description the header cannot carry', add({ memo: 'caf\u00e9' })],
    ] as const) {
      expect(() => checkContract(input), why).to.throw(/launch contract/);
      expect(() => renderContractHeader(input), why).to.throw(/launch contract/);
    }
    expect(renderContractHeader(add({ value: true, multiple: true, char: 'Z', memo: 'new' }))).to.contain('{"new-opt", \'Z\', 1, 1, "new"},');
  });

  it('every option of the table, in every form, parses the same through oclif, the lean parser and the native front', async () => {
    const cases = argvCases();
    // each option is exercised by at least one accepted case (a new option is covered automatically)
    for (const o of LAUNCH_OPTIONS) expect(cases.some((c) => c.ok && c.argv.some((a) => a === `--${o.name}` || a.startsWith(`--${o.name}=`))), o.name).to.equal(true);
    let accepted = 0;
    for (const c of cases) await checkCase(c, 'exec') && accepted++;
    expect(accepted).to.be.greaterThan(LAUNCH_OPTIONS.length * 4);
    for (const action of LAUNCH_ACTIONS) for (const c of cases.filter((x) => x.all)) await checkCase(c, action);
  });

  it('-j -W /scratch img.sif true: IMAGE is img.sif on every path (splitAtImage did not know -W)', async () => {
    const argv = ['-j', '-W', '/scratch', 'img.sif', 'true'];
    const want: Norm = { image: 'img.sif', rest: ['true'], options: { json: [''], workdir: ['/scratch'] } };
    expect(await oclifParse(argv)).to.deep.equal(want);
    expect(norm(parseFast(argv)!)).to.deep.equal(want);
    expect(frontParse('exec', argv).parsed).to.deep.equal(want);
  });

  it('--timings is a contract option: every parser takes it, with -j and other options, and the front serves no memo for it', async () => {
    const o = LAUNCH_OPTIONS.find((x) => x.name === 'timings');
    expect(o, 'the table defines --timings').to.not.equal(undefined);
    expect(o!.value).to.equal(false);
    expect(o!.memo, 'a memo launch skips the phases --timings reports').to.be.a('string');
    expect(renderContractHeader()).to.contain(`{"timings", 0, 0, 0, "${o!.memo as string}"},`);
    for (const action of LAUNCH_ACTIONS) {
      const argv = ['-j', '--timings', '-B', '/a', 'img.sif', 'x'];
      const want: Norm = { image: 'img.sif', rest: ['x'], options: { bind: ['/a'], json: [''], timings: [''] } };
      expect(await oclifParse(argv)).to.deep.equal(want);
      expect(norm(parseFast(argv)!)).to.deep.equal(want);
      const front = frontParse(action, argv);
      expect(front.parsed).to.deep.equal(want);
      expect(front.memo).to.equal(o!.memo);
    }
  });

  it('a command that is not a launch is never parsed by the front', () => {
    for (const a of ['pull', 'build', 'cache', 'execute', '']) expect(frontParse(a === '' ? 'x' : a, ['-B', '/a', 'img.sif']).parsed).to.equal(null);
  });

  it('the front keys the same environment variables by value as memo.ts (the generated lists, the length rule)', () => {
    const names = ['HOME', 'PATH', 'PWD', 'PS1', 'SHELL', 'TMPDIR', 'USER', 'LOGNAME', 'HPCC', 'HPCC_BIND', 'HPCCENV_X', '__HPCC_HOST_FOO', 'SINGULARITYENV_Y', 'APPTAINER_BIND',
      'APPTAINER_DOCKER_PASSWORD', 'XDG_RUNTIME_DIR', 'LD_PRELOAD', 'NODE_OPTIONS', 'UV_THREADPOOL_SIZE', 'FOO', 'SLURM_PROCID', 'OLDPWD', 'TERM', 'LANG', 'HOMEDIR_X', 'MYPATH', 'home',
      'X'.repeat(255), 'X'.repeat(256), 'XDG', 'LD', '_HPCC'];
    const env = Object.fromEntries(names.map((n, i) => [n, `v${i}`]));
    const seen = frontParse('exec', ['img.sif'], env).env;
    for (const n of names) expect(seen.get(n), n).to.equal(envKeyedByValue(n));
  });
});

/** One command line through the three parsers; returns whether the lean parser took it. */
async function checkCase(c: ArgvCase, action: string): Promise<boolean> {
  const what = `${action} ${JSON.stringify(c.argv)}`;
  const lean = parseFast(c.argv);
  const oclif = await oclifParse(c.argv);
  const front = frontParse(action, c.argv);
  expect(lean !== null, `${what}: the lean parser ${lean ? 'took' : 'refused'} it`).to.equal(c.ok);
  if (c.oclifRefuses) expect(oclif, `${what}: oclif refuses it`).to.be.instanceOf(Error);
  if (lean === null) {
    // handed to oclif: the front must not serve it either (Node runs, oclif parses or reports)
    expect(front.parsed, `${what}: the front parsed what the lean parser hands to oclif`).to.equal(null);
    return false;
  }
  expect(oclif, `${what}: oclif`).to.not.be.instanceOf(Error);
  expect(oclif, `${what}: oclif vs lean`).to.deep.equal(norm(lean));
  expect(front.parsed, `${what}: front vs lean`).to.deep.equal(norm(lean));
  expect(front.memo, `${what}: memo`).to.equal(memoVerdict(norm(lean)));
  return true;
}
