/**
 * probekit's JupyterLab extension. One plugin per concept:
 * - probekit:widgets registers the widget module (StreamChart) with the ipywidgets manager, so the
 *   widget's JavaScript comes with the extension, once per page, never over the widget comm.
 * - probekit:launcher adds "New probekit notebook" to the launcher and the command palette.
 * Saved results and session files are drawn by the MIME extensions of src/mime.ts.
 */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { launcherPlugin } from './launcher';
import { MODULE_NAME, MODULE_VERSION } from './version';

const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'probekit:widgets',
  description: 'Live probekit charts (StreamChart) for Jupyter widgets.',
  autoStart: true,
  requires: [IJupyterWidgetRegistry],
  activate: (_app: JupyterFrontEnd, registry: IJupyterWidgetRegistry): void => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: async () => {
        const { StreamChartModel, StreamChartView } = await import('./streamChart');
        return { StreamChartModel, StreamChartView };
      }
    });
  }
};

const plugins: JupyterFrontEndPlugin<unknown>[] = [widgetsPlugin, launcherPlugin];
export default plugins;
