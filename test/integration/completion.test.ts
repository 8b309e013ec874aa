/**
 * The generated shell completions (dist/completions, `hpcc completion`) in a
 * real bash, driven as bash drives a completion function (COMP_LINE,
 * COMP_POINT, COMP_WORDS, COMP_CWORD, then COMPREPLY), and in a real
 * interactive zsh on a pseudo-terminal (zpty) pressing TAB. The docker://
 * references come from a cache that a real `hpcc pull` from the test
 * registry filled: a change of the records' format breaks this test.
 * The cache is the user's own but treated as data: a record whose reference
 * holds shell syntax is neither expanded nor offered, and records not of the
 * user's own (another owner, a symlink) are ignored.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAUNCH_OPTIONS } from '../../src/cli/launch-options.js';
import { IS_ROOT, REPO_ROOT, findTool, makeTempDir, removeTree, requireTools, runHpcc, testUserIds } from '../helpers/env.js';
import { startSmallImageRegistry, type SmallImageRegistry } from '../helpers/registry-fixtures.js';

const BASH_SCRIPT = path.join(REPO_ROOT, 'dist/completions/hpcc.bash');
const ZSH_SCRIPT = path.join(REPO_ROOT, 'dist/completions/_hpcc');

describe('integration: shell completion (bash, zsh)', function () {
  this.timeout(180_000);
  let work: string;
  let cache: string;
  let small: SmallImageRegistry | undefined;
  let ref: string;

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci');
    work = makeTempDir('hpcc-completion-');
    cache = path.join(work, 'cache');
    small = await startSmallImageRegistry('hpcc-completion-reg-', 'none');
    ref = `docker://${small.reg.host}/lab/small:latest`;
    const env = { ...process.env, HOME: work, HPCC_CACHEDIR: cache, HPCC_INSECURE_REGISTRIES: small.reg.host };
    const r = runHpcc(['pull', '-q', path.join(work, 'small.sif'), ref], { env });
    expect(r.status, r.stderr).to.equal(0);
    fs.mkdirSync(path.join(work, 'dir', 'sub'), { recursive: true });
    for (const f of ['a.sif', 'b.sif', 'notes.txt']) fs.writeFileSync(path.join(work, 'dir', f), '');
  });
  after(async () => {
    await small?.stop();
    if (work) removeTree(work);
  });

  /** COMPREPLY for a command line (the cursor at its end), from `bash --norc` with the generated script sourced. */
  function bash(line: string, env: Record<string, string> = {}): string[] {
    const script = `source "$1" || exit 9
COMP_LINE=$2; COMP_POINT=\${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
_hpcc hpcc; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script, 'bash', BASH_SCRIPT, line], {
      cwd: path.join(work, 'dir'),
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, HOME: work, HPCC_CACHEDIR: cache, COMP_WORDBREAKS: ' \t\n"\'><=;|&(:', ...env },
    });
    expect(r.status, `${line}: ${r.stderr}`).to.equal(0);
    expect(r.stderr, line).to.equal('');
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  it('`hpcc completion bash|zsh` prints the built scripts, and bash registers the function', () => {
    expect(runHpcc(['completion', 'bash']).stdout).to.equal(fs.readFileSync(BASH_SCRIPT, 'utf8'));
    expect(runHpcc(['completion', 'zsh']).stdout).to.equal(fs.readFileSync(ZSH_SCRIPT, 'utf8'));
    const r = spawnSync('bash', ['--norc', '-c', 'source "$1" && complete -p hpcc', 'bash', BASH_SCRIPT], { encoding: 'utf8' });
    expect(r.stdout.trim()).to.equal('complete -F _hpcc hpcc');
  });

  it('bash: commands, topics and subcommands, flags of exec (the launch contract), flag values, argument values', () => {
    expect(bash('hpcc ')).to.include.members(['build', 'cache', 'completion', 'exec', 'pull', 'registry', 'sif', 'test']);
    expect(bash('hpcc ex')).to.deep.equal(['exec']);
    expect(bash('hpcc cache ')).to.deep.equal(['clean', 'list']);
    expect(bash('hpcc exec --').filter((w) => w !== '--')).to.have.members(LAUNCH_OPTIONS.map((o) => `--${o.name}`));
    expect(bash('hpcc exec -B /tmp --ti')).to.deep.equal(['--timings']);
    expect(bash('hpcc build --compressor ')).to.deep.equal(['gzip', 'lz4', 'xz', 'zstd']);
    expect(bash('hpcc cache list --type ')).to.include.members(['all', 'sif']);
    expect(bash('hpcc completion ')).to.deep.equal(['bash', 'zsh']);
  });

  it('bash: an image is a .sif file, a directory or a cached docker:// reference; after IMAGE the payload is not ours', () => {
    expect(bash('hpcc exec ')).to.deep.equal(['a.sif', 'b.sif', ref, 'sub'].sort());
    expect(bash('hpcc exec a')).to.deep.equal(['a.sif']);
    expect(bash('hpcc run -B /tmp:/mnt --env X=1 ')).to.include(ref);
    // bash replaces the part after the word's last ":" only
    expect(bash('hpcc exec docker:')).to.deep.equal([ref.slice('docker:'.length)]);
    expect(bash(`hpcc shell ${ref.slice(0, ref.lastIndexOf(':') + 2)}`)).to.deep.equal(['latest']);
    expect(bash('hpcc pull ')).to.include(ref);
    expect(bash('hpcc exec a.sif ')).to.deep.equal([]);
    expect(bash('hpcc exec a.sif --')).to.deep.equal([], 'words after IMAGE are the payload\'s, not hpcc flags');
    expect(bash('hpcc exec --env-file ')).to.include('notes.txt');
    expect(bash('hpcc exec ', { HPCC_CACHEDIR: path.join(work, 'no-cache') })).to.deep.equal(['a.sif', 'b.sif', 'sub']);
  });

  it('bash: cache records are data: shell syntax is not expanded or offered; records or a directory not of the user are ignored', function () {
    const refs = path.join(cache, 'refs');
    const marker = path.join(work, 'expanded');
    const hostile = path.join(refs, 'hostile.json');
    fs.writeFileSync(hostile, JSON.stringify({ reference: `x$(touch ${marker})` }) + '\n', { mode: 0o600 });
    fs.writeFileSync(path.join(refs, 'glob.json'), JSON.stringify({ reference: '127.0.0.1/*' }) + '\n', { mode: 0o600 });
    fs.symlinkSync(path.join(work, 'elsewhere.json'), path.join(refs, 'link.json'));
    fs.writeFileSync(path.join(work, 'elsewhere.json'), JSON.stringify({ reference: 'linked.example/x:1' }) + '\n');
    try {
      const got = bash('hpcc exec docker://');
      expect(got).to.deep.equal([ref.slice('docker:'.length)]);
      expect(fs.existsSync(marker), 'a reference was expanded by the shell').to.equal(false);
      if (!IS_ROOT) return;
      const { uid } = testUserIds();
      const other = path.join(refs, 'other.json');
      fs.writeFileSync(other, JSON.stringify({ reference: 'other.example/planted:1' }) + '\n', { mode: 0o644 });
      fs.chownSync(other, uid, uid);
      expect(bash('hpcc exec docker://o')).to.deep.equal([]);
      fs.rmSync(other);
      execFileSync('chown', [String(uid), refs]);
      expect(bash('hpcc exec docker://'), "another user's refs directory").to.deep.equal([]);
      execFileSync('chown', ['0', refs]);
    } finally {
      for (const f of ['hostile.json', 'glob.json', 'link.json']) fs.rmSync(path.join(refs, f), { force: true });
    }
  });

  /**
   * In one interactive zsh (compinit, the generated _hpcc on $fpath): for each
   * case type the line, TAB, then ^X, bound to print the line as <<BUFFER>>,
   * and wait until `want` shows on the screen (in a listing, or the completed
   * line), then clear the line. Returns how many cases passed in order.
   */
  function zsh(cases: Array<[line: string, want: string]>, seconds = 60): number {
    const fn = path.join(work, 'zfunc');
    fs.mkdirSync(fn, { recursive: true });
    fs.copyFileSync(ZSH_SCRIPT, path.join(fn, '_hpcc'));
    const steps = cases.map(([line, want]) => `zpty -w -n z ${shq(line)}$'\\t\\C-x'
zpty -r z out ${shq(`*${want}*`)} || exit 1
print ok
zpty -w -n z $'\\C-e\\C-u'`);
    const driver = `zmodload zsh/zpty
zpty -b z 'zsh -f -i'
zpty -w z 'PS1="%% "; fpath=(${fn} $fpath); autoload -Uz compinit; compinit -u -D; unsetopt BEEP; hpcc() { :; }; cd ${path.join(work, 'dir')}'
zpty -w z 'show-buf() { zle -I; print -r -- "<<$BUFFER>>"; }; zle -N show-buf; bindkey "^X" show-buf'
${steps.join('\n')}`;
    const r = spawnSync('timeout', [String(seconds), 'zsh', '-f', '-c', driver], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, HOME: work, TERM: 'vt100', HPCC_CACHEDIR: cache },
    });
    return r.stdout.split('\n').filter((l) => l === 'ok').length;
  }

  it('zsh: commands, subcommands, flags with descriptions, a cached docker:// reference, *.sif files', function () {
    if (!findTool('zsh')) this.skip(); // scripts/setup-host.sh installs it
    const cases: Array<[string, string]> = [
      ['hpcc ex', '<<hpcc exec >>'],
      ['hpcc cache ', 'list'],
      ['hpcc exec --tim', '<<hpcc exec --timings >>'],
      ['hpcc exec --', 'wall time'],
      ['hpcc build --compressor z', '<<hpcc build --compressor zstd >>'],
      ['hpcc exec docker://127', `<<hpcc exec ${ref} >>`],
      ['hpcc inspect a', '<<hpcc inspect a.sif >>'],
    ];
    const passed = zsh(cases);
    expect(passed, `zsh: ${JSON.stringify(cases[passed])} did not complete`).to.equal(cases.length);
    expect(zsh([['hpcc exec nothing-like-this-', '<<hpcc exec nothing-like-this-command']], 8), 'a pattern that cannot show').to.equal(0);
  });
});

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
