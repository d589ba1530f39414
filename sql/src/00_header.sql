-- pg_prepaid install script, version 0.1.
-- Built by concatenating sql/src/*.sql in name order (see the Makefile).
-- Each fragment has one job; this one only guards against running by hand.

\echo Use "CREATE EXTENSION pg_prepaid" to load this file. \quit
