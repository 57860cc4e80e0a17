/**
 * "New probekit notebook": a command (palette and launcher card) that writes a notebook from
 * the template into the file browser's current folder and opens it.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';

import { templateNotebook } from './notebookTemplate';

export const NEW_NOTEBOOK = 'probekit:new-notebook';

export const launcherPlugin: JupyterFrontEndPlugin<void> = {
  id: 'probekit:launcher',
  description: 'A launcher card and a palette command: New probekit notebook.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null
  ): void => {
    app.commands.addCommand(NEW_NOTEBOOK, {
      label: 'New probekit notebook',
      caption: 'A notebook with the demo model, a probe and its board',
      execute: async (args) => {
        const cwd = typeof args.cwd === 'string' ? args.cwd : (browser?.model.path ?? '');
        const contents = app.serviceManager.contents;
        const created = await contents.newUntitled({ path: cwd, type: 'notebook' });
        await contents.save(created.path, { type: 'notebook', format: 'json', content: templateNotebook() });
        return app.commands.execute('docmanager:open', { path: created.path, factory: 'Notebook' });
      }
    });
    launcher?.add({ command: NEW_NOTEBOOK, category: 'Notebook', rank: 10 });
    palette?.addItem({ command: NEW_NOTEBOOK, category: 'probekit' });
  }
};
