/** The widget module's name and version, as the Python side's _model_module(_version) name them. */
export const MODULE_NAME = 'probekit';
export const MODULE_VERSION = '0.1.0';
