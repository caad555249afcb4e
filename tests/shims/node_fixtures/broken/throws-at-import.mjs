// Throws while the module is evaluated, like a missing configuration would.
throw new Error('configuration missing at import');
