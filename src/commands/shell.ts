import { LaunchCommand } from '../cli/launch-command.js';

export default class Shell extends LaunchCommand {
  static override summary = 'Start an interactive shell inside a SIF image.';
  static override description = 'The shell is $SHELL when the image has it, else /bin/sh.';
  static override usage = 'shell [FLAGS] IMAGE [SHELL-ARGS...]';
  static override examples = ['<%= config.bin %> shell image.sif', '<%= config.bin %> shell -B /data image.sif'];
  protected readonly action = 'shell' as const;
}
