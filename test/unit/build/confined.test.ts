import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mkdirIn, readIn, resolveIn, writeIn } from '../../../src/build/def/confined.js';
import { makeTempDir, removeTree } from '../../helpers/env.js';

describe('build/def/confined: paths in a hostile build tree stay inside it', () => {
  let tmp: string;
  let root: string;
  let outside: string;
  beforeEach(() => {
    tmp = makeTempDir('hpcc-confined-');
    root = path.join(tmp, 'root');
    outside = path.join(tmp, 'outside');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'host secret\n');
    fs.symlinkSync(outside, path.join(root, 'opt')); // absolute link to a host directory
    fs.symlinkSync('../../../../../..' + outside, path.join(root, 'up')); // relative link climbing out
    fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'etc/link')); // link to a host file
  });
  afterEach(() => removeTree(tmp));

  it('resolves absolute and climbing links as if the tree were /', async () => {
    expect(await resolveIn(root, '/opt/x', true)).to.equal(path.join(root, outside, 'x'));
    expect(await resolveIn(root, 'up/x', true)).to.equal(path.join(root, outside, 'x'));
    expect(await resolveIn(root, '/../../etc/link', false)).to.equal(path.join(root, 'etc/link'));
    expect(await resolveIn(root, '/etc/link', true)).to.equal(path.join(root, outside, 'secret'));
  });

  it('writes through a linked directory land inside the tree; a linked file is replaced, not followed', async () => {
    await writeIn(root, '/opt/new.txt', 'data', 0o644);
    await writeIn(root, '/up/sub/deeper.txt', 'data', 0o600);
    await writeIn(root, '/etc/link', 'replaced', 0o644);
    expect(fs.readdirSync(outside)).to.deep.equal(['secret']);
    expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).to.equal('host secret\n');
    expect(fs.readFileSync(path.join(root, outside, 'new.txt'), 'utf8')).to.equal('data');
    expect(fs.readFileSync(path.join(root, outside, 'sub/deeper.txt'), 'utf8')).to.equal('data');
    expect(fs.lstatSync(path.join(root, 'etc/link')).isFile()).to.equal(true);
    expect((await mkdirIn(root, '/opt/a/b')).startsWith(root + '/')).to.equal(true);
  });

  it('reads never leave the tree', async () => {
    expect(await readIn(root, '/etc/link')).to.equal(null);
    expect(await readIn(root, '/opt/secret')).to.equal(null);
  });

  it('a link loop is an error, not a hang', async () => {
    fs.symlinkSync('/loop', path.join(root, 'loop'));
    await resolveIn(root, '/loop/x', true).then(
      () => expect.fail('resolved a loop'),
      (e: Error) => expect(e.message).to.contain('too many symbolic links'),
    );
  });
});
