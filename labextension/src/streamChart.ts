/**
 * StreamChart: a Vega-Lite chart whose rows stream in from Python as Vega changesets.
 *
 * The view embeds the spec once, then asks Python for the current rows ("ready"); every later
 * update only inserts and removes rows of the named dataset "rows" (no re-embed, no flicker).
 * A "select" message sets the "selected_step" signal; a click on a mark with a `step` field sets
 * the synced `selected` trait. Errors are written into the widget as text.
 */
import { DOMWidgetModel, DOMWidgetView } from '@jupyter-widgets/base';
import type { View } from 'vega';

import {
  DATASET,
  Incoming,
  RowChanges,
  SELECTED_SIGNAL,
  clickedStep,
  describeError,
  displayText,
  parseMessage,
  removalPredicate
} from './changes';
import { MODULE_NAME, MODULE_VERSION } from './version';
import { EmbedResult, VegaStack, embedOptions, loadVega } from './vega';

export class StreamChartModel extends DOMWidgetModel {
  static model_name = 'StreamChartModel';
  static model_module = MODULE_NAME;
  static model_module_version = MODULE_VERSION;
  static view_name = 'StreamChartView';
  static view_module = MODULE_NAME;
  static view_module_version = MODULE_VERSION;

  override defaults(): ReturnType<DOMWidgetModel['defaults']> {
    return {
      ...super.defaults(),
      _model_name: StreamChartModel.model_name,
      _model_module: StreamChartModel.model_module,
      _model_module_version: StreamChartModel.model_module_version,
      _view_name: StreamChartModel.view_name,
      _view_module: StreamChartModel.view_module,
      _view_module_version: StreamChartModel.view_module_version,
      spec: {},
      title: '',
      key: 'step',
      selected: null
    };
  }
}

export class StreamChartView extends DOMWidgetView {
  private titleEl: HTMLDivElement | null = null;
  private chartEl: HTMLDivElement | null = null;
  private errorEl: HTMLDivElement | null = null;
  private stack: VegaStack | null = null;
  private embedded: EmbedResult | null = null;
  private hasSelectedSignal = false;
  /** Bumped on every (re-)embed, so a slow, outdated embed never takes over. */
  private generation = 0;

  override render(): void {
    this.el.classList.add('probekit-stream-chart');
    this.titleEl = this.part('probekit-title');
    this.chartEl = this.part('probekit-chart');
    this.errorEl = this.part('probekit-error');
    this.errorEl.hidden = true;
    this.listenTo(this.model, 'msg:custom', this.onMessage);
    this.listenTo(this.model, 'change:title', this.showTitle);
    this.listenTo(this.model, 'change:spec change:key', () => void this.embed());
    this.listenTo(this.model, 'change:selected', this.showSelected);
    this.showTitle();
    void this.embed();
  }

  override remove(): void {
    this.generation += 1;
    this.finalize();
    super.remove();
  }

  private part(className: string): HTMLDivElement {
    const div = document.createElement('div');
    div.className = className;
    this.el.appendChild(div);
    return div;
  }

  private showTitle(): void {
    if (this.titleEl) {
      this.titleEl.textContent = displayText(this.model.get('title'));
    }
  }

  private showError(context: string, error: unknown): void {
    if (this.errorEl) {
      this.errorEl.textContent = `probekit chart: ${context}: ${describeError(error)}`;
      this.errorEl.hidden = false;
    }
  }

  private clearError(): void {
    if (this.errorEl) {
      this.errorEl.textContent = '';
      this.errorEl.hidden = true;
    }
  }

  private finalize(): void {
    this.embedded?.finalize();
    this.embedded = null;
  }

  /** Draws the spec (with no rows yet), then asks Python for the current window. */
  private async embed(): Promise<void> {
    const generation = ++this.generation;
    this.finalize();
    try {
      const stack = await loadVega();
      if (generation !== this.generation || !this.chartEl) {
        return;
      }
      const spec: unknown = this.model.get('spec');
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
        throw new Error('the spec is not a Vega-Lite object');
      }
      const result = await stack.embed(this.chartEl, structuredClone(spec), embedOptions(stack.vega));
      if (generation !== this.generation) {
        result.finalize();
        return;
      }
      this.stack = stack;
      this.embedded = result;
      this.hasSelectedSignal = hasSignal(result.view, SELECTED_SIGNAL);
      result.view.addEventListener('click', (_event, item) => this.onClick(item?.datum));
      this.clearError();
      this.send({ type: 'ready' });
    } catch (error) {
      this.showError('the chart could not be drawn', error);
    }
  }

  private onMessage(content: unknown): void {
    let message: Incoming;
    try {
      message = parseMessage(content);
    } catch (error) {
      this.showError('a malformed update was ignored', error);
      return;
    }
    const view = this.embedded?.view;
    if (!view || !this.stack) {
      return; // not drawn yet: the "reset" that answers our "ready" brings every row
    }
    if (message.kind === 'rows') {
      this.applyRows(view, this.stack, message.changes);
    } else {
      this.setSelected(view, message.step);
    }
  }

  private applyRows(view: View, stack: VegaStack, changes: RowChanges): void {
    const changeset = stack.vega.changeset();
    if (changes.reset) {
      changeset.remove(stack.vega.truthy);
    } else if (changes.remove.length > 0) {
      changeset.remove(removalPredicate(String(this.model.get('key')), changes.remove));
    }
    changeset.insert(changes.insert);
    // resize(): lay the view out again, so axis labels and legends that came with the new rows
    // are not clipped (Vega sizes a view once, when it is first drawn with no rows).
    view
      .change(DATASET, changeset)
      .resize()
      .runAsync()
      .catch((error: unknown) => this.showError('an update could not be drawn', error));
  }

  private setSelected(view: View, step: number | null): void {
    if (!this.hasSelectedSignal) {
      return;
    }
    view
      .signal(SELECTED_SIGNAL, step)
      .runAsync()
      .catch((error: unknown) => this.showError('the selection could not be shown', error));
  }

  /** Another view's click (or Python) changed `selected`: show it here too. */
  private showSelected(): void {
    const view = this.embedded?.view;
    const step: unknown = this.model.get('selected');
    if (view && (step === null || typeof step === 'number')) {
      this.setSelected(view, step);
    }
  }

  private onClick(datum: unknown): void {
    const step = clickedStep(datum);
    if (step === null) {
      return;
    }
    const view = this.embedded?.view;
    if (view) {
      this.setSelected(view, step);
    }
    this.model.set('selected', step);
    this.touch();
  }
}

function hasSignal(view: View, name: string): boolean {
  try {
    view.signal(name);
    return true;
  } catch {
    return false;
  }
}
