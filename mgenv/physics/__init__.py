"""Physics stage: forecasts of renewables and loads, storage and dispatch (pure functions)."""
