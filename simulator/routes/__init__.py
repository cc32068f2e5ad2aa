"""HTTP routes of the Octopus REST API, one module per area."""
