"""What doctors and patients see: dashboard, AGP and BP reports, FHIR export."""
