//! Integration tests, one binary: one module per area.

mod city;
mod engine;
mod grid;
mod routing;
mod topo;
