-- Temporal keeps its own databases beside Handoff's, under its own role.
CREATE ROLE temporal LOGIN PASSWORD 'temporal' CREATEDB;
