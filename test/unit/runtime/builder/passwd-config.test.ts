import { expect } from 'chai';
import { UsageError } from '../../../../src/errors/index.js';
import { configFiles, mergeConfig, parseConfig } from '../../../../src/runtime/builder/config.js';
import { findById, generateGroup, generatePasswd, parseGroupLine, parsePasswdLine } from '../../../../src/runtime/builder/passwd.js';

const alice = { name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice: the 1st', home: '/home/alice', shell: '/bin/bash' };

describe('runtime/builder: passwd and group', () => {
  it('appends the caller to the image passwd, home = container $HOME, separators cleaned', () => {
    expect(generatePasswd('root:x:0:0:root:/root:/bin/sh\n', alice, '/h', '/bin/sh')).to.equal(
      'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice  the 1st:/h:/bin/sh\n',
    );
  });
  it('replaces an entry with the same name or uid (once)', () => {
    const img = 'root:x:0:0::/root:/bin/sh\nalice:x:5:5::/x:/bin/sh\nbob:x:1000:1000::/b:/bin/sh\n';
    expect(generatePasswd(img, alice, '/h', '/bin/sh').split('\n').filter((l) => l.startsWith('alice') || l.startsWith('bob'))).to.deep.equal([
      'alice:x:1000:1000:Alice  the 1st:/h:/bin/sh',
    ]);
  });
  it('works without an image passwd/group', () => {
    expect(generatePasswd(null, alice, '/h', '/bin/sh')).to.equal('alice:x:1000:1000:Alice  the 1st:/h:/bin/sh\n');
    expect(generateGroup(null, { name: 'alice', gid: 1000 }, 'alice')).to.equal('alice:x:1000:alice\n');
  });
  it('group: replaces the same gid keeping members', () => {
    expect(generateGroup('root:x:0:\nstaff:x:1000:bob\n', { name: 'alice', gid: 1000 }, 'alice')).to.equal('root:x:0:\nalice:x:1000:bob\n');
  });
  it('parses host entries and finds them by id', () => {
    const text = 'root:x:0:0:root:/root:/bin/sh\nbroken\nalice:x:1000:1000:A:/home/alice:/bin/bash\n';
    expect(findById(text, parsePasswdLine, 'uid', 1000)?.home).to.equal('/home/alice');
    expect(findById(text, parsePasswdLine, 'uid', 7)).to.equal(null);
    expect(parseGroupLine('g:x:12:a,b')).to.deep.equal({ name: 'g', gid: 12 });
    expect(parseGroupLine('g:x::')).to.equal(null);
  });
});

describe('runtime/builder: config', () => {
  it('parses binds (comma lists and path[]), mount toggles and launch defaults', () => {
    const c = parseConfig('[bind]\npath = /a,/b:/c:ro\npaths[] = /d\n[mount]\nhome = no\nscratch = false\n[launch]\ncontain = yes\nsquashfuse = /opt/sqfs\n', 'x.conf');
    expect(c.bindPaths).to.deep.equal(['/a', '/b:/c:ro', '/d']);
    expect(c.mount).to.deep.equal({ home: false, scratch: false });
    expect(c.contain).to.equal(true);
    expect(c.squashfuse).to.equal('/opt/sqfs');
  });
  it('site then user: binds accumulate, toggles override', () => {
    const m = mergeConfig([parseConfig('[bind]\npath=/site\n[mount]\nhome=no\n', 's'), parseConfig('[bind]\npath=/user\n[mount]\nhome=yes\n', 'u')]);
    expect(m.bindPaths).to.deep.equal(['/site', '/user']);
    expect(m.mount.home).to.equal(true);
    expect(m.mount.tmp).to.equal(true);
  });
  it('rejects unknown mount keys and bad booleans with the file name', () => {
    expect(() => parseConfig('[mount]\nhomes = yes\n', 'bad.conf')).to.throw(UsageError, /bad.conf.*homes/);
    expect(() => parseConfig('[mount]\nhome = maybe\n', 'bad.conf')).to.throw(UsageError, /maybe/);
  });
  it('[launch] overlay: a known mode (case-insensitive), the later file wins; an unknown mode names the file', () => {
    expect(parseConfig('[launch]\noverlay = Skeleton\n', 'a').overlay).to.equal('skeleton');
    expect(mergeConfig([parseConfig('[launch]\noverlay=none\n', 's'), parseConfig('[launch]\noverlay=fuse\n', 'u')]).overlay).to.equal('fuse');
    expect(mergeConfig([parseConfig('[launch]\noverlay=kernel\n', 's'), parseConfig('[mount]\nhome=no\n', 'u')]).overlay).to.equal('kernel');
    expect(() => parseConfig('[launch]\noverlay = btrfs\n', 'bad.conf')).to.throw(UsageError, /bad.conf \[launch\] overlay.*btrfs/);
  });
  it('file order: site, then XDG user config; HPCC_CONFIG replaces both', () => {
    expect(configFiles({ HOME: '/h' })).to.deep.equal(['/etc/hpcc/hpcc.conf', '/h/.config/hpcc/hpcc.conf']);
    expect(configFiles({ HOME: '/h', XDG_CONFIG_HOME: '/x' })).to.deep.equal(['/etc/hpcc/hpcc.conf', '/x/hpcc/hpcc.conf']);
    expect(configFiles({ HPCC_CONFIG: '/t.conf' })).to.deep.equal(['/t.conf']);
  });
});
