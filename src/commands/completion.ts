import { Args } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { renderBashCompletion } from '../cli/docs/bash.js';
import { docModel } from '../cli/docs/model.js';
import { renderZshCompletion } from '../cli/docs/zsh.js';

export default class Completion extends HpccCommand {
  static override summary = 'Print the shell completion script for bash or zsh.';
  static override description =
    "Completes commands, flags, flag values, *.sif files, directories and the docker:// references this user's cache " +
    'has resolved before (read from the cache by the shell, without starting hpcc). The script is made from the ' +
    'commands themselves, as the man pages and docs/commands.md are; the release ships it as ' +
    'share/bash-completion/completions/hpcc and share/zsh/site-functions/_hpcc.';
  static override examples = [
    { description: 'bash, this shell (add the line to ~/.bashrc to keep it):', command: 'source <(<%= config.bin %> completion bash)' },
    { description: 'zsh: a file _hpcc in a directory of $fpath, before compinit runs:', command: '<%= config.bin %> completion zsh > ~/.zfunc/_hpcc' },
  ];
  static override args = {
    shell: Args.string({ required: true, options: ['bash', 'zsh'], description: 'bash or zsh' }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Completion);
    const model = docModel(this.config);
    process.stdout.write(args.shell === 'zsh' ? renderZshCompletion(model) : renderBashCompletion(model));
  }
}
