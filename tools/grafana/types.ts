// What a suanwang dashboard must be: Grafana's own dashboard model, as published
// by Grafana in @grafana/schema (generated there from Grafana's CUE schema), with
// each panel's options checked against the options of its panel plugin (also from
// @grafana/schema) and each query against the fields of a Prometheus query.
//
// check.mjs assigns each dashboard's JSON to `CheckedDashboard` as an object
// literal and type-checks it with TypeScript: a missing required field, a value of
// the wrong type, a value outside an enumeration or a misspelt key (an excess
// property) is an error.

import type {
  DataQuery,
  Dashboard,
  DataSourceRef,
  FieldConfigSource,
  Panel,
  RowPanel,
} from '@grafana/schema';
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as TextOptions } from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';

/**
 * A type as its JSON is written: Grafana's string enums (nominal in TypeScript)
 * become the unions of their values, recursively. Numeric enums take numbers
 * already.
 */
export type Wire<T> = T extends string
  ? `${T}`
  : T extends Array<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/**
 * A Prometheus query as Grafana's Prometheus data source stores it (the fields
 * of its `PromQuery`, which @grafana/schema does not carry).
 */
export interface PromQuery extends Omit<DataQuery, 'datasource'> {
  datasource?: DataSourceRef;
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
  exemplar?: boolean;
  editorMode?: 'code' | 'builder';
}

/** A panel of plugin `T` with that plugin's options and custom field config. */
type PluginPanel<T extends string, Options, Custom> = Omit<
  Panel,
  'type' | 'options' | 'fieldConfig' | 'targets'
> & {
  type: T;
  // Grafana fills in the options a saved panel leaves out.
  options?: Partial<Options>;
  fieldConfig?: Omit<FieldConfigSource, 'defaults'> & {
    defaults: Omit<FieldConfigSource['defaults'], 'custom'> & { custom?: Partial<Custom> };
  };
  targets?: PromQuery[];
};

/** The panel plugins our dashboards use. */
export type KnownPanel =
  | PluginPanel<'timeseries', TimeSeriesOptions, TimeSeriesFieldConfig>
  | PluginPanel<'stat', StatOptions, Record<string, never>>
  | PluginPanel<'text', TextOptions, Record<string, never>>;

/** A row: Grafana's, holding our panels when collapsed. */
export type KnownRow = Omit<RowPanel, 'panels'> & { panels: KnownPanel[] };

/** A dashboard as Grafana loads it, with our panels. */
export type CheckedDashboard = Wire<
  Omit<Dashboard, 'panels'> & { panels?: Array<KnownPanel | KnownRow> }
>;
