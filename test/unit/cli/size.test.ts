import { expect } from 'chai';
import { parseBlockSize } from '../../../src/cli/size.js';

describe('cli: --block-size', () => {
  it('bytes or K/M suffixes, powers of two from 4K to 1M', () => {
    expect(parseBlockSize('4096')).to.equal(4096);
    expect(parseBlockSize('128K')).to.equal(131072);
    expect(parseBlockSize(' 1m ')).to.equal(1048576);
  });
  for (const bad of ['', '12x', '-4K', '2K', '2M', '100K', '1.5M']) {
    it(`refuses "${bad}" with a usage error (exit 2) and a hint`, () => {
      try {
        parseBlockSize(bad);
        expect.fail('accepted');
      } catch (e) {
        const err = e as { code?: string; exitCode?: number; hint?: string };
        expect(err.exitCode).to.equal(2);
        expect(err.hint).to.be.a('string').and.not.equal('');
      }
    });
  }
});
