//! Integration tests, one binary: one module per area.

mod audit;
mod city;
mod grid;
mod routing;
mod topo;
