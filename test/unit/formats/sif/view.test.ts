import { expect } from 'chai';
import { SifReader, goTime, readableSize, renderHeaderText, renderInfoText, renderListText } from '../../../../src/formats/sif/index.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';
import { writeSample } from './sample.js';

describe('formats/sif/view', () => {
  it('readableSize matches the reference table', () => {
    const k = 1024;
    expect(readableSize(0)).to.equal('0 B');
    expect(readableSize(1)).to.equal('1 B');
    expect(readableSize(1023)).to.equal('1023 B');
    expect(readableSize(k)).to.equal('1 KiB');
    expect(readableSize(2047)).to.equal('2 KiB');
    expect(readableSize(28080)).to.equal('27 KiB');
    expect(readableSize(k ** 2)).to.equal('1 MiB');
    expect(readableSize(k ** 3)).to.equal('1 GiB');
    expect(readableSize(k ** 4)).to.equal('1 TiB');
    expect(readableSize(k ** 5)).to.equal('1 PiB');
    expect(readableSize(k ** 6)).to.equal('1 EiB');
    expect(readableSize(-2047)).to.equal('-2 KiB');
  });

  it('goTime prints like Go time.Time.String() in UTC', () => {
    expect(goTime(1593475316)).to.equal('2020-06-30 00:01:56 +0000 UTC');
    expect(goTime(0)).to.equal('1970-01-01 00:00:00 +0000 UTC');
  });

  it('renders the deterministic sample like siftool', async () => {
    const dir = makeTempDir('hpcc-sifv-');
    try {
      const r = await SifReader.open(await writeSample(dir));
      try {
        expect(renderHeaderText(r.header)).to.equal(
          [
            'Launch Script:        #!/usr/bin/env run-singularity',
            'Version:              01',
            'Primary Architecture: amd64',
            'Descriptors Free:     45',
            'Descriptors Total:    48',
            'Descriptors Offset:   4096',
            'Descriptors Size:     27 KiB',
            'Data Offset:          32176',
            'Data Size:            5 KiB',
            '',
          ].join('\n'),
        );
        expect(renderListText(r.descriptors).split('\n').slice(3)).to.deep.equal([
          '1    |1       |NONE    |32176-32215               |Def.FILE',
          '2    |1       |NONE    |32215-32233               |JSON.Generic',
          '3    |1       |NONE    |32768-37768               |FS (Squashfs/*System/amd64)',
          '',
        ]);
        expect(renderInfoText(r.descriptors[1]!)).to.equal(
          ['  Data Type:  JSON.Generic', '  ID:         2', '  Group ID:   1', '  Linked ID:  NONE', '  Offset:     32215', '  Size:       18', '  Name:       inspect-metadata.json', ''].join('\n'),
        );
      } finally {
        await r.close();
      }
    } finally {
      removeTree(dir);
    }
  });
});
