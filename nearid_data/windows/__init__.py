"""User-history windows (personalized generation benchmark): planning, the stage, its card."""
