/**
 * The board's chart templates: fixed Vega-Lite specs, generated from probekit/charts/board.py
 * by scripts/extension_assets.py (do not edit by hand; a Python test checks they are current).
 * Each reads the named dataset "rows" and the param "selected_step"; nothing in a file
 * changes them, saved rows only fill them.
 */

export const TEMPLATES = {
  "drift": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "encoding": {
      "color": {
        "field": "label",
        "title": null,
        "type": "nominal"
      },
      "tooltip": [
        {
          "field": "label",
          "type": "nominal"
        },
        {
          "field": "layer",
          "type": "nominal"
        },
        {
          "field": "cos_drift",
          "format": ".3g",
          "type": "quantitative"
        }
      ],
      "x": {
        "field": "layer",
        "sort": {
          "field": "layer_index"
        },
        "title": "layer output",
        "type": "nominal"
      },
      "y": {
        "axis": {
          "format": "~g",
          "labelOverlap": "greedy",
          "labelSeparation": 4
        },
        "field": "cos_drift",
        "scale": {
          "type": "log"
        },
        "title": "cos_drift",
        "type": "quantitative"
      }
    },
    "height": 180,
    "mark": {
      "point": true,
      "type": "line"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "transform": [
      {
        "filter": "isValid(datum.cos_drift) && datum.cos_drift > 0"
      }
    ],
    "width": 420
  },
  "layers": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "encoding": {
      "color": {
        "field": "delta_l2",
        "legend": {
          "format": ".2g"
        },
        "scale": {
          "scheme": "viridis",
          "type": "log"
        },
        "title": "‖Δθ‖ of the layer",
        "type": "quantitative"
      },
      "stroke": {
        "condition": {
          "test": "datum.step === selected_step",
          "value": "#d62728"
        },
        "value": null
      },
      "strokeWidth": {
        "condition": {
          "test": "datum.step === selected_step",
          "value": 2
        },
        "value": 0
      },
      "tooltip": [
        {
          "field": "step",
          "type": "ordinal"
        },
        {
          "field": "layer",
          "type": "nominal"
        },
        {
          "field": "delta_l2",
          "format": ".3g",
          "type": "quantitative"
        },
        {
          "field": "delta_rel",
          "format": ".3g",
          "type": "quantitative"
        }
      ],
      "x": {
        "field": "step",
        "title": "step",
        "type": "ordinal"
      },
      "y": {
        "field": "layer",
        "sort": {
          "field": "layer_index"
        },
        "title": null,
        "type": "nominal"
      }
    },
    "height": 160,
    "mark": {
      "type": "rect"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "transform": [
      {
        "filter": "isValid(datum.delta_l2) && datum.delta_l2 > 0"
      }
    ],
    "width": 420
  },
  "timeline": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "resolve": {
      "scale": {
        "color": "independent"
      }
    },
    "vconcat": [
      {
        "encoding": {
          "color": {
            "field": "metric",
            "title": "metric",
            "type": "nominal"
          },
          "shape": {
            "field": "kind",
            "scale": {
              "domain": [
                "isolated",
                "committed",
                "failed"
              ]
            },
            "title": "step",
            "type": "nominal"
          },
          "size": {
            "condition": {
              "test": "datum.step === selected_step",
              "value": 140
            },
            "value": 45
          },
          "tooltip": [
            {
              "field": "step",
              "type": "quantitative"
            },
            {
              "field": "label",
              "type": "nominal"
            },
            {
              "field": "kind",
              "type": "nominal"
            },
            {
              "field": "status",
              "type": "nominal"
            },
            {
              "field": "value",
              "format": ".3g",
              "type": "quantitative"
            }
          ],
          "x": {
            "axis": {
              "format": "d"
            },
            "field": "step",
            "title": "step",
            "type": "quantitative"
          },
          "y": {
            "axis": {
              "format": "~g",
              "labelOverlap": "greedy",
              "labelSeparation": 4
            },
            "field": "value",
            "scale": {
              "type": "log"
            },
            "title": "update size ‖Δθ‖",
            "type": "quantitative"
          }
        },
        "height": 150,
        "mark": {
          "filled": true,
          "type": "point"
        },
        "transform": [
          {
            "as": [
              "metric",
              "value"
            ],
            "fold": [
              "delta_l2",
              "delta_l1"
            ]
          },
          {
            "filter": "isValid(datum.value) && datum.value > 0"
          }
        ],
        "width": 420
      },
      {
        "encoding": {
          "color": {
            "field": "metric",
            "title": "metric",
            "type": "nominal"
          },
          "shape": {
            "field": "kind",
            "scale": {
              "domain": [
                "isolated",
                "committed",
                "failed"
              ]
            },
            "title": "step",
            "type": "nominal"
          },
          "size": {
            "condition": {
              "test": "datum.step === selected_step",
              "value": 140
            },
            "value": 45
          },
          "tooltip": [
            {
              "field": "step",
              "type": "quantitative"
            },
            {
              "field": "label",
              "type": "nominal"
            },
            {
              "field": "kind",
              "type": "nominal"
            },
            {
              "field": "status",
              "type": "nominal"
            },
            {
              "field": "value",
              "format": ".3g",
              "type": "quantitative"
            }
          ],
          "x": {
            "axis": {
              "format": "d"
            },
            "field": "step",
            "title": "step",
            "type": "quantitative"
          },
          "y": {
            "field": "value",
            "title": "loss of the example",
            "type": "quantitative"
          }
        },
        "height": 110,
        "mark": {
          "filled": true,
          "type": "point"
        },
        "transform": [
          {
            "as": [
              "metric",
              "value"
            ],
            "fold": [
              "loss_before",
              "loss_after"
            ]
          },
          {
            "filter": "isValid(datum.value)"
          }
        ],
        "width": 420
      }
    ]
  },
  "tokens": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "encoding": {
      "color": {
        "field": "value",
        "scale": {
          "domainMid": 0,
          "scheme": "redblue"
        },
        "title": "score",
        "type": "quantitative"
      },
      "tooltip": [
        {
          "field": "token",
          "type": "nominal"
        },
        {
          "field": "position",
          "type": "quantitative"
        },
        {
          "field": "method",
          "type": "nominal"
        },
        {
          "field": "when",
          "type": "nominal"
        },
        {
          "field": "value",
          "format": ".4g",
          "type": "quantitative"
        }
      ],
      "x": {
        "axis": {
          "labelAngle": -45
        },
        "field": "column",
        "sort": {
          "field": "position"
        },
        "title": "input token",
        "type": "nominal"
      },
      "y": {
        "field": "row",
        "sort": null,
        "title": null,
        "type": "nominal"
      }
    },
    "mark": {
      "type": "rect"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "transform": [
      {
        "as": "column",
        "calculate": "datum.position + ': ' + datum.token"
      },
      {
        "as": "row",
        "calculate": "datum.method + ' ' + datum.when + (isValid(datum.step) ? ' · step ' + datum.step : '')"
      }
    ],
    "width": 420
  },
  "topk": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "encoding": {
      "color": {
        "field": "when",
        "scale": {
          "domain": [
            "before",
            "after"
          ]
        },
        "title": null,
        "type": "nominal"
      },
      "tooltip": [
        {
          "field": "label",
          "type": "nominal"
        },
        {
          "field": "token",
          "type": "nominal"
        },
        {
          "field": "when",
          "type": "nominal"
        },
        {
          "field": "rank",
          "type": "quantitative"
        },
        {
          "field": "prob",
          "format": ".3f",
          "type": "quantitative"
        }
      ],
      "x": {
        "field": "prob",
        "scale": {
          "domain": [
            0,
            1
          ]
        },
        "title": "probability",
        "type": "quantitative"
      },
      "y": {
        "field": "token",
        "sort": "-x",
        "title": null,
        "type": "nominal"
      },
      "yOffset": {
        "field": "when",
        "sort": [
          "before",
          "after"
        ],
        "type": "nominal"
      }
    },
    "height": 200,
    "mark": {
      "type": "bar"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "width": 420
  },
  "trajectory": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "hconcat": [
      {
        "height": 150,
        "layer": [
          {
            "encoding": {
              "color": {
                "field": "metric",
                "legend": {
                  "direction": "vertical",
                  "orient": "bottom"
                },
                "scale": {
                  "domain": [
                    "path_length",
                    "displacement"
                  ]
                },
                "title": null,
                "type": "nominal"
              },
              "tooltip": [
                {
                  "field": "step",
                  "type": "quantitative"
                },
                {
                  "field": "metric",
                  "type": "nominal"
                },
                {
                  "field": "value",
                  "format": ".3g",
                  "type": "quantitative"
                }
              ],
              "x": {
                "axis": {
                  "format": "d"
                },
                "field": "step",
                "title": "step",
                "type": "quantitative"
              },
              "y": {
                "axis": {
                  "format": "~g",
                  "labelOverlap": "greedy",
                  "labelSeparation": 4
                },
                "field": "value",
                "scale": {
                  "zero": true
                },
                "title": "distance in weight space",
                "type": "quantitative"
              }
            },
            "mark": {
              "invalid": "break-paths-filter-domains",
              "type": "line"
            },
            "transform": [
              {
                "as": [
                  "metric",
                  "value"
                ],
                "fold": [
                  "path_length",
                  "displacement"
                ]
              },
              {
                "as": "value",
                "calculate": "(isValid(datum.value)) ? datum.value : null"
              }
            ]
          },
          {
            "encoding": {
              "color": {
                "field": "metric",
                "legend": {
                  "direction": "vertical",
                  "orient": "bottom"
                },
                "scale": {
                  "domain": [
                    "path_length",
                    "displacement"
                  ]
                },
                "title": null,
                "type": "nominal"
              },
              "size": {
                "condition": {
                  "test": "datum.step === selected_step",
                  "value": 110
                },
                "value": 25
              },
              "tooltip": [
                {
                  "field": "step",
                  "type": "quantitative"
                },
                {
                  "field": "metric",
                  "type": "nominal"
                },
                {
                  "field": "value",
                  "format": ".3g",
                  "type": "quantitative"
                }
              ],
              "x": {
                "axis": {
                  "format": "d"
                },
                "field": "step",
                "title": "step",
                "type": "quantitative"
              },
              "y": {
                "axis": {
                  "format": "~g",
                  "labelOverlap": "greedy",
                  "labelSeparation": 4
                },
                "field": "value",
                "scale": {
                  "zero": true
                },
                "title": "distance in weight space",
                "type": "quantitative"
              }
            },
            "mark": {
              "filled": true,
              "type": "point"
            },
            "transform": [
              {
                "as": [
                  "metric",
                  "value"
                ],
                "fold": [
                  "path_length",
                  "displacement"
                ]
              },
              {
                "as": "value",
                "calculate": "(isValid(datum.value)) ? datum.value : null"
              },
              {
                "filter": "isValid(datum.value)"
              }
            ]
          }
        ],
        "width": 210
      },
      {
        "height": 150,
        "layer": [
          {
            "encoding": {
              "color": {
                "field": "metric",
                "legend": {
                  "direction": "vertical",
                  "orient": "bottom"
                },
                "scale": {
                  "domain": [
                    "direction_volatility",
                    "magnitude_volatility"
                  ]
                },
                "title": null,
                "type": "nominal"
              },
              "tooltip": [
                {
                  "field": "step",
                  "type": "quantitative"
                },
                {
                  "field": "metric",
                  "type": "nominal"
                },
                {
                  "field": "value",
                  "format": ".3g",
                  "type": "quantitative"
                }
              ],
              "x": {
                "axis": {
                  "format": "d"
                },
                "field": "step",
                "title": "step",
                "type": "quantitative"
              },
              "y": {
                "axis": {
                  "format": "~g",
                  "labelOverlap": "greedy",
                  "labelSeparation": 4
                },
                "field": "value",
                "scale": {
                  "zero": true
                },
                "title": "volatility",
                "type": "quantitative"
              }
            },
            "mark": {
              "invalid": "break-paths-filter-domains",
              "type": "line"
            },
            "transform": [
              {
                "as": [
                  "metric",
                  "value"
                ],
                "fold": [
                  "direction_volatility",
                  "magnitude_volatility"
                ]
              },
              {
                "as": "value",
                "calculate": "(isValid(datum.value)) ? datum.value : null"
              }
            ]
          },
          {
            "encoding": {
              "color": {
                "field": "metric",
                "legend": {
                  "direction": "vertical",
                  "orient": "bottom"
                },
                "scale": {
                  "domain": [
                    "direction_volatility",
                    "magnitude_volatility"
                  ]
                },
                "title": null,
                "type": "nominal"
              },
              "size": {
                "condition": {
                  "test": "datum.step === selected_step",
                  "value": 110
                },
                "value": 25
              },
              "tooltip": [
                {
                  "field": "step",
                  "type": "quantitative"
                },
                {
                  "field": "metric",
                  "type": "nominal"
                },
                {
                  "field": "value",
                  "format": ".3g",
                  "type": "quantitative"
                }
              ],
              "x": {
                "axis": {
                  "format": "d"
                },
                "field": "step",
                "title": "step",
                "type": "quantitative"
              },
              "y": {
                "axis": {
                  "format": "~g",
                  "labelOverlap": "greedy",
                  "labelSeparation": 4
                },
                "field": "value",
                "scale": {
                  "zero": true
                },
                "title": "volatility",
                "type": "quantitative"
              }
            },
            "mark": {
              "filled": true,
              "type": "point"
            },
            "transform": [
              {
                "as": [
                  "metric",
                  "value"
                ],
                "fold": [
                  "direction_volatility",
                  "magnitude_volatility"
                ]
              },
              {
                "as": "value",
                "calculate": "(isValid(datum.value)) ? datum.value : null"
              },
              {
                "filter": "isValid(datum.value)"
              }
            ]
          }
        ],
        "width": 210
      }
    ],
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "resolve": {
      "scale": {
        "color": "independent"
      }
    }
  },
  "watch": {
    "config": {
      "view": {
        "continuousHeight": 300,
        "continuousWidth": 300
      }
    },
    "data": {
      "name": "rows"
    },
    "encoding": {
      "color": {
        "field": "top1_flip",
        "scale": {
          "domain": [
            false,
            true
          ],
          "range": [
            "#4c78a8",
            "#e45756"
          ]
        },
        "title": "top-1 flipped",
        "type": "nominal"
      },
      "tooltip": [
        {
          "field": "label",
          "type": "nominal"
        },
        {
          "field": "kl",
          "format": ".3g",
          "type": "quantitative"
        },
        {
          "field": "dlogp_target",
          "format": ".3g",
          "type": "quantitative"
        },
        {
          "field": "top1_flip",
          "type": "nominal"
        },
        {
          "field": "logit_l2",
          "format": ".3g",
          "type": "quantitative"
        }
      ],
      "x": {
        "axis": {
          "format": "~g",
          "labelOverlap": "greedy",
          "labelSeparation": 4
        },
        "field": "kl",
        "scale": {
          "type": "log"
        },
        "title": "KL(before ‖ after)",
        "type": "quantitative"
      },
      "y": {
        "field": "label",
        "sort": null,
        "title": null,
        "type": "nominal"
      }
    },
    "mark": {
      "filled": true,
      "size": 90,
      "type": "point"
    },
    "params": [
      {
        "name": "selected_step",
        "value": null
      }
    ],
    "transform": [
      {
        "filter": "isValid(datum.kl) && datum.kl > 0"
      }
    ],
    "width": 420
  }
} as const;
