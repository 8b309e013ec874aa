import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { inspectImage } from '../core/inspect.js';
import type { InspectAttributes } from '../core/metadata.js';

export default class Inspect extends HpccCommand {
  static override summary = "Show an image's labels, definition file, runscript, test, environment and help.";
  static override description =
    "Reads the metadata through hpcc's own SIF and squashfs readers (no mount). With no selection flag, shows the " +
    'labels, as Apptainer does.';
  static override examples = [
    '<%= config.bin %> inspect image.sif',
    '<%= config.bin %> inspect --runscript image.sif',
    '<%= config.bin %> inspect --all --json image.sif',
  ];
  static override args = {
    image: Args.string({ required: true, description: 'SIF file or sandbox directory' }),
  };
  static override flags = {
    labels: Flags.boolean({ char: 'l', description: 'show the labels (default)' }),
    deffile: Flags.boolean({ char: 'd', description: 'show the definition file the image was built from' }),
    runscript: Flags.boolean({ char: 'r', description: 'show the runscript' }),
    test: Flags.boolean({ char: 't', description: 'show the test script' }),
    environment: Flags.boolean({ char: 'e', description: 'show the environment scripts' }),
    helpfile: Flags.boolean({ char: 'H', description: 'show the runscript help' }),
    startscript: Flags.boolean({ char: 's', description: 'show the startscript' }),
    all: Flags.boolean({ description: 'show everything (implies --json)' }),
    json: Flags.boolean({ char: 'j', description: 'print structured JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    const { metadata } = await inspectImage(args.image);
    const a = metadata.data.attributes;
    const any =
      flags.labels || flags.deffile || flags.runscript || flags.test || flags.environment || flags.helpfile || flags.startscript;
    const want = {
      labels: flags.labels || !any,
      deffile: flags.deffile,
      runscript: flags.runscript,
      test: flags.test,
      environment: flags.environment,
      helpfile: flags.helpfile,
      startscript: flags.startscript,
    };
    if (flags.all || flags.json) {
      const picked: InspectAttributes = flags.all ? a : {};
      if (!flags.all) {
        if (want.labels) picked.labels = a.labels ?? {};
        if (want.deffile && a.deffile !== undefined) picked.deffile = a.deffile;
        if (want.runscript && a.runscript !== undefined) picked.runscript = a.runscript;
        if (want.test && a.test !== undefined) picked.test = a.test;
        if (want.environment && a.environment) picked.environment = a.environment;
        if (want.helpfile && a.helpfile !== undefined) picked.helpfile = a.helpfile;
        if (want.startscript && a.startscript !== undefined) picked.startscript = a.startscript;
      }
      this.printJson({ data: { attributes: picked }, type: 'container' });
      return;
    }
    const out: string[] = [];
    if (want.labels) {
      for (const k of Object.keys(a.labels ?? {}).sort()) out.push(`${k}: ${a.labels![k]}`);
    }
    if (want.deffile && a.deffile !== undefined) out.push(a.deffile);
    if (want.runscript && a.runscript !== undefined) out.push(a.runscript);
    if (want.test && a.test !== undefined) out.push(a.test);
    if (want.environment && a.environment) {
      for (const k of Object.keys(a.environment).sort()) out.push(`=== ${k} ===`, a.environment[k]!);
    }
    if (want.helpfile && a.helpfile !== undefined) out.push(a.helpfile);
    if (want.startscript && a.startscript !== undefined) out.push(a.startscript);
    if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
  }
}
