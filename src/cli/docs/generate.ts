/**
 * Every generated document of the commands, by path below the install root:
 *   dist/man/man1/hpcc.1, hpcc-COMMAND.1   man pages (man.ts)
 *   dist/completions/hpcc.bash, _hpcc     bash and zsh completion (bash.ts, zsh.ts)
 *   docs/commands.md                      the command reference (markdown.ts; committed)
 * rendered from the loaded oclif commands (model.ts). scripts/gen-docs.mjs
 * writes the dist/ ones at `npm run build` and docs/commands.md at `npm run docs`;
 * test/integration/command-docs.test.ts compares the files with a fresh rendering.
 * The release tarball takes dist/man and dist/completions as they are.
 */
import { Config } from '@oclif/core';
import { installRoot } from '../../util/install-root.js';
import { renderBashCompletion } from './bash.js';
import { renderManPages } from './man.js';
import { renderCommandsMarkdown } from './markdown.js';
import { docModel, type DocModel } from './model.js';
import { renderZshCompletion } from './zsh.js';

export const MAN_DIR = 'dist/man/man1';
export const BASH_COMPLETION = 'dist/completions/hpcc.bash';
export const ZSH_COMPLETION = 'dist/completions/_hpcc';
export const COMMANDS_MD = 'docs/commands.md';

export interface LoadedDocs {
  model: DocModel;
  version: string;
}

/** The command model of the hpcc at `root` (its package.json's oclif section and compiled commands). */
export async function loadDocs(root: string = installRoot()): Promise<LoadedDocs> {
  const config = await Config.load(root);
  return { model: docModel(config), version: config.version };
}

/** The dist/ files: path below the install root → text. */
export function renderBuildDocs(d: LoadedDocs): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, text] of renderManPages(d.model, d.version)) out.set(`${MAN_DIR}/${name}`, text);
  out.set(BASH_COMPLETION, renderBashCompletion(d.model));
  out.set(ZSH_COMPLETION, renderZshCompletion(d.model));
  return out;
}

/** docs/commands.md's text. */
export function renderCommandsDoc(d: LoadedDocs): string {
  return renderCommandsMarkdown(d.model);
}
