-- Three layers: raw (validated ticks as received), core (bars and features), ml (training and evaluation runs).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS ml;
