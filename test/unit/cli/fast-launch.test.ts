import { expect } from 'chai';
import { parseFast, toLaunchFlags } from '../../../src/cli/fast-launch.js';
import { splitAtImage } from '../../../src/cli/launch-command.js';

describe('cli: launch argv parsing', () => {
  it('everything after IMAGE belongs to the payload, flags included', () => {
    const p = parseFast(['-B', '/a', '--bind=/b:/c', '--env', 'X=1', '-c', 'img.sif', 'ls', '-la', '--env', 'Y'])!;
    expect(p.image).to.equal('img.sif');
    expect(p.rest).to.deep.equal(['ls', '-la', '--env', 'Y']);
    const f = toLaunchFlags('exec', p);
    expect(f).to.deep.include({ bind: ['/a', '/b:/c'], env: ['X=1'], contain: true, args: ['ls', '-la', '--env', 'Y'] });
  });
  it('-- ends hpcc flags; the image follows it', () => {
    expect(parseFast(['-e', '--', '-odd.sif', 'x'])).to.deep.include({ image: '-odd.sif', rest: ['x'] });
  });
  it('hands unknown flags, --help, a missing value, a repeated single-value flag or no image back to oclif', () => {
    for (const argv of [['--help'], ['--nope', 'i.sif'], ['-B'], ['--pwd', '/a', '--pwd', '/b', 'i.sif'], ['-c'], ['--contain=yes', 'i.sif']]) {
      expect(parseFast(argv), argv.join(' ')).to.equal(null);
    }
  });
  it('oclif path: splitAtImage skips flag values', () => {
    expect(splitAtImage(['-B', 'x', '--pwd', '/p', 'i.sif', 'cmd', '-B'])).to.deep.equal({ head: ['-B', 'x', '--pwd', '/p', 'i.sif'], rest: ['cmd', '-B'] });
    expect(splitAtImage(['--', 'i.sif', 'a'])).to.deep.equal({ head: ['i.sif'], rest: ['a'] });
  });
});
