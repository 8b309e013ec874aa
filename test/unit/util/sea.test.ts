import { expect } from 'chai';
import { hpccCommand, inSea, nsWorkerCommand, SEA_NS_WORKER_ARG } from '../../../src/util/sea.js';

// Inside the release's single-executable application the commands differ (test/e2e/release.test.ts
// builds from a definition file there: the namespace worker and %test start from the SEA).
describe('util/sea (how hpcc starts Node on its own scripts)', () => {
  it('outside a SEA: this Node on the script', () => {
    expect(inSea()).to.equal(false);
    expect(nsWorkerCommand('/x/ns-worker.js')).to.deep.equal([process.execPath, '/x/ns-worker.js']);
    expect(hpccCommand('/x/bin/run.js')).to.deep.equal([process.execPath, '/x/bin/run.js']);
  });
  it('the namespace worker argument is an option no command takes', () => {
    expect(SEA_NS_WORKER_ARG).to.match(/^--hpcc-/);
  });
});
