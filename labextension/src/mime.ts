/**
 * probekit's MIME extensions (package.json "jupyterlab.mimeExtension"): saved board snapshots,
 * single results and session files drawn as read-only dashboards with no kernel. See src/renderer/.
 */
import extensions from './renderer/views';

export default extensions;
