/**
 * The Vega stack (vega, vega-lite, vega-embed), bundled with the extension and loaded lazily:
 * webpack puts it in its own chunk, fetched once per page from the extension's static files on
 * the Jupyter server the first time a chart is drawn. No CDN, and charts fetch nothing either.
 */
import type { EmbedOptions, Result } from 'vega-embed';

type VegaModule = typeof import('vega');
type EmbedFunction = typeof import('vega-embed').default;

export interface VegaStack {
  readonly vega: VegaModule;
  readonly embed: EmbedFunction;
}

export type EmbedResult = Result;

let loading: Promise<VegaStack> | null = null;

/** The Vega stack, imported on first use and shared by every chart on the page. */
export function loadVega(): Promise<VegaStack> {
  loading ??= Promise.all([import('vega'), import('vega-embed')]).then(([vega, embedModule]) => ({
    vega,
    embed: embedModule.default
  }));
  return loading;
}

/** A Vega loader that refuses every URL: chart data arrives over the widget, never the network. */
export function offlineLoader(vega: VegaModule): ReturnType<VegaModule['loader']> {
  const loader = vega.loader();
  loader.sanitize = (uri: string) =>
    Promise.reject(new Error(`probekit charts load no URLs (the spec asked for ${uri})`));
  return loader;
}

/** How every probekit chart is embedded: SVG (marks are inspectable), no action menu, offline. */
export function embedOptions(vega: VegaModule): EmbedOptions {
  return {
    mode: 'vega-lite',
    renderer: 'svg',
    actions: false,
    loader: offlineLoader(vega)
  };
}
