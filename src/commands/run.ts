import { LaunchCommand } from '../cli/launch-command.js';

export default class Run extends LaunchCommand {
  static override summary = "Run a SIF image's runscript (/.singularity.d/runscript) with the arguments.";
  static override usage = 'run [FLAGS] IMAGE [ARGS...]';
  static override examples = ['<%= config.bin %> run image.sif', '<%= config.bin %> run image.sif --input data.csv'];
  protected readonly action = 'run' as const;
}
