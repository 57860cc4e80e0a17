"""The computational core: loading, inputs, the sandbox, the step, metrics, attribution."""
