/**
 * The Slurm wrappers' command lines (src/slurm/args.ts): which words are
 * hpcc's comes from the launch contract (src/cli/launch-options.ts) alone, so
 * every option of the contract is tried here in both its forms and the test
 * fails when the two drift; the rule for colliding short options (-B, -c, -e,
 * -C, -H, -p, -W: hpcc's only right after --image); #HPCC lines; --export.
 */
import { expect } from 'chai';
import { LAUNCH_OPTIONS } from '../../../src/cli/launch-options.js';
import { NOT_FOR_WRAPPERS, parseSbatchArgs, parseSrunArgs, scriptHpccLines } from '../../../src/slurm/args.js';
import { mergeExport, wrapperScript } from '../../../src/slurm/sbatch.js';
import { pinFromEnv, pinToEnv } from '../../../src/slurm/pin.js';
import { srunCommand } from '../../../src/slurm/srun.js';

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
};

describe('slurm wrappers: command lines', () => {
  it('every option of the launch contract, long and short, is an hpcc option after --image (or refused by name)', () => {
    for (const o of LAUNCH_OPTIONS) {
      const forms = [`--${o.name}`, ...(o.char ? [`-${o.char}`] : [])];
      for (const f of forms) {
        const words = o.value ? [f, 'V'] : [f];
        const run = () => parseSrunArgs(['-N2', '--image', 'x.sif', ...words, '-n', '4', '--', 'cmd']);
        if (NOT_FOR_WRAPPERS[o.name]) {
          expect(code(run), f).to.equal('HPCC_E_SLURM_ARGS');
          continue;
        }
        const a = run();
        expect(a.options, f).to.deep.equal([o.value ? `--${o.name}=V` : `--${o.name}`]);
        expect(a.slurm, f).to.deep.equal(['-N2', '-n', '4']);
        expect(a.rest).to.deep.equal(['cmd']);
      }
      if (NOT_FOR_WRAPPERS[o.name]) continue;
      if (o.value) expect(parseSrunArgs(['--image=x.sif', `--${o.name}=a=b`, '--', 'c']).options).to.deep.equal([`--${o.name}=a=b`]);
      else expect(code(() => parseSrunArgs(['--image=x.sif', `--${o.name}=1`, '--', 'c']))).to.equal('HPCC_E_SLURM_ARGS');
    }
    // every refused name is one of the contract's
    for (const n of Object.keys(NOT_FOR_WRAPPERS)) expect(LAUNCH_OPTIONS.map((o) => o.name)).to.include(n);
  });

  it('colliding short options: Slurm\'s before --image and after the hpcc block, hpcc\'s right after --image', () => {
    const a = parseSrunArgs(['-B', '2:2', '-c', '4', '--image', 'i.sif', '-B', '/data', '-c', '-e', '-C', '-p', '-W', '/w', '-H', '/h', '-N', '2', '-e', '/err', '--', 'x']);
    expect(a.slurm).to.deep.equal(['-B', '2:2', '-c', '4', '-N', '2', '-e', '/err']);
    expect(a.options).to.deep.equal(['--bind=/data', '--contain', '--cleanenv', '--containall', '--pid', '--workdir=/w', '--home=/h']);
    expect(a.rest).to.deep.equal(['x']);
  });

  it('ambiguity and missing parts are usage errors', () => {
    expect(code(() => parseSrunArgs(['--image', 'a.sif', '-N', '2', '--nv', '--', 'x']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSrunArgs(['--image', 'a.sif', '-N2', '--image', 'b.sif', '--', 'x']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSrunArgs(['--image', 'a.sif', 'x']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSrunArgs(['--image', 'a.sif', '--']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSrunArgs(['--image']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSbatchArgs(['-N', '2']))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => parseSbatchArgs(['--image', 'a.sif', '-B']))).to.equal('HPCC_E_SLURM_ARGS');
  });

  it('hpcc-sbatch finds SCRIPT after Slurm options with and without values', () => {
    const a = parseSbatchArgs(['-N', '3', '--hold', '--time=5', '-J', 'x', '--image', 'docker://a/b:1', '--nv', '-e', '--parsable', '-e', 'err.txt', 'job.sh', '-v', 'arg']);
    expect(a.slurm).to.deep.equal(['-N', '3', '--hold', '--time=5', '-J', 'x', '--parsable', '-e', 'err.txt']);
    expect(a.image).to.equal('docker://a/b:1');
    expect(a.options).to.deep.equal(['--nv', '--cleanenv']);
    expect(a.rest).to.deep.equal(['job.sh', '-v', 'arg']);
    expect(parseSbatchArgs(['--exclusive', '--', '-odd-name.sh']).rest).to.deep.equal(['-odd-name.sh']);
    expect(parseSbatchArgs(['--wrap', 'echo hi']).rest).to.deep.equal([]);
  });

  it('#HPCC lines: read like #SBATCH ones, up to the first command', () => {
    const b = scriptHpccLines('#!/bin/sh\n#SBATCH -N2\n#HPCC -B /data --env=A=1\n\n#HPCC --image=docker://r/x:1 --nv\necho hi\n#HPCC --rocm\n');
    expect(b).to.deep.equal({ image: 'docker://r/x:1', options: ['--bind=/data', '--env=A=1', '--nv'] });
    expect(scriptHpccLines('#!/bin/sh\n#HPCC -B /a\n')).to.deep.equal({ options: ['--bind=/a'] });
    expect(code(() => scriptHpccLines('#!/bin/sh\n#HPCC --image=x.sif -N 2\n'))).to.equal('HPCC_E_SLURM_ARGS');
    expect(code(() => scriptHpccLines('#!/bin/sh\n#HPCC --plan-out=p\n'))).to.equal('HPCC_E_SLURM_ARGS');
  });

  it('--export: the pin is added to a list, NONE becomes the pin alone, ALL is left as it is', () => {
    expect(mergeExport('ALL')).to.equal('ALL');
    expect(mergeExport('ALL,X=1')).to.equal('ALL,X=1');
    expect(mergeExport('NONE')).to.equal('HPCC_JOB_IMAGE,HPCC_JOB_IMAGE_SHA256,HPCC_JOB_IMAGE_SIZE,HPCC_JOB_OPTIONS');
    expect(mergeExport('A,B=2')).to.equal('A,B=2,HPCC_JOB_IMAGE,HPCC_JOB_IMAGE_SHA256,HPCC_JOB_IMAGE_SIZE,HPCC_JOB_OPTIONS');
  });

  it('a pin goes through the environment unchanged; a malformed one is an error', () => {
    const pin = { image: '/s/i.sif', sha256: 'a'.repeat(64), size: 12, options: ['--env=A=1,2', '--nv'] };
    expect(pinFromEnv(pinToEnv(pin))).to.deep.equal(pin);
    expect(pinFromEnv({})).to.equal(undefined);
    expect(code(() => pinFromEnv({ ...pinToEnv(pin), HPCC_JOB_IMAGE_SHA256: 'zz' }))).to.equal('HPCC_E_SLURM_NO_IMAGE');
    expect(code(() => pinFromEnv({ ...pinToEnv(pin), HPCC_JOB_IMAGE: 'rel.sif' }))).to.equal('HPCC_E_SLURM_NO_IMAGE');
    // the entry gets the options, then --sharens, then the command
    const c = srunCommand(['-N3'], pin, ['cmd', 'a'], '/h', '/e');
    expect(c).to.deep.equal(['-N3', '/e', '/h', String(process.getuid!()), '/s/i.sif', 'a'.repeat(64), '12', '3', '--env=A=1,2', '--nv', '--sharens', 'cmd', 'a']);
  });

  it('the batch script sbatch gets carries the #SBATCH lines, the script and the clean-up step', () => {
    const w = wrapperScript("#!/bin/bash\n#SBATCH -N2\n# x\n#SBATCH --time=5\necho 'hi'\n#SBATCH -N9\n", 'dir/job.sh', ["it's"], '/h', '/e');
    expect(w.split('\n').filter((l) => l.startsWith('#SBATCH'))).to.deep.equal(['#SBATCH -N2', '#SBATCH --time=5']);
    expect(w).to.contain(Buffer.from("#!/bin/bash\n#SBATCH -N2\n").toString('base64').slice(0, 20));
    expect(w).to.contain(`'it'\\''s'`).and.contain("'/e' --unstage '/h'");
  });
});
