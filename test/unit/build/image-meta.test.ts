import { expect } from 'chai';
import { parseDefinition } from '../../../src/build/def/index.js';
import { BUILD_LABELS, buildDateLabel, dedent, imageMeta, scriptFile } from '../../../src/build/def/image-meta.js';

describe('build/def/image-meta: what the image\'s /.singularity.d receives', () => {
  it('scripts keep their own #! line (section arguments join it), else get #!/bin/sh', () => {
    expect(scriptFile('    echo hi\n', '')).to.equal('#!/bin/sh\n\n    echo hi\n\n');
    expect(scriptFile('\n  #!/bin/bash\n  echo "$@"', '')).to.equal('#!/bin/bash\n\n  echo "$@"\n');
    expect(scriptFile('echo x', '-l # comment')).to.equal('#!/bin/sh -l\n\necho x\n');
  });

  it("Apptainer's build-date text, in UTC", () => {
    expect(buildDateLabel(0)).to.equal('Thursday_1_January_1970_0:0:0_UTC');
    expect(buildDateLabel(1764968649)).to.equal('Friday_5_December_2025_21:4:9_UTC');
  });

  it('labels: build labels, header keys, then %labels (later wins); help dedented', () => {
    const d = parseDefinition('x.def', 'Bootstrap: docker\nFrom: debian:12\n%labels\n  org.label-schema.schema-version 9\n  A b c\n%help\n    line one\n      indented\n%environment\n  export X=1\n');
    const m = imageMeta(d.stages[0]!, d.text, { time: 0, arch: 'x64', version: '1.2.3' });
    const labels = Object.fromEntries(m.labels);
    expect(labels).to.include({
      [BUILD_LABELS.schemaVersion]: '9',
      A: 'b c',
      [BUILD_LABELS.deffilePrefix + 'bootstrap']: 'docker',
      [BUILD_LABELS.deffilePrefix + 'from']: 'debian:12',
      [BUILD_LABELS.buildArch]: 'amd64',
      [BUILD_LABELS.created]: '1970-01-01T00:00:00Z',
      [BUILD_LABELS.hpccVersion]: '1.2.3',
      [BUILD_LABELS.usage]: '/.singularity.d/runscript.help',
    });
    expect(m.help).to.equal('line one\n  indented\n');
    expect(m.environment).to.contain('export X=1');
    expect(m.runscript).to.equal(undefined);
    expect(dedent('\n\n   a\n     b\n\n')).to.equal('a\n  b');
  });
});
