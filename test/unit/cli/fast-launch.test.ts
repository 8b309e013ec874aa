import { expect } from 'chai';
import { launchRequest, parseFast } from '../../../src/cli/fast-launch.js';
import { splitAtImage } from '../../../src/cli/launch-command.js';

describe('cli: launch argv parsing', () => {
  it('everything after IMAGE belongs to the payload, flags included', () => {
    const p = parseFast(['-B', '/a', '--bind=/b:/c', '--env', 'X=1', '-c', 'img.sif', 'ls', '-la', '--env', 'Y'])!;
    expect(p.image).to.equal('img.sif');
    expect(p.rest).to.deep.equal(['ls', '-la', '--env', 'Y']);
    const f = launchRequest('exec', p).flags;
    expect(f).to.deep.include({ bind: ['/a', '/b:/c'], env: ['X=1'], contain: true, args: ['ls', '-la', '--env', 'Y'] });
  });
  it('-- ends hpcc flags; the image follows it', () => {
    expect(parseFast(['-e', '--', '-odd.sif', 'x'])).to.deep.include({ image: '-odd.sif', rest: ['x'] });
  });
  it('hands unknown flags, --help, a missing value, a repeated single-value flag or no image back to oclif', () => {
    for (const argv of [['--help'], ['--nope', 'i.sif'], ['-B'], ['--pwd', '/a', '--pwd', '/b', 'i.sif'], ['-c'], ['--contain=yes', 'i.sif'], ['-ce', 'i.sif'], ['-W=/x', 'i.sif']]) {
      expect(parseFast(argv), argv.join(' ')).to.equal(null);
    }
  });
  it('oclif path: splitAtImage skips the values of every value option (the table), not `=` or attached forms', () => {
    expect(splitAtImage(['-B', 'x', '--pwd', '/p', 'i.sif', 'cmd', '-B'])).to.deep.equal({ head: ['-B', 'x', '--pwd', '/p', 'i.sif'], rest: ['cmd', '-B'] });
    expect(splitAtImage(['--', '-i.sif', 'a'])).to.deep.equal({ head: ['--', '-i.sif'], rest: ['a'] });
    // regression: -W, --workdir and --mount were missing from its hand-written list, so the value became IMAGE
    expect(splitAtImage(['-j', '-W', '/scratch', 'img.sif', 'true'])).to.deep.equal({ head: ['-j', '-W', '/scratch', 'img.sif'], rest: ['true'] });
    expect(splitAtImage(['--workdir', '/s', '--mount', 'type=bind,source=/a,destination=/b', 'img.sif'])).to.deep.equal({
      head: ['--workdir', '/s', '--mount', 'type=bind,source=/a,destination=/b', 'img.sif'],
      rest: [],
    });
    expect(splitAtImage(['--workdir=/s', 'img.sif', 'x'])).to.deep.equal({ head: ['--workdir=/s', 'img.sif'], rest: ['x'] });
  });
});
