/**
 * The read-only views: a saved board snapshot or a single result (notebook outputs) and a
 * session file (a document). Each validates what it is given before drawing anything and shows a clear
 * message instead when it cannot: no blank panel, nothing thrown into the console.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { describeError } from '../changes';
import { Dashboard, DashboardData } from './dashboard';
import { BOARD_MIME, RESULT_MIME, SESSION_MIME, boardData, resultData, sessionData } from './data';

/** The dashboard of what a MIME bundle holds, by its type (validated first). */
function dashboardData(mimeType: string, raw: unknown): DashboardData {
  switch (mimeType) {
    case BOARD_MIME:
      return boardData(raw);
    case RESULT_MIME:
      return resultData(raw);
    default:
      return sessionData(typeof raw === 'string' ? raw : JSON.stringify(raw ?? ''));
  }
}

/** A renderer that validates its data, then draws the dashboard (or the reason it cannot). */
export class ProbekitRenderer extends Widget implements IRenderMime.IRenderer {
  private readonly dashboard: Dashboard;

  constructor(private readonly mimeType: string) {
    super();
    this.addClass('probekit-renderer');
    this.dashboard = new Dashboard(this.node);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    let data: DashboardData;
    try {
      data = dashboardData(this.mimeType, model.data[this.mimeType]);
    } catch (error) {
      this.dashboard.showError(`Cannot show this probekit data. ${describeError(error)}`);
      return;
    }
    await this.dashboard.draw(data);
  }

  override dispose(): void {
    if (!this.isDisposed) {
      this.dashboard.clear();
    }
    super.dispose();
  }
}

function factory(mimeType: string): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [mimeType],
    defaultRank: 50,
    createRenderer: () => new ProbekitRenderer(mimeType)
  };
}

/** Saved board snapshots in notebook outputs: drawn with no kernel. */
const boardExtension: IRenderMime.IExtension = {
  id: 'probekit:board-renderer',
  description: 'Draws saved probekit board snapshots (no kernel needed).',
  rendererFactory: factory(BOARD_MIME),
  rank: 50,
  dataType: 'json'
};

/** Single results (a probe step, a trajectory, an attribution) in notebook outputs. */
const resultExtension: IRenderMime.IExtension = {
  id: 'probekit:result-renderer',
  description: 'Draws saved probekit results (no kernel needed).',
  rendererFactory: factory(RESULT_MIME),
  rank: 50,
  dataType: 'json'
};

/** Session files (*.probekit.json) opened as read-only documents. */
const sessionExtension: IRenderMime.IExtension = {
  id: 'probekit:session-viewer',
  description: 'Opens probekit session files (*.probekit.json) as a read-only dashboard.',
  rendererFactory: factory(SESSION_MIME),
  rank: 50,
  dataType: 'string',
  fileTypes: [
    {
      name: 'probekit-session',
      displayName: 'probekit session',
      mimeTypes: [SESSION_MIME],
      extensions: ['.probekit.json'],
      fileFormat: 'text'
    }
  ],
  documentWidgetFactoryOptions: {
    name: 'probekit session viewer',
    label: 'probekit session',
    primaryFileType: 'probekit-session',
    fileTypes: ['probekit-session'],
    defaultFor: ['probekit-session']
  }
};

const extensions: IRenderMime.IExtension[] = [boardExtension, resultExtension, sessionExtension];
export default extensions;
